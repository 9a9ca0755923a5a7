//! The prover's side of the logUp lookup argument (`veil_verifier::circuit::logup`): the table, how often
//! each table row is looked up, and the phase-2 helper and running-sum columns.

use super::trace::Trace;
use super::ProveError;
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::{BatchInvert, Field};
use std::collections::HashMap;
use veil_verifier::circuit::tables::fr_i64;
use veil_verifier::circuit::{lk_index, SLOT_TAG};

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
    /// Lookup slots a row (the trace's row width).
    slots: usize,
    /// Per region row, each slot's table row (or [`STRAY`]), `slots` entries a row.
    rows: Vec<u32>,
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
        let slots = t.params.width().slots();
        let index: HashMap<[Fr; 3], u32> = table.iter().enumerate().rev().map(|(i, row)| (*row, i as u32)).collect();
        let mut counts = vec![0u64; region];
        let mut stray = HashMap::new();
        let mut rows = Vec::with_capacity(region * slots);
        for row in 0..region {
            for j in 0..slots {
                let v = tuple(t, j, row);
                rows.push(match index.get(&v) {
                    Some(&i) => {
                        counts[i as usize] += 1;
                        i
                    }
                    None => {
                        stray.insert((row, j), v);
                        STRAY
                    }
                });
            }
        }
        Indexed { slots, rows, stray, mult: counts.into_iter().map(Fr::from).collect() }
    }

    /// Region rows.
    fn len(&self) -> usize {
        self.rows.len() / self.slots
    }

    /// Slot `j`'s tuple at `row`.
    fn tuple(&self, table: &[[Fr; 3]], row: usize, j: usize) -> [Fr; 3] {
        match self.rows[row * self.slots + j] {
            STRAY => self.stray.get(&(row, j)).copied().unwrap_or([Fr::zero(); 3]),
            i => table[i as usize],
        }
    }
}

/// Rows whose denominators are inverted together: one batch inversion per chunk keeps the scratch small.
const CHUNK: usize = 1 << 12;

/// The phase-2 columns at challenges `(θ, β)`: `[u, v, w, S]` for wide rows, `[u, S]` for narrow ones
/// (`veil_verifier::circuit::logup`).
pub(crate) fn phase2(ix: &Indexed, table: &[[Fr; 3]], theta: Fr, beta: Fr) -> Result<Vec<Vec<Fr>>, ProveError> {
    let (rows, slots) = (ix.len(), ix.slots);
    let theta2 = theta.square();
    let compress = |v: [Fr; 3]| beta + v[0] + theta * v[1] + theta2 * v[2];
    let pairs = slots / 2 - 2;
    let mut out: Vec<Vec<Fr>> = (0..pairs + 2).map(|_| Vec::with_capacity(rows)).collect();
    let mut acc = Fr::zero();
    // A denominator per slot and one for the table row.
    let d_len = slots + 1;
    let mut inv = Vec::with_capacity(d_len * CHUNK);
    for start in (0..rows).step_by(CHUNK) {
        inv.clear();
        for row in start..rows.min(start + CHUNK) {
            for j in 0..slots {
                inv.push(compress(ix.tuple(table, row, j)));
            }
            inv.push(compress(table.get(row).copied().unwrap_or([Fr::zero(); 3])));
        }
        if inv.iter().any(|d| bool::from(d.is_zero())) {
            return Err(ProveError::Unsupported("a lookup denominator vanished at the drawn challenge".into()));
        }
        inv.iter_mut().batch_invert();
        for (i, d) in inv.chunks_exact(d_len).enumerate() {
            let u = d[0] + d[1] - ix.mult[start + i] * d[slots];
            out[0].push(u);
            acc += u + d[slots - 2] + d[slots - 1];
            for k in 0..pairs {
                let v = d[2 + 2 * k] + d[3 + 2 * k];
                out[1 + k].push(v);
                acc += v;
            }
            out[pairs + 1].push(acc);
        }
    }
    Ok(out)
}
