//! Negative tests of the `div2` rows (two divisions a row, each with up to six numerator cells: average
//! pools) and of the boundary packing's range check through a `Clamp` lookup's `y`.

use super::forgery::{failures, small};
use super::trace::{Sel, Trace};
use super::{slice_circuit, SliceCircuit, SliceSpec};
use crate::quant::QuantConfig;
use halo2_proofs::dev::VerifyFailure;
use halo2_proofs::halo2curves::bn256::Fr;
use std::collections::HashMap;
use veil_verifier::circuit::tables::fr_i128;
use veil_verifier::circuit::{Width, DIV_LANES, G};

/// The honest circuit of the `avgpool` operator case (a 2×2 average pool over a 2×6×6 input), the whole
/// graph as one slice.
fn avgpool_slice() -> SliceCircuit {
    let (q, values) = super::forgery::op_case("avgpool");
    let output = q.nodes[q.nodes.len() - 1].output;
    let spec = SliceSpec {
        nodes: 0..q.nodes.len(),
        inputs: vec![q.inputs[0]],
        outputs: vec![output],
        weights: 1,
        range_bits: 12,
        width: Width::Wide,
        poseidon_lanes: Width::Wide.max_poseidon_lanes(),
    };
    let blinds: HashMap<_, _> = [(q.inputs[0], Fr::from(5)), (output, Fr::from(6))].into();
    let inputs = super::SliceInputs {
        values: &values,
        blinds: &blinds,
        binding: Fr::from(9),
        claim: super::ClaimRequest::Output,
    };
    slice_circuit(&q, &spec, None, Some(&inputs)).expect("circuit")
}

fn rows_of(t: &Trace, sel: Sel) -> Vec<usize> {
    t.selectors.iter().filter(|(s, _)| *s == sel).map(|&(_, r)| r).collect()
}

fn is_lookup(f: &VerifyFailure) -> bool {
    super::forgery::is_gate(f, "lookup_last")
}

#[test]
fn the_honest_average_pool_takes_div2_rows_and_is_satisfied() {
    let honest = avgpool_slice();
    let rows = rows_of(&honest.trace, Sel::Div2);
    assert!(!rows.is_empty(), "2×2 windows take div2 lanes");
    assert!(failures((*honest.trace).clone(), honest.k()).is_empty(), "honest witness");
}

#[test]
fn a_quotient_off_by_one_in_either_div2_lane_is_rejected_by_the_range_lookup() {
    let honest = avgpool_slice();
    let row = rows_of(&honest.trace, Sel::Div2)[0];
    let divisor = small(honest.trace.f[3][row]);
    for (lane, &(qs, rs)) in DIV_LANES[..2].iter().enumerate() {
        for step in [1i128, -1] {
            // q ± 1 with r ∓ D keeps the division relation; the remainder leaves [0, D).
            let mut t = (*honest.trace).clone();
            t.lk[2 * qs][row] = fr_i128(small(t.lk[2 * qs][row]) + step);
            t.lk[2 * rs][row] = fr_i128(small(t.lk[2 * rs][row]) - step * divisor);
            let fails = failures(t, honest.k());
            assert!(!fails.is_empty() && fails.iter().all(is_lookup), "lane {lane}, step {step}: {fails:?}");
        }
    }
}

/// A 2×2 window fills four of a lane's five shared cells; the fifth is tied to the zero cell. Setting it to
/// one, with the quotient, remainder and output recomputed so the row's gate and lookups still hold, is
/// rejected by copy constraints alone.
#[test]
fn an_unused_shared_cell_of_a_div2_lane_is_tied_to_zero() {
    let honest = avgpool_slice();
    let row = rows_of(&honest.trace, Sel::Div2)[0];
    let f = |i: usize| small(honest.trace.f[i][row]);
    let (c1, k, d) = (f(1), f(2), f(3));
    assert_ne!(c1, 0, "the window's cells share a live coefficient");
    for (lane, &(qs, rs)) in DIV_LANES[..2].iter().enumerate() {
        let base = lane * G / 2;
        let mut t = (*honest.trace).clone();
        let unused = base + G / 2 - 1;
        assert_eq!(t.g[unused][row], Fr::zero(), "lane {lane}: the honest unused cell is 0");
        t.g[unused][row] = Fr::one();
        let sum: i128 = (base + 1..base + G / 2).map(|i| small(t.g[i][row])).sum();
        let num = c1 * sum + k;
        let (q, r) = (num.div_euclid(d), num.rem_euclid(d));
        t.lk[2 * qs][row] = fr_i128(q);
        let half = 1i128 << (QuantConfig::default().activation_bits - 1);
        t.lk[2 * qs + 1][row] = fr_i128(q.clamp(-half, half - 1));
        t.lk[2 * rs][row] = fr_i128(r);
        let fails = failures(t, honest.k());
        assert!(!fails.is_empty(), "lane {lane}: accepted");
        let copies_only = fails.iter().all(|f| matches!(f, VerifyFailure::Permutation { .. }));
        assert!(copies_only, "lane {lane}: only copy constraints fail: {fails:?}");
    }
}

/// A boundary value is packed from its slot's `y`, which the `Clamp{bits, bits+1}` lookup keeps to `bits`
/// signed bits: a value one past the range (with `x` equal to it, as an honest row has) is no table row.
#[test]
fn a_packed_value_outside_its_bits_is_rejected_by_the_clamp_lookup() {
    let honest = avgpool_slice();
    let row = rows_of(&honest.trace, Sel::PackStart)[0];
    let offset = small(honest.trace.f[5][row]);
    for (slot, past) in [(0, offset), (3, -offset - 1)] {
        let mut t = (*honest.trace).clone();
        t.lk[2 * slot][row] = fr_i128(past);
        t.lk[2 * slot + 1][row] = fr_i128(past);
        let fails = failures(t, honest.k());
        assert!(fails.iter().any(is_lookup), "slot {slot}: the Clamp lookup rejects {past}: {fails:?}");
    }
}
