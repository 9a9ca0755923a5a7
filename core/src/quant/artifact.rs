//! The quantized-model artifact: a versioned byte format around [`QuantizedGraph`], validated on load so
//! that hostile bytes give a typed error and never a panic in the evaluator.

use super::{QOp, QuantizedGraph};
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
    /// from the operators, parameter lengths, bit widths.
    pub fn validate(&self) -> Result<(), ArtifactError> {
        let graph_err = |detail: String| ArtifactError::Invalid { node: "graph".into(), detail };
        self.config.validate().map_err(graph_err)?;
        let mut defined = vec![false; self.values.len()];
        for v in &self.values {
            if !(2..=32).contains(&v.bits)
                || !(-64..=64).contains(&v.frac)
                || v.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_none_or(|n| n > 1 << 28)
            {
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
            let shapes: Vec<&[usize]> = node.inputs.iter().map(|i| self.values[i.0].shape.as_slice()).collect();
            let expected = infer_output_shape(&shape_op(&node.op, &out.shape), &shapes).map_err(bad)?;
            if expected != out.shape {
                return Err(bad(format!("output shape {:?} should be {expected:?}", out.shape)));
            }
            check_params(&node.op, &shapes, &out.shape).map_err(bad)?;
            defined[node.output.0] = true;
        }
        if self.outputs.iter().any(|o| !defined.get(o.0).copied().unwrap_or(false)) {
            return Err(graph_err("an output is never computed".into()));
        }
        Ok(())
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

fn check_params(op: &QOp, inputs: &[&[usize]], out: &[usize]) -> Result<(), String> {
    let x = inputs[0];
    let requant_ok = |r: &super::Requant, channels: usize| {
        (r.multipliers.len() == channels || r.multipliers.len() == 1)
            && r.shift <= 62
            && r.multipliers.iter().all(|m| m.unsigned_abs() < 1 << 40)
    };
    let small = |t: &[i64], bound: u64| t.iter().all(|v| v.unsigned_abs() < bound);
    let ok = match op {
        QOp::Conv { weight, bias, requant, .. } => {
            bias.len() == out[1] && requant_ok(requant, out[1]) && small(weight.data(), 1 << 16) && small(bias, 1 << 48)
        }
        QOp::Linear { weight, bias, requant } => {
            bias.len() == weight.shape()[1]
                && requant_ok(requant, weight.shape()[1])
                && small(weight.data(), 1 << 16)
                && small(bias, 1 << 48)
        }
        QOp::Affine { multiplier, offset, shift } => {
            *shift <= 62
                && broadcast_shapes(x, multiplier.shape()).as_deref() == Some(x)
                && small(multiplier.data(), 1 << 40)
                && offset
                    .as_ref()
                    .is_none_or(|o| broadcast_shapes(x, o.shape()).as_deref() == Some(x) && small(o.data(), 1 << 62))
        }
        QOp::LeakyRelu { alpha, shift } => *shift <= 62 && alpha.unsigned_abs() < 1 << 40,
        QOp::Clip { min, max } => min <= max,
        QOp::Table { table, offset, .. } => {
            !table.is_empty() && table.len() <= 1 << 24 && offset.unsigned_abs() < 1 << 40
        }
        QOp::Softmax { exp_table, .. } => exp_table.len() <= 1 << 24 && small(exp_table, 1 << 40),
        QOp::MaxPool(p) | QOp::AveragePool(p) => pool_ok(p),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("parameters of {op:?} are out of range", op = std::mem::discriminant(op)))
    }
}

fn pool_ok(p: &Pool) -> bool {
    p.kernel.iter().chain(&p.strides).all(|&k| (1..=1 << 16).contains(&k)) && p.pads.iter().all(|&v| v < 1 << 16)
}
