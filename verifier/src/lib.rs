//! Veil verifier: the byte formats shared by provers and verifiers, and (as the proving system lands)
//! proof verification. It sits at the bottom of the crate ladder with a small dependency tree so a backend
//! can verify without pulling in ONNX, image or tensor code.
//!
//! Today it owns [`Digest`], the content address by which bundles, manifests and artifacts name a model.
#![deny(missing_docs, unsafe_code)]

mod digest;

pub use digest::{Digest, DigestParseError};
