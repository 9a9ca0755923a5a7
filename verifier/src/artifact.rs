//! The verifying artifact of a compiled model: everything a verifier needs and nothing more (no weights,
//! no graph): the commitment scheme, each slice's size, verifying key and boundary tensors, and what the
//! last slice's claim rows reveal. Its SHA-256 is the model digest every bundle names.
//!
//! Bytes: magic `VEILVKA\0`, a u16 LE format version, then a postcard body; parsing checks every limit
//! and never panics.

use crate::backend::Scheme;
use crate::bundle::SliceBoundary;
use crate::digest::Digest;
use serde::{Deserialize, Serialize};

/// Magic bytes of a verifying artifact.
pub const MAGIC: &[u8; 8] = b"VEILVKA\0";
/// Current format version. Version 12: one `arith` gate (an equation a row, its coefficients fixed) holds the
/// constants and the claim rows, instead of the `constant`, `claim`, `verdict_age` and `verdict_kind` gates. Version 11: the Poseidon chip starts its sponge in the first absorb row and runs the odd
/// partial round on the full-round gate (no `poseidon init` or `poseidon partial round` gate). Version 10: each
/// slice names its optional gates ([`SliceKey::gates`]), and each chain has one gate, told its first row by the
/// fixed `carry` column. Version 9: wide rows have four `max` and `pack` lanes and two Poseidon lanes, and
/// boundary commitments hash their elements in two halves. Version 8: each slice names its row width ([`SliceKey::width`]). Version 7: the slice constraint system has eight lookup slots a row (four
/// divisions per `div4` row), twelve general phase-1 columns with two Horner values per lane a row, and packs
/// boundary values through a `Clamp` lookup's `y`. Version 6: each slice names its number of weight columns ([`SliceKey::weights`]);
/// its constraint system depends on it. Version 5: the slice constraint system pins constants with a gate (no constants
/// column), its `div2` lanes share their coefficient columns, each pair of lookup slots shares a tag column
/// and its weight selectors share one column.
/// Version 4 first evaluated weights in a track of their own (twelve fixed weight columns beside the other
/// relations). Version 3 checked lookups with logUp gates and
/// version 2 with halo2 lookups; their verifying keys describe other circuits and are refused by version.
pub const VERSION: u16 = 12;
/// Largest artifact accepted (verifying keys of a few dozen slices fit easily).
pub const MAX_ARTIFACT_BYTES: usize = 64 << 20;
/// The largest slice size exponent a verifier accepts.
pub const MAX_K: u32 = 24;

/// One slice's verification data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceKey {
    /// Position in the chain.
    pub index: u32,
    /// Circuit size exponent.
    pub k: u32,
    /// Weight columns of the slice's constraint system (`1..=MAX_WEIGHTS`, see
    /// [`SliceParams`](crate::circuit::SliceParams)): with the key's bytes they rebuild its constraint system.
    pub weights: u32,
    /// Row width of the slice's constraint system (see [`Width`](crate::circuit::Width)).
    pub width: crate::circuit::Width,
    /// The optional gates of the slice's constraint system (see [`GateSet`](crate::circuit::GateSet)).
    pub gates: crate::circuit::GateSet,
    /// The halo2 verifying key (raw bytes).
    pub vk: Vec<u8>,
    /// SHA-256 of `vk`.
    pub vk_digest: Digest,
    /// SHA-256 of the commitment parameters (at size `k`) the key was made with: a verifier must use them.
    pub params_digest: Digest,
    /// Boundary tensors read, in commitment order (slice 0: the model input first).
    pub inputs: Vec<u32>,
    /// Boundary tensors written, in commitment order.
    pub outputs: Vec<u32>,
}

/// What a compiled model's claim rows can reveal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimInfo {
    /// Number of logits.
    pub logits: u32,
    /// Shape of the logits tensor.
    pub shape: Vec<u32>,
    /// Whether the model estimates age (the age predicate is available).
    pub age: bool,
}

/// The verifying artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyingArtifact {
    /// Model name, for people.
    pub name: String,
    /// Commitment scheme of every slice.
    pub scheme: Scheme,
    /// The slices in chain order.
    pub slices: Vec<SliceKey>,
    /// The claim rows of the last slice.
    pub claim: ClaimInfo,
}

/// Why artifact bytes were rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// Wrong magic.
    #[error("not a Veil verifying artifact")]
    BadMagic,
    /// Unknown version.
    #[error("verifying artifact version {0} is not supported (this build reads {VERSION})")]
    UnsupportedVersion(u16),
    /// Too large.
    #[error("verifying artifact of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// The body does not decode.
    #[error("verifying artifact body: {0}")]
    Decode(String),
    /// Decoded but inconsistent.
    #[error("verifying artifact is invalid: {0}")]
    Invalid(String),
}

impl VerifyingArtifact {
    /// The constraint-system parameters of slice `i` (its weight columns, row width and optional gates), or
    /// `None` when there is no slice `i` or its weight columns are out of range.
    pub fn slice_params(&self, i: usize) -> Option<crate::circuit::SliceParams> {
        let s = self.slices.get(i)?;
        let params = crate::circuit::SliceParams::new(usize::try_from(s.weights).ok()?)?;
        Some(params.with_width(s.width).with_gates(s.gates))
    }

    /// Serializes the artifact.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend(VERSION.to_le_bytes());
        // Serializing plain data into a Vec cannot fail.
        out.extend(postcard::to_allocvec(self).unwrap_or_default());
        out
    }

    /// Parses and validates artifact bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ArtifactError> {
        if bytes.len() > MAX_ARTIFACT_BYTES {
            return Err(ArtifactError::TooLarge(bytes.len()));
        }
        if bytes.len() < 10 || &bytes[..8] != MAGIC {
            return Err(ArtifactError::BadMagic);
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != VERSION {
            return Err(ArtifactError::UnsupportedVersion(version));
        }
        let art: Self = postcard::from_bytes(&bytes[10..]).map_err(|e| ArtifactError::Decode(e.to_string()))?;
        art.validate()?;
        Ok(art)
    }

    /// Checks internal consistency.
    pub fn validate(&self) -> Result<(), ArtifactError> {
        let bad = |m: String| Err(ArtifactError::Invalid(m));
        if self.slices.is_empty() {
            return bad("no slices".into());
        }
        for (i, s) in self.slices.iter().enumerate() {
            if s.index as usize != i {
                return bad(format!("slice {i} is listed as {}", s.index));
            }
            if s.k == 0 || s.k > MAX_K {
                return bad(format!("slice {i} has k = {}", s.k));
            }
            if Digest::of(&s.vk) != s.vk_digest {
                return bad(format!("slice {i}: verifying key digest mismatch"));
            }
        }
        if self.slices[0].inputs.is_empty() {
            return bad("slice 0 reads no input".into());
        }
        Ok(())
    }

    /// The model digest: SHA-256 of the artifact bytes (which include every verifying key).
    pub fn digest(&self) -> Digest {
        Digest::of(&self.to_bytes())
    }

    /// The boundaries, for [`crate::bundle::check_chain`].
    pub fn boundaries(&self) -> Vec<SliceBoundary> {
        self.slices
            .iter()
            .map(|s| SliceBoundary { index: s.index, inputs: s.inputs.clone(), outputs: s.outputs.clone() })
            .collect()
    }

    /// Number of public inputs of slice `i`'s proof.
    pub fn instance_len(&self, i: usize) -> usize {
        let s = &self.slices[i];
        let claim = if i + 1 == self.slices.len() { 3 + self.claim.logits as usize } else { 0 };
        1 + s.inputs.len() + s.outputs.len() + claim
    }
}
