//! The prover's side of the logUp lookup argument (`veil_verifier::circuit::logup`): the table, how often
//! each table row is looked up, and the phase-2 helper and running-sum columns.

use super::trace::Trace;
use super::ProveError;
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::{BatchInvert, Field};
use std::collections::HashMap;
use veil_verifier::circuit::tables::fr_i64;
use veil_verifier::circuit::{lk_index, SLOTS, SLOT_TAG};

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
    [at(&t.tag[SLOT_TAG[j]]), operand(2 * j), operand(2 * j + 1)]
}

/// Marks a slot tuple that is no table row (only a tampered trace has one).
const STRAY: u32 = u32::MAX;

/// Every slot tuple of the region as its table row, read once in phase 1 so that the trace's tags can be
/// freed before halo2 commits phase 1 (32 bytes a row against about 450 for the tags and operands).
pub(crate) struct Indexed {
    /// Per region row, each slot's table row (or [`STRAY`]).
    rows: Vec<[u32; SLOTS]>,
    /// The tuples that are no table row, by `(row, slot)`.
    stray: HashMap<(usize, usize), [Fr; 3]>,
    /// How many slot tuples of the region equal each table row. A stray tuple counts nowhere, so the
    /// argument's sum cannot close.
    pub mult: Vec<Fr>,
}

impl Indexed {
    /// Indexes `t`'s slot tuples into `table`.
    pub(crate) fn new(t: &Trace, table: &[[Fr; 3]]) -> Self {
        let region = region_rows(t, table.len());
        let index: HashMap<[Fr; 3], u32> = table.iter().enumerate().rev().map(|(i, row)| (*row, i as u32)).collect();
        let mut counts = vec![0u64; region];
        let mut stray = HashMap::new();
        let rows = (0..region)
            .map(|row| {
                std::array::from_fn(|j| {
                    let v = tuple(t, j, row);
                    match index.get(&v) {
                        Some(&i) => {
                            counts[i as usize] += 1;
                            i
                        }
                        None => {
                            stray.insert((row, j), v);
                            STRAY
                        }
                    }
                })
            })
            .collect();
        Indexed { rows, stray, mult: counts.into_iter().map(Fr::from).collect() }
    }

    /// Slot `j`'s tuple at `row`.
    fn tuple(&self, table: &[[Fr; 3]], row: usize, j: usize) -> [Fr; 3] {
        match self.rows[row][j] {
            STRAY => self.stray.get(&(row, j)).copied().unwrap_or([Fr::zero(); 3]),
            i => table[i as usize],
        }
    }
}

/// Rows whose denominators are inverted together: one batch inversion per chunk keeps the scratch small.
const CHUNK: usize = 1 << 12;

/// The phase-2 columns `[u, v, w, S]` at challenges `(θ, β)`.
pub(crate) fn phase2(ix: &Indexed, table: &[[Fr; 3]], theta: Fr, beta: Fr) -> Result<[Vec<Fr>; 4], ProveError> {
    let rows = ix.rows.len();
    let theta2 = theta.square();
    let compress = |v: [Fr; 3]| beta + v[0] + theta * v[1] + theta2 * v[2];
    let mut out: [Vec<Fr>; 4] = std::array::from_fn(|_| Vec::with_capacity(rows));
    let mut acc = Fr::zero();
    // Nine denominators per row: the eight slots and the table row.
    const D: usize = SLOTS + 1;
    let mut inv = Vec::with_capacity(D * CHUNK);
    for start in (0..rows).step_by(CHUNK) {
        inv.clear();
        for row in start..rows.min(start + CHUNK) {
            for j in 0..SLOTS {
                inv.push(compress(ix.tuple(table, row, j)));
            }
            inv.push(compress(table.get(row).copied().unwrap_or([Fr::zero(); 3])));
        }
        if inv.iter().any(|d| bool::from(d.is_zero())) {
            return Err(ProveError::Unsupported("a lookup denominator vanished at the drawn challenge".into()));
        }
        inv.iter_mut().batch_invert();
        for (i, d) in inv.chunks_exact(D).enumerate() {
            let u = d[0] + d[1] - ix.mult[start + i] * d[SLOTS];
            let (v, w) = (d[2] + d[3], d[4] + d[5]);
            acc += u + v + w + d[6] + d[7];
            for (col, x) in out.iter_mut().zip([u, v, w, acc]) {
                col.push(x);
            }
        }
    }
    Ok(out)
}
