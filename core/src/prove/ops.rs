//! Row emitters for the non-linear and element-wise relations: rounded division with saturation, ReLU,
//! pairwise maxima, running sums and the pooling and residual operators built from them.

use super::trace::{g, lk, CellRef, Sel, Trace};
use super::ProveError;
use halo2_proofs::halo2curves::bn256::Fr;
use veil_verifier::circuit::tables::{fr_i128, Family, MAX_LIMB_BITS};
use veil_verifier::circuit::COPY_SLOTS;

/// A tensor laid out in the trace: one canonical cell per element, with its integer value.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cells {
    pub cells: Vec<CellRef>,
    pub values: Vec<i64>,
}

impl Cells {
    pub fn len(&self) -> usize {
        self.cells.len()
    }
}

/// How far a quotient may fall outside its output range before saturation and still be proved: the clamp
/// table covers `2^EXTRA_BITS` times the output range.
pub(crate) const EXTRA_BITS: u32 = 3;

/// One input of a division row: a cell (or none) times an integer coefficient.
pub(crate) struct Term {
    pub cell: Option<CellRef>,
    pub value: i64,
    pub coeff: i128,
}

/// The numerator of a division row: `first.coeff·first + shared_coeff·(s_1 + … + s_k) + constant`, with the
/// shared terms (at most [`SHARED_TERMS`]) in `g1..g5`.
pub(crate) struct Numerator<'a> {
    pub first: Option<Term>,
    pub shared: &'a [Valued],
    pub shared_coeff: i128,
    pub constant: i128,
}

/// Terms a division row can sum under one coefficient (`g1..g5`).
pub(crate) const SHARED_TERMS: usize = veil_verifier::circuit::G - 1;

/// Emits `y = clamp_bits(⌊numerator / divisor⌋, bits)` and returns `y`'s cell and value.
/// The quotient goes through the clamp table, the remainder through two limbs of at most
/// [`MAX_LIMB_BITS`] bits (and a second row bounding it by the divisor when the divisor is not a power of
/// two). Slot 3 of the row stays free: a ReLU of `y` goes there (see [`relu`]).
pub(crate) fn div_row(
    t: &mut Trace,
    n: Numerator<'_>,
    divisor: i128,
    bits: u32,
    what: &str,
) -> Result<(CellRef, i64), ProveError> {
    let rbits = 128 - ((divisor - 1).max(0) as u128).leading_zeros();
    if divisor <= 0 || rbits > 2 * MAX_LIMB_BITS {
        return Err(ProveError::Unsupported(format!(
            "{what}: divisor {divisor} needs more than {} remainder bits",
            2 * MAX_LIMB_BITS
        )));
    }
    if n.shared.len() > SHARED_TERMS {
        return Err(ProveError::Unsupported(format!("{what}: more than {SHARED_TERMS} terms in one division")));
    }
    // Unused shared cells are tied to zero whenever their coefficient is live.
    let zero = (n.shared_coeff != 0).then(|| t.zero());
    let pow2 = divisor & (divisor - 1) == 0;
    let row = t.alloc(if pow2 { 1 } else { 2 });
    t.enable(Sel::Div, row);
    let mut num = n.constant;
    if let Some(term) = &n.first {
        if let Some(cell) = term.cell {
            t.copy_in(g(0, row), cell);
            t.f[0][row] = fr_i128(term.coeff);
            num += term.coeff * term.value as i128;
        }
    }
    if let Some(zero) = zero {
        t.f[1][row] = fr_i128(n.shared_coeff);
        for i in 0..SHARED_TERMS {
            match n.shared.get(i) {
                Some(&(cell, v)) => {
                    t.copy_in(g(1 + i, row), cell);
                    num += n.shared_coeff * v as i128;
                }
                None => t.copy_in(g(1 + i, row), zero),
            }
        }
    }
    t.f[2][row] = fr_i128(n.constant);
    t.f[3][row] = fr_i128(divisor);
    let q = num.div_euclid(divisor);
    let r = num - q * divisor;
    let wide = bits + EXTRA_BITS;
    if q < -(1i128 << (wide - 1)) || q >= 1i128 << (wide - 1) {
        return Err(ProveError::Saturation { what: what.to_string(), value: q, bits: wide });
    }
    let limit = 1i64 << (bits - 1);
    let y = (q as i64).clamp(-limit, limit - 1);
    t.set(lk(0, row), fr_i128(q));
    t.set_i(lk(1, row), y);
    t.tag(0, row, Family::Clamp { bits, wide });
    limbs(t, row, r, rbits);
    if !pow2 {
        t.enable(Sel::Bound, row);
        let gap = (1i128 << rbits) - divisor;
        t.f[2][row + 1] = fr_i128(gap);
        limbs(t, row + 1, r + gap, rbits);
    }
    t.relu_slots.insert(lk(1, row), row);
    Ok((lk(1, row), y))
}

/// The limb width used while it suffices.
const SMALL_LIMB_BITS: u32 = 12;

/// Writes `value` (known to fit `bits` bits) as limbs into the slots from 1 on of `row`: two
/// limbs of at most [`MAX_LIMB_BITS`] bits when `bits ≤ 2·MAX_LIMB_BITS`, else three. Sets the limb bases
/// `f5` and `f4` the remainder gates weigh them with, and tags each limb's range, so the limbs together prove
/// `0 ≤ value < 2^bits`.
pub(crate) fn limbs(t: &mut Trace, row: usize, value: i128, bits: u32) {
    let n = if bits <= 2 * MAX_LIMB_BITS { 2 } else { 3 };
    // 12-bit limbs while they suffice keep small circuits' tables small; wider remainders split evenly.
    let width = if bits <= n * SMALL_LIMB_BITS { SMALL_LIMB_BITS } else { bits.div_ceil(n) };
    t.f[5][row] = Fr::from(1u64 << width);
    if n == 3 {
        t.f[4][row] = Fr::from(1u64 << (2 * width));
    }
    for j in 0..n {
        let lo = j * width;
        let w = bits.saturating_sub(lo).min(width);
        let limb = if w == 0 { 0 } else { (value >> lo) & ((1 << w) - 1) };
        t.set(lk(2 * j as usize + 2, row), fr_i128(limb));
        t.tag(j as usize + 1, row, Family::Range { bits: w });
    }
}

/// `max(x, 0)` element-wise. An element that is the output of a division row goes into that row's free slot 3;
/// the rest go two per row (slots 0 and 3).
pub(crate) fn relu(t: &mut Trace, x: &Cells, bits: u32) -> Cells {
    let mut out = Cells { cells: x.cells.clone(), values: x.values.iter().map(|&v| v.max(0)).collect() };
    let mut rest = Vec::new();
    for (i, (&cell, &v)) in x.cells.iter().zip(&out.values).enumerate() {
        match t.relu_slots.remove(&cell) {
            Some(row) => {
                t.copy_in(lk(6, row), cell);
                t.set_i(lk(7, row), v);
                t.tag(3, row, Family::Relu { bits });
                out.cells[i] = lk(7, row);
            }
            None => rest.push(i),
        }
    }
    for chunk in rest.chunks(COPY_SLOTS.len()) {
        let row = t.alloc(1);
        for (&j, &i) in COPY_SLOTS.iter().zip(chunk) {
            t.copy_in(lk(2 * j, row), x.cells[i]);
            t.set_i(lk(2 * j + 1, row), out.values[i]);
            t.tag(j, row, Family::Relu { bits });
            out.cells[i] = lk(2 * j + 1, row);
        }
    }
    out
}

/// A cell with its integer value.
pub(crate) type Valued = (CellRef, i64);

/// `max(a, b)` for each pair, two per row, through a ReLU of the difference (`bits` = the operands' width).
pub(crate) fn max_pairs(t: &mut Trace, pairs: &[(Valued, Valued)], bits: u32) -> Vec<Valued> {
    let mut out = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(2) {
        let row = t.alloc(1);
        t.enable(Sel::Max, row);
        for (l, (&j, &((a, av), (b, bv)))) in COPY_SLOTS.iter().zip(chunk).enumerate() {
            t.copy_in(g(3 * l, row), a);
            t.copy_in(g(3 * l + 1, row), b);
            let (d, m) = (av - bv, av.max(bv));
            t.set_i(lk(2 * j, row), d);
            t.set_i(lk(2 * j + 1, row), d.max(0));
            t.tag(j, row, Family::Relu { bits: bits + 1 });
            t.set_i(g(3 * l + 2, row), m);
            out.push((g(3 * l + 2, row), m));
        }
    }
    out
}

/// The maximum of each group (a reduction tree of pairwise maxima, level by level).
pub(crate) fn max_groups(t: &mut Trace, groups: Vec<Vec<(CellRef, i64)>>, bits: u32) -> Vec<(CellRef, i64)> {
    let mut level = groups;
    while level.iter().any(|grp| grp.len() > 1) {
        let mut pairs = Vec::new();
        for grp in &level {
            for pair in grp.chunks(2) {
                if pair.len() == 2 {
                    pairs.push((pair[0], pair[1]));
                }
            }
        }
        let mut maxima = max_pairs(t, &pairs, bits).into_iter();
        level = level
            .into_iter()
            .map(|grp| grp.chunks(2).map(|p| if p.len() == 2 { maxima.next().unwrap_or(p[0]) } else { p[0] }).collect())
            .collect();
    }
    level.into_iter().map(|grp| grp[0]).collect()
}

/// The sum of each group (groups of equal length), three chains in parallel; returns each sum's cell.
pub(crate) fn sums(t: &mut Trace, groups: &[Vec<(CellRef, i64)>]) -> Result<Vec<(CellRef, i64)>, ProveError> {
    let mut out = Vec::with_capacity(groups.len());
    for chunk in groups.chunks(3) {
        let len = chunk[0].len();
        // The lanes step together: a shorter group would leave free cells inside its running sum.
        if len == 0 || chunk.iter().any(|grp| grp.len() != len) {
            return Err(ProveError::Unsupported("sums over groups of unequal length".into()));
        }
        let start = t.alloc(len);
        t.enable(Sel::SumStart, start);
        for r in start..start + len - 1 {
            t.enable(Sel::Sum, r);
        }
        for (l, grp) in chunk.iter().enumerate() {
            let mut acc = 0i64;
            for (i, &(cell, v)) in grp.iter().enumerate() {
                acc += v;
                t.copy_in(g(2 * l, start + i), cell);
                t.set_i(g(2 * l + 1, start + i), acc);
            }
            out.push((g(2 * l + 1, start + len - 1), acc));
        }
    }
    Ok(out)
}

/// `clamp(round_div(sum · 2^(fo−fi), count))` (or `round_div(sum, count · 2^(fi−fo))`): the reference's
/// `mean_rescaled`, as one division row per group. A group is its values (at most [`SHARED_TERMS`]) or one
/// running-sum cell.
pub(crate) fn means(
    t: &mut Trace,
    groups: &[Vec<Valued>],
    counts: &[i128],
    fi: i32,
    fo: i32,
    bits: u32,
) -> Result<Cells, ProveError> {
    let mut out = Cells::default();
    for (group, &count) in groups.iter().zip(counts) {
        // round_div(n, d) = ⌊(2n + d) / 2d⌋.
        let (coeff, d) = if fo >= fi { (2i128 << (fo - fi) as u32, count) } else { (2, count << (fi - fo) as u32) };
        let n = Numerator { first: None, shared: group, shared_coeff: coeff, constant: d };
        let (c, y) = div_row(t, n, 2 * d, bits, "average")?;
        out.cells.push(c);
        out.values.push(y);
    }
    Ok(out)
}

/// `clamp(rescale(a·2^(c−fa) ± b·2^(c−fb), c, fo))` with `c = max(fa, fb)`: the reference's Add and Sub.
pub(crate) fn add(
    t: &mut Trace,
    a: (&Cells, i32),
    b: (&Cells, i32),
    sign: i128,
    fo: i32,
    bits: u32,
) -> Result<Cells, ProveError> {
    let common = a.1.max(b.1);
    let (up, divisor, constant) = if fo >= common {
        (1i128 << (fo - common) as u32, 1, 0)
    } else {
        (1, 1i128 << (common - fo) as u32, 1i128 << (common - fo - 1) as u32)
    };
    let mut out = Cells::default();
    for i in 0..a.0.len() {
        let ta = Term { cell: Some(a.0.cells[i]), value: a.0.values[i], coeff: up << (common - a.1) as u32 };
        let tb = [(b.0.cells[i], b.0.values[i])];
        let n =
            Numerator { first: Some(ta), shared: &tb, shared_coeff: sign * (up << (common - b.1) as u32), constant };
        let (c, y) = div_row(t, n, divisor, bits, "residual add")?;
        out.cells.push(c);
        out.values.push(y);
    }
    Ok(out)
}
