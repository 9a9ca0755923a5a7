//! Convolution and matrix products: Conv, Linear, MatMul.

use super::to_candle;
use crate::ir::{Conv, Linear};
use crate::tensor::Tensor;
use candle_core::{Device, Tensor as CTensor};

/// 2-D convolution. candle's `conv2d` takes one padding, one stride and one dilation for both spatial
/// axes, so unequal pads are applied explicitly, unequal dilations are baked into a zero-dilated kernel,
/// and unequal strides run at stride 1 followed by subsampling.
pub(super) fn conv(x: &CTensor, conv: &Conv) -> candle_core::Result<CTensor> {
    let [top, left, bottom, right] = conv.pads;
    let uniform_pad = top == left && left == bottom && bottom == right;
    let (x, padding) = if uniform_pad {
        (x.clone(), top)
    } else {
        (x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)?, 0)
    };
    let [dh, dw] = conv.dilations;
    let (weight, dilation) =
        if dh == dw { (to_candle(&conv.weight)?, dh) } else { (dilate_kernel(&conv.weight, conv.dilations)?, 1) };
    let [sh, sw] = conv.strides;
    let stride = if sh == sw { sh } else { 1 };
    let mut y = x.conv2d(&weight, padding, stride, dilation, conv.group)?;
    if sh != sw {
        y = subsample(&y, 2, sh)?;
        y = subsample(&y, 3, sw)?;
    }
    match &conv.bias {
        Some(bias) => y.broadcast_add(&to_candle(bias)?.reshape((1, bias.len(), 1, 1))?),
        None => Ok(y),
    }
}

/// The kernel with `dilation - 1` zeros between taps, so a dilated convolution runs as an undilated one.
fn dilate_kernel(weight: &Tensor<f32>, dilations: [usize; 2]) -> candle_core::Result<CTensor> {
    let &[o, i, kh, kw] = weight.shape() else {
        candle_core::bail!("convolution weights must have rank 4, got {:?}", weight.shape())
    };
    if kh == 0 || kw == 0 {
        candle_core::bail!("convolution kernel {kh}x{kw} is empty")
    }
    let (eh, ew) = ((kh - 1) * dilations[0] + 1, (kw - 1) * dilations[1] + 1);
    let mut data = vec![0f32; o * i * eh * ew];
    for (plane, src) in weight.data().chunks_exact(kh * kw).enumerate() {
        for (tap, &v) in src.iter().enumerate() {
            let (r, c) = (tap / kw * dilations[0], tap % kw * dilations[1]);
            data[plane * eh * ew + r * ew + c] = v;
        }
    }
    CTensor::from_vec(data, (o, i, eh, ew), &Device::Cpu)
}

/// Every `step`-th element along `dim`, starting at 0.
fn subsample(x: &CTensor, dim: usize, step: usize) -> candle_core::Result<CTensor> {
    if step == 1 {
        return Ok(x.clone());
    }
    let len = x.dim(dim)?;
    let picks: Vec<u32> = (0..len).step_by(step).map(|i| i as u32).collect();
    let count = picks.len();
    x.index_select(&CTensor::from_vec(picks, count, &Device::Cpu)?, dim)
}

/// `y[..., n] = Σ_k x[..., k]·W[k, n] + b[n]` over the last axis of an input of any rank ≥ 1.
pub(super) fn linear(x: &CTensor, linear: &Linear) -> candle_core::Result<CTensor> {
    let dims = x.dims().to_vec();
    let Some((&k, outer)) = dims.split_last() else {
        candle_core::bail!("a linear layer needs an input of rank ≥ 1")
    };
    let weight = to_candle(&linear.weight)?;
    let n = weight.dim(1)?;
    let rows: usize = outer.iter().product();
    let mut y = x.reshape((rows, k))?.matmul(&weight)?;
    if let Some(bias) = &linear.bias {
        y = y.broadcast_add(&to_candle(bias)?)?;
    }
    let mut out_dims = outer.to_vec();
    out_dims.push(n);
    y.reshape(out_dims)
}

/// Product over the last two axes, batched over equal leading axes.
pub(super) fn matmul(a: &CTensor, b: &CTensor) -> candle_core::Result<CTensor> {
    a.contiguous()?.matmul(&b.contiguous()?)
}

#[cfg(test)]
mod tests {
    use super::super::{from_candle, seeded_tensor};
    use super::*;
    use crate::ir::{infer_output_shape, Op};
    use proptest::prelude::*;

    /// Direct ONNX convolution of a batch-1 input: every output element as an explicit sum.
    fn naive_conv(x: &Tensor<f32>, c: &Conv, out: &[usize]) -> Vec<f32> {
        let (xs, ws) = (x.shape(), c.weight.shape());
        let (cin_g, cout_g) = (ws[1], ws[0] / c.group);
        let mut y = Vec::with_capacity(out.iter().product());
        for o in 0..out[1] {
            let g = o / cout_g;
            for oy in 0..out[2] {
                for ox in 0..out[3] {
                    let mut acc = c.bias.as_ref().map_or(0.0, |b| b.data()[o]);
                    for ci in 0..cin_g {
                        for ky in 0..ws[2] {
                            for kx in 0..ws[3] {
                                let iy = (oy * c.strides[0] + ky * c.dilations[0]).checked_sub(c.pads[0]);
                                let ix = (ox * c.strides[1] + kx * c.dilations[1]).checked_sub(c.pads[1]);
                                let (Some(iy), Some(ix)) = (iy, ix) else {
                                    continue;
                                };
                                if iy < xs[2] && ix < xs[3] {
                                    let xv = x.data()[((g * cin_g + ci) * xs[2] + iy) * xs[3] + ix];
                                    acc += xv * c.weight.data()[((o * cin_g + ci) * ws[2] + ky) * ws[3] + kx];
                                }
                            }
                        }
                    }
                    y.push(acc);
                }
            }
        }
        y
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// Unequal pads, strides and dilations and grouped convolutions agree with the direct sum.
        #[test]
        fn conv_matches_direct_sum(
            (group, cin_g, cout_g) in (1usize..=2, 1usize..=2, 1usize..=2),
            (h, w, kh, kw) in (3usize..=9, 3usize..=9, 1usize..=3, 1usize..=3),
            strides in [1usize..=3, 1usize..=3],
            dilations in [1usize..=2, 1usize..=2],
            pads in [0usize..=2, 0usize..=2, 0usize..=2, 0usize..=2],
            with_bias in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let cout = group * cout_g;
            let weight = seeded_tensor(&[cout, cin_g, kh, kw], seed ^ 1);
            let bias = with_bias.then(|| seeded_tensor(&[cout], seed ^ 2));
            let c = Conv { weight, bias, strides, pads, dilations, group };
            let x = seeded_tensor(&[1, group * cin_g, h, w], seed);
            let Ok(out) = infer_output_shape(&Op::Conv(c.clone()), &[x.shape()]) else { return Ok(()) };
            let y = from_candle(&conv(&to_candle(&x).unwrap(), &c).unwrap()).unwrap();
            prop_assert_eq!(y.shape(), out.as_slice());
            let want = naive_conv(&x, &c, &out);
            for (a, b) in y.data().iter().zip(&want) {
                prop_assert!((a - b).abs() <= 1e-5, "got {a}, want {b}");
            }
        }
    }

    #[test]
    fn linear_applies_to_the_last_axis() {
        let weight = Tensor::new(vec![2, 3], vec![1.0, 0.0, 2.0, 0.0, 1.0, -1.0]).unwrap();
        let l = Linear { weight, bias: Some(Tensor::new(vec![3], vec![0.5, 0.0, 0.0]).unwrap()) };
        let x = Tensor::new(vec![2, 1, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let y = from_candle(&linear(&to_candle(&x).unwrap(), &l).unwrap()).unwrap();
        assert_eq!(y.shape(), &[2, 1, 3]);
        assert_eq!(y.data(), &[1.5, 2.0, 0.0, 3.5, 4.0, 2.0]);
    }
}
