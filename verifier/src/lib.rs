//! Veil verifier: the byte formats shared by provers and verifiers, and (as the proving system lands)
//! proof verification. It sits at the bottom of the crate ladder with a small dependency tree so a backend
//! can verify without pulling in ONNX, image or tensor code.
//!
//! Today it owns [`Digest`], the content address by which bundles, manifests and artifacts name a model.
#![deny(missing_docs, unsafe_code)]

/// The verifying artifact of a compiled model.
pub mod artifact;
/// Commitment-scheme backends (IPA, KZG) and single-proof verification.
pub mod backend;
/// The proof bundle: its byte format, statement binding and commitment chain.
pub mod bundle;
/// The slice circuit's constraint system, shared by prover and verifier.
pub mod circuit;
mod digest;
/// Poseidon hash over BN254's scalar field: native reference and halo2 chip.
pub mod poseidon;
/// KZG reference strings from a powers-of-tau ceremony file (snarkjs `.ptau`).
pub mod srs;
/// What a verifier returns: verdicts, rejections with stable codes, and the JSON report.
pub mod verdict;
/// Bundle verification.
pub mod verify;

pub use digest::{Digest, DigestParseError};
