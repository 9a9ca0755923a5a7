//! Rounded divisions with saturation (requantization, averages, residual additions), laid out up to four
//! per row where their remainders fit one range-check limb.
//!
//! Every division `y = clamp(⌊n / d⌋)` (optionally followed by a ReLU fused into the same lookup) is first
//! normalized without changing its result:
//! - a power-of-two divisor `2^s` sheds the power of two its coefficients share:
//!   `⌊(2^t·x + c) / 2^s⌋ = ⌊(x + ⌊c / 2^t⌋) / 2^(s−t)⌋`;
//! - the remainder width is then widened to one or two limbs of the slice's range width `l` (12 or 15 bits,
//!   `Trace::range_bits`) by scaling numerator and divisor by the same power of two,
//!   `⌊n / d⌋ = ⌊n·2^e / (d·2^e)⌋`, so every remainder limb is checked against one range table (`Range{l}`)
//!   whatever the layer's shift.
//!
//! A normalized division with a power-of-two divisor and a remainder of at most `l` bits takes
//! one lane of a shared row: a `div4` row (four lanes of at most two numerator cells; wide rows only) or,
//! with up to six cells (three in narrow rows; an average pool's window), a `div2` row (two lanes). The lanes of a row share its fixed
//! coefficients, so they hold divisions with equal coefficients (outputs of one channel, say); a row's spare
//! lanes repeat its last division, whose copy nobody reads. Any other division takes a `div` row of its own
//! (two remainder limbs, up to twelve summed cells (six narrow), and a `bound` row when the divisor is not a power of
//! two). `docs/soundness.md` gives the argument for each.

use super::ops::{Cells, Valued};
use super::trace::{g, lk, CellRef, Sel, Trace};
use super::ProveError;
use halo2_proofs::halo2curves::bn256::Fr;
use veil_verifier::circuit::tables::{fr_i128, Family};
use veil_verifier::circuit::{Width, DIV_LANES};

/// How far a quotient may fall outside its output range before saturation and still be proved: a `Clamp`
/// table covers `2^CLAMP_EXTRA_BITS` times the output range, a `ClampRelu` table `2^RELU_EXTRA_BITS` times
/// (ReLU inputs reach further below zero than anything reaches above its range). A quotient beyond is a
/// typed [`ProveError::Saturation`].
pub(crate) const CLAMP_EXTRA_BITS: u32 = 1;
/// See [`CLAMP_EXTRA_BITS`].
pub(crate) const RELU_EXTRA_BITS: u32 = 2;

/// Terms a `div` row can sum under one coefficient (`g1..g11` wide, `g1..g5` narrow).
pub(crate) fn shared_terms(width: Width) -> usize {
    width.g_columns() - 1
}

/// Numerator cells a `div4` lane reads.
const LANE4_CELLS: usize = 2;
/// Numerator cells a `div2` lane reads: half the `g` columns.
fn lane2_cells(width: Width) -> usize {
    width.g_columns() / 2
}

/// One input of a division: a cell (or none) times an integer coefficient.
pub(crate) struct Term {
    pub cell: Option<CellRef>,
    pub value: i64,
    pub coeff: i128,
}

/// The numerator of a division: `first.coeff·first + shared_coeff·(s_1 + … + s_k) + constant`.
pub(crate) struct Numerator<'a> {
    pub first: Option<Term>,
    pub shared: &'a [Valued],
    pub shared_coeff: i128,
    pub constant: i128,
}

/// `⌊numerator / divisor⌋`.
pub(crate) struct Division<'a> {
    pub numerator: Numerator<'a>,
    pub divisor: i128,
}

/// What every division of a batch produces: a value clamped to `bits` signed bits, then ReLU'd when `relu`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Output {
    pub bits: u32,
    pub relu: bool,
}

/// A division after normalization.
struct Normal<'a> {
    /// `(cell, coefficient)` of the first term.
    first: Option<(CellRef, i128)>,
    shared: &'a [Valued],
    shared_coeff: i128,
    constant: i128,
    divisor: i128,
    /// Remainder bits: one or two limbs of the slice's range width.
    width: u32,
    /// The slice's range width.
    limb: u32,
    /// The numerator's value.
    value: i128,
}

impl Normal<'_> {
    /// The numerator cells a shared row's lane reads for this division, or `None` when it takes a `div` row.
    fn lane_cells(&self, width: Width) -> Option<usize> {
        let fits = self.divisor == 1 << self.width && self.width <= self.limb;
        let cells = 1 + self.shared.len();
        fits.then_some(cells).filter(|&c| c <= lane2_cells(width))
    }

    /// The fixed cells of a lane, `[f0, f1, f2, f3]`: divisions share a row only when these agree.
    fn lane_coefficients(&self) -> [i128; 4] {
        let a = self.first.map_or(0, |(_, c)| c);
        let b = if self.shared.is_empty() { 0 } else { self.shared_coeff };
        [a, b, self.constant, self.divisor]
    }

    /// The lane's numerator cells: the first term's (or none), then the shared terms'.
    fn lane_terms(&self) -> Vec<Option<CellRef>> {
        std::iter::once(self.first.map(|(c, _)| c)).chain(self.shared.iter().map(|&(c, _)| Some(c))).collect()
    }
}

/// The narrowest standard width holding `bits` bits: one or two limbs of `limb` bits.
fn standard_width(bits: u32, limb: u32) -> Option<u32> {
    [limb, 2 * limb].into_iter().find(|&w| bits <= w)
}

fn normalize<'a>(d: &Division<'a>, limb: u32, width: Width, what: &str) -> Result<Normal<'a>, ProveError> {
    let n = &d.numerator;
    if d.divisor <= 0 {
        return Err(ProveError::Unsupported(format!("{what}: divisor {} is not positive", d.divisor)));
    }
    let most = shared_terms(width);
    if n.shared.len() > most {
        return Err(ProveError::Unsupported(format!("{what}: more than {most} terms in one division")));
    }
    let first = n.first.as_ref().and_then(|t| t.cell.map(|c| (c, t.coeff, t.value)));
    let mut coeff = first.map_or(0, |f| f.1);
    let mut shared_coeff = if n.shared.is_empty() { 0 } else { n.shared_coeff };
    let (mut constant, mut divisor) = (n.constant, d.divisor);
    if divisor & (divisor - 1) == 0 {
        // Shed the power of two the divisor shares with every live coefficient.
        let live = [coeff, shared_coeff].into_iter().filter(|&c| c != 0);
        let t = live.map(|c| c.trailing_zeros()).chain([divisor.trailing_zeros()]).min().unwrap_or(0);
        coeff >>= t;
        shared_coeff >>= t;
        constant = constant.div_euclid(1 << t);
        divisor >>= t;
    }
    let bits = 128 - ((divisor - 1) as u128).leading_zeros();
    let width = standard_width(bits, limb).ok_or_else(|| {
        ProveError::Unsupported(format!("{what}: divisor {divisor} needs more than {} remainder bits", 2 * limb))
    })?;
    let scale = if divisor & (divisor - 1) == 0 { 1i128 << (width - bits) } else { 1 };
    let value = coeff * first.map_or(0, |f| f.2 as i128)
        + shared_coeff * n.shared.iter().map(|&(_, v)| v as i128).sum::<i128>()
        + constant;
    Ok(Normal {
        first: first.map(|f| (f.0, coeff * scale)),
        shared: n.shared,
        shared_coeff: shared_coeff * scale,
        constant: constant * scale,
        divisor: divisor * scale,
        width,
        limb,
        value: value * scale,
    })
}

/// The quotient, its remainder and the output (clamped, then ReLU'd when asked).
fn quotient(n: &Normal<'_>, out: Output, what: &str) -> Result<(i128, i128, i64), ProveError> {
    let q = n.value.div_euclid(n.divisor);
    let r = n.value - q * n.divisor;
    let wide = wide_bits(out);
    if q < -(1i128 << (wide - 1)) || q >= 1i128 << (wide - 1) {
        return Err(ProveError::Saturation { what: what.to_string(), value: q, bits: wide });
    }
    let limit = 1i64 << (out.bits - 1);
    let y = (q as i64).clamp(-limit, limit - 1);
    Ok((q, r, if out.relu { y.max(0) } else { y }))
}

/// The input width of a batch's clamp table.
fn wide_bits(out: Output) -> u32 {
    out.bits + if out.relu { RELU_EXTRA_BITS } else { CLAMP_EXTRA_BITS }
}

/// The clamp (or clamp-and-ReLU) family of a batch.
fn clamp_family(out: Output) -> Family {
    let (bits, wide) = (out.bits, wide_bits(out));
    if out.relu {
        Family::ClampRelu { bits, wide }
    } else {
        Family::Clamp { bits, wide }
    }
}

/// Lays out every division of a batch; returns the outputs in order.
pub(crate) fn divide(t: &mut Trace, divs: &[Division<'_>], out: Output, what: &str) -> Result<Cells, ProveError> {
    let width = t.params.width();
    let normal = divs.iter().map(|d| normalize(d, t.range_bits, width, what)).collect::<Result<Vec<_>, _>>()?;
    let mut result: Vec<Option<Valued>> = vec![None; normal.len()];
    // Runs of consecutive lane divisions with equal coefficients share rows: four a row while every one
    // reads at most two cells, else two.
    let mut i = 0;
    while i < normal.len() {
        let Some(cells) = normal[i].lane_cells(width) else {
            result[i] = Some(div_row(t, &normal[i], out, what)?);
            i += 1;
            continue;
        };
        let mut end = i + 1;
        let mut widest = cells;
        while end < normal.len() && normal[end].lane_coefficients() == normal[i].lane_coefficients() {
            match normal[end].lane_cells(width) {
                Some(c) => widest = widest.max(c),
                None => break,
            }
            end += 1;
        }
        let per_row = if widest <= LANE4_CELLS { width.division_lanes() } else { 2 };
        for start in (i..end).step_by(per_row) {
            let group: Vec<&Normal<'_>> = (start..end.min(start + per_row)).map(|j| &normal[j]).collect();
            for (j, v) in (start..).zip(shared_row(t, &group, per_row, out, what)?) {
                result[j] = Some(v);
            }
        }
        i = end;
    }
    let mut cells = Cells::default();
    for (cell, value) in result.into_iter().flatten() {
        cells.cells.push(cell);
        cells.values.push(value);
    }
    Ok(cells)
}

/// Up to `lanes` (4: a `div4` row, 2: a `div2` row) divisions with the same coefficients in one row, which
/// holds them once in `f0..f3`. Lane `l` reads its numerator cells from `g[3l]` (`div4`) or `g[l·G/2]` (`div2`,
/// `G` the row's `g` columns) on and puts its
/// quotient and remainder in the slots of [`DIV_LANES`]`[l]`. Spare lanes repeat the last division's values
/// (without copies); returns the real lanes' outputs.
fn shared_row(
    t: &mut Trace,
    group: &[&Normal<'_>],
    lanes: usize,
    out: Output,
    what: &str,
) -> Result<Vec<Valued>, ProveError> {
    let row = t.alloc(1);
    t.enable(if lanes == 4 { Sel::Div4 } else { Sel::Div2 }, row);
    for (k, c) in group[0].lane_coefficients().into_iter().enumerate() {
        t.f[k][row] = fr_i128(c);
    }
    let half = lane2_cells(t.params.width());
    let stride = if lanes == 4 { 3 } else { half };
    let mut outs = Vec::with_capacity(group.len());
    for (l, &(qs, rs)) in DIV_LANES[..lanes].iter().enumerate() {
        let (n, real) = match group.get(l) {
            Some(n) => (*n, true),
            None => (group[group.len() - 1], false),
        };
        let (q, r, y) = quotient(n, out, what)?;
        let terms = n.lane_terms();
        for (k, term) in terms.iter().enumerate() {
            let Some(cell) = *term else { continue };
            let dst = g(stride * l + k, row);
            if real {
                t.copy_in(dst, cell);
            } else {
                let v = t.get(cell);
                t.set(dst, v);
            }
        }
        // A lane's unused shared cells are tied to zero while the shared coefficient is live (a `div4` lane
        // reads one shared cell, which every lane of a row with a live coefficient uses).
        if real && lanes == 2 && group[0].lane_coefficients()[1] != 0 {
            let zero = t.zero();
            for k in terms.len().max(1)..half {
                t.copy_in(g(stride * l + k, row), zero);
            }
        }
        t.set(lk(2 * qs, row), fr_i128(q));
        t.set_i(lk(2 * qs + 1, row), y);
        t.tag(qs, row, clamp_family(out));
        t.set(lk(2 * rs, row), fr_i128(r));
        t.tag(rs, row, Family::Range { bits: n.width });
        if real {
            t.div_lanes.push((row, l));
            outs.push((lk(2 * qs + 1, row), y));
        }
    }
    Ok(outs)
}

/// One division in a `div` row: `g0·f0 + (g1 + … + g5)·f1 + f2 = x0·f3 + r`, the remainder `r` in one or two
/// limbs (slots 1 and 2), and a `bound` row when the divisor is not a power of two.
fn div_row(t: &mut Trace, n: &Normal<'_>, out: Output, what: &str) -> Result<Valued, ProveError> {
    let bound = n.divisor != 1 << n.width;
    let row = t.alloc(if bound { 2 } else { 1 });
    t.enable(Sel::Div, row);
    if let Some((cell, coeff)) = n.first {
        t.copy_in(g(0, row), cell);
        t.f[0][row] = fr_i128(coeff);
    }
    if !n.shared.is_empty() {
        // Unused shared cells are tied to zero while their coefficient is live.
        let zero = t.zero();
        t.f[1][row] = fr_i128(n.shared_coeff);
        for i in 0..shared_terms(t.params.width()) {
            t.copy_in(g(1 + i, row), n.shared.get(i).map_or(zero, |&(cell, _)| cell));
        }
    }
    t.f[2][row] = fr_i128(n.constant);
    t.f[3][row] = fr_i128(n.divisor);
    let (q, r, y) = quotient(n, out, what)?;
    t.set(lk(0, row), fr_i128(q));
    t.set_i(lk(1, row), y);
    t.tag(0, row, clamp_family(out));
    remainder_limbs(t, row, r, n.width);
    if bound {
        t.enable(Sel::Bound, row);
        let gap = (1i128 << n.width) - n.divisor;
        t.f[2][row + 1] = fr_i128(gap);
        remainder_limbs(t, row + 1, r + gap, n.width);
    }
    t.div_lanes.push((row, 0));
    Ok((lk(1, row), y))
}

/// A remainder of a standard `width` in slot 1 (one limb) or slots 1 and 2 (two limbs of `width / 2`, the
/// second weighed by `f5`).
fn remainder_limbs(t: &mut Trace, row: usize, r: i128, width: u32) {
    if width <= t.range_bits {
        t.set(lk(2, row), fr_i128(r));
        t.tag(1, row, Family::Range { bits: width });
    } else {
        limbs(t, row, r, width);
    }
}

/// Writes `value` (known to fit `bits` bits) as limbs into the slots from 1 on of `row`: two limbs of at most
/// the slice's range width (`Trace::range_bits`) when `bits` fits two, else three, all but the last full. Sets the limb bases `f5` and `f4` the
/// remainder relations weigh them with, and tags each limb's range, so the limbs together prove
/// `0 ≤ value < 2^bits`.
pub(crate) fn limbs(t: &mut Trace, row: usize, value: i128, bits: u32) {
    // Full limbs share the remainders' `Range` table; only the top limb is narrower.
    let width = t.range_bits;
    let n = if bits <= 2 * width { 2 } else { 3 };
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
