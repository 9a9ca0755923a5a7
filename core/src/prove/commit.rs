//! Hiding commitments to boundary tensors: values packed into field elements, then Poseidon over the
//! blinding value and the packed elements, in two halves.
//!
//! With `d = len·64 + bits` and `E = [blind, p_0, p_1, …]` (`n` elements), where each `p_k` packs
//! `PER = ⌊240 / bits⌋` consecutive values as `Σ (v_i + 2^(bits−1))·2^(bits·(PER−1−i))` (the last chunk padded
//! with zeros): `A = E[..h]` and `B = E[h..]` padded with zero elements to `h = ⌈n/2⌉`, and
//! `commit(v, bits, blind) = Poseidon_{2d+1}(Poseidon_{2d}(A), Poseidon_{2d}(B))`. The halves have equally
//! many inputs under one domain, so a wide row hashes them side by side in the chip's two lanes (half the rows
//! of one long sponge); a narrow row hashes them one after the other. Every packed value is range-checked to
//! `bits` signed bits ([`range_family`]), so the packing is injective and a commitment binds the tensor; the
//! random blinding value, hashed into `A`, hides it.

use super::ops::Cells;
use super::trace::{g, lk, HashJob, Sel, Trace};
use halo2_proofs::halo2curves::bn256::Fr;
use veil_verifier::circuit::tables::{fr_i64, Family};
use veil_verifier::circuit::{Width, POSEIDON_LANE_COLUMNS};
use veil_verifier::poseidon::{native, PoseidonChip};

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

/// The Poseidon domain of a tensor commitment's two halves; the outer hash uses this plus one.
pub(crate) fn domain(len: usize, bits: u32) -> u64 {
    (len as u64 * 64 + bits as u64) * 2
}

/// The two halves of the elements `[blind, p_0, …]`, the second padded to the first's length.
fn halves<T: Clone>(elements: &[T], zero: T) -> (Vec<T>, Vec<T>) {
    let h = elements.len().div_ceil(2);
    let mut b = elements[h..].to_vec();
    b.resize(h, zero);
    (elements[..h].to_vec(), b)
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
    let mut elements = vec![blind];
    elements.extend(pack(values, bits));
    hashed(domain(values.len(), bits), &elements).1
}

/// The two half hashes of the elements `[blind, p_0, …]` under domain `d`, and the commitment over them.
fn hashed(d: u64, elements: &[Fr]) -> ([Fr; 2], Fr) {
    let (a, b) = halves(elements, Fr::zero());
    let half_hashes = [native::hash(d, &a), native::hash(d, &b)];
    (half_hashes, native::hash(d + 1, &half_hashes))
}

/// Rows [`commit_rows`] takes for a tensor of `len` values of `bits` bits in rows of `width`, with as many
/// Poseidon lanes as the width holds (the planner's estimate; [`super::fit_slice`] may keep one lane).
pub(crate) fn rows(len: usize, bits: u32, width: Width) -> usize {
    let per = per_element(bits);
    let chunks = len.div_ceil(per);
    let half = PoseidonChip::rows_for((chunks + 1).div_ceil(2));
    let hashes = if width.max_poseidon_lanes() > 1 { half } else { 2 * half };
    chunks.div_ceil(width.y_slots().len()) * per + 1 + hashes + PoseidonChip::rows_for(2)
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
    let width = t.params.width();
    let lanes = width.y_slots();
    let mut canonical = Cells::default();
    let mut packed = Vec::with_capacity(chunks);
    for first in (0..chunks).step_by(lanes.len()) {
        let start = t.alloc(per);
        t.enable(Sel::PackStart, start);
        for r in start..start + per {
            if r > start {
                t.enable(Sel::Pack, r);
            }
            t.f[4][r] = Fr::from(1u64 << b.bits);
            t.f[5][r] = fr_i64(offset);
        }
        for (lane, &slot) in lanes.iter().enumerate() {
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
    let mut elements = vec![g(0, row)];
    elements.extend(packed);
    let d = domain(b.values.len(), b.bits);
    let (half_hashes, commitment) = hashed(d, &elements.iter().map(|&c| t.get(c)).collect::<Vec<_>>());
    let (a, second) = halves(&elements, zero);
    let rows = PoseidonChip::rows_for(a.len());
    // Each half's output is the `state[1]` cell of its lane in its hash's last row.
    let outputs = if t.params.poseidon_lanes() > 1 {
        let row = t.alloc(rows);
        t.hashes.push(HashJob { row, domain: d, lanes: vec![a, second], instance_row: None });
        [g(1, row + rows - 1), g(POSEIDON_LANE_COLUMNS + 1, row + rows - 1)]
    } else {
        [a, second].map(|half| {
            let row = t.alloc(rows);
            t.hashes.push(HashJob { row, domain: d, lanes: vec![half], instance_row: None });
            g(1, row + rows - 1)
        })
    };
    for (cell, value) in outputs.iter().zip(half_hashes) {
        t.set(*cell, value);
    }
    let row = t.alloc(PoseidonChip::rows_for(2));
    let instance_row = t.instance.len();
    t.instance.push(commitment);
    t.hashes.push(HashJob { row, domain: d + 1, lanes: vec![outputs.to_vec()], instance_row: Some(instance_row) });
    canonical
}
