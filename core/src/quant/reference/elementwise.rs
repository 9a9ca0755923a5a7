//! Integer element-wise operators and layout moves.

use crate::quant::rounding::{clamp_bits, rescale, round_shift};
use crate::quant::QValue;
use crate::tensor::{broadcast_index_map, Tensor};

/// Which binary operator.
#[derive(Clone, Copy)]
pub enum Binary {
    /// `a + b` aligned to the larger fraction.
    Add,
    /// `a − b` aligned to the larger fraction.
    Sub,
    /// `a · b` at `fa + fb` fractional bits.
    Mul,
}

/// A broadcast binary op on `(tensor, frac)` operands, rescaled to `out`'s fractional bits and saturated
/// to its width.
pub fn binary(op: Binary, (a, fa): (&Tensor<i64>, i32), (b, fb): (&Tensor<i64>, i32), out: &QValue) -> Vec<i64> {
    let (out_shape, fo, bits) = (out.shape.as_slice(), out.frac, out.bits);
    let ia = broadcast_index_map(a.shape(), out_shape);
    let ib = broadcast_index_map(b.shape(), out_shape);
    let common = fa.max(fb);
    ia.iter()
        .zip(&ib)
        .map(|(&i, &j)| {
            let (x, y) = (a.data()[i] as i128, b.data()[j] as i128);
            let (value, frac) = match op {
                Binary::Add => ((x << (common - fa) as u32) + (y << (common - fb) as u32), common),
                Binary::Sub => ((x << (common - fa) as u32) - (y << (common - fb) as u32), common),
                Binary::Mul => (x * y, fa + fb),
            };
            clamp_bits(rescale(value, frac, fo), bits)
        })
        .collect()
}

/// `clamp(round_shift(x·m + o, shift))` with `m` and `o` broadcast to `x`.
pub fn affine(x: &Tensor<i64>, m: &Tensor<i64>, o: Option<&Tensor<i64>>, shift: u32, bits: u32) -> Vec<i64> {
    let im = broadcast_index_map(m.shape(), x.shape());
    let io = o.map(|o| broadcast_index_map(o.shape(), x.shape()));
    x.data()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let offset = match (o, &io) {
                (Some(o), Some(io)) => o.data()[io[i]] as i128,
                _ => 0,
            };
            clamp_bits(round_shift(v as i128 * m.data()[im[i]] as i128 + offset, shift), bits)
        })
        .collect()
}

/// `x` for `x ≥ 0`, else `round_shift(x·alpha, shift)`.
pub fn leaky_relu(x: &Tensor<i64>, alpha: i64, shift: u32, bits: u32) -> Vec<i64> {
    x.data()
        .iter()
        .map(|&v| if v >= 0 { v } else { clamp_bits(round_shift(v as i128 * alpha as i128, shift), bits) })
        .collect()
}

/// `table[x − offset]`; inputs outside the table saturate to its ends.
pub fn table_lookup(x: &Tensor<i64>, offset: i64, table: &[i64]) -> Vec<i64> {
    let last = table.len() as i64 - 1;
    x.data().iter().map(|&v| table[(v - offset).clamp(0, last) as usize]).collect()
}

/// Concatenation along `axis` after rescaling every input to `fo`.
pub fn concat(parts: &[(&Tensor<i64>, i32)], axis: usize, fo: i32, bits: u32) -> Tensor<i64> {
    let rescaled: Vec<Tensor<i64>> =
        parts.iter().map(|(t, f)| t.map(|&v| clamp_bits(rescale(v as i128, *f, fo), bits))).collect();
    let refs: Vec<&Tensor<i64>> = rescaled.iter().collect();
    crate::tensor::concat(&refs, axis)
}
