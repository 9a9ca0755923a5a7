//! Proving: each slice of a quantized graph becomes one halo2 circuit over BN254, built as a trace of rows
//! (see [`trace`](self)) and replayed into the constraint system that `veil-verifier` defines.
//!
//! Convolutions and linear layers are checked by a Freivalds-style identity at in-circuit challenges
//! (`conv`), non-linear steps by lookups (`ops`), slice boundaries by hiding Poseidon commitments (`commit`)
//! and the claim in the last slice (`claim_rows`). `docs/soundness.md` explains why each relation is sound.

mod backend;
mod circuit;
mod claim_rows;
#[cfg(test)]
mod claim_tamper;
mod commit;
mod conv;
mod division;
mod fit;
#[cfg(test)]
mod forgery;
mod key_cache;
mod layout;
mod lookup;
pub(crate) use layout::fuses_relu;
mod ops;
mod park;
#[cfg(test)]
mod pool_tamper;
mod profile;
mod prover_params;
mod small_msm;
#[cfg(test)]
mod tamper;
mod trace;
#[cfg(test)]
mod weight_tamper;

pub use backend::{prepare, prove, proving_key, verifying_key};
pub use circuit::SliceCircuit;
pub use commit::commit;
pub use fit::{estimated_cost, fit_slice};
pub use key_cache::{KeyCache, HEADER_LEN as KEY_HEADER_LEN};
pub use profile::RowProfile;

use crate::ir::ValueId;
use crate::quant::{QOp, QuantizedGraph};
use crate::slice::Slice;
use crate::tensor::Tensor;
use claim_rows::{ClaimSetup, ClaimWitness};
use halo2_proofs::halo2curves::bn256::Fr;
use std::collections::HashMap;
use veil_verifier::circuit::{SliceParams, Width, MAX_WEIGHTS};

/// Why a slice could not be laid out or proved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError {
    /// The graph uses something the circuits do not cover yet.
    #[error("not provable yet: {0}")]
    Unsupported(String),
    /// A quotient fell outside what the saturation table covers.
    #[error("{what}: value {value} is outside the {bits}-bit range the circuit can saturate")]
    Saturation {
        /// Which relation.
        what: String,
        /// The value.
        value: i128,
        /// The covered width.
        bits: u32,
    },
    /// The circuit's computation disagrees with the integer reference (a bug: the reference is the spec).
    #[error("node {node:?}: the circuit computes a different value than the integer reference at index {index}")]
    ReferenceMismatch {
        /// The node.
        node: String,
        /// The first differing element.
        index: usize,
    },
    /// The proving system failed.
    #[error("halo2 {stage}: {reason}")]
    Backend {
        /// Key generation or proving.
        stage: &'static str,
        /// halo2's message.
        reason: String,
    },
    /// The circuit needs more rows than the largest supported `k`.
    #[error("slice needs 2^{k} rows, more than the supported maximum")]
    TooLarge {
        /// The size exponent it needs.
        k: u32,
    },
    /// Proving a slice is estimated to need more memory than the caller's budget.
    #[error(
        "slice {slice} (2^{k} rows) needs an estimated {needed_mib} MiB to prove, over the budget of {budget_mib} MiB"
    )]
    OverBudget {
        /// The slice.
        slice: usize,
        /// Its size exponent.
        k: u32,
        /// Its estimated peak prover memory, MiB.
        needed_mib: u64,
        /// The budget, MiB.
        budget_mib: u64,
    },
    /// A derived proving key could not be stored in the key cache.
    #[error("storing the proving key in {path}: {reason}")]
    KeyCache {
        /// The key file.
        path: String,
        /// The I/O error.
        reason: String,
    },
}

/// The claim a prover is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimRequest {
    /// Reveal the logits.
    Output,
    /// Reveal the index of the largest logit.
    Argmax,
    /// Reveal whether the expected age is at least this many quarter years.
    AgeAtLeast(i64),
}

impl ClaimRequest {
    fn witness(self) -> ClaimWitness {
        match self {
            ClaimRequest::Output => ClaimWitness { kind: 0, threshold_quarters: 0 },
            ClaimRequest::Argmax => ClaimWitness { kind: 1, threshold_quarters: 0 },
            ClaimRequest::AgeAtLeast(t) => ClaimWitness { kind: 2, threshold_quarters: t },
        }
    }
}

/// The claim machinery of a model whose last slice ends in (an optional softmax over) its logits.
#[derive(Clone, Debug)]
pub struct ClaimModel {
    setup: ClaimSetup,
    /// The final softmax's output, which the claim rows replace.
    replaced: Option<ValueId>,
    age: bool,
}

impl ClaimModel {
    /// Finds the logits (the input of a final softmax, or the graph output) and takes the age of each bin in
    /// quarter years (`None` for models that do not estimate age).
    pub fn new(graph: &QuantizedGraph, age_quarters: Option<&[i64]>) -> Result<Self, ProveError> {
        let last = graph.nodes.last().ok_or_else(|| ProveError::Unsupported("empty graph".into()))?;
        let (logits, exp_table) = match &last.op {
            QOp::Softmax { exp_table, .. } => (last.inputs[0], exp_table.clone()),
            _ => (last.output, Vec::new()),
        };
        let n = graph.value(logits).shape.iter().product();
        if age_quarters.is_some() && exp_table.is_empty() {
            return Err(ProveError::Unsupported("the age claim needs a model that ends in a softmax".into()));
        }
        let ages = age_quarters.map_or_else(|| vec![0; n], <[i64]>::to_vec);
        if ages.len() != n {
            return Err(ProveError::Unsupported(format!("{} ages for {n} logits", ages.len())));
        }
        let replaced = matches!(last.op, QOp::Softmax { .. }).then_some(last.output);
        Ok(ClaimModel {
            setup: ClaimSetup { logits, exp_table, age_quarters: ages, bits: graph.value(logits).bits },
            replaced,
            age: age_quarters.is_some(),
        })
    }

    /// Whether the age predicate is available.
    pub fn has_age(&self) -> bool {
        self.age
    }

    /// The slices of a plan as circuits cover them: the final softmax is replaced by the claim rows, so its
    /// output is not a boundary of the last slice.
    pub fn slice_specs(&self, plan: &crate::slice::SlicePlan) -> Vec<SliceSpec> {
        plan.slices
            .iter()
            .map(|s| {
                let mut spec = SliceSpec::from(s);
                spec.outputs.retain(|&v| Some(v) != self.replaced);
                spec
            })
            .collect()
    }

    /// The logits value.
    pub fn logits(&self) -> ValueId {
        self.setup.logits
    }

    /// The softmax exponential table (empty without a final softmax).
    pub fn exp_table(&self) -> &[i64] {
        &self.setup.exp_table
    }
}

/// What a slice circuit covers: a run of nodes and its boundary tensors.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SliceSpec {
    /// Node indices.
    pub nodes: std::ops::Range<usize>,
    /// Boundary tensors read (committed inputs), in commitment order.
    pub inputs: Vec<ValueId>,
    /// Boundary tensors written (committed outputs), in commitment order.
    pub outputs: Vec<ValueId>,
    /// Weight columns of the slice's constraint system, `1..=MAX_WEIGHTS` (see
    /// [`SliceParams`](veil_verifier::circuit::SliceParams)). A plan's slice starts with the most;
    /// [`SliceCircuit::fewest_weight_columns`] gives the fewest that keep its `k`.
    pub weights: usize,
    /// Width of the slice's range-check limbs, one of [`RANGE_BITS`]: every division remainder is widened to
    /// one or two limbs of this width, so the table holds one `Range` family of `2^range_bits` rows. The wide
    /// one lets more divisions share rows, the narrow one keeps a small slice's table small; [`fit_slice`]
    /// picks the one with the smaller `k`.
    pub range_bits: u32,
    /// Row width of the slice's constraint system; [`fit_slice`] picks the one with the lower estimated
    /// proving cost ([`estimated_cost`]).
    pub width: Width,
    /// Poseidon lanes a row hashes in, `1..=`[`Width::max_poseidon_lanes`]: two hash a boundary commitment's
    /// halves side by side in half the rows, but their gates cost every proof; [`fit_slice`] keeps the second
    /// only where one lane would cost more.
    pub poseidon_lanes: usize,
}

/// The range-check limb widths a slice may use ([`SliceSpec::range_bits`]).
pub const RANGE_BITS: [u32; 2] = [12, veil_verifier::circuit::tables::MAX_LIMB_BITS];

impl From<&Slice> for SliceSpec {
    fn from(s: &Slice) -> Self {
        SliceSpec {
            nodes: s.nodes.clone(),
            inputs: s.inputs.clone(),
            outputs: s.outputs.clone(),
            weights: MAX_WEIGHTS,
            range_bits: RANGE_BITS[0],
            width: Width::Wide,
            poseidon_lanes: Width::Wide.max_poseidon_lanes(),
        }
    }
}

/// The private inputs of one proof of a slice.
pub struct SliceInputs<'a> {
    /// Every value of the graph, from the integer reference's `run_all`.
    pub values: &'a [Option<Tensor<i64>>],
    /// The blinding value of each boundary tensor.
    pub blinds: &'a HashMap<ValueId, Fr>,
    /// The statement binding every proof carries.
    pub binding: Fr,
    /// The claim (used by the last slice only).
    pub claim: ClaimRequest,
}

/// Builds the circuit of `slice` (`claim` for the last slice); without inputs, the circuit for key generation.
pub fn slice_circuit(
    graph: &QuantizedGraph,
    slice: &SliceSpec,
    claim: Option<&ClaimModel>,
    inputs: Option<&SliceInputs<'_>>,
) -> Result<SliceCircuit, ProveError> {
    let witness = inputs.map(|i| layout::SliceWitness {
        values: i.values,
        blinds: i.blinds,
        binding: i.binding,
        claim: Some(i.claim.witness()),
    });
    let mut trace = layout::build(graph, slice, claim.map(|c| &c.setup), witness.as_ref())?;
    trace.shrink_to_fit();
    Ok(SliceCircuit { trace: std::sync::Arc::new(trace), with_witness: inputs.is_some() })
}

/// Rows of a node's circuit relations on the two tracks of a slice: a slice's rows are the larger of its
/// nodes' summed `main` rows (with its boundary commitments) and their summed `weights` rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeRows {
    /// Rows of every relation but the weight evaluations.
    pub main: usize,
    /// Rows on the weight track, which runs beside the main rows, at the most weight columns (twelve weights a
    /// row; a compiled slice may then take fewer columns and more rows, see [`SliceCircuit::fewest_weight_columns`]).
    pub weights: usize,
}

/// Rows of one node's circuit relations on their own (boundary commitments excluded); a final softmax,
/// which the claim rows replace, costs about two rows per logit, and a ReLU that is the only reader of a
/// division's output (a convolution, linear layer, average pool or residual add) rides on the division's lookup.
/// Rows are laid out at `width` (narrow rows hold fewer divisions and Horner values each).
pub fn node_rows(
    graph: &QuantizedGraph,
    node: &crate::quant::QNode,
    width: veil_verifier::circuit::Width,
) -> Result<NodeRows, ProveError> {
    match &node.op {
        QOp::Softmax { .. } => {
            Ok(NodeRows { main: 2 * graph.value(node.output).shape.iter().product::<usize>() + 8, weights: 0 })
        }
        QOp::Relu if layout::fuses_relu(graph, node.inputs[0]) => Ok(NodeRows::default()),
        _ => layout::node_rows(graph, node, width),
    }
}

/// Rows to commit to a boundary tensor of `elements` values of `bits` bits (packing, blinding, Poseidon) in
/// rows of `width`.
pub fn commitment_rows(elements: usize, bits: u32, width: veil_verifier::circuit::Width) -> usize {
    commit::rows(elements, bits, width)
}

/// Rows halo2 reserves at the end of every circuit (blinding factors and the last-row marker), with margin.
const RESERVED_ROWS: usize = 16;

/// The smallest `k` whose `2^k` rows hold `rows` used rows and halo2's reserved ones.
fn k_for(rows: usize) -> u32 {
    (rows + RESERVED_ROWS).next_power_of_two().trailing_zeros()
}

impl SliceCircuit {
    /// The same circuit without witness values (for key generation); shares the trace.
    pub fn without_witness(&self) -> SliceCircuit {
        SliceCircuit { trace: std::sync::Arc::clone(&self.trace), with_witness: false }
    }

    /// Rows the trace uses.
    pub fn rows(&self) -> usize {
        self.trace.rows
    }

    /// Where the trace's rows go, by relation.
    pub fn row_profile(&self) -> RowProfile {
        RowProfile::of(&self.trace)
    }

    /// Rows of the lookup table.
    pub fn table_rows(&self) -> usize {
        1 + self.trace.families.iter().map(|f| f.rows(&self.trace.exp_tables).len()).sum::<usize>()
    }

    /// The smallest `k` whose `2^k` rows hold the trace and the table.
    pub fn k(&self) -> u32 {
        k_for(self.rows().max(self.table_rows()))
    }

    /// The fewest weight columns (at most this circuit's) that keep its `k`: the weight track runs beside the
    /// other relations, so a slice whose other rows outnumber its weights' rows need not spread its weights
    /// wide, and every weight column spared is a polynomial fewer in each proof.
    pub fn fewest_weight_columns(&self) -> usize {
        let t = &self.trace;
        let width = t.params.weights();
        let others = t.main_rows.max(self.table_rows());
        let k = self.k();
        (1..width)
            .find(|&w| {
                let rows: usize = t.weight_chains.iter().map(|&(chains, len)| chains * len.div_ceil(w)).sum();
                k_for(others.max(rows)) <= k
            })
            .unwrap_or(width)
    }

    /// The constraint system's parameters.
    pub fn params(&self) -> SliceParams {
        self.trace.params
    }

    /// The public inputs, in instance-column order: the binding, the commitments of the boundary tensors
    /// (inputs, then outputs), then for a last slice `[σ, T, v, o_0, …]`.
    pub fn instance(&self) -> Vec<Fr> {
        self.trace.instance.clone()
    }
}
