//! The lookup argument: every lookup slot's tuple is in the table, proved with logarithmic derivatives
//! (logUp, Haböck 2022) in custom gates rather than with halo2's permutation-based lookup.
//!
//! After phase 1 (which commits the operands and the table multiplicities `m`), challenges `θ` and `β` are
//! drawn. With `d_j = 1/(β + f_j)`, `f_j = tag_j + θ·x_j + θ²·y_j` for slot `j` and `d_T = 1/(β + T)`,
//! `T = T₀ + θ·T₁ + θ²·T₂` for the table row, the four phase-2 columns of a wide row (eight slots) hold, on
//! every row `r` of the lookup region `0..R`:
//!
//! ```text
//! u = d_0 + d_1 − m·d_T        v = d_2 + d_3        w = d_4 + d_5
//! S(r) = S(r − 1) + u(r) + v(r) + w(r) + d_6(r) + d_7(r)      (S(−1) = 0),      S(R − 1) = 0
//! ```
//!
//! A narrow row (four slots) has no pair columns: `u = d_0 + d_1 − m·d_T`, `S(r) = S(r − 1) + u(r) + d_2(r) +
//! d_3(r)`.
//!
//! so `Σ_r Σ_j 1/(β + f_j(r)) = Σ_r m(r)/(β + T(r))`. As rational functions of `β` the two sides agree only if
//! every `f_j(r)` is some `T(r')` (the field's characteristic exceeds the number of lookups), and the
//! compression by `θ` is injective on small tuples except with negligible probability; `docs/soundness.md`
//! §2.1 gives the argument. Each gate is written without division (`D_j = β + f_j`):
//!
//! ```text
//! lookup:       u·D_0·D_1·D_T − (D_0 + D_1)·D_T + m·D_0·D_1 = 0                             (degree 4)
//! lookup_pair:  v·D_2·D_3 − (D_2 + D_3) = 0,   w·D_4·D_5 − (D_4 + D_5) = 0                    (degree 3)
//! lookup_first: (S − u − v − w)·D_6·D_7 − (D_6 + D_7) = 0                                     (degree 3)
//! lookup_next:  (S − S(prev) − u − v − w)·D_6·D_7 − (D_6 + D_7) = 0
//! (narrow rows: no lookup_pair, and D_2, D_3 in place of D_6, D_7)
//! lookup_last:  S = 0
//! ```
//!
//! Against halo2's lookups (three committed polynomials per lookup, plus sorting), eight slots cost five
//! polynomials: `m`, `u`, `v`, `w` and `S`; four slots cost three.

use super::{Width, SLOT_TAG, SLOT_X, SLOT_Y, TAGS};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Advice, Challenge, Column, ConstraintSystem, Expression, Fixed, Selector, VirtualCells};
use halo2_proofs::poly::Rotation;

/// Columns, selectors and challenges of the lookup argument.
#[derive(Clone, Debug)]
pub struct LogupConfig {
    /// The table: tag, x, y (fixed).
    pub table: [Column<Fixed>; 3],
    /// How many lookups read each table row (phase 1).
    pub mult: Column<Advice>,
    /// `u`: slots 0 and 1 minus the table row (phase 2).
    pub helper: Column<Advice>,
    /// `v` and `w`: slots 2 and 3, slots 4 and 5 (phase 2; wide rows only).
    pub pairs: Vec<Column<Advice>>,
    /// The running sum `S` (phase 2).
    pub sum: Column<Advice>,
    /// On every row of the lookup region: the helper's relation.
    pub row: Selector,
    /// On the first row: `S = u + v + w + 1/(β + f_6) + 1/(β + f_7)` (the last two slots).
    pub first: Selector,
    /// On every later row of the region: `S = S(prev) + u + v + w + 1/(β + f_6) + 1/(β + f_7)`.
    pub next: Selector,
    /// On the region's last row: `S = 0`.
    pub last: Selector,
    /// Compresses a tuple.
    pub theta: Challenge,
    /// The logUp point.
    pub beta: Challenge,
}

/// Phase-2 columns of the argument at `width`: `u`, one per pair of middle slots, and `S`.
pub fn phase2_columns(width: Width) -> usize {
    width.slots() / 2
}

/// Creates the lookup argument's columns and gates over the slots' `tag` and `lk` columns; the number of
/// slots follows from `lk` ([`Width::lk_columns`]), `phase2` holds [`phase2_columns`] columns.
pub fn configure(
    meta: &mut ConstraintSystem<Fr>,
    tag: [Column<Fixed>; TAGS],
    lk: &[Column<Advice>],
    mult: Column<Advice>,
    phase2: &[Column<Advice>],
    (theta, beta): (Challenge, Challenge),
) -> LogupConfig {
    let slots = phase2.len() * 2;
    let table = [meta.fixed_column(), meta.fixed_column(), meta.fixed_column()];
    let [row, first, next, last] = [meta.selector(), meta.selector(), meta.selector(), meta.selector()];
    let pairs = phase2[1..phase2.len() - 1].to_vec();
    let (helper, sum) = (phase2[0], phase2[phase2.len() - 1]);
    let c = LogupConfig { table, mult, helper, pairs, sum, row, first, next, last, theta, beta };
    let slot = |m: &mut VirtualCells<'_, Fr>, j: usize| -> Expression<Fr> {
        let (th, b, cur) = (m.query_challenge(theta), m.query_challenge(beta), Rotation::cur());
        let mut e = m.query_fixed(tag[SLOT_TAG[j]], cur) + th.clone() * m.query_advice(lk[SLOT_X[j]], cur);
        if let Some(y) = SLOT_Y[j] {
            e = e + th.clone() * th * m.query_advice(lk[y], cur);
        }
        b + e
    };
    meta.create_gate("lookup", |m| {
        let q = m.query_selector(c.row);
        let (th, b, cur) = (m.query_challenge(theta), m.query_challenge(beta), Rotation::cur());
        let [d0, d1] = [0, 1].map(|j| slot(m, j));
        let dt = b
            + m.query_fixed(table[0], cur)
            + th.clone() * m.query_fixed(table[1], cur)
            + th.clone() * th * m.query_fixed(table[2], cur);
        let u = m.query_advice(c.helper, cur);
        let mult = m.query_advice(c.mult, cur);
        vec![q * (u * d0.clone() * d1.clone() * dt.clone() - (d0.clone() + d1.clone()) * dt + mult * d0 * d1)]
    });
    if !c.pairs.is_empty() {
        meta.create_gate("lookup_pair", |m| {
            let q = m.query_selector(c.row);
            c.pairs
                .iter()
                .enumerate()
                .map(|(k, &col)| {
                    let [da, db] = [2 + 2 * k, 3 + 2 * k].map(|j| slot(m, j));
                    let v = m.query_advice(col, Rotation::cur());
                    q.clone() * (v * da.clone() * db.clone() - (da + db))
                })
                .collect::<Vec<_>>()
        });
    }
    // `S − S(prev) − u − v − w = 1/(β + f_6) + 1/(β + f_7)` (the last two slots), times both denominators.
    let sum_gate = |m: &mut VirtualCells<'_, Fr>, prev: Option<Expression<Fr>>| {
        let cur = Rotation::cur();
        let mut step = m.query_advice(c.sum, cur) - m.query_advice(c.helper, cur);
        for &col in &c.pairs {
            step = step - m.query_advice(col, cur);
        }
        if let Some(p) = prev {
            step = step - p;
        }
        let [d6, d7] = [slots - 2, slots - 1].map(|j| slot(m, j));
        step * d6.clone() * d7.clone() - (d6 + d7)
    };
    meta.create_gate("lookup_first", |m| {
        let q = m.query_selector(c.first);
        vec![q * sum_gate(m, None)]
    });
    meta.create_gate("lookup_next", |m| {
        let q = m.query_selector(c.next);
        let prev = m.query_advice(c.sum, Rotation::prev());
        vec![q * sum_gate(m, Some(prev))]
    });
    meta.create_gate("lookup_last", |m| {
        let q = m.query_selector(c.last);
        vec![q * m.query_advice(c.sum, Rotation::cur())]
    });
    c
}

#[cfg(test)]
mod tests {
    use halo2_proofs::halo2curves::bn256::Fr;
    use halo2_proofs::plonk::ConstraintSystem;

    /// The lookup region ends one row past the trace (`core/src/prove/lookup.rs`), which covers every
    /// operand a gate reads only while no gate looks further than one row ahead or behind.
    #[test]
    fn no_gate_reads_further_than_one_row_away() {
        for width in super::Width::ALL {
            let mut meta = ConstraintSystem::<Fr>::default();
            let _ = super::super::configure(&mut meta, super::super::SliceParams::default().with_width(width));
            let advice = meta.advice_queries().iter().map(|(_, r)| r.0);
            let fixed = meta.fixed_queries().iter().map(|(_, r)| r.0);
            let far: Vec<i32> = advice.chain(fixed).filter(|r| r.abs() > 1).collect();
            assert!(far.is_empty(), "{width:?}: rotations beyond ±1: {far:?}");
        }
    }
}
