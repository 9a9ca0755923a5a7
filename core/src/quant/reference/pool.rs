//! Integer pooling and softmax.

use crate::ir::Pool;
use crate::quant::rounding::{clamp_bits, round_div};
use crate::tensor::Tensor;

/// The window of output index `o` along one axis: (first valid input, end of valid inputs, count of
/// positions inside the padded extent). Matches ONNX: windows are clipped to the padded input.
pub(crate) fn window(
    o: usize,
    stride: usize,
    kernel: usize,
    pad_before: usize,
    pad_after: usize,
    len: usize,
) -> (usize, usize, usize) {
    let start = (o * stride) as isize - pad_before as isize;
    let end_padded = (start + kernel as isize).min((len + pad_after) as isize);
    let padded_count = (end_padded - start).max(0) as usize;
    let first = start.max(0) as usize;
    let end = (end_padded.max(0) as usize).min(len);
    (first, end.max(first), padded_count)
}

/// Visits every output position of a 2-D pooling with its valid input window and padded window size.
fn for_each_window(
    x: &Tensor<i64>,
    pool: &Pool,
    out_shape: &[usize],
    mut f: impl FnMut(&[i64], [usize; 4], usize, usize),
) {
    let [n, c, h, w] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    let [oh, ow] = [out_shape[2], out_shape[3]];
    for plane in 0..n * c {
        let xp = &x.data()[plane * h * w..][..h * w];
        for oy in 0..oh {
            let (y0, y1, cy) = window(oy, pool.strides[0], pool.kernel[0], pool.pads[0], pool.pads[2], h);
            for ox in 0..ow {
                let (x0, x1, cx) = window(ox, pool.strides[1], pool.kernel[1], pool.pads[1], pool.pads[3], w);
                f(xp, [y0, y1, x0, x1], cy * cx, (plane * oh + oy) * ow + ox);
            }
        }
    }
}

/// Max pooling: the largest input in each window (padding never wins; an all-padding window gives the
/// smallest representable value).
pub fn max_pool(x: &Tensor<i64>, pool: &Pool, out_shape: &[usize], bits: u32) -> Vec<i64> {
    let mut out = vec![0; out_shape.iter().product()];
    let floor = -(1i64 << (bits - 1));
    let w = x.shape()[3];
    for_each_window(x, pool, out_shape, |xp, [y0, y1, x0, x1], _, o| {
        out[o] = (y0..y1).flat_map(|y| xp[y * w + x0..y * w + x1].iter().copied()).max().unwrap_or(floor);
    });
    out
}

/// Average pooling: `round_div(sum · 2^(fo−fi), count)` (or `round_div(sum, count · 2^(fi−fo))`), where
/// `count` is the window size clipped to the padded input, or the valid elements when padding is excluded.
pub fn average_pool(x: &Tensor<i64>, pool: &Pool, out_shape: &[usize], fi: i32, fo: i32, bits: u32) -> Vec<i64> {
    let mut out = vec![0; out_shape.iter().product()];
    let w = x.shape()[3];
    for_each_window(x, pool, out_shape, |xp, [y0, y1, x0, x1], padded_count, o| {
        let sum: i128 = (y0..y1).flat_map(|y| xp[y * w + x0..y * w + x1].iter()).map(|&v| v as i128).sum();
        let count = if pool.count_include_pad { padded_count } else { (y1 - y0) * (x1 - x0) };
        out[o] = mean_rescaled(sum, count.max(1) as i128, fi, fo, bits);
    });
    out
}

/// `sum / count` moved from `fi` to `fo` fractional bits with one rounding.
pub fn mean_rescaled(sum: i128, count: i128, fi: i32, fo: i32, bits: u32) -> i64 {
    let q =
        if fo >= fi { round_div(sum << (fo - fi) as u32, count) } else { round_div(sum, count << (fi - fo) as u32) };
    clamp_bits(q, bits)
}

/// Mean over H and W of each NCHW plane.
pub fn global_average_pool(x: &Tensor<i64>, fi: i32, fo: i32, bits: u32) -> Vec<i64> {
    let hw = x.shape()[2] * x.shape()[3];
    x.data()
        .chunks(hw.max(1))
        .map(|p| mean_rescaled(p.iter().map(|&v| v as i128).sum(), hw as i128, fi, fo, bits))
        .collect()
}

/// Softmax along `axis`: `e_i = exp_table[max − x_i]` (0 past the table), `p_i = round_div(e_i · 2^fo, Σ e)`.
pub fn softmax(x: &Tensor<i64>, axis: usize, exp_table: &[i64], fo: i32) -> Vec<i64> {
    let shape = x.shape();
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let mut out = vec![0; x.len()];
    for o in 0..outer {
        for i in 0..inner {
            let idx = |j: usize| (o * len + j) * inner + i;
            let max = (0..len).map(|j| x.data()[idx(j)]).max().unwrap_or(0);
            let e: Vec<i128> = (0..len)
                .map(|j| {
                    usize::try_from(max - x.data()[idx(j)])
                        .ok()
                        .and_then(|d| exp_table.get(d))
                        .map_or(0, |&v| v as i128)
                })
                .collect();
            let total: i128 = e.iter().sum::<i128>().max(1);
            for (j, &ej) in e.iter().enumerate() {
                out[idx(j)] = round_div(ej << fo.max(0) as u32, total) as i64;
            }
        }
    }
    out
}
