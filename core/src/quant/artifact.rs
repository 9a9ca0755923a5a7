//! The quantized-model artifact: a versioned byte format around [`QuantizedGraph`], validated on load so
//! that hostile bytes give a typed error and never a panic in the evaluator.

use super::rounding::clamp_bits;
use super::{QOp, QValue, QuantizedGraph};
use crate::ir::{infer_output_shape, Conv, Linear, Op, Pool};
use crate::tensor::{broadcast_shapes, Tensor};

/// Magic bytes at the start of a quantized-model artifact.
pub const MAGIC: &[u8; 8] = b"VEILQNT\0";
/// Current artifact format version.
pub const VERSION: u16 = 1;

/// Why artifact bytes were rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// The bytes do not start with the artifact magic.
    #[error("not a Veil quantized model (bad magic)")]
    BadMagic,
    /// A format version this build does not read.
    #[error("artifact format version {found} is not supported (this build reads {supported})")]
    Version {
        /// Version in the file.
        found: u16,
        /// Version supported.
        supported: u16,
    },
    /// The body does not decode.
    #[error("corrupt artifact body: {0}")]
    Decode(String),
    /// The body decodes but is inconsistent.
    #[error("invalid artifact at node {node:?}: {detail}")]
    Invalid {
        /// The node (or "graph").
        node: String,
        /// What is inconsistent.
        detail: String,
    },
}

impl QuantizedGraph {
    /// Serializes to the artifact format: magic, version (u16 LE), postcard body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend(postcard::to_stdvec(self).expect("quantized graph serializes"));
        out
    }

    /// The digest of the artifact bytes: the name by which proofs and bundles refer to this quantized model.
    pub fn digest(&self) -> veil_verifier::Digest {
        veil_verifier::Digest::of(&self.to_bytes())
    }

    /// Parses and validates artifact bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ArtifactError> {
        let body = bytes.strip_prefix(MAGIC.as_slice()).ok_or(ArtifactError::BadMagic)?;
        let (version, body) = body.split_at_checked(2).ok_or(ArtifactError::BadMagic)?;
        let found = u16::from_le_bytes([version[0], version[1]]);
        if found != VERSION {
            return Err(ArtifactError::Version { found, supported: VERSION });
        }
        let graph: Self = postcard::from_bytes(body).map_err(|e| ArtifactError::Decode(e.to_string()))?;
        graph.validate()?;
        Ok(graph)
    }

    /// Checks every invariant the evaluator relies on: ids in range, topological order, shapes that follow
    /// from the operators, tensors that hold as many elements as their shapes say, parameter ranges and bit
    /// widths. Together they bound every intermediate value (see [`check_params`]), so a validated graph
    /// runs without panicking or overflowing.
    pub fn validate(&self) -> Result<(), ArtifactError> {
        let graph_err = |detail: String| ArtifactError::Invalid { node: "graph".into(), detail };
        self.config.validate().map_err(graph_err)?;
        let mut defined = vec![false; self.values.len()];
        for v in &self.values {
            if !(2..=MAX_BITS).contains(&v.bits) || !FRAC_RANGE.contains(&v.frac) || !shape_ok(&v.shape) {
                return Err(graph_err(format!("value {:?} has an invalid format", v.name)));
            }
        }
        for id in &self.inputs {
            *defined.get_mut(id.0).ok_or_else(|| graph_err("input id out of range".into()))? = true;
        }
        for node in &self.nodes {
            let bad = |detail: String| ArtifactError::Invalid { node: node.name.clone(), detail };
            if node.inputs.is_empty() || node.inputs.iter().any(|i| !defined.get(i.0).copied().unwrap_or(false)) {
                return Err(bad("reads a value not yet computed".into()));
            }
            let out = self.values.get(node.output.0).ok_or_else(|| bad("output id out of range".into()))?;
            // Before shape inference, which allocates weight-shaped tensors and adds window sizes.
            check_geometry(&node.op).map_err(bad)?;
            let inputs: Vec<&QValue> = node.inputs.iter().map(|i| &self.values[i.0]).collect();
            let shapes: Vec<&[usize]> = inputs.iter().map(|v| v.shape.as_slice()).collect();
            let expected = infer_output_shape(&shape_op(&node.op, &out.shape), &shapes).map_err(bad)?;
            if expected != out.shape {
                return Err(bad(format!("output shape {:?} should be {expected:?}", out.shape)));
            }
            check_params(&node.op, &inputs, out).map_err(bad)?;
            defined[node.output.0] = true;
        }
        if self.outputs.iter().any(|o| !defined.get(o.0).copied().unwrap_or(false)) {
            return Err(graph_err("an output is never computed".into()));
        }
        Ok(())
    }
}

/// The widest value format.
const MAX_BITS: u32 = 32;

/// Fractional bits a value may have. The quantizer emits `−32..=40`; with `|frac| ≤ 40` every rescaling
/// shift (at most `fa + fb − fo ≤ 120`) stays below the 128 bits of the `i128` it is applied to.
const FRAC_RANGE: std::ops::RangeInclusive<i32> = -40..=40;

/// Elements of the largest tensor.
const MAX_ELEMENTS: usize = 1 << 28;

/// Largest window, stride, dilation or padding of a convolution or pooling.
const MAX_WINDOW: usize = 1 << 16;

/// Positive dimensions holding at most [`MAX_ELEMENTS`] elements. A zero dimension would make the
/// evaluator divide by a zero row length or window size.
fn shape_ok(shape: &[usize]) -> bool {
    shape.iter().all(|&d| d > 0)
        && shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_some_and(|n| n <= MAX_ELEMENTS)
}

/// A decoded tensor with a valid shape that its data length matches (serde builds tensors without checking).
fn tensor_ok<T>(t: &Tensor<T>) -> bool {
    shape_ok(t.shape()) && t.shape().iter().product::<usize>() == t.data().len()
}

/// Checks that need no shapes: embedded tensors are consistent and windows are bounded, so shape inference
/// neither allocates beyond the artifact's size nor overflows.
fn check_geometry(op: &QOp) -> Result<(), String> {
    let window = |v: &usize| (1..=MAX_WINDOW).contains(v);
    let ok = match op {
        QOp::Conv { weight, strides, pads, dilations, group, .. } => {
            tensor_ok(weight)
                && (1..=MAX_ELEMENTS).contains(group)
                && strides.iter().chain(dilations).all(window)
                && pads.iter().all(|&p| p <= MAX_WINDOW)
        }
        QOp::Linear { weight, .. } => tensor_ok(weight),
        QOp::Affine { multiplier, offset, .. } => tensor_ok(multiplier) && offset.as_ref().is_none_or(tensor_ok),
        QOp::Pad { pads, .. } => pads.iter().all(|&(b, a)| b <= MAX_ELEMENTS && a <= MAX_ELEMENTS),
        QOp::MaxPool(p) | QOp::AveragePool(p) => pool_ok(p),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{} has inconsistent tensors or out-of-range geometry", op_name(op)))
    }
}

/// A float op with the same shape behaviour, for shape inference.
fn shape_op(op: &QOp, out_shape: &[usize]) -> Op {
    let dummy = |shape: &[usize]| Tensor::full(shape.to_vec(), 0f32);
    match op {
        QOp::Conv { weight, strides, pads, dilations, group, .. } => Op::Conv(Conv {
            weight: dummy(weight.shape()),
            bias: None,
            strides: *strides,
            pads: *pads,
            dilations: *dilations,
            group: *group,
        }),
        QOp::Linear { weight, .. } => Op::Linear(Linear { weight: dummy(weight.shape()), bias: None }),
        QOp::MatMul => Op::MatMul,
        QOp::Add => Op::Add,
        QOp::Sub => Op::Sub,
        QOp::Mul => Op::Mul,
        QOp::Affine { .. } | QOp::Relu | QOp::LeakyRelu { .. } | QOp::Clip { .. } | QOp::Table { .. } => Op::Relu,
        QOp::Softmax { axis, .. } => Op::Softmax { axis: *axis },
        QOp::Pad { pads, .. } => Op::Pad(crate::ir::Pad { pads: pads.clone(), value: 0.0 }),
        QOp::MaxPool(p) => Op::MaxPool(p.clone()),
        QOp::AveragePool(p) => Op::AveragePool(p.clone()),
        QOp::GlobalAveragePool => Op::GlobalAveragePool,
        QOp::Reshape => Op::Reshape { shape: out_shape.to_vec() },
        QOp::Transpose { perm } => Op::Transpose { perm: perm.clone() },
        QOp::Concat { axis } => Op::Concat { axis: *axis },
    }
}

/// Parameter ranges. They keep every tensor the evaluator computes within its value's bits (graph inputs
/// are checked by `run`; outputs are clamped, or passed through to a value at least as wide, or built from
/// constants checked here), and so every intermediate within its integer type.
fn check_params(op: &QOp, inputs: &[&QValue], out: &QValue) -> Result<(), String> {
    let x = inputs[0].shape.as_slice();
    let x_bits = inputs[0].bits;
    let requant_ok = |r: &super::Requant, channels: usize| {
        (r.multipliers.len() == channels || r.multipliers.len() == 1)
            && r.shift <= 62
            && r.multipliers.iter().all(|m| m.unsigned_abs() < 1 << 40)
    };
    let small = |t: &[i64], bound: u64| t.iter().all(|v| v.unsigned_abs() < bound);
    let fits_out = |v: i64| clamp_bits(v as i128, out.bits) == v;
    let channels = out.shape.get(1).copied().unwrap_or(0);
    let ok = match op {
        QOp::Conv { weight, bias, requant, .. } => {
            let taps = weight.shape()[1..].iter().product();
            bias.len() == channels
                && requant_ok(requant, channels)
                && small(weight.data(), 1 << 16)
                && small(bias, 1 << 48)
                && accumulator_fits(weight.data(), bias, taps, x_bits)
        }
        QOp::Linear { weight, bias, requant } => {
            bias.len() == weight.shape()[1]
                && requant_ok(requant, weight.shape()[1])
                && small(weight.data(), 1 << 16)
                && small(bias, 1 << 48)
                && accumulator_fits(weight.data(), bias, weight.shape()[0], x_bits)
        }
        QOp::Affine { multiplier, offset, shift } => {
            *shift <= 62
                && broadcast_shapes(x, multiplier.shape()).as_deref() == Some(x)
                && small(multiplier.data(), 1 << 40)
                && offset
                    .as_ref()
                    .is_none_or(|o| broadcast_shapes(x, o.shape()).as_deref() == Some(x) && small(o.data(), 1 << 62))
        }
        // Non-negative inputs pass through unclamped.
        QOp::LeakyRelu { alpha, shift } => *shift <= 62 && alpha.unsigned_abs() < 1 << 40 && out.bits >= x_bits,
        QOp::Clip { min, max } => min <= max && fits_out(*min) && fits_out(*max) && out.bits >= x_bits,
        QOp::Table { table, offset, .. } => {
            !table.is_empty()
                && table.len() <= 1 << 24
                && offset.unsigned_abs() < 1 << 40
                && table.iter().all(|&v| fits_out(v))
        }
        // Probabilities reach 2^frac.
        QOp::Softmax { exp_table, .. } => {
            exp_table.len() <= 1 << 24 && small(exp_table, 1 << 40) && (0..=out.bits as i32 - 2).contains(&out.frac)
        }
        QOp::Pad { value, .. } => fits_out(*value) && out.bits >= x_bits,
        QOp::Relu | QOp::MaxPool(_) | QOp::Reshape | QOp::Transpose { .. } => out.bits >= x_bits,
        // A window sum (< 2^59) moved up by at most 2^64 stays within i128.
        QOp::AveragePool(_) | QOp::GlobalAveragePool => out.frac - inputs[0].frac <= 64,
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("parameters of {} are out of range", op_name(op)))
    }
}

/// `max |bias| + taps · max |w| · 2^(x_bits−1)` fits the `i64` accumulator of a convolution or linear layer.
fn accumulator_fits(weight: &[i64], bias: &[i64], taps: usize, x_bits: u32) -> bool {
    let max_abs = |t: &[i64]| t.iter().map(|v| u128::from(v.unsigned_abs())).max().unwrap_or(0);
    let bound = max_abs(bias) + taps as u128 * max_abs(weight) * (1u128 << (x_bits - 1));
    bound <= i64::MAX as u128
}

fn pool_ok(p: &Pool) -> bool {
    p.kernel.iter().chain(&p.strides).all(|&k| (1..=MAX_WINDOW).contains(&k)) && p.pads.iter().all(|&v| v < MAX_WINDOW)
}

/// The operator's name for error messages.
fn op_name(op: &QOp) -> &'static str {
    match op {
        QOp::Conv { .. } => "Conv",
        QOp::Linear { .. } => "Linear",
        QOp::MatMul => "MatMul",
        QOp::Add => "Add",
        QOp::Sub => "Sub",
        QOp::Mul => "Mul",
        QOp::Affine { .. } => "Affine",
        QOp::Relu => "Relu",
        QOp::LeakyRelu { .. } => "LeakyRelu",
        QOp::Clip { .. } => "Clip",
        QOp::Table { .. } => "Table",
        QOp::Softmax { .. } => "Softmax",
        QOp::Pad { .. } => "Pad",
        QOp::MaxPool(_) => "MaxPool",
        QOp::AveragePool(_) => "AveragePool",
        QOp::GlobalAveragePool => "GlobalAveragePool",
        QOp::Reshape => "Reshape",
        QOp::Transpose { .. } => "Transpose",
        QOp::Concat { .. } => "Concat",
    }
}
