//! Lowering of element-wise ONNX ops: Add, Sub, Mul, Div and activations.

use super::context::{Const, NodeCx, Slot};
use super::error::ImportError;
use crate::ir::{Affine, Op, ValueId};
use crate::tensor::{broadcast_index_map, broadcast_shapes, Tensor};

#[derive(Clone, Copy, PartialEq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

/// `Add`.
pub fn add(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    binary(cx, Arith::Add)
}

/// `Sub`.
pub fn sub(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    binary(cx, Arith::Sub)
}

/// `Mul`.
pub fn mul(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    binary(cx, Arith::Mul)
}

/// `Div` (by a constant when the dividend is dynamic).
pub fn div(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    binary(cx, Arith::Div)
}

fn binary(cx: &mut NodeCx<'_>, arith: Arith) -> Result<(), ImportError> {
    match (cx.input(0)?, cx.input(1)?) {
        (Slot::Const(a), Slot::Const(b)) => {
            let folded = fold(cx, &a, &b, arith)?;
            cx.bind_output(0, Slot::Const(folded))
        }
        (Slot::Dynamic(a), Slot::Dynamic(b)) => {
            let op = match arith {
                Arith::Add => Op::Add,
                Arith::Sub => Op::Sub,
                Arith::Mul => Op::Mul,
                Arith::Div => return Err(cx.invalid("division by a non-constant divisor is not supported")),
            };
            cx.emit(op, vec![a, b]).map(drop)
        }
        (Slot::Dynamic(x), Slot::Const(c)) => {
            let c = c.to_f32();
            let affine = match arith {
                Arith::Add => Affine { scale: None, offset: Some(c) },
                Arith::Sub => Affine { scale: None, offset: Some(c.map(|v| -v)) },
                Arith::Mul => Affine { scale: Some(c), offset: None },
                Arith::Div => {
                    if c.data().contains(&0.0) {
                        return Err(cx.invalid("division by a constant containing zero"));
                    }
                    Affine { scale: Some(c.map(|v| 1.0 / v)), offset: None }
                }
            };
            emit_affine(cx, x, affine)
        }
        (Slot::Const(c), Slot::Dynamic(x)) => {
            let c = c.to_f32();
            let affine = match arith {
                Arith::Add => Affine { scale: None, offset: Some(c) },
                Arith::Sub => Affine { scale: Some(Tensor::scalar(-1.0)), offset: Some(c) },
                Arith::Mul => Affine { scale: Some(c), offset: None },
                Arith::Div => return Err(cx.invalid("division by a non-constant divisor is not supported")),
            };
            emit_affine(cx, x, affine)
        }
    }
}

fn emit_affine(cx: &mut NodeCx<'_>, x: ValueId, affine: Affine) -> Result<(), ImportError> {
    let x_shape = cx.b.graph_values[x.0].shape.clone();
    for c in affine.scale.iter().chain(&affine.offset) {
        if broadcast_shapes(&x_shape, c.shape()).as_deref() != Some(x_shape.as_slice()) {
            return Err(cx.invalid(format!(
                "a constant of shape {:?} that enlarges the dynamic input {x_shape:?} is not supported",
                c.shape()
            )));
        }
    }
    cx.emit(Op::Affine(affine), vec![x]).map(drop)
}

/// Evaluates a binary op on two constants (shape computations, folded weights).
fn fold(cx: &NodeCx<'_>, a: &Const, b: &Const, arith: Arith) -> Result<Const, ImportError> {
    let shape = broadcast_shapes(a.shape(), b.shape())
        .ok_or_else(|| cx.invalid(format!("shapes {:?} and {:?} do not broadcast", a.shape(), b.shape())))?;
    let ia = broadcast_index_map(a.shape(), &shape);
    let ib = broadcast_index_map(b.shape(), &shape);
    match (a, b) {
        (Const::I64(x), Const::I64(y)) => {
            let mut out = Vec::with_capacity(ia.len());
            for (&i, &j) in ia.iter().zip(&ib) {
                let (p, q) = (x.data()[i], y.data()[j]);
                out.push(
                    match arith {
                        Arith::Add => p.checked_add(q),
                        Arith::Sub => p.checked_sub(q),
                        Arith::Mul => p.checked_mul(q),
                        Arith::Div => p.checked_div(q),
                    }
                    .ok_or_else(|| cx.invalid("integer overflow or division by zero in a constant"))?,
                );
            }
            Ok(Const::I64(Tensor::new(shape, out).expect("broadcast size")))
        }
        _ => {
            let (x, y) = (a.to_f32(), b.to_f32());
            let out = ia
                .iter()
                .zip(&ib)
                .map(|(&i, &j)| {
                    let (p, q) = (x.data()[i], y.data()[j]);
                    match arith {
                        Arith::Add => p + q,
                        Arith::Sub => p - q,
                        Arith::Mul => p * q,
                        Arith::Div => p / q,
                    }
                })
                .collect();
            Ok(Const::F32(Tensor::new(shape, out).expect("broadcast size")))
        }
    }
}

fn unary(cx: &mut NodeCx<'_>, op: Op) -> Result<(), ImportError> {
    let Slot::Dynamic(x) = cx.input(0)? else { return Err(cx.invalid("constant input is not supported")) };
    cx.emit(op, vec![x]).map(drop)
}

/// `Relu`.
pub fn relu(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    unary(cx, Op::Relu)
}

/// `LeakyRelu`.
pub fn leaky_relu(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let alpha = cx.attr_float("alpha", 0.01);
    unary(cx, Op::LeakyRelu { alpha })
}

/// `Clip`, with bounds as attributes (opset < 11) or constant inputs.
pub fn clip(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let (min, max) = if cx.opset() < 11 {
        (cx.attr_float("min", f32::NEG_INFINITY), cx.attr_float("max", f32::INFINITY))
    } else {
        let bound = |i: usize, default: f32| -> Result<f32, ImportError> {
            match cx.optional_constant(i, "bound")? {
                None => Ok(default),
                Some(c) if c.shape().iter().product::<usize>() == 1 => Ok(c.to_f32().data()[0]),
                Some(c) => Err(cx.invalid(format!("bound {i} must be a scalar, got shape {:?}", c.shape()))),
            }
        };
        (bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?)
    };
    if min > max {
        return Err(cx.invalid(format!("min {min} exceeds max {max}")));
    }
    unary(cx, Op::Clip { min, max })
}

/// `Sigmoid`.
pub fn sigmoid(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    unary(cx, Op::Sigmoid)
}

/// `Tanh`.
pub fn tanh(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    unary(cx, Op::Tanh)
}

/// `Softmax` (opset ≥ 13 semantics; older opsets only along the last axis, where both agree).
pub fn softmax(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let Slot::Dynamic(x) = cx.input(0)? else { return Err(cx.invalid("constant input is not supported")) };
    let rank = cx.b.graph_values[x.0].shape.len() as i64;
    let default = if cx.opset() < 13 { 1 } else { -1 };
    let raw = cx.attr_int("axis", default);
    let axis = if raw < 0 { raw + rank } else { raw };
    if !(0..rank).contains(&axis) {
        return Err(cx.invalid(format!("axis {raw} out of range for rank {rank}")));
    }
    if cx.opset() < 13 && axis != rank - 1 {
        return Err(cx.invalid("opset < 13 softmax over several trailing axes is not supported"));
    }
    cx.emit(Op::Softmax { axis: axis as usize }, vec![x]).map(drop)
}
