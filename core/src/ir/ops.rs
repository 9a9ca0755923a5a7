//! The closed operator set of the IR. Constant operands live inside the operator; `Node::inputs` are
//! always dynamic values.

use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// A 2-D convolution over NCHW input (ONNX `Conv`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv {
    /// Weights `[out_channels, in_channels / group, kh, kw]`.
    pub weight: Tensor<f32>,
    /// Bias `[out_channels]`, if any.
    pub bias: Option<Tensor<f32>>,
    /// Strides `[h, w]`.
    pub strides: [usize; 2],
    /// Zero padding `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Dilations `[h, w]`.
    pub dilations: [usize; 2],
    /// Number of groups (`in_channels` for a depthwise convolution).
    pub group: usize,
}

/// A linear layer `y[..., n] = Σ_k x[..., k]·W[k, n] + b[n]` (ONNX `Gemm`, or `MatMul` by a constant).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// Weights `[in_features, out_features]`.
    pub weight: Tensor<f32>,
    /// Bias `[out_features]`, if any.
    pub bias: Option<Tensor<f32>>,
}

/// `y = x·scale + offset` with constants broadcast to the input (a folded `Mul`/`Add`/`Sub`/`Div` by a
/// constant, or a `BatchNormalization`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Affine {
    /// Multiplier, broadcastable to the input; `None` means 1.
    pub scale: Option<Tensor<f32>>,
    /// Addend, broadcastable to the input; `None` means 0.
    pub offset: Option<Tensor<f32>>,
}

/// Constant-mode padding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pad {
    /// `(before, after)` per axis.
    pub pads: Vec<(usize, usize)>,
    /// The fill value.
    pub value: f32,
}

/// A 2-D pooling window over NCHW input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    /// Window `[h, w]`.
    pub kernel: [usize; 2],
    /// Strides `[h, w]`.
    pub strides: [usize; 2],
    /// Padding `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Output size rounds up instead of down.
    pub ceil_mode: bool,
    /// Average pooling divides by the whole window, padding included (ignored by max pooling).
    pub count_include_pad: bool,
}

/// An IR operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// 2-D convolution.
    Conv(Conv),
    /// Linear layer with constant weights.
    Linear(Linear),
    /// Product of two dynamic matrices (last two axes), batched over leading axes.
    MatMul,
    /// Element-wise sum of two dynamic tensors, broadcast.
    Add,
    /// Element-wise difference of two dynamic tensors, broadcast.
    Sub,
    /// Element-wise product of two dynamic tensors, broadcast.
    Mul,
    /// Element-wise `x·scale + offset` with constants.
    Affine(Affine),
    /// `max(x, 0)`.
    Relu,
    /// `x` for `x ≥ 0`, else `alpha·x`.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// Clamp to `[min, max]`.
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Softmax along one axis.
    Softmax {
        /// The normalised axis (non-negative).
        axis: usize,
    },
    /// Constant-mode padding.
    Pad(Pad),
    /// Max pooling.
    MaxPool(Pool),
    /// Average pooling.
    AveragePool(Pool),
    /// Mean over the spatial axes of NCHW, keeping them as size 1.
    GlobalAveragePool,
    /// Same elements, another shape (also `Flatten`, `Squeeze`, `Unsqueeze`).
    Reshape {
        /// The output shape.
        shape: Vec<usize>,
    },
    /// Axis permutation.
    Transpose {
        /// `out.shape[i] = in.shape[perm[i]]`.
        perm: Vec<usize>,
    },
    /// Concatenation of dynamic inputs along one axis.
    Concat {
        /// The normalised axis.
        axis: usize,
    },
}

impl Op {
    /// A short operator name for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv(_) => "Conv",
            Op::Linear(_) => "Linear",
            Op::MatMul => "MatMul",
            Op::Add => "Add",
            Op::Sub => "Sub",
            Op::Mul => "Mul",
            Op::Affine(_) => "Affine",
            Op::Relu => "Relu",
            Op::LeakyRelu { .. } => "LeakyRelu",
            Op::Clip { .. } => "Clip",
            Op::Sigmoid => "Sigmoid",
            Op::Tanh => "Tanh",
            Op::Softmax { .. } => "Softmax",
            Op::Pad(_) => "Pad",
            Op::MaxPool(_) => "MaxPool",
            Op::AveragePool(_) => "AveragePool",
            Op::GlobalAveragePool => "GlobalAveragePool",
            Op::Reshape { .. } => "Reshape",
            Op::Transpose { .. } => "Transpose",
            Op::Concat { .. } => "Concat",
        }
    }

    /// True for operators that only move elements (their quantized form is exact and costs no arithmetic).
    pub fn is_layout_only(&self) -> bool {
        matches!(self, Op::Reshape { .. } | Op::Transpose { .. })
    }
}
