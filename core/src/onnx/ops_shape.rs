//! Lowering of ONNX layout ops: Flatten, Reshape, Transpose, Concat, Pad, Squeeze, Unsqueeze.

use super::context::{Const, NodeCx, Slot};
use super::error::ImportError;
use crate::ir::{Op, Pad};
use crate::tensor::{concat as concat_tensors, pad as pad_tensor, transpose as transpose_tensor, Tensor};

/// Binds the output to `slot` reshaped to `shape`: a folded constant or a `Reshape` node.
fn reshape_to(cx: &mut NodeCx<'_>, slot: Slot, shape: Vec<usize>) -> Result<(), ImportError> {
    match slot {
        Slot::Const(c) => {
            let bad = |e: crate::tensor::ShapeMismatch| cx.invalid(e.to_string());
            let folded = match c {
                Const::F32(t) => Const::F32(t.reshape(shape).map_err(bad)?),
                Const::I64(t) => Const::I64(t.reshape(shape).map_err(bad)?),
            };
            cx.bind_output(0, Slot::Const(folded))
        }
        Slot::Dynamic(x) => cx.emit(Op::Reshape { shape }, vec![x]).map(drop),
    }
}

/// Normalises a possibly negative axis against `rank`.
pub(super) fn axis(cx: &NodeCx<'_>, raw: i64, rank: usize) -> Result<usize, ImportError> {
    let a = if raw < 0 { raw + rank as i64 } else { raw };
    usize::try_from(a)
        .ok()
        .filter(|&a| a < rank)
        .ok_or_else(|| cx.invalid(format!("axis {raw} out of range for rank {rank}")))
}

/// `Flatten`.
pub fn flatten(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let x = cx.input(0)?;
    let shape = cx.shape_of(&x);
    let raw = cx.attr_int("axis", 1);
    let split = if raw == shape.len() as i64 { shape.len() } else { axis(cx, raw, shape.len())? };
    let outer: usize = shape[..split].iter().product();
    reshape_to(cx, x, vec![outer, shape[split..].iter().product()])
}

/// `Reshape` with a constant target shape (`0` copies a dimension, `-1` is inferred).
pub fn reshape(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let x = cx.input(0)?;
    let in_shape = cx.shape_of(&x);
    let target = cx.constant(1, "shape")?.to_i64();
    let allow_zero = cx.attr_int("allowzero", 0) != 0;
    let mut shape = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.data().iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                shape.push(1);
            }
            0 if !allow_zero => shape.push(*in_shape.get(i).ok_or_else(|| cx.invalid("0 refers past the input rank"))?),
            d if d >= 0 => shape.push(d as usize),
            _ => return Err(cx.invalid(format!("invalid target shape {:?}", target.data()))),
        }
    }
    let total: usize = in_shape.iter().product();
    if let Some(i) = infer {
        let known: usize = shape.iter().product();
        if known == 0 || !total.is_multiple_of(known) {
            return Err(cx.invalid(format!("cannot reshape {in_shape:?} to {:?}", target.data())));
        }
        shape[i] = total / known;
    }
    reshape_to(cx, x, shape)
}

/// `Squeeze`: drops the given (or all) size-1 axes.
pub fn squeeze(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let x = cx.input(0)?;
    let shape = cx.shape_of(&x);
    let axes = squeeze_axes(cx, shape.len())?;
    let axes = axes.unwrap_or_else(|| (0..shape.len()).filter(|&a| shape[a] == 1).collect());
    if axes.iter().any(|&a| shape[a] != 1) {
        return Err(cx.invalid(format!("cannot squeeze axes {axes:?} of {shape:?}")));
    }
    let out = shape.iter().enumerate().filter(|(a, _)| !axes.contains(a)).map(|(_, &d)| d).collect();
    reshape_to(cx, x, out)
}

/// `Unsqueeze`: inserts size-1 axes.
pub fn unsqueeze(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let x = cx.input(0)?;
    let shape = cx.shape_of(&x);
    let count = cx.attr_ints("axes").map_or(0, |a| a.len())
        + cx.optional_input(1)?.map_or(0, |s| cx.shape_of(&s).iter().product());
    let mut axes = squeeze_axes(cx, shape.len() + count)?.ok_or_else(|| cx.invalid("axes are required"))?;
    axes.sort_unstable();
    let mut out = shape.clone();
    for a in axes {
        if a > out.len() {
            return Err(cx.invalid(format!("axis {a} out of range")));
        }
        out.insert(a, 1);
    }
    reshape_to(cx, x, out)
}

/// Axes from the `axes` attribute (opset < 13) or constant input 1, normalised against `rank`.
fn squeeze_axes(cx: &NodeCx<'_>, rank: usize) -> Result<Option<Vec<usize>>, ImportError> {
    let raw = match cx.attr_ints("axes") {
        Some(a) => Some(a),
        None => cx.optional_constant(1, "axes")?.map(|c| c.to_i64().into_data()),
    };
    raw.map(|r| r.iter().map(|&a| axis(cx, a, rank)).collect()).transpose()
}

/// `Transpose`.
pub fn transpose(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let x = cx.input(0)?;
    let rank = cx.shape_of(&x).len();
    let perm = cx.attr_sizes("perm", (0..rank).rev().collect())?;
    match x {
        Slot::Const(c) => {
            if perm.len() != rank || (0..rank).any(|a| !perm.contains(&a)) {
                return Err(cx.invalid(format!("perm {perm:?} is not a permutation")));
            }
            let folded = match c {
                Const::F32(t) => Const::F32(transpose_tensor(&t, &perm)),
                Const::I64(t) => Const::I64(transpose_tensor(&t, &perm)),
            };
            cx.bind_output(0, Slot::Const(folded))
        }
        Slot::Dynamic(v) => cx.emit(Op::Transpose { perm }, vec![v]).map(drop),
    }
}

/// `Concat` of all-constant inputs (folded) or all-dynamic inputs.
pub fn concat(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let slots: Vec<Slot> = (0..cx.input_count()).map(|i| cx.input(i)).collect::<Result<_, _>>()?;
    let first = slots.first().ok_or_else(|| cx.invalid("no inputs"))?;
    let rank = cx.shape_of(first).len();
    let ax = axis(cx, cx.attr_int("axis", 0), rank)?;
    for s in &slots {
        let shape = cx.shape_of(s);
        let base = cx.shape_of(first);
        if shape.len() != rank || (0..rank).any(|a| a != ax && shape[a] != base[a]) {
            return Err(cx.invalid(format!("inputs {base:?} and {shape:?} differ off axis {ax}")));
        }
    }
    if slots.iter().all(|s| matches!(s, Slot::Const(Const::I64(_)))) {
        let parts: Vec<Tensor<i64>> =
            slots.iter().map(|s| if let Slot::Const(c) = s { c.to_i64() } else { unreachable!() }).collect();
        let refs: Vec<&Tensor<i64>> = parts.iter().collect();
        return cx.bind_output(0, Slot::Const(Const::I64(concat_tensors(&refs, ax))));
    }
    if slots.iter().all(|s| matches!(s, Slot::Const(_))) {
        let parts: Vec<Tensor<f32>> =
            slots.iter().map(|s| if let Slot::Const(c) = s { c.to_f32() } else { unreachable!() }).collect();
        let refs: Vec<&Tensor<f32>> = parts.iter().collect();
        return cx.bind_output(0, Slot::Const(Const::F32(concat_tensors(&refs, ax))));
    }
    let ids = slots
        .iter()
        .map(|s| match s {
            Slot::Dynamic(v) => Ok(*v),
            Slot::Const(_) => Err(cx.invalid("concatenating constants with dynamic values is not supported")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    cx.emit(Op::Concat { axis: ax }, ids).map(drop)
}

/// `Pad` in constant mode, with pads as an attribute (opset < 11) or constant input.
pub fn pad(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let mode = cx.attr_string("mode", "constant");
    if mode != "constant" {
        return Err(cx.invalid(format!("pad mode {mode:?} is not supported (only constant)")));
    }
    let x = cx.input(0)?;
    let rank = cx.shape_of(&x).len();
    let (raw, value) = if cx.opset() < 11 {
        (cx.attr_ints("pads").ok_or_else(|| cx.invalid("pads are required"))?, cx.attr_float("value", 0.0))
    } else {
        let value = match cx.optional_constant(2, "constant_value")? {
            Some(c) if c.shape().iter().product::<usize>() == 1 => c.to_f32().data()[0],
            Some(_) => return Err(cx.invalid("constant_value must be a scalar")),
            None => 0.0,
        };
        (cx.constant(1, "pads")?.to_i64().into_data(), value)
    };
    let axes: Vec<usize> = match cx.optional_constant(3, "axes")? {
        Some(a) => a.to_i64().data().iter().map(|&a| axis(cx, a, rank)).collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    if raw.len() != 2 * axes.len() || raw.iter().any(|&p| p < 0) {
        return Err(cx.invalid(format!("pads {raw:?} must be {} non-negative values", 2 * axes.len())));
    }
    let mut pads = vec![(0, 0); rank];
    for (i, &a) in axes.iter().enumerate() {
        pads[a] = (raw[i] as usize, raw[i + axes.len()] as usize);
    }
    match x {
        Slot::Const(c) => {
            let folded = Const::F32(pad_tensor(&c.to_f32(), &pads, value));
            cx.bind_output(0, Slot::Const(folded))
        }
        Slot::Dynamic(v) => cx.emit(Op::Pad(Pad { pads, value }), vec![v]).map(drop),
    }
}
