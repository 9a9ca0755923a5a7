//! Fixed-point quantization of an IR graph and the integer reference evaluator.
//!
//! Scheme (written out with its rounding rules in `docs/quantization.md`):
//! - every activation tensor holds signed integers `q` of a configured bit width with a power-of-two scale,
//!   `real = q · 2^-frac`; the `frac` of each tensor comes from calibration;
//! - weights are symmetric per output channel, `w = q_w · s_c` with any real `s_c`; an accumulator is
//!   brought back to an activation scale by an integer multiplier and a rounding right shift
//!   (`y = clamp(⌊(acc·M_c + 2^(k−1)) / 2^k⌋)`), which costs a circuit the same as a plain shift;
//! - power-of-two activation scales make residual additions, concatenation and padding exact shifts;
//! - sigmoid, tanh and the exponential inside softmax are tables over the quantized input range.
//!
//! [`QuantizedGraph::run`] is the integer reference: the specification circuits are proved against.
//! It uses integers only.

mod artifact;
mod calibrate;
mod config;
mod lower;
pub(crate) mod reference;
mod rounding;

pub use artifact::ArtifactError;
pub use calibrate::{Calibration, Range};
pub use config::{QuantConfig, WeightScales};
pub use lower::{quantize, QuantizeError};
pub use reference::{conv_accumulators, ReferenceError};
pub use rounding::{clamp_bits, rescale, round_div, round_shift};

use crate::ir::{Pool, ValueId};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// A quantized tensor edge: its name, shape and fixed-point format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QValue {
    /// Name from the source model.
    pub name: String,
    /// Static shape.
    pub shape: Vec<usize>,
    /// Fractional bits: the real value is `q · 2^-frac`.
    pub frac: i32,
    /// Signed bit width: `q ∈ [−2^(bits−1), 2^(bits−1) − 1]`.
    pub bits: u32,
}

/// Brings an accumulator to an output scale: `y = clamp(round_shift(acc · multiplier[c], shift))`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Requant {
    /// One multiplier per output channel (or a single one for the whole tensor).
    pub multipliers: Vec<i64>,
    /// The rounding right shift.
    pub shift: u32,
}

/// A quantized operator. Integer constants live inside the operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum QOp {
    /// Convolution: `acc = bias[c] + Σ x·w`, then [`Requant`] per output channel.
    Conv {
        /// Integer weights `[out, in/group, kh, kw]`.
        weight: Tensor<i64>,
        /// Integer bias at the accumulator scale, one per output channel.
        bias: Vec<i64>,
        /// Strides `[h, w]`.
        strides: [usize; 2],
        /// Zero padding `[top, left, bottom, right]`.
        pads: [usize; 4],
        /// Dilations `[h, w]`.
        dilations: [usize; 2],
        /// Groups.
        group: usize,
        /// Accumulator to output.
        requant: Requant,
    },
    /// Linear layer over the last axis: `acc = bias[n] + Σ_k x[k]·w[k, n]`, then [`Requant`] per column.
    Linear {
        /// Integer weights `[in, out]`.
        weight: Tensor<i64>,
        /// Integer bias at the accumulator scale.
        bias: Vec<i64>,
        /// Accumulator to output.
        requant: Requant,
    },
    /// Product of two dynamic matrices, rescaled from `frac_a + frac_b` to the output's `frac`.
    MatMul,
    /// Sum aligned to the larger input `frac`, rescaled to the output.
    Add,
    /// Difference aligned to the larger input `frac`, rescaled to the output.
    Sub,
    /// Element-wise product rescaled from `frac_a + frac_b` to the output.
    Mul,
    /// `y = clamp(round_shift(x·m + o, shift))` with broadcast integer constants.
    Affine {
        /// Multipliers at scale `2^-shift`, broadcast to the input (a scalar when the float op had none).
        multiplier: Tensor<i64>,
        /// Addends at scale `2^-(frac_out + shift)`.
        offset: Option<Tensor<i64>>,
        /// The rounding right shift.
        shift: u32,
    },
    /// `max(x, 0)`.
    Relu,
    /// `x` when `x ≥ 0`, else `round_shift(x·alpha, shift)`.
    LeakyRelu {
        /// Slope multiplier.
        alpha: i64,
        /// Its shift.
        shift: u32,
    },
    /// Clamp to `[min, max]` (in the input's scale).
    Clip {
        /// Lower bound.
        min: i64,
        /// Upper bound.
        max: i64,
    },
    /// A table lookup `y = table[x − offset]` over the whole input range (sigmoid, tanh).
    Table {
        /// Which function the table holds (for reports).
        function: TableFunction,
        /// The input value of `table[0]`.
        offset: i64,
        /// Outputs for every representable input.
        table: Vec<i64>,
    },
    /// Softmax: `e = exp_table[max − x]` (0 past the table), `p = round_div(e · 2^frac_out, Σ e)`.
    Softmax {
        /// The axis.
        axis: usize,
        /// `round(2^exp_bits · exp(−d · 2^−frac_in))` for `d = 0, 1, …` while non-zero.
        exp_table: Vec<i64>,
    },
    /// Constant padding with an integer fill value.
    Pad {
        /// `(before, after)` per axis.
        pads: Vec<(usize, usize)>,
        /// Fill value in the input's scale.
        value: i64,
    },
    /// Max pooling; padding never wins.
    MaxPool(Pool),
    /// Average pooling: `round_div` of the window sum by the window count, rescaled to the output.
    AveragePool(Pool),
    /// Mean over H and W: `round_div` of the sum by `H·W`, rescaled to the output.
    GlobalAveragePool,
    /// New shape, same elements.
    Reshape,
    /// Axis permutation.
    Transpose {
        /// `out.shape[i] = in.shape[perm[i]]`.
        perm: Vec<usize>,
    },
    /// Concatenation; each input is rescaled to the output's `frac`.
    Concat {
        /// The axis.
        axis: usize,
    },
}

/// The nonlinearity a [`QOp::Table`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableFunction {
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
}

/// One quantized operator application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QNode {
    /// Source node name.
    pub name: String,
    /// The operator.
    pub op: QOp,
    /// Dynamic inputs.
    pub inputs: Vec<ValueId>,
    /// The value produced.
    pub output: ValueId,
}

/// A quantized model: the fixed-point graph whose integer semantics are Veil's specification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizedGraph {
    /// The configuration it was quantized with.
    pub config: QuantConfig,
    /// Every value with its fixed-point format.
    pub values: Vec<QValue>,
    /// Nodes in topological order.
    pub nodes: Vec<QNode>,
    /// Graph inputs.
    pub inputs: Vec<ValueId>,
    /// Graph outputs.
    pub outputs: Vec<ValueId>,
}

impl QuantizedGraph {
    /// The value behind an id.
    pub fn value(&self, id: ValueId) -> &QValue {
        &self.values[id.0]
    }

    /// Quantizes a float input for graph input `index`: `q = clamp(⌊x·2^frac + 1/2⌋)`.
    pub fn quantize_input(&self, index: usize, input: &Tensor<f32>) -> Result<Tensor<i64>, ReferenceError> {
        let id = *self
            .inputs
            .get(index)
            .ok_or(ReferenceError::InputCount { expected: self.inputs.len(), actual: index + 1 })?;
        let v = &self.values[id.0];
        if input.shape() != v.shape.as_slice() {
            return Err(ReferenceError::InputShape {
                input: v.name.clone(),
                expected: v.shape.clone(),
                actual: input.shape().to_vec(),
            });
        }
        let factor = (v.frac as f64).exp2();
        Ok(input.map(|&x| {
            let scaled = (x as f64 * factor + 0.5).floor();
            let limit = (1i64 << (v.bits - 1)) as f64;
            scaled.clamp(-limit, limit - 1.0) as i64
        }))
    }

    /// The real value of an integer tensor of value `id`: `q · 2^-frac`.
    pub fn dequantize(&self, id: ValueId, q: &Tensor<i64>) -> Tensor<f64> {
        let factor = (-self.values[id.0].frac as f64).exp2();
        q.map(|&v| v as f64 * factor)
    }
}
