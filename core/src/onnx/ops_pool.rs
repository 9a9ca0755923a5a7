//! Lowering of ONNX pooling ops and the padding rules shared with Conv.

use super::context::{NodeCx, Slot};
use super::error::ImportError;
use super::ops_linear::pair;
use crate::ir::{Op, Pool};

/// Explicit `[top, left, bottom, right]` padding from `pads` or `auto_pad`.
pub(super) fn window_pads(
    cx: &NodeCx<'_>,
    input: [usize; 2],
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
) -> Result<[usize; 4], ImportError> {
    let auto_pad = cx.attr_string("auto_pad", "NOTSET");
    match auto_pad.as_str() {
        "NOTSET" => {
            let pads = cx.attr_sizes("pads", vec![0; 4])?;
            pads.try_into().map_err(|p: Vec<usize>| cx.invalid(format!("pads must hold four sizes, got {p:?}")))
        }
        "VALID" => Ok([0; 4]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut pads = [0; 4];
            for axis in 0..2 {
                let out = input[axis].div_ceil(strides[axis]);
                let span = dilations[axis] * (kernel[axis] - 1) + 1;
                let total = ((out - 1) * strides[axis] + span).saturating_sub(input[axis]);
                let small = total / 2;
                let (before, after) =
                    if auto_pad == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
                pads[axis] = before;
                pads[axis + 2] = after;
            }
            Ok(pads)
        }
        other => Err(cx.invalid(format!("unknown auto_pad {other:?}"))),
    }
}

fn pool(cx: &NodeCx<'_>) -> Result<(crate::ir::ValueId, Pool), ImportError> {
    let Slot::Dynamic(x) = cx.input(0)? else { return Err(cx.invalid("constant input is not supported")) };
    let shape = &cx.b.graph_values[x.0].shape;
    if shape.len() != 4 {
        return Err(cx.invalid(format!("only 2-D pooling over NCHW is supported; input is {shape:?}")));
    }
    let kernel = cx.attr_sizes("kernel_shape", vec![])?;
    let kernel: [usize; 2] = match kernel.as_slice() {
        [h, w] if *h > 0 && *w > 0 => [*h, *w],
        _ => return Err(cx.invalid(format!("kernel_shape must hold two positive sizes, got {kernel:?}"))),
    };
    if pair(cx, "dilations")? != [1, 1] {
        return Err(cx.invalid("dilated pooling is not supported"));
    }
    if cx.attr_int("storage_order", 0) != 0 || cx.node.output.len() > 1 {
        return Err(cx.invalid("pooling indices output is not supported"));
    }
    let strides = pair(cx, "strides")?;
    let pads = window_pads(cx, [shape[2], shape[3]], kernel, strides, [1, 1])?;
    let pool = Pool {
        kernel,
        strides,
        pads,
        ceil_mode: cx.attr_int("ceil_mode", 0) != 0,
        count_include_pad: cx.attr_int("count_include_pad", 0) != 0,
    };
    Ok((x, pool))
}

/// `MaxPool`.
pub fn max_pool(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let (x, pool) = pool(cx)?;
    cx.emit(Op::MaxPool(pool), vec![x]).map(drop)
}

/// `AveragePool`.
pub fn average_pool(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let (x, pool) = pool(cx)?;
    cx.emit(Op::AveragePool(pool), vec![x]).map(drop)
}

/// `GlobalAveragePool`.
pub fn global_average_pool(cx: &mut NodeCx<'_>) -> Result<(), ImportError> {
    let Slot::Dynamic(x) = cx.input(0)? else { return Err(cx.invalid("constant input is not supported")) };
    cx.emit(Op::GlobalAveragePool, vec![x]).map(drop)
}
