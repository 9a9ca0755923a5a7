//! Element-wise operators candle has no single op for: Affine, LeakyRelu, Sigmoid, Softmax.

use super::to_candle;
use crate::ir::Affine;
use candle_core::Tensor as CTensor;

/// `x·scale + offset`, constants broadcast numpy-style to the input.
pub(super) fn affine(x: &CTensor, affine: &Affine) -> candle_core::Result<CTensor> {
    let scaled = match &affine.scale {
        Some(scale) => x.broadcast_mul(&to_candle(scale)?)?,
        None => x.clone(),
    };
    match &affine.offset {
        Some(offset) => scaled.broadcast_add(&to_candle(offset)?),
        None => Ok(scaled),
    }
}

/// `x` where `x ≥ 0`, else `alpha·x`; both branches are exact, so the sum of the two halves is too.
pub(super) fn leaky_relu(x: &CTensor, alpha: f32) -> candle_core::Result<CTensor> {
    x.maximum(0f32)? + x.minimum(0f32)?.affine(f64::from(alpha), 0.0)?
}

/// `1 / (1 + e^{-x})`; `e^{-x}` overflows to infinity for very negative `x`, giving the right limit 0.
pub(super) fn sigmoid(x: &CTensor) -> candle_core::Result<CTensor> {
    (x.neg()?.exp()? + 1.0)?.recip()
}

/// Softmax along `axis`, shifted by the maximum so `exp` cannot overflow.
pub(super) fn softmax(x: &CTensor, axis: usize) -> candle_core::Result<CTensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(axis)?)?;
    let exp = shifted.exp()?;
    exp.broadcast_div(&exp.sum_keepdim(axis)?)
}

#[cfg(test)]
mod tests {
    use super::super::{from_candle, to_candle};
    use super::*;
    use crate::tensor::Tensor;

    fn eval(f: impl Fn(&CTensor) -> candle_core::Result<CTensor>, data: &[f32]) -> Vec<f32> {
        let x = Tensor::new(vec![data.len()], data.to_vec()).unwrap();
        from_candle(&f(&to_candle(&x).unwrap()).unwrap()).unwrap().into_data()
    }

    #[test]
    fn sigmoid_saturates_without_nan() {
        let y = eval(sigmoid, &[-200.0, 0.0, 200.0]);
        assert_eq!(y, [0.0, 0.5, 1.0]);
    }

    #[test]
    fn leaky_relu_scales_only_negatives() {
        assert_eq!(eval(|x| leaky_relu(x, 0.1), &[-2.0, 0.0, 3.0]), [-0.2, 0.0, 3.0]);
    }

    #[test]
    fn softmax_is_shift_invariant() {
        let y = eval(|x| softmax(x, 0), &[1000.0, 1000.0]);
        assert_eq!(y, [0.5, 0.5]);
    }
}
