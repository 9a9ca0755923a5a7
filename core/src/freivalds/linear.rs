//! The Freivalds check of a linear layer and the element-wise requantization relation that ties a layer's
//! outputs to its committed accumulators.

use super::CheckField;
use crate::quant::Requant;
use crate::tensor::Tensor;

/// Checks accumulators `acc[r, n] = bias[n] + Σ_k x[r, k]·w[k, n]` at challenges `(α, β)`:
/// `Σ α^n β^r acc[r,n] = Σ_n α^n bias[n] · Σ_r β^r + Σ_k (Σ_r β^r x[r,k]) · (Σ_n α^n w[k,n])`,
/// `O(|x| + |w| + |acc|)` work.
pub fn check_linear<F: CheckField>(
    x: &Tensor<i64>,
    weight: &Tensor<i64>,
    bias: &[i64],
    acc: &Tensor<i64>,
    alpha: F,
    beta: F,
) -> bool {
    let (k, n) = (weight.shape()[0], weight.shape()[1]);
    let rows = x.len() / k.max(1);
    let ra = super::powers(alpha, n);
    let rb = super::powers(beta, rows);
    let lhs = acc.data().iter().enumerate().fold(F::ZERO, |s, (i, &v)| s + rb[i / n] * ra[i % n] * F::from_i64(v));
    let sum_b = rb.iter().fold(F::ZERO, |s, &v| s + v);
    let mut rhs = bias.iter().zip(&ra).fold(F::ZERO, |s, (&b, &r)| s + r * F::from_i64(b)) * sum_b;
    for t in 0..k {
        let xs = (0..rows).fold(F::ZERO, |s, r| s + rb[r] * F::from_i64(x.data()[r * k + t]));
        let ws = (0..n).fold(F::ZERO, |s, j| s + ra[j] * F::from_i64(weight.data()[t * n + j]));
        rhs = rhs + xs * ws;
    }
    lhs == rhs
}

/// Checks the requantization relation element by element, as a circuit does with one row per output:
/// `acc·M_c + 2^(k−1) = q·2^k + r` with `0 ≤ r < 2^k`, and `y = clamp(q)` to `bits`. `channel_of(i)` maps an
/// output index to its channel. Returns the index of the first output that violates it.
pub fn check_requant(
    acc: &[i64],
    requant: &Requant,
    outputs: &[i64],
    bits: u32,
    channel_of: impl Fn(usize) -> usize,
) -> Result<(), usize> {
    let (lo, hi) = (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1);
    for (i, (&a, &y)) in acc.iter().zip(outputs).enumerate() {
        let m = requant.multipliers.get(channel_of(i)).or(requant.multipliers.first()).copied().unwrap_or(0);
        let scaled = a as i128 * m as i128 + if requant.shift > 0 { 1i128 << (requant.shift - 1) } else { 0 };
        // The prover supplies q and r; the circuit checks their relation and r's range. Both are determined by
        // `scaled`, so any other (q, r) fails the range check: the honest pair is the only one to test.
        let q = scaled >> requant.shift;
        let r = scaled - (q << requant.shift);
        let in_range = (0..(1i128 << requant.shift)).contains(&r);
        let y = y as i128;
        let clamped = (q < lo && y == lo) || (q > hi && y == hi) || (q == y && (lo..=hi).contains(&q));
        if !(in_range && clamped) {
            return Err(i);
        }
    }
    Ok(())
}
