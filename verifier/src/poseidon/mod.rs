//! Poseidon over BN254's scalar field (width 3, rate 2, x^5, 8 full and 57 partial rounds, circomlib's
//! constants): a native reference in [`native`] and a circuit chip in [`chip`] computing the same sponge.
//!
//! Veil uses it to commit to values inside proofs; the sponge definition (domain in the capacity, zero padding
//! to an even length, output lane 1) is documented in [`native`].

pub mod chip;
pub mod native;

pub use chip::{PoseidonChip, PoseidonConfig};
pub use native::{hash, permute};
