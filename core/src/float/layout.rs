//! Operators that move elements: constant padding (reshape, transpose and concat map directly onto
//! candle and live in the dispatcher).

use crate::ir::Pad;
use candle_core::{Device, Tensor as CTensor};

/// Constant-mode padding with any fill value, one axis at a time.
pub(super) fn pad(x: &CTensor, pad: &Pad) -> candle_core::Result<CTensor> {
    if pad.pads.len() != x.rank() {
        candle_core::bail!("padding gives {} axes for a rank-{} input", pad.pads.len(), x.rank());
    }
    let mut y = x.clone();
    for (axis, &(before, after)) in pad.pads.iter().enumerate() {
        y = pad_axis(&y, axis, before, after, pad.value)?;
    }
    Ok(y)
}

/// Pads one axis with `before` and `after` copies of `value`.
pub(super) fn pad_axis(
    x: &CTensor,
    axis: usize,
    before: usize,
    after: usize,
    value: f32,
) -> candle_core::Result<CTensor> {
    if before == 0 && after == 0 {
        return Ok(x.clone());
    }
    if value == 0.0 {
        return x.pad_with_zeros(axis, before, after);
    }
    let block = |len: usize| {
        let mut dims = x.dims().to_vec();
        dims[axis] = len;
        CTensor::full(value, dims, &Device::Cpu)
    };
    let mut parts = Vec::with_capacity(3);
    if before > 0 {
        parts.push(block(before)?);
    }
    parts.push(x.clone());
    if after > 0 {
        parts.push(block(after)?);
    }
    CTensor::cat(&parts, axis)
}
