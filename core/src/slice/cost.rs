//! Circuit cost estimates per quantized operator, for planning slices before circuits are built.
//!
//! The model follows the layout Veil's circuits use for linear layers: a Freivalds-style check
//! `rᵀ·Y = (rᵀ·W)·X` costs rows in proportion to `|X| + |W| + |Y|` (weights spread over several fixed
//! columns), plus one requantization row per output with its remainder range-checked by lookup. Element-wise
//! operators cost a row per output; reshapes and transposes are copy constraints and cost none; tensors
//! crossing a slice boundary are committed with Poseidon over packed values. The constants are estimates,
//! to be recalibrated against measured circuits.

use crate::quant::{QNode, QOp, QuantizedGraph};
use serde::{Deserialize, Serialize};
use veil_verifier::circuit::Width;

/// Parameters of the row and memory estimates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    /// Fixed columns that hold weights side by side (weights cost `|W| / weight_columns` rows).
    pub weight_columns: u64,
    /// Peak prover memory per row of a `2^k`-row circuit: every column's values, coefficients and
    /// extended-domain parts, the proving key and halo2's buffers. Measured as peak RSS of format v7's
    /// proofs: 9.8 KB per row at `k = 16` (gender-v1, `veil prove`; 10.7 KB in `veil bench`), 10.6 KB at
    /// `k = 17` (age-v1; 11.3 KB in `veil bench`); rounded up to 11.5 KiB. This is for wide rows
    /// ([`Width::Wide`]); see [`CostModel::narrow_prover_bytes_per_row`].
    pub prover_bytes_per_row: u64,
    /// The same for narrow rows ([`Width::Narrow`]): 22 advice columns instead of 36. Measured as `veil
    /// prove`'s peak RSS on age-v1 as one narrow slice of `2^18` rows: 1,780 MiB, 6.95 KiB a row; rounded up
    /// to 7 KiB.
    pub narrow_prover_bytes_per_row: u64,
    /// Quantized values packed into one field element before hashing a boundary tensor.
    pub values_per_field_element: u64,
    /// Rows of one Poseidon permutation absorbing `rate` field elements.
    pub poseidon_rows: u64,
    /// Field elements absorbed per permutation.
    pub poseidon_rate: u64,
    /// Rows halo2 reserves for blinding and the last-row checks.
    pub reserved_rows: u64,
}

impl Default for CostModel {
    fn default() -> Self {
        Self {
            weight_columns: veil_verifier::circuit::MAX_WEIGHTS as u64,
            prover_bytes_per_row: 23 << 9,
            narrow_prover_bytes_per_row: 7 << 10,
            values_per_field_element: 16,
            poseidon_rows: 65,
            poseidon_rate: 2,
            reserved_rows: 16,
        }
    }
}

impl CostModel {
    /// Estimated rows of one operator.
    pub fn node_rows(&self, graph: &QuantizedGraph, node: &QNode) -> u64 {
        let count = |shape: &[usize]| shape.iter().product::<usize>() as u64;
        let x = count(&graph.value(node.inputs[0]).shape);
        let y = count(&graph.value(node.output).shape);
        match &node.op {
            QOp::Conv { weight, .. } | QOp::Linear { weight, .. } => {
                x + (weight.len() as u64).div_ceil(self.weight_columns) + 2 * y
            }
            QOp::MatMul => x + count(&graph.value(node.inputs[1]).shape) + 2 * y,
            QOp::MaxPool(p) => y * (p.kernel[0] * p.kernel[1]) as u64,
            QOp::AveragePool(_) | QOp::GlobalAveragePool => x + 2 * y,
            QOp::Softmax { .. } => 3 * y,
            QOp::Reshape | QOp::Transpose { .. } => 0,
            QOp::Concat { .. } => node.inputs.iter().map(|i| count(&graph.value(*i).shape)).sum(),
            QOp::Add
            | QOp::Sub
            | QOp::Mul
            | QOp::Affine { .. }
            | QOp::Relu
            | QOp::LeakyRelu { .. }
            | QOp::Clip { .. }
            | QOp::Table { .. }
            | QOp::Pad { .. } => y,
        }
    }

    /// Estimated rows to commit to `elements` quantized values (pack, then hash).
    pub fn commitment_rows(&self, elements: u64) -> u64 {
        let field_elements = elements.div_ceil(self.values_per_field_element) + 1; // + blinding value
        field_elements.div_ceil(self.poseidon_rate) * self.poseidon_rows + field_elements
    }

    /// Smallest `k` whose `2^k` rows hold `rows` plus the reserved rows and a lookup table of
    /// `2^table_bits` entries.
    pub fn k_for(&self, rows: u64, table_bits: u32) -> u32 {
        let needed = (rows + self.reserved_rows).max((1u64 << table_bits) + self.reserved_rows);
        64 - (needed - 1).leading_zeros()
    }

    /// Estimated peak prover memory of a circuit with `2^k` wide rows (the planner's assumption before a
    /// slice's width is chosen).
    pub fn memory_bytes(&self, k: u32) -> u64 {
        self.memory_bytes_at(k, Width::Wide)
    }

    /// Estimated peak prover memory of a circuit with `2^k` rows of `width`.
    pub fn memory_bytes_at(&self, k: u32, width: Width) -> u64 {
        let per_row = match width {
            Width::Wide => self.prover_bytes_per_row,
            Width::Narrow => self.narrow_prover_bytes_per_row,
        };
        (1u64 << k).saturating_mul(per_row)
    }
}
