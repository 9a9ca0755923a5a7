//! Lowering of ONNX linear-algebra ops: Conv, Gemm, MatMul, BatchNormalization.

use super::context::{NodeCx, Slot};
use super::error::ImportError;
use super::ops_pool::window_pads;
use crate::ir::{Affine, Conv, Linear, Op};
use crate::tensor::{transpose, Tensor};

/// `Conv`: 2-D convolution with constant weights and optional constant bias.
pub fn conv(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let Slot::Dynamic(x) = cx.input(0)? else { return Err(cx.invalid("constant input is not supported")) };
    let weight = cx.constant(1, "weights")?.to_f32();
    let bias = cx.optional_constant(2, "bias")?.map(|c| c.to_f32());
    let w = weight.shape().to_vec();
    if w.len() != 4 {
        return Err(cx.invalid(format!("only 2-D convolutions are supported; weights have shape {w:?}")));
    }
    if let Some(b) = &bias {
        if b.shape() != [w[0]] {
            return Err(cx.invalid(format!("bias shape {:?} does not match {} output channels", b.shape(), w[0])));
        }
    }
    let strides = pair(cx, "strides")?;
    let dilations = pair(cx, "dilations")?;
    let in_shape = cx.b.graph_values[x.0].shape.clone();
    if in_shape.len() != 4 {
        return Err(cx.invalid(format!("input must be NCHW, got {in_shape:?}")));
    }
    let pads = window_pads(cx, [in_shape[2], in_shape[3]], [w[2], w[3]], strides, dilations)?;
    let group = usize::try_from(cx.attr_int("group", 1)).map_err(|_| cx.invalid("negative group"))?;
    cx.emit(Op::Conv(Conv { weight, bias, strides, pads, dilations, group }), vec![x])?;
    Ok(())
}

/// Reads a two-element size attribute that defaults to `[1, 1]`.
pub(super) fn pair(cx: &NodeCx<'_>, name: &str) -> Result<[usize; 2], ImportError> {
    let v = cx.attr_sizes(name, vec![1, 1])?;
    match v.as_slice() {
        [a, b] if *a > 0 && *b > 0 => Ok([*a, *b]),
        _ => Err(cx.invalid(format!("attribute {name} must hold two positive sizes, got {v:?}"))),
    }
}

/// `Gemm`: `alpha·A'·B' + beta·C` with constant B and C, lowered to a linear layer.
pub fn gemm(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let Slot::Dynamic(mut a) = cx.input(0)? else { return Err(cx.invalid("constant A is not supported")) };
    let mut b = cx.constant(1, "B")?.to_f32();
    if b.shape().len() != 2 {
        return Err(cx.invalid(format!("B must be a matrix, got {:?}", b.shape())));
    }
    if cx.attr_int("transA", 0) != 0 {
        let name = format!("{}::transposed_a", cx.name());
        a = cx.emit_named(Op::Transpose { perm: vec![1, 0] }, vec![a], &name)?;
    }
    if cx.attr_int("transB", 0) != 0 {
        b = transpose(&b, &[1, 0]);
    }
    let n = b.shape()[1];
    let alpha = cx.attr_float("alpha", 1.0);
    let beta = cx.attr_float("beta", 1.0);
    if alpha != 1.0 {
        b.data_mut().iter_mut().for_each(|v| *v *= alpha);
    }
    let bias = match cx.optional_constant(2, "C")? {
        None => None,
        Some(c) => {
            let c = c.to_f32();
            let values: Vec<f32> = match c.len() {
                1 => vec![c.data()[0]; n],
                len if len == n && c.shape().iter().rev().skip(1).all(|&d| d == 1) => c.data().to_vec(),
                _ => return Err(cx.invalid(format!("C of shape {:?} must be a scalar or a [{n}] row", c.shape()))),
            };
            Some(Tensor::new(vec![n], values.iter().map(|v| v * beta).collect()).expect("length n"))
        }
    };
    cx.emit(Op::Linear(Linear { weight: b, bias }), vec![a])?;
    Ok(())
}

/// `MatMul`: by a constant matrix (a linear layer) or of two dynamic tensors.
pub fn matmul(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    match (cx.input(0)?, cx.input(1)?) {
        (Slot::Dynamic(a), Slot::Const(w)) => {
            let weight = w.to_f32();
            if weight.shape().len() != 2 {
                return Err(cx.invalid(format!("constant right operand must be a matrix, got {:?}", weight.shape())));
            }
            cx.emit(Op::Linear(Linear { weight, bias: None }), vec![a])?;
        }
        (Slot::Dynamic(a), Slot::Dynamic(b)) => {
            cx.emit(Op::MatMul, vec![a, b])?;
        }
        _ => return Err(cx.invalid("a constant left operand is not supported")),
    }
    Ok(())
}

/// `BatchNormalization` (inference mode): a per-channel affine, later folded into a preceding conv.
pub fn batch_normalization(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    if cx.attr_int("training_mode", 0) != 0 {
        return Err(cx.invalid("training_mode=1 is not supported"));
    }
    let Slot::Dynamic(x) = cx.input(0)? else { return Err(cx.invalid("constant input is not supported")) };
    let shape = cx.b.graph_values[x.0].shape.clone();
    if shape.len() < 2 {
        return Err(cx.invalid(format!("input must have a channel axis, got {shape:?}")));
    }
    let channels = shape[1];
    let params: Vec<Vec<f32>> = (1..5)
        .map(|i| {
            let t = cx.constant(i, "scale, bias, mean and variance")?.to_f32();
            if t.len() != channels {
                return Err(cx.invalid(format!("input {i} has {} values for {channels} channels", t.len())));
            }
            Ok(t.into_data())
        })
        .collect::<Result<_, _>>()?;
    let epsilon = cx.attr_float("epsilon", 1e-5);
    let (gamma, beta, mean, var) = (&params[0], &params[1], &params[2], &params[3]);
    let scale: Vec<f32> = (0..channels).map(|c| gamma[c] / (var[c] + epsilon).sqrt()).collect();
    let offset: Vec<f32> = (0..channels).map(|c| beta[c] - mean[c] * scale[c]).collect();
    let mut const_shape = vec![channels];
    const_shape.resize(shape.len() - 1, 1);
    let affine = Affine {
        scale: Some(Tensor::new(const_shape.clone(), scale).expect("channel count")),
        offset: Some(Tensor::new(const_shape, offset).expect("channel count")),
    };
    cx.emit(Op::Affine(affine), vec![x])?;
    Ok(())
}
