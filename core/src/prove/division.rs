//! Rounded divisions with saturation (requantization, averages, residual additions), laid out two per row
//! where their remainders fit one range-check limb.
//!
//! Every division `y = clamp(⌊n / d⌋)` (optionally followed by a ReLU fused into the same lookup) is first
//! normalized without changing its result:
//! - a power-of-two divisor `2^s` sheds the power of two its coefficients share:
//!   `⌊(2^t·x + c) / 2^s⌋ = ⌊(x + ⌊c / 2^t⌋) / 2^(s−t)⌋`;
//! - the remainder width is then widened to a standard one (12, 15, 24 or 30 bits) by scaling numerator and
//!   divisor by the same power of two, `⌊n / d⌋ = ⌊n·2^e / (d·2^e)⌋`, so every remainder is checked against
//!   one of two range tables (`Range{12}`, `Range{15}`) whatever the layer's shift.
//!
//! A normalized division with a power-of-two divisor, a remainder of at most [`MAX_LIMB_BITS`] bits and at
//! most two numerator cells takes one lane of a `div2` row; two such divisions with the same coefficients (two
//! outputs of one channel, say) share a row and its fixed coefficient cells. Any other takes a `div` row of
//! its own (two remainder limbs, up to five summed cells, and a `bound` row when the divisor is
//! not a power of two). `docs/soundness.md` gives the argument for both.

use super::ops::{Cells, Valued};
use super::trace::{g, lk, CellRef, Sel, Trace};
use super::ProveError;
use halo2_proofs::halo2curves::bn256::Fr;
use veil_verifier::circuit::tables::{fr_i128, Family, MAX_LIMB_BITS};

/// How far a quotient may fall outside its output range before saturation and still be proved: the clamp
/// table covers `2^EXTRA_BITS` times the output range.
pub(crate) const EXTRA_BITS: u32 = 3;

/// Terms a `div` row can sum under one coefficient (`g1..g5`).
pub(crate) const SHARED_TERMS: usize = veil_verifier::circuit::G - 1;

/// The narrow standard remainder width.
const NARROW_BITS: u32 = 12;

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
    /// Remainder bits: 12, 15, 24 or 30.
    width: u32,
    /// The numerator's value.
    value: i128,
}

impl Normal<'_> {
    /// Fits one lane of a `div2` row.
    fn fits_lane(&self) -> bool {
        self.divisor == 1 << self.width && self.width <= MAX_LIMB_BITS && self.shared.len() <= 1
    }

    /// The numerator's cells with their coefficients (at most two for a lane).
    fn lane_terms(&self) -> [Option<(CellRef, i128)>; 2] {
        [self.first, self.shared.first().map(|&(c, _)| (c, self.shared_coeff))]
    }

    /// The fixed cells of a lane, `[f0, f1, f2, f3]`: two divisions share a `div2` row only when these agree.
    fn lane_coefficients(&self) -> [i128; 4] {
        let [a, b] = self.lane_terms().map(|t| t.map_or(0, |(_, c)| c));
        [a, b, self.constant, self.divisor]
    }
}

/// The narrowest standard width holding `bits` bits.
fn standard_width(bits: u32) -> Option<u32> {
    [NARROW_BITS, MAX_LIMB_BITS, 2 * NARROW_BITS, 2 * MAX_LIMB_BITS].into_iter().find(|&w| bits <= w)
}

fn normalize<'a>(d: &Division<'a>, what: &str) -> Result<Normal<'a>, ProveError> {
    let n = &d.numerator;
    if d.divisor <= 0 {
        return Err(ProveError::Unsupported(format!("{what}: divisor {} is not positive", d.divisor)));
    }
    if n.shared.len() > SHARED_TERMS {
        return Err(ProveError::Unsupported(format!("{what}: more than {SHARED_TERMS} terms in one division")));
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
    let width = standard_width(bits).ok_or_else(|| {
        ProveError::Unsupported(format!(
            "{what}: divisor {divisor} needs more than {} remainder bits",
            2 * MAX_LIMB_BITS
        ))
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
        value: value * scale,
    })
}

/// The quotient, its remainder and the output (clamped, then ReLU'd when asked).
fn quotient(n: &Normal<'_>, out: Output, what: &str) -> Result<(i128, i128, i64), ProveError> {
    let q = n.value.div_euclid(n.divisor);
    let r = n.value - q * n.divisor;
    let wide = out.bits + EXTRA_BITS;
    if q < -(1i128 << (wide - 1)) || q >= 1i128 << (wide - 1) {
        return Err(ProveError::Saturation { what: what.to_string(), value: q, bits: wide });
    }
    let limit = 1i64 << (out.bits - 1);
    let y = (q as i64).clamp(-limit, limit - 1);
    Ok((q, r, if out.relu { y.max(0) } else { y }))
}

/// The clamp (or clamp-and-ReLU) family of a batch.
fn clamp_family(out: Output) -> Family {
    let (bits, wide) = (out.bits, out.bits + EXTRA_BITS);
    if out.relu {
        Family::ClampRelu { bits, wide }
    } else {
        Family::Clamp { bits, wide }
    }
}

/// Lays out every division of a batch; returns the outputs in order.
pub(crate) fn divide(t: &mut Trace, divs: &[Division<'_>], out: Output, what: &str) -> Result<Cells, ProveError> {
    let normal = divs.iter().map(|d| normalize(d, what)).collect::<Result<Vec<_>, _>>()?;
    let mut result = vec![None; normal.len()];
    // A lane waits for a partner with the same coefficients; a partner of another set sends it to a `div`
    // row, so at most one lane per run of equal coefficients (one channel's outputs) goes unpaired.
    let mut waiting: Option<usize> = None;
    for (i, n) in normal.iter().enumerate() {
        if !n.fits_lane() {
            result[i] = Some(div_row(t, n, out, what)?);
            continue;
        }
        match waiting.take() {
            Some(j) if normal[j].lane_coefficients() == n.lane_coefficients() => {
                let [a, b] = div2_row(t, [&normal[j], n], out, what)?;
                result[j] = Some(a);
                result[i] = Some(b);
            }
            Some(j) => {
                result[j] = Some(div_row(t, &normal[j], out, what)?);
                waiting = Some(i);
            }
            None => waiting = Some(i),
        }
    }
    if let Some(j) = waiting {
        result[j] = Some(div_row(t, &normal[j], out, what)?);
    }
    let mut cells = Cells::default();
    for (cell, value) in result.into_iter().flatten() {
        cells.cells.push(cell);
        cells.values.push(value);
    }
    Ok(cells)
}

/// Two divisions with the same coefficients in one `div2` row, which holds them once in `f0..f3`: lane 0 in
/// `g0, g1`, slots 0 (quotient) and 1 (remainder); lane 1 in `g3, g4`, slots 3 and 2.
fn div2_row(t: &mut Trace, lanes: [&Normal<'_>; 2], out: Output, what: &str) -> Result<[Valued; 2], ProveError> {
    debug_assert_eq!(lanes[0].lane_coefficients(), lanes[1].lane_coefficients());
    let row = t.alloc(1);
    t.enable(Sel::Div2, row);
    for (k, c) in lanes[0].lane_coefficients().into_iter().enumerate() {
        t.f[k][row] = fr_i128(c);
    }
    let mut outs = [(g(0, row), 0); 2];
    for (l, n) in lanes.into_iter().enumerate() {
        let (q, r, y) = quotient(n, out, what)?;
        let (gi, qs, rs) = if l == 0 { (0, 0, 1) } else { (3, 3, 2) };
        for (k, term) in n.lane_terms().into_iter().enumerate() {
            if let Some((cell, _)) = term {
                t.copy_in(g(gi + k, row), cell);
            }
        }
        t.set(lk(2 * qs, row), fr_i128(q));
        t.set_i(lk(2 * qs + 1, row), y);
        t.tag(qs, row, clamp_family(out));
        t.set(lk(2 * rs, row), fr_i128(r));
        t.tag(rs, row, Family::Range { bits: n.width });
        t.div_lanes.push((row, l));
        outs[l] = (lk(2 * qs + 1, row), y);
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
        for i in 0..SHARED_TERMS {
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
    if width <= MAX_LIMB_BITS {
        t.set(lk(2, row), fr_i128(r));
        t.tag(1, row, Family::Range { bits: width });
    } else {
        limbs(t, row, r, width);
    }
}

/// Writes `value` (known to fit `bits` bits) as limbs into the slots from 1 on of `row`: two limbs of at most
/// [`MAX_LIMB_BITS`] bits when `bits ≤ 2·MAX_LIMB_BITS`, else three. Sets the limb bases `f5` and `f4` the
/// remainder relations weigh them with, and tags each limb's range, so the limbs together prove
/// `0 ≤ value < 2^bits`.
pub(crate) fn limbs(t: &mut Trace, row: usize, value: i128, bits: u32) {
    let n = if bits <= 2 * MAX_LIMB_BITS { 2 } else { 3 };
    // Narrow limbs while they suffice keep small circuits' tables small; wider values split evenly.
    let width = if bits <= n * NARROW_BITS { NARROW_BITS } else { bits.div_ceil(n) };
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
