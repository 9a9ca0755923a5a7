//! Hiding commitments to boundary tensors: values packed into field elements, then Poseidon over the
//! blinding value and the packed elements.
//!
//! `commit(v, bits, blind) = Poseidon_domain(blind, p_0, p_1, …)` with `domain = len·64 + bits`, where each
//! `p_k` packs `PER = ⌊240 / bits⌋` consecutive values as `Σ (v_i + 2^(bits−1))·2^(bits·(PER−1−i))` (the
//! last chunk padded with zeros). Every packed value is range-checked to `bits` signed bits ([`range_family`]),
//! so the packing is injective and a commitment binds the tensor; the random blinding value hides it.

use super::ops::Cells;
use super::trace::{g, lk, HashJob, Sel, Trace};
use halo2_proofs::halo2curves::bn256::Fr;
use veil_verifier::circuit::tables::{fr_i64, Family};
use veil_verifier::circuit::COPY_SLOTS;
use veil_verifier::poseidon::{native, PoseidonChip};

/// Parallel packing lanes (in the copyable lookup slots).
pub(crate) const LANES: usize = COPY_SLOTS.len();

/// The family that range-checks a packed value to `bits` signed bits: a value `v` is looked up as
/// `(x, y) = (v, v)` in `Clamp{bits, bits + 1}`, whose `y` is always such a value and equals `x` exactly on
/// that range. Sharing the family of a requantization's clamp keeps the table small.
pub(crate) fn range_family(bits: u32) -> Family {
    Family::Clamp { bits, wide: bits + super::division::CLAMP_EXTRA_BITS }
}

/// Values packed per field element.
pub(crate) fn per_element(bits: u32) -> usize {
    (240 / bits) as usize
}

/// The Poseidon domain of a tensor commitment.
pub(crate) fn domain(len: usize, bits: u32) -> u64 {
    len as u64 * 64 + bits as u64
}

/// The packed field elements of a tensor.
pub(crate) fn pack(values: &[i64], bits: u32) -> Vec<Fr> {
    let per = per_element(bits);
    let (base, offset) = (Fr::from(1u64 << bits), 1i64 << (bits - 1));
    values
        .chunks(per)
        .map(|chunk| {
            let mut acc = Fr::zero();
            for i in 0..per {
                acc = acc * base + fr_i64(chunk.get(i).copied().unwrap_or(0) + offset);
            }
            acc
        })
        .collect()
}

/// The commitment to a tensor, computed natively.
pub fn commit(values: &[i64], bits: u32, blind: Fr) -> Fr {
    let mut inputs = vec![blind];
    inputs.extend(pack(values, bits));
    native::hash(domain(values.len(), bits), &inputs)
}

/// A boundary tensor to commit to.
pub(crate) struct Boundary {
    pub values: Vec<i64>,
    pub bits: u32,
    pub blind: Fr,
}

/// Lays out the packing and hash of a boundary tensor and exposes the commitment. With `source`, every
/// value is copied from its producer (an output boundary); without, the packing cells become the tensor's
/// canonical cells (an input boundary), which are returned.
pub(crate) fn commit_rows(t: &mut Trace, b: &Boundary, source: Option<&Cells>) -> Cells {
    let per = per_element(b.bits);
    let chunks = b.values.len().div_ceil(per);
    let offset = 1i64 << (b.bits - 1);
    let zero = t.zero();
    let mut canonical = Cells::default();
    let mut packed = Vec::with_capacity(chunks);
    for first in (0..chunks).step_by(LANES) {
        let start = t.alloc(per);
        t.enable(Sel::PackStart, start);
        for r in start..start + per {
            if r + 1 < start + per {
                t.enable(Sel::Pack, r);
            }
            t.f[4][r] = Fr::from(1u64 << b.bits);
            t.f[5][r] = fr_i64(offset);
        }
        for (lane, &slot) in COPY_SLOTS.iter().enumerate() {
            let chunk = first + lane;
            let mut acc = Fr::zero();
            for i in 0..per {
                let (row, idx) = (start + i, chunk * per + i);
                // The value sits in the slot's `y`, which the `Clamp` lookup keeps to `bits` signed bits (its
                // `x` is the same value).
                let cell = lk(2 * slot + 1, row);
                t.tag(slot, row, range_family(b.bits));
                let v = if idx < b.values.len() {
                    match source {
                        Some(src) => t.copy_in(cell, src.cells[idx]),
                        None => t.set_i(cell, b.values[idx]),
                    }
                    canonical.cells.push(cell);
                    canonical.values.push(b.values[idx]);
                    b.values[idx]
                } else {
                    t.copy_in(cell, zero);
                    0
                };
                t.set_i(lk(2 * slot, row), v);
                acc = if i == 0 { fr_i64(v + offset) } else { acc * Fr::from(1u64 << b.bits) + fr_i64(v + offset) };
                t.set(g(lane, row), acc);
            }
            if chunk < chunks {
                packed.push(g(lane, start + per - 1));
            }
        }
    }
    let row = t.alloc(1);
    t.set(g(0, row), b.blind);
    let mut inputs = vec![g(0, row)];
    inputs.extend(packed);
    let hash_row = t.alloc(PoseidonChip::rows_for(inputs.len()));
    let value = commit(&b.values, b.bits, b.blind);
    let instance_row = t.instance.len();
    t.instance.push(value);
    t.hashes.push(HashJob { row: hash_row, domain: domain(b.values.len(), b.bits), inputs, instance_row });
    canonical
}
