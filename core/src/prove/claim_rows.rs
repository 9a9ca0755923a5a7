//! The claim, computed in the last slice from the logits: the revealed output, the argmax, or the age
//! predicate `Σ_i exp[m − z_i]·(4·age_i − T) ≥ 0` (quarter years; `m` the largest logit), which reveals one bit.
//!
//! One circuit serves every claim kind: the public kind `σ` (0 output, 1 argmax, 2 age) selects, through
//! its indicators `e0`, `e1`, `e2`, which value is revealed; the others stay private (the output values are
//! multiplied by `e0`, so they are public zeros for the other kinds).
//!
//! Every relation is one row of the `arith` gate, `f0·g0 + f1·g1·g2 + f2·g3 + f3·g4 + f4·x0 + f5 = 0` with
//! the coefficients fixed per row (`x0` = slot 0's `x`), and the rows share cells through copy constraints. A
//! gate of the claim's own would cost every proof its constraints on every row of the domain; these rows cost
//! their rows only. In order: the kind (`e1`, `e2`, `e0`), the cell `m`, ten rows per logit, `P_{n−1} = 1`,
//! the age verdict and `V`'s limbs, then the revealed value (`t1 = e1·K`, `t2 = e2·b`, `v = t1 + t2`).

use super::ops::Cells;
use super::trace::{g, lk, CellRef, Sel, Trace};
use super::ProveError;
use crate::ir::ValueId;
use halo2_proofs::halo2curves::bn256::Fr;
use veil_verifier::circuit::tables::{fr_i128, fr_i64, Family};

/// What the claim rows need from the compiled model.
#[derive(Clone, Debug)]
pub(crate) struct ClaimSetup {
    /// The logits value.
    pub logits: ValueId,
    /// The softmax exponential table (empty when the model ends without a softmax).
    pub exp_table: Vec<i64>,
    /// Each logit's age in quarter years (zeros for a model that does not estimate age).
    pub age_quarters: Vec<i64>,
    /// Signed bits of the logits: `m − z` lies in `[0, 2^bits)`, the exp table's domain.
    pub bits: u32,
}

/// The claim asked for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClaimWitness {
    /// 0 output, 1 argmax, 2 age.
    pub kind: u8,
    /// The age threshold in quarter years (0 for the other kinds).
    pub threshold_quarters: i64,
}

/// Bits of the age verdict's `V`: `|D| ≥ 2^36` cannot be proved (`Saturation`).
const VERDICT_BITS: u32 = 36;

/// A cell of an `arith` row: a copy of another cell (value and copy constraint) or a fresh witness.
#[derive(Clone, Copy)]
enum In {
    Copy(CellRef),
    Value(Fr),
}

/// Lays out an `arith` row with coefficients `f0..f5` and cells `g0..g4` (`None` stays zero); returns the row.
fn row(t: &mut Trace, f: [i128; 6], cells: [Option<In>; 5]) -> usize {
    let r = t.arith(Sel::Claim, f.map(fr_i128));
    for (i, cell) in cells.into_iter().enumerate() {
        match cell {
            Some(In::Copy(src)) => t.copy_in(g(i, r), src),
            Some(In::Value(v)) => t.set(g(i, r), v),
            None => {}
        }
    }
    r
}

fn val(v: i128) -> Option<In> {
    Some(In::Value(fr_i128(v)))
}

fn copy(cell: CellRef) -> Option<In> {
    Some(In::Copy(cell))
}

/// `b·b − b = 0` on a new row whose `g0` holds `b` (`g1`, `g2` copy it); returns `b`'s cell.
fn boolean(t: &mut Trace, b: i64) -> CellRef {
    let r = row(t, [-1, 1, 0, 0, 0, 0], [val(b.into()), None, None, None, None]);
    t.copy_in(g(1, r), g(0, r));
    t.copy_in(g(2, r), g(0, r));
    g(0, r)
}

/// The running values of the logit rows: `P` (argmax bits so far), `K` (index), `A` (age sum), `S` (exp sum).
#[derive(Clone, Copy)]
struct Running {
    p: CellRef,
    k: CellRef,
    a: CellRef,
    s: CellRef,
}

/// `x = x(prev) + c·y`, where `x(prev)` is the previous logit's cell (none on the first: `x = c·y`).
fn step(t: &mut Trace, value: i128, prev: Option<CellRef>, c: i128, y: CellRef) -> CellRef {
    let carry = i128::from(prev.is_some());
    let r = row(t, [1, 0, -carry, -c, 0, 0], [val(value), None, None, prev.and_then(copy), copy(y)]);
    g(0, r)
}

/// Lays out the claim rows and exposes `[σ, T, v, o_0, …]` as public inputs.
pub(crate) fn claim_rows(
    t: &mut Trace,
    setup: &ClaimSetup,
    logits: &Cells,
    claim: Option<&ClaimWitness>,
) -> Result<(), ProveError> {
    let n = logits.len();
    if n == 0 || setup.age_quarters.len() != n {
        return Err(ProveError::Unsupported(format!("claim over {n} logits with {} ages", setup.age_quarters.len())));
    }
    let claim = claim.copied().unwrap_or(ClaimWitness { kind: 0, threshold_quarters: 0 });
    t.exp_tables.push(setup.exp_table.clone());
    let exp = Family::Exp { bits: setup.bits, table: t.exp_tables.len() as u32 - 1 };
    let z = &logits.values;
    let m = z.iter().copied().max().unwrap_or(0);
    let first = z.iter().position(|&v| v == m).unwrap_or(0);
    let e = [claim.kind == 0, claim.kind == 1, claim.kind == 2].map(i128::from);
    // The kind σ (public, set by the verifier to 0, 1 or 2): e1 = σ(2 − σ), 2·e2 = σ − e1, e0 = 1 − e1 − e2.
    let sigma = i128::from(claim.kind);
    let k1 = row(t, [1, 1, -2, 0, 0, 0], [val(e[1]), None, None, val(sigma), None]);
    t.copy_in(g(1, k1), g(3, k1));
    t.copy_in(g(2, k1), g(3, k1));
    let (sigma_cell, e1) = (g(3, k1), g(0, k1));
    let e2 = g(0, row(t, [2, 0, -1, 1, 0, 0], [val(e[2]), None, None, copy(sigma_cell), copy(e1)]));
    let e0 = g(0, row(t, [1, 0, 1, 1, 0, -1], [val(e[0]), None, None, copy(e1), copy(e2)]));
    // The claimed maximum: a free cell, which the logit rows pin to the largest logit.
    let m_cell = g(0, t.alloc(1));
    t.set_i(m_cell, m);
    let (mut p, mut k, mut acc, mut sum) = (0i128, 0i128, 0i128, 0i128);
    let mut prev: Option<Running> = None;
    let mut outputs = Vec::with_capacity(n);
    for (i, &zi) in z.iter().enumerate() {
        let z_cell = logits.cells[i];
        let d = m - zi;
        let ei = usize::try_from(d).ok().and_then(|d| setup.exp_table.get(d)).copied().unwrap_or(0);
        // (Exp, d, E) is a table row, and g0 = d is copyable: d = x0.
        let x = row(t, [1, 0, 0, 0, -1, 0], [val(d.into()), None, None, None, None]);
        t.set_i(lk(0, x), d);
        t.set_i(lk(1, x), ei);
        t.tag(0, x, exp);
        let (d_cell, e_cell) = (g(0, x), lk(1, x));
        // d = m − z.
        row(t, [1, 0, -1, 1, 0, 0], [copy(d_cell), None, None, copy(m_cell), copy(z_cell)]);
        let b = i64::from(i == first);
        let b_cell = boolean(t, b);
        // b·d = 0.
        row(t, [0, 1, 0, 0, 0, 0], [None, copy(b_cell), copy(d_cell), None, None]);
        p += i128::from(b);
        k += i128::from(b) * i as i128;
        acc += i128::from(ei) * i128::from(setup.age_quarters[i]);
        sum += i128::from(ei);
        let p_cell = step(t, p, prev.map(|r| r.p), 1, b_cell);
        // d·inv = 1 − P: before the chosen index no logit equals m.
        let inv = if p == 0 { fr_i64(d).invert().unwrap_or(Fr::zero()) } else { Fr::zero() };
        row(t, [0, 1, 1, 0, 0, -1], [None, copy(d_cell), Some(In::Value(inv)), copy(p_cell), None]);
        let k_cell = step(t, k, prev.map(|r| r.k), i as i128, b_cell);
        let a_cell = step(t, acc, prev.map(|r| r.a), setup.age_quarters[i].into(), e_cell);
        let s_cell = step(t, sum, prev.map(|r| r.s), 1, e_cell);
        // o = e0·z.
        let o = row(t, [1, -1, 0, 0, 0, 0], [val(e[0] * i128::from(zi)), copy(e0), copy(z_cell), None, None]);
        outputs.push(g(0, o));
        prev = Some(Running { p: p_cell, k: k_cell, a: a_cell, s: s_cell });
    }
    let Some(last) = prev else { return Err(ProveError::Unsupported("claim over no logits".into())) };
    // Exactly one chosen index: P_{n−1} = 1.
    row(t, [1, 0, 0, 0, 0, -1], [copy(last.p), None, None, None, None]);
    let (holds, threshold_cell) = age_verdict(t, last, acc, sum, claim.threshold_quarters.into())?;
    // v = e1·K + e2·b.
    let t1 = e[1] * k;
    let t1_cell = g(0, row(t, [1, -1, 0, 0, 0, 0], [val(t1), copy(e1), copy(last.k), None, None]));
    let t2 = e[2] * i128::from(holds.1);
    let t2_cell = g(0, row(t, [1, -1, 0, 0, 0, 0], [val(t2), copy(e2), copy(holds.0), None, None]));
    let v = g(0, row(t, [1, 0, -1, -1, 0, 0], [val(t1 + t2), None, None, copy(t1_cell), copy(t2_cell)]));
    t.expose(sigma_cell);
    t.expose(threshold_cell);
    t.expose(v);
    for o in outputs {
        t.expose(o);
    }
    Ok(())
}

/// The age verdict: bit `b`, `D = A − T·S`, `V = b·D + (1 − b)·(−D − 1)` in `Range` limbs (so `V ≥ 0`, and
/// `b = 1` exactly when `D ≥ 0`). Returns `b`'s cell and value, and the threshold's cell (public).
fn age_verdict(
    t: &mut Trace,
    last: Running,
    acc: i128,
    sum: i128,
    threshold: i128,
) -> Result<((CellRef, i64), CellRef), ProveError> {
    let d = acc - threshold * sum;
    let holds = i64::from(d >= 0);
    let v = if d >= 0 { d } else { -d - 1 };
    if v >= 1 << VERDICT_BITS {
        return Err(ProveError::Saturation { what: "age score".into(), value: d, bits: VERDICT_BITS });
    }
    let b = boolean(t, holds);
    // D − A + T·S = 0.
    let dr = row(t, [1, 1, -1, 0, 0, 0], [val(d), val(threshold), copy(last.s), copy(last.a), None]);
    let d_cell = g(0, dr);
    // V − 2·b·D + D − b + 1 = 0.
    let vr = row(t, [1, -2, 1, -1, 0, 1], [val(v), copy(b), copy(d_cell), copy(d_cell), copy(b)]);
    range_limbs(t, g(0, vr), v);
    Ok(((b, holds), g(1, dr)))
}

/// `V` (the cell `v_cell`, value `v < 2^36`) as `Range` limbs of the slice's limb width `l`, low first: each
/// limb but the last is `x0` of a row that copies it out (`g0 = x0`); the last row reads `V` and the others
/// and looks up the top limb itself: `V − x'_0 − 2^l·x'_1 − 2^(jl)·x0 = 0`.
fn range_limbs(t: &mut Trace, v_cell: CellRef, v: i128) {
    let width = t.range_bits;
    let n = if VERDICT_BITS <= 2 * width { 2 } else { 3 };
    let limb = |j: u32| {
        let lo = j * width;
        let w = VERDICT_BITS.saturating_sub(lo).min(width);
        ((v >> lo) & ((1 << w) - 1), Family::Range { bits: w })
    };
    let mut low = Vec::with_capacity(2);
    for j in 0..n - 1 {
        let (x, family) = limb(j);
        let r = row(t, [1, 0, 0, 0, -1, 0], [val(x), None, None, None, None]);
        t.set(lk(0, r), fr_i128(x));
        t.tag(0, r, family);
        low.push(g(0, r));
    }
    let (top, family) = limb(n - 1);
    let second = (n == 3).then(|| -(1i128 << width));
    let f = [1, 0, -1, second.unwrap_or(0), -(1i128 << (width * (n - 1))), 0];
    let r = row(t, f, [copy(v_cell), None, None, copy(low[0]), low.get(1).copied().and_then(copy)]);
    t.set(lk(0, r), fr_i128(top));
    t.tag(0, r, family);
}
