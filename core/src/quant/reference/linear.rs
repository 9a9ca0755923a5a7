//! Integer convolution, linear layers and matrix products.

use crate::quant::rounding::{clamp_bits, rescale, round_shift};
use crate::quant::Requant;
use crate::tensor::Tensor;

/// Geometry of a convolution.
pub(super) struct ConvShape<'a> {
    pub strides: [usize; 2],
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
    pub group: usize,
    pub out_shape: &'a [usize],
}

/// The full-width accumulators `bias[c] + Σ x·w` of a quantized convolution node on input `x` (the values a
/// circuit commits to before requantizing), or `None` when `op` is not a convolution.
pub fn conv_accumulators_of(x: &Tensor<i64>, op: &crate::quant::QOp, out_shape: &[usize]) -> Option<Tensor<i64>> {
    let crate::quant::QOp::Conv { weight, bias, strides, pads, dilations, group, .. } = op else { return None };
    let g = ConvShape { strides: *strides, pads: *pads, dilations: *dilations, group: *group, out_shape };
    Tensor::new(out_shape.to_vec(), conv_accumulators(x, weight, bias, &g)).ok()
}

/// The raw accumulators `bias[c] + Σ x·w` of an integer convolution, NCHW.
pub fn conv_accumulators(x: &Tensor<i64>, weight: &Tensor<i64>, bias: &[i64], g: &ConvShape<'_>) -> Vec<i64> {
    let [n, cin, h, w] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    let [cout, cin_g, kh, kw] = [weight.shape()[0], weight.shape()[1], weight.shape()[2], weight.shape()[3]];
    let [oh, ow] = [g.out_shape[2], g.out_shape[3]];
    let cout_g = cout / g.group;
    let (xd, wd) = (x.data(), weight.data());
    let mut acc = vec![0i64; n * cout * oh * ow];
    for b in 0..n {
        for oc in 0..cout {
            let plane = &mut acc[(b * cout + oc) * oh * ow..][..oh * ow];
            plane.iter_mut().for_each(|a| *a = bias[oc]);
            let group = oc / cout_g;
            for icg in 0..cin_g {
                let ic = group * cin_g + icg;
                let xplane = &xd[(b * cin + ic) * h * w..][..h * w];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = wd[((oc * cin_g + icg) * kh + ky) * kw + kx];
                        if wv == 0 {
                            continue;
                        }
                        accumulate_tap(plane, xplane, wv, [ky, kx], [h, w], [oh, ow], g);
                    }
                }
            }
        }
    }
    acc
}

/// Adds `wv · x[tap]` to every output position whose window covers an input element at this tap.
fn accumulate_tap(
    plane: &mut [i64],
    xplane: &[i64],
    wv: i64,
    k: [usize; 2],
    hw: [usize; 2],
    ohw: [usize; 2],
    g: &ConvShape<'_>,
) {
    for oy in 0..ohw[0] {
        let iy = (oy * g.strides[0] + k[0] * g.dilations[0]) as isize - g.pads[0] as isize;
        if iy < 0 || iy as usize >= hw[0] {
            continue;
        }
        let row = &xplane[iy as usize * hw[1]..][..hw[1]];
        for ox in 0..ohw[1] {
            let ix = (ox * g.strides[1] + k[1] * g.dilations[1]) as isize - g.pads[1] as isize;
            if ix >= 0 && (ix as usize) < hw[1] {
                plane[oy * ohw[1] + ox] += wv * row[ix as usize];
            }
        }
    }
}

/// Applies a per-channel [`Requant`] to accumulators; `channel_of(i)` maps a flat index to its channel.
pub fn requantize(acc: &[i64], requant: &Requant, bits: u32, channel_of: impl Fn(usize) -> usize) -> Vec<i64> {
    acc.iter()
        .enumerate()
        .map(|(i, &a)| {
            let m = if requant.multipliers.len() == 1 {
                requant.multipliers[0]
            } else {
                requant.multipliers[channel_of(i)]
            };
            clamp_bits(round_shift(a as i128 * m as i128, requant.shift), bits)
        })
        .collect()
}

/// The raw accumulators `bias[n] + Σ_k x[…, k]·w[k, n]` of a linear layer.
pub fn linear_accumulators(x: &Tensor<i64>, weight: &Tensor<i64>, bias: &[i64]) -> Vec<i64> {
    let (k, n) = (weight.shape()[0], weight.shape()[1]);
    let rows = x.len() / k;
    let mut acc = Vec::with_capacity(rows * n);
    for r in 0..rows {
        let xrow = &x.data()[r * k..][..k];
        let mut out = bias.to_vec();
        for (i, &xv) in xrow.iter().enumerate() {
            if xv == 0 {
                continue;
            }
            let wrow = &weight.data()[i * n..][..n];
            out.iter_mut().zip(wrow).for_each(|(o, &wv)| *o += xv * wv);
        }
        acc.extend(out);
    }
    acc
}

/// Batched product of the last two axes, rescaled from `fa + fb` to `fo` fractional bits.
pub fn matmul(a: &Tensor<i64>, b: &Tensor<i64>, from: i32, to: i32, bits: u32) -> Vec<i64> {
    let rank = a.shape().len();
    let (m, k, n) = (a.shape()[rank - 2], a.shape()[rank - 1], b.shape()[rank - 1]);
    let batches = a.len() / (m * k);
    let mut out = Vec::with_capacity(batches * m * n);
    for bt in 0..batches {
        let (ad, bd) = (&a.data()[bt * m * k..][..m * k], &b.data()[bt * k * n..][..k * n]);
        for i in 0..m {
            for j in 0..n {
                let acc: i128 = (0..k).map(|t| ad[i * k + t] as i128 * bd[t * n + j] as i128).sum();
                out.push(clamp_bits(rescale(acc, from, to), bits));
            }
        }
    }
    out
}
