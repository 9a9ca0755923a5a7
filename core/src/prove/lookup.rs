//! The prover's side of the logUp lookup argument (`veil_verifier::circuit::logup`): the table, how often
//! each table row is looked up, and the phase-2 helper and running-sum columns.

use super::trace::Trace;
use super::ProveError;
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::{BatchInvert, Field};
use std::collections::HashMap;
use veil_verifier::circuit::tables::fr_i64;
use veil_verifier::circuit::{lk_index, SLOTS};

/// The table's rows as field tuples: the all-zero row, then every family the trace uses.
pub(crate) fn table(t: &Trace) -> Vec<[Fr; 3]> {
    let mut rows = vec![[Fr::zero(); 3]];
    for fam in &t.families {
        let tag = Fr::from(fam.tag());
        rows.extend(fam.rows(&t.exp_tables).into_iter().map(|(x, y)| [tag, fr_i64(x), fr_i64(y)]));
    }
    rows
}

/// Rows the lookup argument covers: every table row, every trace row and the row after the trace, so that
/// every operand a gate can read (gates look at most one row ahead) is in the region. `SliceCircuit::k` keeps
/// 16 rows past the trace and the table, so the extra row is always usable.
pub(crate) fn region_rows(t: &Trace, table_len: usize) -> usize {
    (t.rows + 1).max(table_len)
}

/// Slot `j`'s tuple at `row` (zero past the trace).
fn tuple(t: &Trace, j: usize, row: usize) -> [Fr; 3] {
    let at = |col: &Vec<Fr>| col.get(row).copied().unwrap_or(Fr::zero());
    let operand = |i: usize| if lk_index(i).is_some() { at(&t.lk[i]) } else { Fr::zero() };
    [at(&t.tag[j]), operand(2 * j), operand(2 * j + 1)]
}

/// How many slot tuples of the region equal each table row. A tuple outside the table counts nowhere, so
/// the argument's sum cannot close (only a tampered trace has one).
pub(crate) fn multiplicities(t: &Trace, table: &[[Fr; 3]]) -> Vec<Fr> {
    let rows = region_rows(t, table.len());
    let index: HashMap<[Fr; 3], usize> = table.iter().enumerate().rev().map(|(i, row)| (*row, i)).collect();
    let mut counts = vec![0u64; rows];
    for row in 0..rows {
        for j in 0..SLOTS {
            if let Some(&i) = index.get(&tuple(t, j, row)) {
                counts[i] += 1;
            }
        }
    }
    counts.into_iter().map(Fr::from).collect()
}

/// Rows whose denominators are inverted together: one batch inversion per chunk keeps the scratch small.
const CHUNK: usize = 1 << 12;

/// The phase-2 columns `[u, S]` at challenges `(θ, β)`.
pub(crate) fn phase2(
    t: &Trace,
    table: &[[Fr; 3]],
    mult: &[Fr],
    theta: Fr,
    beta: Fr,
) -> Result<[Vec<Fr>; 2], ProveError> {
    let rows = region_rows(t, table.len());
    let theta2 = theta.square();
    let compress = |v: [Fr; 3]| beta + v[0] + theta * v[1] + theta2 * v[2];
    let (mut u, mut sum) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    let mut acc = Fr::zero();
    // Five denominators per row: the four slots and the table row.
    let mut inv = Vec::with_capacity(5 * CHUNK);
    for start in (0..rows).step_by(CHUNK) {
        inv.clear();
        for row in start..rows.min(start + CHUNK) {
            for j in 0..SLOTS {
                inv.push(compress(tuple(t, j, row)));
            }
            inv.push(compress(table.get(row).copied().unwrap_or([Fr::zero(); 3])));
        }
        if inv.iter().any(|d| bool::from(d.is_zero())) {
            return Err(ProveError::Unsupported("a lookup denominator vanished at the drawn challenge".into()));
        }
        inv.iter_mut().batch_invert();
        for (i, d) in inv.chunks_exact(5).enumerate() {
            let a = d[0] + d[1] - mult.get(start + i).copied().unwrap_or(Fr::zero()) * d[4];
            acc += a + d[2] + d[3];
            u.push(a);
            sum.push(acc);
        }
    }
    Ok([u, sum])
}
