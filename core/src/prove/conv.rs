//! Convolutions and linear layers, checked by a Freivalds-style polynomial identity instead of one
//! constraint per multiply-accumulate.
//!
//! A stride-`s` convolution is first rewritten as a stride-1 one over `s²` phase planes per input channel
//! (polyphase). Each plane `X_c` (zero-padded, `Hq × Wq`) is read as the polynomial `X_c(z) = Σ X_c[u,v]·z^(u·Wq+v)`
//! and each flipped kernel as `K_oc(z) = Σ W[o,c,Kh−1−i,Kw−1−j]·z^(i·Wq+j)`. Their product's coefficient at
//! `(y+Kh−1)·Wq + (x+Kw−1)` is exactly the accumulator (minus bias) at output `(y, x)`; the other coefficients
//! of the full product are extra witness. With every coefficient `P_o[n]` committed in phase 1, the circuit
//! checks at challenges `(z, α)`:
//!
//! `Σ_o α^o·P_o(z) = Σ_c X_c(z) · Σ_{i,j} z^(i·Wq+j) · Σ_o α^o·W[o,c,i,j]`,
//!
//! which costs rows in proportion to `|X| + |P| + |W|`, not to the number of multiply-accumulates.
//! The accumulators are then requantized by division rows. `docs/soundness.md` gives the argument.

use super::division::{divide, Division, Numerator, Output, Term};
use super::ops::Cells;
use super::trace::{g, h, CellRef, Phase2, Sel, Trace};
use super::ProveError;
use crate::quant::Requant;
use veil_verifier::circuit::tables::fr_i64;
use veil_verifier::circuit::HW;

/// Geometry of a convolution with batch 1 and one group.
pub(crate) struct ConvGeom {
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub strides: [usize; 2],
    pub pads: [usize; 4],
    pub oh: usize,
    pub ow: usize,
}

/// The polyphase, zero-padded layout: plane `c'` at `(u, v)` holds input index `Some(i)` or zero.
struct Phases {
    planes: Vec<Vec<Option<usize>>>,
    hq: usize,
    wq: usize,
    kh: usize,
    kw: usize,
    /// `(c, a, b)` of each plane.
    origin: Vec<(usize, usize, usize)>,
}

fn phases(gm: &ConvGeom) -> Phases {
    let [sh, sw] = gm.strides;
    let (hp, wp) = (gm.h + gm.pads[0] + gm.pads[2], gm.w + gm.pads[1] + gm.pads[3]);
    let (hq, wq) = (hp.div_ceil(sh), wp.div_ceil(sw));
    let mut planes = Vec::new();
    let mut origin = Vec::new();
    for c in 0..gm.cin {
        for a in 0..sh {
            for b in 0..sw {
                let mut plane = vec![None; hq * wq];
                for u in 0..hq {
                    for v in 0..wq {
                        let (y, x) =
                            ((sh * u + a) as isize - gm.pads[0] as isize, (sw * v + b) as isize - gm.pads[1] as isize);
                        if y >= 0 && x >= 0 && (y as usize) < gm.h && (x as usize) < gm.w {
                            plane[u * wq + v] = Some((c * gm.h + y as usize) * gm.w + x as usize);
                        }
                    }
                }
                planes.push(plane);
                origin.push((c, a, b));
            }
        }
    }
    Phases { planes, hq, wq, kh: gm.kh.div_ceil(sh), kw: gm.kw.div_ceil(sw), origin }
}

/// Lays out a convolution (or a linear layer in the same geometry) and its requantization; returns the
/// output tensor's cells. `weight(o, c, i, j)` reads the integer kernel.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv(
    t: &mut Trace,
    x: &Cells,
    gm: &ConvGeom,
    weight: &dyn Fn(usize, usize, usize, usize) -> i64,
    bias: &[i64],
    requant: &Requant,
    out: Output,
    name: &str,
) -> Result<Cells, ProveError> {
    let ph = phases(gm);
    let [sh, sw] = gm.strides;
    if gm.oh + ph.kh > ph.hq + 1 || gm.ow + ph.kw > ph.wq + 1 {
        return Err(ProveError::Unsupported(format!("{name}: output larger than the valid region")));
    }
    let (wq, lx) = (ph.wq, ph.hq * ph.wq);
    let lp = (ph.hq + ph.kh - 2) * wq + wq + ph.kw - 1;
    // Flipped polyphase kernel taps: (o, c', exponent) → weight.
    let tap = |o: usize, cp: usize, i: usize, j: usize| {
        let (c, a, b) = ph.origin[cp];
        let (ky, kx) = (sh * (ph.kh - 1 - i) + a, sw * (ph.kw - 1 - j) + b);
        if ky < gm.kh && kx < gm.kw {
            weight(o, c, ky, kx)
        } else {
            0
        }
    };
    // Full product coefficients.
    let xv: Vec<Vec<i64>> =
        ph.planes.iter().map(|p| p.iter().map(|s| s.map_or(0, |i| x.values[i])).collect()).collect();
    let mut prod = vec![vec![0i64; lp]; gm.cout];
    for (o, po) in prod.iter_mut().enumerate() {
        for (cp, xp) in xv.iter().enumerate() {
            for i in 0..ph.kh {
                for j in 0..ph.kw {
                    let wv = tap(o, cp, i, j);
                    if wv == 0 {
                        continue;
                    }
                    let e = i * wq + j;
                    for (m, &xm) in xp.iter().enumerate() {
                        po[m + e] += wv * xm;
                    }
                }
            }
        }
    }
    let cp_count = ph.planes.len();
    // (a) X side: X_c(z) for every plane, Horner from the highest exponent down.
    let zero = t.zero();
    let x_sums = horner_z(t, cp_count, lx, |t, lane, r, cell| {
        let n = lx - 1 - r;
        match ph.planes[lane][n] {
            Some(i) => t.copy_in(cell, x.cells[i]),
            None => t.copy_in(cell, zero),
        }
    });
    // (b) Y side: P_o(z), recording the cells of valid coefficients.
    let mut valid = vec![None; gm.cout * gm.oh * gm.ow];
    let y_sums = horner_z(t, gm.cout, lp, |t, o, r, cell| {
        let n = lp - 1 - r;
        t.set_i(cell, prod[o][n]);
        let (row, col) = (n / wq, n % wq);
        if row + 1 >= ph.kh && col + 1 >= ph.kw {
            let (y, xx) = (row + 1 - ph.kh, col + 1 - ph.kw);
            if y < gm.oh && xx < gm.ow {
                valid[(o * gm.oh + y) * gm.ow + xx] = Some((cell, prod[o][n]));
            }
        }
    });
    // (c) LHS = Σ_o α^o P_o(z).
    let lhs = horner_a(t, &y_sums);
    // (d) W side: w_{c',ij}(α) = Σ_o α^o W'[o,c',i,j].
    let taps = ph.kh * ph.kw;
    let w_sums = horner_w(t, cp_count * taps, gm.cout, |chain, r| {
        let (cp, ij) = (chain / taps, chain % taps);
        tap(gm.cout - 1 - r, cp, ij / ph.kw, ij % ph.kw)
    });
    // (e) Powers z^(i·Wq + j).
    let max_e = (ph.kh - 1) * wq + ph.kw - 1;
    let one = t.constant(1);
    let mut powers = vec![one];
    if max_e > 0 {
        let start = t.alloc(max_e);
        t.enable(Sel::PowerStart, start);
        for r in start + 1..start + max_e {
            t.enable(Sel::Power, r);
        }
        t.phase2.push(Phase2::Power { start, len: max_e });
        powers.extend((start..start + max_e).map(|r| h(0, r)));
    }
    // (f) Ŵ_c' = Σ_ij z^(i·Wq+j)·w_{c',ij}.
    let pairs: Vec<Vec<(CellRef, CellRef)>> = (0..cp_count)
        .map(|cp| (0..taps).map(|ij| (powers[(ij / ph.kw) * wq + ij % ph.kw], w_sums[cp * taps + ij])).collect())
        .collect();
    let w_hat = dots(t, &pairs);
    // (g) RHS = Σ_c' X_c'(z)·Ŵ_c'.
    let rhs = dots(t, &[x_sums.iter().copied().zip(w_hat).collect()]);
    t.copy(rhs[0], lhs);
    // Requantization.
    let plane = gm.oh * gm.ow;
    let mut divs = Vec::with_capacity(valid.len());
    for (idx, cell) in valid.iter().enumerate() {
        let (cell, acc) =
            cell.ok_or_else(|| ProveError::Unsupported(format!("{name}: output {idx} outside the product")))?;
        let o = idx / plane;
        let m = if requant.multipliers.len() == 1 { requant.multipliers[0] } else { requant.multipliers[o] };
        let s = requant.shift;
        let half = if s == 0 { 0 } else { 1i128 << (s - 1) };
        let first = Some(Term { cell: Some(cell), value: acc, coeff: m as i128 });
        let constant = bias[o] as i128 * m as i128 + half;
        divs.push(Division { numerator: Numerator { first, shared: &[], shared_coeff: 0, constant }, divisor: 1 << s });
    }
    divide(t, &divs, out, name)
}

/// Horner chains in `z` over `chains` sequences of length `len`, six lanes (three narrow) in lockstep, two values a lane per
/// row. `fill(t, chain, r, cell)` assigns the `r`-th value (highest exponent first) of `chain` into `cell`.
/// An odd length starts with a zero, tied to the zero cell. Returns each chain's final cell.
fn horner_z(
    t: &mut Trace,
    chains: usize,
    len: usize,
    mut fill: impl FnMut(&mut Trace, usize, usize, CellRef),
) -> Vec<CellRef> {
    let lanes = t.params.width().horner_lanes();
    let rows = len.div_ceil(2);
    let pad = 2 * rows - len;
    let zero = if pad > 0 { Some(t.zero()) } else { None };
    let mut out = Vec::with_capacity(chains);
    for first in (0..chains).step_by(lanes) {
        let used = lanes.min(chains - first);
        let start = t.alloc(rows);
        t.enable(Sel::HornerZStart, start);
        for r in start + 1..start + rows {
            t.enable(Sel::HornerZ, r);
        }
        for lane in 0..used {
            if let Some(zero) = zero {
                t.copy_in(g(2 * lane, start), zero);
            }
            for r in 0..len {
                let p = r + pad;
                fill(t, first + lane, r, g(2 * lane + p % 2, start + p / 2));
            }
            out.push(h(lane, start + rows - 1));
        }
        t.phase2.push(Phase2::HornerZ { start, len: rows, lanes });
    }
    out
}

/// Horner chains in `α` over fixed values on the weight track, one value per weight column a row, one chain after
/// another; `value(chain, r)` is the `r`-th value. Returns each chain's final cell.
fn horner_w(t: &mut Trace, chains: usize, len: usize, value: impl Fn(usize, usize) -> i64) -> Vec<CellRef> {
    // A length that is no multiple of the row width gets leading zeros.
    let width = t.params.weights();
    let rows = len.div_ceil(width);
    let pad = width * rows - len;
    t.weight_chains.push((chains, len));
    let start = t.alloc_weights(chains * rows);
    let mut out = Vec::with_capacity(chains);
    for chain in 0..chains {
        let first = start + chain * rows;
        t.enable(Sel::HornerWStart, first);
        for r in first + 1..first + rows {
            t.enable(Sel::HornerW, r);
        }
        for p in pad..width * rows {
            t.wt[p % width][first + p / width] = fr_i64(value(chain, p - pad));
        }
        out.push(h(HW, first + rows - 1));
    }
    t.phase2.push(Phase2::HornerW { start, rows, chains });
    out
}

/// `Σ_o α^o·v_o` over phase-2 cells `v` (highest power first is `v[last]`).
fn horner_a(t: &mut Trace, v: &[CellRef]) -> CellRef {
    let start = t.alloc(v.len());
    t.enable(Sel::HornerAStart, start);
    for r in 0..v.len() {
        if r > 0 {
            t.enable(Sel::HornerA, start + r);
        }
        t.copy_h(h(0, start + r), v[v.len() - 1 - r]);
    }
    t.phase2.push(Phase2::HornerA { start, len: v.len() });
    h(1, start + v.len() - 1)
}

/// Dot products of equal-length lists of phase-2 cell pairs, two per block of rows.
fn dots(t: &mut Trace, lists: &[Vec<(CellRef, CellRef)>]) -> Vec<CellRef> {
    let mut out = Vec::with_capacity(lists.len());
    for chunk in lists.chunks(2) {
        let len = chunk[0].len();
        let start = t.alloc(len);
        t.enable(Sel::DotStart, start);
        for r in start + 1..start + len {
            t.enable(Sel::Dot, r);
        }
        for (l, list) in chunk.iter().enumerate() {
            let b = 3 * l;
            for (r, &(a, c)) in list.iter().enumerate() {
                t.copy_h(h(b, start + r), a);
                t.copy_h(h(b + 1, start + r), c);
            }
            out.push(h(b + 2, start + len - 1));
        }
        t.phase2.push(Phase2::Dot { start, len, lanes: 2 });
    }
    out
}
