//! Parking a proof's trace while halo2 commits phase 1, where the prover's memory peaks: halo2 then holds
//! every advice column twice (as `Assigned` values and as field elements) next to the proving key, so the
//! trace's copy of them is waste. Of the trace's columns the phase-2 program later reads only the weights
//! of its `horner_w` rows, the phase-1 cells its `horner_z` chains and copies read, and the few `h` cells
//! set before it runs; those are kept compactly and every column is freed, with the copy constraints and
//! selectors (a prover's synthesis never hands them to halo2: the proving key has them).

use super::trace::{Phase2, Trace};
use halo2_proofs::arithmetic::Field;
use halo2_proofs::halo2curves::bn256::Fr;
use veil_verifier::circuit::tables::fr_i64;

/// What the phase-2 program needs of a parked trace's freed columns.
pub(crate) struct Parked {
    /// The non-zero `h` cells: `(column, row, value)`.
    h: Vec<(usize, usize, Fr)>,
    /// The weights of the `horner_w` rows in program order (chain, row, column); `None` when some weight is
    /// no `i64`, and the fixed columns were then kept.
    weights: Option<Vec<i64>>,
    /// The phase-1 values the program reads, in program order ([`Trace::phase1_reads`]).
    inputs: Vec<Fr>,
}

/// `v` as the `i64` it encodes, when it encodes one.
fn as_i64(v: Fr) -> Option<i64> {
    let b = v.to_bytes();
    let low = i64::from_le_bytes(b[..8].try_into().ok()?);
    (fr_i64(low) == v).then_some(low).or_else(|| {
        let nb = (-v).to_bytes();
        let neg = i64::from_le_bytes(nb[..8].try_into().ok()?).checked_neg()?;
        (fr_i64(neg) == v).then_some(neg)
    })
}

impl Trace {
    /// Frees every column, the copy constraints and the selectors, keeping what the phase-2 program reads.
    /// The lookup argument must have read the tags and operands already ([`super::lookup::Indexed`]), and
    /// the Poseidon jobs their inputs.
    pub fn park(&mut self) -> Parked {
        let mut h = Vec::new();
        for (i, col) in self.h.iter().enumerate() {
            h.extend(col.iter().enumerate().filter(|(_, v)| !bool::from(v.is_zero())).map(|(r, v)| (i, r, *v)));
        }
        let weights = self.packed_weights();
        let inputs = self.phase1_reads();
        let free = |cols: &mut Vec<Vec<Fr>>| cols.iter_mut().for_each(|c| *c = Vec::new());
        free(&mut self.lk);
        free(&mut self.g);
        self.copies = Vec::new();
        self.selectors = Vec::new();
        free(&mut self.h);
        free(&mut self.tag);
        free(&mut self.f);
        if weights.is_some() {
            free(&mut self.wt);
        }
        Parked { h, weights, inputs }
    }

    /// The weights of the `horner_w` rows in program order, if every one is an `i64`.
    fn packed_weights(&self) -> Option<Vec<i64>> {
        let mut out = Vec::new();
        for step in &self.phase2 {
            if let Phase2::HornerW { start, rows, chains } = *step {
                for r in start..start + rows * chains {
                    for col in &self.wt {
                        out.push(as_i64(col[r])?);
                    }
                }
            }
        }
        Some(out)
    }

    /// Runs the phase-2 program on a parked trace, filling its `h` columns.
    pub fn fill_parked_phase2(&mut self, parked: Parked, z: Fr, alpha: Fr) {
        let mut hc = vec![vec![Fr::zero(); self.rows]; self.h.len()];
        for (i, r, v) in parked.h {
            hc[i][r] = v;
        }
        self.phase2_into(&mut hc, z, alpha, parked.weights.as_deref(), Some(&parked.inputs));
        self.h = hc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prove::forgery::conv_relu_slice;

    #[test]
    fn small_integers_round_trip_and_wide_values_do_not() {
        for v in [0i64, 1, -1, 127, -128, i64::MAX, i64::MIN + 1] {
            assert_eq!(as_i64(fr_i64(v)), Some(v));
        }
        assert_eq!(as_i64(Fr::from(u64::MAX)), None);
        assert_eq!(as_i64(Fr::from(3).invert().unwrap()), None);
    }

    #[test]
    fn a_parked_trace_fills_the_same_phase_2_columns_with_less_memory() {
        let (_, _, honest) = conv_relu_slice();
        let (z, alpha) = (Fr::from(7), Fr::from(11));
        let expected = honest.trace.phase2_columns(z, alpha);
        let mut t = (*honest.trace).clone();
        let parked = t.park();
        assert!(parked.weights.is_some(), "the weights are small integers");
        let columns = [&t.wt, &t.f, &t.tag, &t.h, &t.lk, &t.g];
        assert!(columns.iter().all(|cols| cols.iter().all(Vec::is_empty)));
        assert!(t.copies.is_empty() && t.selectors.is_empty());
        t.fill_parked_phase2(parked, z, alpha);
        assert_eq!(t.h, expected);
    }
}
