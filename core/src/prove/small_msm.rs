//! Multi-scalar multiplication for the columns a slice circuit commits to first: mostly small signed integers.
//!
//! halo2's multi-scalar multiplication (Pippenger over 12-bit windows, about 22 of them for a BN254 scalar)
//! pays for every window of every scalar that is not zero there. A negative integer `−v` is the field element
//! `p − v`, which has digits in every window, so a column of activations, quotients and accumulators with
//! either sign costs as much as a column of random field elements. Here each scalar whose value or negation
//! fits 64 bits is split into its sign and magnitude, and the magnitude's 8-bit digits are added into
//! 255 buckets per window, with the point negated for a negative scalar: one point addition per nonzero digit
//! (one or two for an 8-bit activation, three for a 20-bit accumulator). The other scalars (Poseidon states,
//! packed values, blinding rows, and the dense columns of the second phase and the permutation argument) go to
//! halo2's multiplication, after a scalar equal to the one before it has had its base added to that one's: a
//! permutation grand product keeps its value over every row whose cells take part in no copy constraint, and a
//! logUp helper over every row without lookups, so runs of equal scalars are common.
//!
//! The result is the same group element as `Σ scalars[i]·bases[i]`, however it is computed, so the
//! commitment, the proof and its verification are unchanged (`same_as_halo2s` checks it).

use halo2_proofs::arithmetic::best_multiexp;
use halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G1};
use halo2_proofs::halo2curves::ff::PrimeField;
use halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_proofs::halo2curves::group::{Curve, Group};

/// Bits per window.
const WINDOW: usize = 8;
/// Buckets per window (digit 0 has none).
const BUCKETS: usize = (1 << WINDOW) - 1;

/// A scalar as a sign and a 64-bit magnitude, if it or its negation fits.
fn small(s: &Fr) -> Option<(bool, u64)> {
    let fits =
        |r: [u8; 32]| r[8..].iter().all(|&b| b == 0).then(|| u64::from_le_bytes(r[..8].try_into().unwrap_or_default()));
    if let Some(v) = fits(s.to_repr()) {
        return Some((false, v));
    }
    fits((-*s).to_repr()).map(|v| (true, v))
}

/// `Σ scalars[i]·bases[i]`; `scalars` and `bases` must have the same length.
pub fn msm(scalars: &[Fr], bases: &[G1Affine]) -> G1 {
    debug_assert_eq!(scalars.len(), bases.len());
    // Other scalars, each with its base and, for a scalar equal to the one before it, the sum of their bases.
    let mut big: (Vec<Fr>, Vec<G1Affine>, Vec<G1>) = (Vec::new(), Vec::new(), Vec::new());
    let mut merged = 0;
    let mut smalls = Vec::with_capacity(scalars.len());
    let mut widest = 0u64;
    for (s, b) in scalars.iter().zip(bases) {
        match small(s) {
            Some((_, 0)) => {}
            Some((neg, v)) => {
                widest |= v;
                smalls.push((neg, v, b));
            }
            None => match (big.0.last(), big.2.last_mut()) {
                (Some(last), Some(sum)) if last == s => {
                    *sum += b;
                    merged += 1;
                }
                _ => {
                    big.0.push(*s);
                    big.1.push(*b);
                    big.2.push(G1::from(*b));
                }
            },
        }
    }
    let windows = (64 - widest.leading_zeros() as usize).div_ceil(WINDOW);
    let mut buckets = vec![G1::identity(); windows * BUCKETS];
    for (neg, mut v, b) in smalls {
        let mut w = 0;
        while v != 0 {
            let digit = (v as usize) & BUCKETS;
            if digit != 0 {
                let bucket = &mut buckets[w * BUCKETS + digit - 1];
                if neg {
                    *bucket -= b;
                } else {
                    *bucket += b;
                }
            }
            v >>= WINDOW;
            w += 1;
        }
    }
    // Per window, Σ_d d·bucket[d] by running sums; then the windows by doubling, highest first.
    let mut total = G1::identity();
    for w in (0..windows).rev() {
        for _ in 0..WINDOW {
            total = total.double();
        }
        let (mut running, mut sum) = (G1::identity(), G1::identity());
        for bucket in buckets[w * BUCKETS..(w + 1) * BUCKETS].iter().rev() {
            running += bucket;
            sum += running;
        }
        total += sum;
    }
    if merged > 0 {
        let mut sums = vec![G1Affine::identity(); big.2.len()];
        G1::batch_normalize(&big.2, &mut sums);
        big.1 = sums;
    }
    if !big.0.is_empty() {
        total += best_multiexp(&big.0, &big.1);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use halo2_proofs::halo2curves::ff::Field;
    use halo2_proofs::halo2curves::group::Curve;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    fn bases(n: usize, rng: &mut ChaCha20Rng) -> Vec<G1Affine> {
        (0..n).map(|_| (G1::generator() * Fr::from(rng.next_u64())).to_affine()).collect()
    }

    /// Small values of either sign and up to 64 bits, zeros, and a few random field elements, in one column; a
    /// column of mostly random elements; one of zeros; and one with runs of equal field elements, broken by small
    /// values and random ones: the same points as halo2's multiplication.
    #[test]
    fn same_as_halo2s() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let n = 3000;
        let g = bases(n, &mut rng);
        let mixed: Vec<Fr> = (0..n)
            .map(|i| {
                let v = rng.next_u64() >> (i % 64);
                match i % 7 {
                    0 => Fr::ZERO,
                    1 | 2 => -Fr::from(v),
                    3 if i % 5 == 0 => Fr::random(&mut rng),
                    4 => -Fr::from(u64::MAX),
                    _ => Fr::from(v),
                }
            })
            .collect();
        let dense: Vec<Fr> =
            (0..n).map(|i| if i % 3 == 0 { Fr::from(i as u64) } else { Fr::random(&mut rng) }).collect();
        let zeros = vec![Fr::ZERO; n];
        let big = Fr::random(&mut rng);
        let runs: Vec<Fr> = (0..n)
            .map(|i| match i % 50 {
                0..=29 => big,
                30..=34 => Fr::from(i as u64),
                35..=40 => big + Fr::from((i / 50) as u64),
                _ => Fr::random(&mut rng),
            })
            .collect();
        for scalars in [mixed, dense, zeros, runs] {
            assert_eq!(msm(&scalars, &g).to_affine(), best_multiexp(&scalars, &g).to_affine());
        }
    }
}
