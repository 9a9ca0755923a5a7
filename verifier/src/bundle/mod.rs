//! The proof bundle: the bytes a prover sends and a verifier parses.
//!
//! A bundle names the compiled model by digest, carries one halo2 proof per proved slice together with the
//! commitments to the boundary tensors that slice reads and writes, the revealed
//! [`Claim`](crate::bundle::Claim), and the verifier-chosen `nonce` and `audience` that make it single-use. Every
//! slice proof carries [`statement_binding`](crate::bundle::statement_binding) as a public input, so a proof
//! made for one (model, nonce, audience, claim, input) does not verify for any other.
//!
//! Bundles arrive from untrusted provers: [`ProofBundle::from_bytes`](crate::bundle::ProofBundle::from_bytes)
//! never panics, bounds every allocation by the input length, enforces the `MAX_*` limits and accepts exactly
//! the bytes [`ProofBundle::to_bytes`](crate::bundle::ProofBundle::to_bytes) produces (the encoding is
//! canonical). The byte layout, limits, binding encoding and rejection codes are written down in
//! `docs/bundle-format.md`.

mod binding;
mod format;

pub use binding::{check_chain, fr_from_bytes, fr_to_bytes, statement_binding, SliceBoundary, BINDING_DOMAIN};
pub(crate) use format::ser_commitment;
pub use format::{
    HEADER_LEN, MAGIC, MAX_AUDIENCE_BYTES, MAX_BOUNDARY_COMMITMENTS, MAX_BUNDLE_BYTES, MAX_NONCE_BYTES,
    MAX_OUTPUT_VALUES, MAX_PROOF_BYTES, MAX_SHAPE_RANK, MAX_SLICES, MIN_NONCE_BYTES, VERSION,
};

use crate::Digest;
use serde::Serialize;

/// Everything a prover sends for one model run: per-slice proofs, the revealed claim, and the context the
/// proofs are bound to.
///
/// The fields are public so provers can build bundles; a bundle built in memory is only known to be
/// well-formed after [`ProofBundle::validate`] (which [`ProofBundle::from_bytes`] runs). Its `Serialize`
/// form in a binary format is the bundle body; in a human-readable one (JSON) digests, commitments, the
/// nonce and proofs are lower-case hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProofBundle {
    /// Digest of the compiled model artifact the proofs are for.
    #[serde(serialize_with = "format::ser_digest")]
    pub model: Digest,
    /// How many slices the compiled model has (proved or not).
    pub slices_total: u32,
    /// The proved slices, in strictly increasing `index` order; a bundle may leave slices out (partial
    /// coverage), never repeat one.
    pub slices: Vec<SliceProof>,
    /// What the proofs reveal about the model's output.
    pub claim: Claim,
    /// The verifier's challenge ([`MIN_NONCE_BYTES`]`..=`[`MAX_NONCE_BYTES`] bytes), so a bundle cannot be
    /// replayed to another session.
    #[serde(serialize_with = "format::ser_bytes")]
    pub nonce: Vec<u8>,
    /// Who the bundle is for (at most [`MAX_AUDIENCE_BYTES`] bytes of UTF-8), so a bundle made for one
    /// verifier is useless to another.
    pub audience: String,
    /// Commitment to the private model input (the image): a canonical BN254 `Fr` encoding.
    #[serde(serialize_with = "format::ser_commitment")]
    pub input_commitment: [u8; 32],
}

/// The proof of one slice of the model and the commitments to the boundary tensors it reads and writes.
///
/// Each commitment is a 32-byte little-endian canonical encoding of a BN254 scalar (`Fr::to_repr()`); the
/// compiled model says which boundary tensor each position refers to (see [`SliceBoundary`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SliceProof {
    /// Position of the slice in the model's chain, below [`ProofBundle::slices_total`].
    pub index: u32,
    /// Digest of the verifying key the proof is for.
    #[serde(serialize_with = "format::ser_digest")]
    pub vk_digest: Digest,
    /// Commitments to the tensors the slice reads, in the compiled model's order.
    #[serde(serialize_with = "format::ser_commitments")]
    pub input_commitments: Vec<[u8; 32]>,
    /// Commitments to the tensors the slice produces, in the compiled model's order.
    #[serde(serialize_with = "format::ser_commitments")]
    pub output_commitments: Vec<[u8; 32]>,
    /// The halo2 proof bytes (at most [`MAX_PROOF_BYTES`]).
    #[serde(serialize_with = "format::ser_bytes")]
    pub proof: Vec<u8>,
}

/// What a bundle reveals about the model's output (the value of a claim, computed on the integer
/// reference; see `veil_core::claim`).
///
/// Serialized as `{"kind": "output" | "argmax" | "age_at_least", ...fields}` in human-readable formats and
/// as a postcard enum (variant index, then fields) in the bundle body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The logits (the final softmax's input, or the graph output without one), in row-major order.
    Output {
        /// The integers (at most [`MAX_OUTPUT_VALUES`]).
        values: Vec<i64>,
        /// Their shape (at most [`MAX_SHAPE_RANK`] dimensions); its product is `values.len()`.
        shape: Vec<u32>,
    },
    /// The index of the largest logit (lowest index on ties).
    Argmax {
        /// The winning class.
        index: u32,
    },
    /// Whether the expected age is at least `threshold_quarters / 4` years.
    AgeAtLeast {
        /// The public threshold in quarter years (18 years = 72).
        threshold_quarters: u32,
        /// Whether the predicate holds.
        holds: bool,
    },
}

/// Why bundle bytes (or an in-memory bundle) were rejected. `what` names the field, with the slice index
/// where there is one (for example `"slice 3 proof bytes"`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The bytes do not start with [`MAGIC`].
    #[error("not a Veil proof bundle (bad magic)")]
    BadMagic,
    /// A format version this build does not read.
    #[error("bundle format version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// Version in the header.
        found: u16,
        /// Version this build reads ([`VERSION`]).
        supported: u16,
    },
    /// The input ends before the header, or before the body length the header declares.
    #[error("bundle truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the header (or the header and declared body) needs.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// A field exceeds its limit; counts are items or bytes, as `what` says.
    #[error("{what}: {actual} exceeds the limit of {limit}")]
    TooLarge {
        /// The field.
        what: String,
        /// The limit.
        limit: usize,
        /// The size found.
        actual: usize,
    },
    /// The body is not a well-formed postcard encoding of a bundle (bad varint, bad UTF-8, unknown claim
    /// kind, a length running past the body, ...).
    #[error("corrupt bundle body: {0}")]
    Decode(String),
    /// Bytes after the declared body, or after the encoded bundle inside the body.
    #[error("{extra} trailing bytes after the bundle")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The body decodes, but not from the bytes [`ProofBundle::to_bytes`] would write (for example an
    /// over-long varint), so the same bundle would have two encodings.
    #[error("bundle body is not canonically encoded")]
    NonCanonical,
    /// 32 bytes that are not the canonical encoding of a BN254 scalar (the integer is not below the modulus).
    #[error("{what} is not a canonical BN254 scalar field element")]
    NotAFieldElement {
        /// The field.
        what: String,
    },
    /// A field breaks a structural rule.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The field.
        what: String,
        /// The rule broken.
        reason: &'static str,
    },
}

impl ProofBundle {
    /// The indices of the proved slices, in order.
    pub fn proved_slices(&self) -> Vec<u32> {
        self.slices.iter().map(|s| s.index).collect()
    }

    /// The statement binding this bundle's proofs must carry: [`statement_binding`] of its own fields.
    pub fn binding(&self) -> halo2_proofs::halo2curves::bn256::Fr {
        statement_binding(&self.model, &self.nonce, &self.audience, &self.claim, &self.input_commitment)
    }
}
