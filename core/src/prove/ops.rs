//! Row emitters for the element-wise relations: ReLU, pairwise maxima, running sums and the pooling and
//! residual operators built from them and from divisions (`division.rs`).

use super::division::{divide, Division, Numerator, Output, Term};
use super::trace::{g, lk, CellRef, Sel, Trace};
use super::ProveError;
use veil_verifier::circuit::tables::Family;

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

/// `max(x, 0)` element-wise, as `max(x, 0)` rows of [`max_pairs`] against the zero cell. A ReLU that is its
/// input's only reader is instead fused into the division that produced the input (see `layout`).
pub(crate) fn relu(t: &mut Trace, x: &Cells, bits: u32) -> Cells {
    let zero = t.zero();
    let pairs: Vec<(Valued, Valued)> = x.cells.iter().zip(&x.values).map(|(&c, &v)| ((c, v), (zero, 0))).collect();
    let (cells, values) = max_pairs(t, &pairs, bits).into_iter().unzip();
    Cells { cells, values }
}

/// A cell with its integer value.
pub(crate) type Valued = (CellRef, i64);

/// `max(a, b)` for each pair, one per lane (two a narrow row, four a wide one), through a ReLU of the difference
/// (`bits` = the operands' width). Lanes a last row leaves empty hold zeros, which the gate and the ReLU table
/// accept.
pub(crate) fn max_pairs(t: &mut Trace, pairs: &[(Valued, Valued)], bits: u32) -> Vec<Valued> {
    let mut out = Vec::with_capacity(pairs.len());
    let lanes = t.params.width().y_slots();
    for chunk in pairs.chunks(lanes.len()) {
        let row = t.alloc(1);
        t.enable(Sel::Max, row);
        for (l, (&j, &((a, av), (b, bv)))) in lanes.iter().zip(chunk).enumerate() {
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
        for r in start + 1..start + len {
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
/// `mean_rescaled`, as one division row per group. A group is its values (at most
/// [`shared_terms`](super::division::shared_terms)) or one
/// running-sum cell.
pub(crate) fn means(
    t: &mut Trace,
    groups: &[Vec<Valued>],
    counts: &[i128],
    (fi, fo): (i32, i32),
    out: Output,
) -> Result<Cells, ProveError> {
    let divs: Vec<Division<'_>> = groups
        .iter()
        .zip(counts)
        .map(|(group, &count)| {
            // round_div(n, d) = ⌊(2n + d) / 2d⌋.
            let (coeff, d) = if fo >= fi { (2i128 << (fo - fi) as u32, count) } else { (2, count << (fi - fo) as u32) };
            let numerator = Numerator { first: None, shared: group, shared_coeff: coeff, constant: d };
            Division { numerator, divisor: 2 * d }
        })
        .collect();
    divide(t, &divs, out, "average")
}

/// `clamp(rescale(a·2^(c−fa) ± b·2^(c−fb), c, fo))` with `c = max(fa, fb)`: the reference's Add and Sub.
pub(crate) fn add(
    t: &mut Trace,
    a: (&Cells, i32),
    b: (&Cells, i32),
    sign: i128,
    fo: i32,
    out: Output,
) -> Result<Cells, ProveError> {
    let common = a.1.max(b.1);
    let (up, divisor, constant) = if fo >= common {
        (1i128 << (fo - common) as u32, 1, 0)
    } else {
        (1, 1i128 << (common - fo) as u32, 1i128 << (common - fo - 1) as u32)
    };
    let tb: Vec<[Valued; 1]> = b.0.cells.iter().zip(&b.0.values).map(|(&c, &v)| [(c, v)]).collect();
    let divs: Vec<Division<'_>> = (0..a.0.len())
        .map(|i| {
            let ta = Term { cell: Some(a.0.cells[i]), value: a.0.values[i], coeff: up << (common - a.1) as u32 };
            let shared_coeff = sign * (up << (common - b.1) as u32);
            Division { numerator: Numerator { first: Some(ta), shared: &tb[i], shared_coeff, constant }, divisor }
        })
        .collect();
    divide(t, &divs, out, "residual add")
}
