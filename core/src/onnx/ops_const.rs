//! Lowering of ONNX ops that alias values or compute constants: Identity, Dropout, Constant, Shape,
//! Gather, Cast, Slice, ConstantOfShape. Shape sub-graphs exported by PyTorch fold away here.

use super::context::{Const, NodeCx, Slot};
use super::error::ImportError;
use super::ops_shape::axis;
use super::proto::data_type;
use crate::tensor::{strides, Tensor};

/// `Identity` and inference-mode `Dropout`: the output is the input.
pub fn identity(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let x = cx.input(0)?;
    cx.bind_output(0, x)
}

/// `Constant`.
pub fn constant(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let value = if let Some(t) = cx.attr_tensor("value")? {
        t
    } else if let Some(v) = cx.attr_floats("value_floats") {
        Const::F32(Tensor::new(vec![v.len()], v).expect("1-D"))
    } else if let Some(v) = cx.attr_ints("value_ints") {
        Const::I64(Tensor::new(vec![v.len()], v).expect("1-D"))
    } else if cx.node.attribute.iter().any(|a| a.name == "value_float") {
        Const::F32(Tensor::scalar(cx.attr_float("value_float", 0.0)))
    } else if cx.node.attribute.iter().any(|a| a.name == "value_int") {
        Const::I64(Tensor::scalar(cx.attr_int("value_int", 0)))
    } else {
        return Err(cx.invalid("no supported value attribute (sparse and string constants are not supported)"));
    };
    cx.bind_output(0, Slot::Const(value))
}

/// `Shape`: every shape is static, so the result is a constant.
pub fn shape(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let x = cx.input(0)?;
    let dims: Vec<i64> = cx.shape_of(&x).iter().map(|&d| d as i64).collect();
    let rank = dims.len() as i64;
    let clampi = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
    let start = clampi(cx.attr_int("start", 0));
    let end = clampi(cx.attr_int("end", rank)).max(start);
    let part = dims[start..end].to_vec();
    cx.bind_output(0, Slot::Const(Const::I64(Tensor::new(vec![part.len()], part).expect("1-D"))))
}

/// `Gather` on constants.
pub fn gather(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let data = cx.constant(0, "data")?;
    let indices = cx.constant(1, "indices")?.to_i64();
    let shape = data.shape().to_vec();
    let ax = axis(cx, cx.attr_int("axis", 0), shape.len())?;
    let dim = shape[ax] as i64;
    let idx: Vec<usize> = indices
        .data()
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + dim } else { i };
            usize::try_from(j)
                .ok()
                .filter(|&j| (j as i64) < dim)
                .ok_or_else(|| cx.invalid(format!("index {i} out of range")))
        })
        .collect::<Result<_, _>>()?;
    let outer: usize = shape[..ax].iter().product();
    let inner: usize = shape[ax + 1..].iter().product();
    let mut out_shape = shape[..ax].to_vec();
    out_shape.extend_from_slice(indices.shape());
    out_shape.extend_from_slice(&shape[ax + 1..]);
    fn pick<T: Clone>(
        t: &Tensor<T>,
        outer: usize,
        dim: usize,
        inner: usize,
        idx: &[usize],
        shape: Vec<usize>,
    ) -> Tensor<T> {
        let mut out = Vec::with_capacity(outer * idx.len() * inner);
        for o in 0..outer {
            for &i in idx {
                let start = (o * dim + i) * inner;
                out.extend_from_slice(&t.data()[start..start + inner]);
            }
        }
        Tensor::new(shape, out).expect("gather size")
    }
    let folded = match &data {
        Const::F32(t) => Const::F32(pick(t, outer, shape[ax], inner, &idx, out_shape)),
        Const::I64(t) => Const::I64(pick(t, outer, shape[ax], inner, &idx, out_shape)),
    };
    cx.bind_output(0, Slot::Const(folded))
}

/// `Cast`: constants change type; casting a dynamic tensor to float is the identity.
pub fn cast(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let to = cx.attr_int("to", 0) as i32;
    let x = cx.input(0)?;
    let out = match (&x, to) {
        (Slot::Const(c), data_type::FLOAT | data_type::DOUBLE) => Slot::Const(Const::F32(c.to_f32())),
        (Slot::Const(c), data_type::INT64 | data_type::INT32) => Slot::Const(Const::I64(c.to_i64())),
        (Slot::Dynamic(_), data_type::FLOAT) => x,
        _ => return Err(cx.invalid(format!("cast to data type {to} is not supported here"))),
    };
    cx.bind_output(0, out)
}

/// `Slice` on constants (opset ≥ 10 inputs form).
pub fn slice(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let data = cx.constant(0, "data")?;
    let shape = data.shape().to_vec();
    let starts = cx.constant(1, "starts")?.to_i64().into_data();
    let ends = cx.constant(2, "ends")?.to_i64().into_data();
    let axes: Vec<usize> = match cx.optional_constant(3, "axes")? {
        Some(a) => a.to_i64().data().iter().map(|&a| axis(cx, a, shape.len())).collect::<Result<_, _>>()?,
        None => (0..starts.len()).collect(),
    };
    let steps = cx.optional_constant(4, "steps")?.map_or(vec![1; starts.len()], |s| s.to_i64().into_data());
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() || steps.contains(&0) {
        return Err(cx.invalid("starts, ends, axes and steps must have equal length and non-zero steps"));
    }
    // For each axis, the list of source indices it keeps.
    let mut keep: Vec<Vec<usize>> = shape.iter().map(|&d| (0..d).collect()).collect();
    for i in 0..axes.len() {
        let dim = shape[axes[i]] as i64;
        let norm = |v: i64, lo: i64, hi: i64| (if v < 0 { v + dim } else { v }).clamp(lo, hi);
        let step = steps[i];
        let mut picked = Vec::new();
        if step > 0 {
            let (mut p, e) = (norm(starts[i], 0, dim), norm(ends[i], 0, dim));
            while p < e {
                picked.push(p as usize);
                p += step;
            }
        } else {
            let (mut p, e) = (norm(starts[i], -1, dim - 1), norm(ends[i], -1, dim - 1));
            while p > e {
                picked.push(p as usize);
                p += step;
            }
        }
        keep[axes[i]] = picked;
    }
    let out_shape: Vec<usize> = keep.iter().map(Vec::len).collect();
    let src_strides = strides(&shape);
    let total: usize = out_shape.iter().product();
    let mut flat = Vec::with_capacity(total);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..total {
        flat.push(index.iter().enumerate().map(|(a, &i)| keep[a][i] * src_strides[a]).sum::<usize>());
        for a in (0..shape.len()).rev() {
            index[a] += 1;
            if index[a] < out_shape[a] {
                break;
            }
            index[a] = 0;
        }
    }
    let folded = match &data {
        Const::F32(t) => Const::F32(Tensor::new(out_shape, flat.iter().map(|&i| t.data()[i]).collect()).expect("size")),
        Const::I64(t) => Const::I64(Tensor::new(out_shape, flat.iter().map(|&i| t.data()[i]).collect()).expect("size")),
    };
    cx.bind_output(0, Slot::Const(folded))
}

/// `ConstantOfShape`.
pub fn constant_of_shape(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let dims = cx.constant(0, "shape")?.to_i64();
    let shape: Vec<usize> = dims
        .data()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| cx.invalid(format!("negative dimension {d}"))))
        .collect::<Result<_, _>>()?;
    if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_none_or(|n| n > 1 << 24) {
        return Err(cx.invalid(format!("shape {shape:?} is too large for a constant")));
    }
    let value = cx.attr_tensor("value")?.unwrap_or(Const::F32(Tensor::scalar(0.0)));
    let folded = match value {
        Const::F32(v) => Const::F32(Tensor::full(shape, v.data().first().copied().unwrap_or(0.0))),
        Const::I64(v) => Const::I64(Tensor::full(shape, v.data().first().copied().unwrap_or(0))),
    };
    cx.bind_output(0, Slot::Const(folded))
}
