//! Pooling with ONNX padding rules on top of candle's unpadded pooling kernels.
//!
//! The input is padded to exactly the extent the output windows cover: with the declared padding, plus
//! the overhang of `ceil_mode` windows that run past it. Max pooling pads with −∞ so padding never wins.
//! Average pooling pads with zeros and divides the window sum by a pooled mask that counts the elements
//! ONNX divides by: real elements, plus declared padding when `count_include_pad` (never the overhang).

use super::layout::pad_axis;
use crate::ir::Pool;
use candle_core::{Device, Tensor as CTensor};

/// Padding per spatial axis, `(before, after)`, and the output size, for one pooling over `x`.
struct Extent {
    /// `(before, after)` for height then width; `after` includes any `ceil_mode` overhang.
    pads: [(usize, usize); 2],
    /// Declared padding after the input (the rest of `pads[i].1` is overhang).
    declared_after: [usize; 2],
    /// Output height and width.
    out: [usize; 2],
}

fn extent(x: &CTensor, pool: &Pool, out_shape: &[usize]) -> candle_core::Result<Extent> {
    let (_, _, h, w) = x.dims4()?;
    let &[_, _, out_h, out_w] = out_shape else {
        candle_core::bail!("pooling output must have rank 4, got {out_shape:?}")
    };
    let mut pads = [(0, 0); 2];
    for (axis, (&size, &out)) in [h, w].iter().zip(&[out_h, out_w]).enumerate() {
        let (before, after) = (pool.pads[axis], pool.pads[axis + 2]);
        let (kernel, stride) = (pool.kernel[axis], pool.strides[axis]);
        if out == 0 || kernel == 0 || stride == 0 {
            candle_core::bail!("pooling window {:?} stride {:?} gives no output", pool.kernel, pool.strides);
        }
        // Extent the last window reaches, measured from the start of the padded input.
        let needed = (out - 1) * stride + kernel;
        let overhang = needed.saturating_sub(before + size + after);
        pads[axis] = (before, after + overhang);
    }
    Ok(Extent { pads, declared_after: [pool.pads[2], pool.pads[3]], out: [out_h, out_w] })
}

/// Pads the spatial axes of `x` with `value` and pools it with candle's kernel `f`, then keeps the
/// declared output size (windows past it start in the trailing padding, which ONNX drops).
fn padded_pool(
    x: &CTensor,
    pool: &Pool,
    ext: &Extent,
    value: f32,
    f: impl Fn(&CTensor, (usize, usize), (usize, usize)) -> candle_core::Result<CTensor>,
) -> candle_core::Result<CTensor> {
    let [(top, bottom), (left, right)] = ext.pads;
    let padded = pad_axis(&pad_axis(x, 2, top, bottom, value)?, 3, left, right, value)?;
    let kernel = (pool.kernel[0], pool.kernel[1]);
    let stride = (pool.strides[0], pool.strides[1]);
    let y = f(&padded, kernel, stride)?;
    y.narrow(2, 0, ext.out[0])?.narrow(3, 0, ext.out[1])
}

/// Max pooling; padding is −∞.
pub(super) fn max_pool(x: &CTensor, pool: &Pool, out_shape: &[usize]) -> candle_core::Result<CTensor> {
    let ext = extent(x, pool, out_shape)?;
    padded_pool(x, pool, &ext, f32::NEG_INFINITY, |t, k, s| t.max_pool2d_with_stride(k, s))
}

/// Average pooling; the divisor follows `count_include_pad` and excludes `ceil_mode` overhang.
pub(super) fn average_pool(x: &CTensor, pool: &Pool, out_shape: &[usize]) -> candle_core::Result<CTensor> {
    let ext = extent(x, pool, out_shape)?;
    let avg = |t: &CTensor, k, s| t.avg_pool2d_with_stride(k, s);
    let sums = padded_pool(x, pool, &ext, 0.0, avg)?;
    let (_, _, h, w) = x.dims4()?;
    let mask = count_mask(h, w, &ext, pool.count_include_pad)?;
    let counts = mask.avg_pool2d_with_stride((pool.kernel[0], pool.kernel[1]), (pool.strides[0], pool.strides[1]))?;
    // Both are window means over the same kernel size, so their ratio is sum / count.
    sums.broadcast_div(&counts.narrow(2, 0, ext.out[0])?.narrow(3, 0, ext.out[1])?)
}

/// A `[1, 1, H', W']` mask over the padded input: 1 where an element counts towards the divisor.
fn count_mask(h: usize, w: usize, ext: &Extent, include_pad: bool) -> candle_core::Result<CTensor> {
    let [(top, bottom), (left, right)] = ext.pads;
    let (ph, pw) = (top + h + bottom, left + w + right);
    // The counted range per axis: the input, widened by the declared padding when it counts.
    let range = |before: usize, size: usize, declared_after: usize| {
        if include_pad {
            (0, before + size + declared_after)
        } else {
            (before, before + size)
        }
    };
    let (r0, r1) = range(top, h, ext.declared_after[0]);
    let (c0, c1) = range(left, w, ext.declared_after[1]);
    let data: Vec<f32> = (0..ph * pw)
        .map(|i| {
            let (r, c) = (i / pw, i % pw);
            if (r0..r1).contains(&r) && (c0..c1).contains(&c) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    CTensor::from_vec(data, (1, 1, ph, pw), &Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::super::{from_candle, seeded_tensor, to_candle};
    use super::*;
    use crate::ir::{infer_output_shape, Op};
    use crate::tensor::Tensor;
    use proptest::prelude::*;

    /// ONNX pooling of a batch-1 input, window by window: `(max, average)` per output element.
    fn naive_pool(x: &Tensor<f32>, p: &Pool, out: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let xs = x.shape();
        let window = |o: usize, axis: usize| {
            let start = (o * p.strides[axis]) as isize - p.pads[axis] as isize;
            let end = (start + p.kernel[axis] as isize).min((xs[2 + axis] + p.pads[axis + 2]) as isize);
            (start, end)
        };
        let (mut maxes, mut means) = (Vec::new(), Vec::new());
        for c in 0..xs[1] {
            for oy in 0..out[2] {
                for ox in 0..out[3] {
                    let ((y0, y1), (x0, x1)) = (window(oy, 0), window(ox, 1));
                    let padded_count = ((y1 - y0) * (x1 - x0)) as f32;
                    let (mut max, mut sum, mut count) = (f32::NEG_INFINITY, 0.0, 0.0);
                    for iy in y0.max(0)..y1.min(xs[2] as isize) {
                        for ix in x0.max(0)..x1.min(xs[3] as isize) {
                            let v = x.data()[(c * xs[2] + iy as usize) * xs[3] + ix as usize];
                            (max, sum, count) = (max.max(v), sum + v, count + 1.0);
                        }
                    }
                    maxes.push(max);
                    means.push(sum / if p.count_include_pad { padded_count } else { count });
                }
            }
        }
        (maxes, means)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Padding, `ceil_mode` and `count_include_pad` agree with a window-by-window reference.
        #[test]
        fn pooling_matches_window_reference(
            (channels, h, w) in (1usize..=2, 2usize..=8, 2usize..=8),
            kernel in [1usize..=3, 1usize..=3],
            strides in [1usize..=3, 1usize..=3],
            raw_pads in [0usize..=2, 0usize..=2, 0usize..=2, 0usize..=2],
            (ceil_mode, count_include_pad) in (any::<bool>(), any::<bool>()),
            seed in any::<u64>(),
        ) {
            // ONNX runtimes require padding smaller than the window.
            let pads = [0, 1, 2, 3].map(|i| raw_pads[i].min(kernel[i % 2] - 1));
            let p = Pool { kernel, strides, pads, ceil_mode, count_include_pad };
            let x = seeded_tensor(&[1, channels, h, w], seed);
            let Ok(out) = infer_output_shape(&Op::MaxPool(p.clone()), &[x.shape()]) else { return Ok(()) };
            let (want_max, want_avg) = naive_pool(&x, &p, &out);
            let cx = to_candle(&x).unwrap();
            let got_max = from_candle(&max_pool(&cx, &p, &out).unwrap()).unwrap();
            let got_avg = from_candle(&average_pool(&cx, &p, &out).unwrap()).unwrap();
            prop_assert_eq!(got_max.shape(), out.as_slice());
            prop_assert_eq!(got_max.data(), want_max.as_slice());
            for (a, b) in got_avg.data().iter().zip(&want_avg) {
                prop_assert!((a - b).abs() <= 1e-6, "got {a}, want {b}");
            }
        }
    }
}
