//! What a verifier returns: a [`Verdict`](crate::verdict::Verdict) for an accepted bundle, a
//! [`Rejection`](crate::verdict::Rejection) with a stable code otherwise, and
//! [`VerifyReport`](crate::verdict::VerifyReport), the flat JSON-ready form of either (what the CLI and server
//! print).

use crate::bundle::{ser_commitment, BundleError, Claim, ProofBundle};
use crate::Digest;
use serde::Serialize;

/// What an accepted bundle established.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The compiled model the proofs are for.
    pub model: Digest,
    /// What the proofs reveal about its output.
    pub claim: Claim,
    /// Whether every slice of the model was proved.
    pub coverage: Coverage,
    /// The proved slices, in order.
    pub proved_slices: Vec<u32>,
    /// Commitment to the private input (hex in JSON).
    #[serde(serialize_with = "ser_commitment")]
    pub input_commitment: [u8; 32],
}

/// How much of the model a bundle proves. JSON: `{"kind": "full"}` or `{"kind": "partial", "unproved": [..]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Coverage {
    /// Every slice was proved.
    Full,
    /// Some slices were not proved: the claim rests on the unproved slices having been computed honestly.
    Partial {
        /// The slices without a proof, in order.
        unproved: Vec<u32>,
    },
}

impl Coverage {
    /// Whether every slice was proved.
    pub fn is_full(&self) -> bool {
        matches!(self, Coverage::Full)
    }
}

impl Verdict {
    /// The verdict for `bundle`, to be built once every check of the bundle has passed (this does not verify
    /// anything but the bundle's format, which it needs to list the unproved slices).
    pub fn for_verified(bundle: &ProofBundle) -> Result<Self, Rejection> {
        bundle.validate().map_err(Rejection::BadFormat)?;
        let proved_slices = bundle.proved_slices();
        // `validate` made the indices strictly increasing and bounded `slices_total`.
        let unproved: Vec<u32> = (0..bundle.slices_total).filter(|i| proved_slices.binary_search(i).is_err()).collect();
        let coverage = if unproved.is_empty() { Coverage::Full } else { Coverage::Partial { unproved } };
        Ok(Self {
            model: bundle.model,
            claim: bundle.claim.clone(),
            coverage,
            proved_slices,
            input_commitment: bundle.input_commitment,
        })
    }

    /// For callers that accept only fully proved runs: the verdict if its coverage is full, otherwise
    /// [`Rejection::UnprovedSlices`] listing the missing slices.
    pub fn require_full(self) -> Result<Self, Rejection> {
        match self.coverage {
            Coverage::Full => Ok(self),
            Coverage::Partial { unproved } => Err(Rejection::UnprovedSlices { missing: unproved }),
        }
    }
}

/// Why a verifier rejected a bundle. Each variant has a stable [`code`](Rejection::code) for machines;
/// the message is for people and may change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The bytes are not a well-formed bundle.
    #[error("malformed bundle: {0}")]
    BadFormat(#[from] BundleError),
    /// The bundle is for another model.
    #[error("bundle is for model {found}, expected {expected}")]
    WrongModel {
        /// The model the verifier expects.
        expected: Digest,
        /// The model the bundle names.
        found: Digest,
    },
    /// The nonce is not the one the verifier issued.
    #[error("bundle nonce is not the one issued")]
    WrongNonce,
    /// The audience is not this verifier.
    #[error("bundle is addressed to another audience")]
    WrongAudience,
    /// The bundle's slice count differs from the model's.
    #[error("bundle has {found} slices in total, the model has {expected}")]
    SliceCount {
        /// Slices of the compiled model.
        expected: u32,
        /// `slices_total` in the bundle.
        found: u32,
    },
    /// A proved slice has a different number of boundary commitments than the model's slice has tensors.
    #[error(
        "slice {slice} commits to {found_inputs} inputs and {found_outputs} outputs, the model's slice has \
         {expected_inputs} and {expected_outputs}"
    )]
    BoundaryCount {
        /// The slice.
        slice: u32,
        /// Input tensors of the model's slice.
        expected_inputs: usize,
        /// Input commitments in the bundle.
        found_inputs: usize,
        /// Output tensors of the model's slice.
        expected_outputs: usize,
        /// Output commitments in the bundle.
        found_outputs: usize,
    },
    /// Two commitments to one boundary tensor differ (or a commitment to the model input differs from the
    /// bundle's input commitment).
    #[error("slice {slice} commits to boundary tensor {boundary} differently from an earlier commitment")]
    BrokenChain {
        /// The slice whose commitment disagrees.
        slice: u32,
        /// The boundary tensor id.
        boundary: usize,
    },
    /// A slice proof names a verifying key other than the model's for that slice.
    #[error("slice {slice} was proved with the wrong verifying key")]
    WrongKey {
        /// The slice.
        slice: u32,
    },
    /// A slice proof does not verify.
    #[error("the proof of slice {slice} does not verify")]
    InvalidProof {
        /// The slice.
        slice: u32,
    },
    /// The caller requires full coverage and some slices are unproved.
    #[error("slices {missing:?} are not proved")]
    UnprovedSlices {
        /// The unproved slices, in order.
        missing: Vec<u32>,
    },
    /// The revealed claim is not what the proofs establish, or not what the verifier asked for.
    #[error("wrong claim: {reason}")]
    WrongClaim {
        /// What is wrong.
        reason: String,
    },
    /// The verifier's parameters are not the ones the model's keys were made with.
    #[error("the verifier's parameters are not the ones the model was compiled with")]
    WrongParams,
}

impl Rejection {
    /// Every code [`Rejection::code`] returns.
    pub const CODES: &'static [&'static str] = &[
        "bad_format",
        "wrong_model",
        "wrong_nonce",
        "wrong_audience",
        "slice_count",
        "boundary_count",
        "broken_chain",
        "wrong_key",
        "invalid_proof",
        "unproved_slices",
        "wrong_claim",
        "wrong_params",
    ];

    /// A stable, machine-readable code: snake_case, never changed once released.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::BadFormat(_) => "bad_format",
            Rejection::WrongModel { .. } => "wrong_model",
            Rejection::WrongNonce => "wrong_nonce",
            Rejection::WrongAudience => "wrong_audience",
            Rejection::SliceCount { .. } => "slice_count",
            Rejection::BoundaryCount { .. } => "boundary_count",
            Rejection::BrokenChain { .. } => "broken_chain",
            Rejection::WrongKey { .. } => "wrong_key",
            Rejection::InvalidProof { .. } => "invalid_proof",
            Rejection::UnprovedSlices { .. } => "unproved_slices",
            Rejection::WrongClaim { .. } => "wrong_claim",
            Rejection::WrongParams => "wrong_params",
        }
    }
}

/// The coverage of an accepted bundle, without the unproved list: `"full"` or `"partial"` in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CoverageKind {
    /// Every slice was proved.
    Full,
    /// Some slices were not proved.
    Partial,
}

/// The flat report of one verification, as printed in JSON:
/// `{"accepted": bool, "claim": {..} | null, "coverage": "full" | "partial" | null, "proved_slices": [..],
/// "error": null | "<code>"}`. A rejection has no claim, no coverage, no proved slices and a
/// [`Rejection::code`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Whether the bundle was accepted.
    pub accepted: bool,
    /// The accepted claim.
    pub claim: Option<Claim>,
    /// The accepted bundle's coverage.
    pub coverage: Option<CoverageKind>,
    /// The proved slices of an accepted bundle.
    pub proved_slices: Vec<u32>,
    /// The rejection code.
    pub error: Option<&'static str>,
}

impl VerifyReport {
    /// The report of a verification result.
    pub fn from_result(result: &Result<Verdict, Rejection>) -> Self {
        match result {
            Ok(verdict) => Self {
                accepted: true,
                claim: Some(verdict.claim.clone()),
                coverage: Some(if verdict.coverage.is_full() { CoverageKind::Full } else { CoverageKind::Partial }),
                proved_slices: verdict.proved_slices.clone(),
                error: None,
            },
            Err(rejection) => Self {
                accepted: false,
                claim: None,
                coverage: None,
                proved_slices: Vec::new(),
                error: Some(rejection.code()),
            },
        }
    }
}
