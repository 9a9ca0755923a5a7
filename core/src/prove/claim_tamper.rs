//! Negative tests of the claim-kind row (`verdict_kind`): the public kind `σ` alone decides which value is
//! revealed. A prover that asks for one kind and witnesses another kind's indicators, or reveals another value,
//! is rejected by the row's gate, even when the public inputs are forged to agree with its cells.

use super::forgery::{failures, is_gate, op_case};
use super::trace::{g, CellRef, Sel, Trace};
use super::{slice_circuit, ClaimModel, ClaimRequest, SliceInputs};
use crate::slice::{slice, CostModel, SlicePolicy};
use halo2_proofs::halo2curves::bn256::Fr;
use std::collections::HashMap;

/// The honest last-slice trace of the `softmax` test model (ten logits) with `claim`, its `k`, and the row of
/// its claim-kind gate.
fn softmax_claim(claim: ClaimRequest) -> (Trace, u32, usize) {
    let (q, values) = op_case("softmax");
    let plan = slice(&q, &SlicePolicy::Balanced { max_k: 18 }, &CostModel::default()).expect("plan");
    assert_eq!(plan.slices.len(), 1, "the softmax model is one slice");
    let claims = ClaimModel::new(&q, None).expect("claim model");
    let spec = claims.slice_specs(&plan).remove(0);
    let blinds: HashMap<_, _> =
        spec.inputs.iter().chain(&spec.outputs).enumerate().map(|(i, &id)| (id, Fr::from(40 + i as u64))).collect();
    let inputs = SliceInputs { values: &values, blinds: &blinds, binding: Fr::from(3), claim };
    let c = slice_circuit(&q, &spec, Some(&claims), Some(&inputs)).expect("circuit");
    let row = c.trace.selectors.iter().find(|(s, _)| *s == Sel::VerdictKind).map(|&(_, r)| r).expect("kind row");
    ((*c.trace).clone(), c.k(), row)
}

/// The instance rows of the public `σ`, `T` and `v` (the kind row's g3, the age row's g2, the kind row's g5).
fn claim_instance_rows(t: &Trace, kind_row: usize) -> [usize; 3] {
    let row_of = |cell: CellRef| t.public.iter().find(|(c, _)| *c == cell).map(|&(_, r)| r).expect("public cell");
    [row_of(g(3, kind_row)), row_of(g(2, kind_row - 1)), row_of(g(5, kind_row))]
}

/// Sets `cell` to `value` and, where the cell is public, its instance entry too: the forgery then agrees with
/// its public inputs, and only the constraints can tell it.
fn forge(t: &mut Trace, cell: CellRef, value: Fr) {
    t.set(cell, value);
    let rows: Vec<usize> = t.public.iter().filter(|(c, _)| *c == cell).map(|&(_, r)| r).collect();
    for r in rows {
        t.instance[r] = value;
    }
}

/// Asserts that `MockProver` rejects `t` with a failure of the `verdict_kind` gate among its failures.
fn rejected_by_the_kind_gate(t: Trace, k: u32, what: &str) {
    let fails = failures(t, k);
    assert!(fails.iter().any(|f| is_gate(f, "verdict_kind")), "{what}: the claim-kind gate rejects: {fails:?}");
}

#[test]
fn the_honest_claim_rows_are_satisfied_for_the_output_and_argmax_kinds() {
    for claim in [ClaimRequest::Output, ClaimRequest::Argmax] {
        let (t, k, _) = softmax_claim(claim);
        assert!(failures(t, k).is_empty(), "{claim:?}");
    }
}

#[test]
fn another_kind_s_indicators_or_value_are_rejected_by_the_kind_gate() {
    let (honest, k, row) = softmax_claim(ClaimRequest::Argmax);
    let [sigma, _, v] = claim_instance_rows(&honest, row);
    assert_eq!(honest.instance[sigma], Fr::from(1), "argmax is kind 1");
    let cases: [(&str, CellRef, Fr); 5] = [
        // e1 = [σ = 1] cleared: the argmax would no longer be revealed.
        ("e1 = 0 under σ = 1", g(1, row), Fr::zero()),
        // e0 = [σ = 0] set: every claim row's o_i = e0·z_i would reveal a logit.
        ("e0 = 1 under σ = 1", g(0, row), Fr::one()),
        // Another revealed index than the one the claim rows computed.
        ("v = K + 1", g(5, row), honest.instance[v] + Fr::one()),
        // The kind itself: the age kind with the argmax witness, and a kind outside {0, 1, 2}.
        ("σ = 2", g(3, row), Fr::from(2)),
        ("σ = 3", g(3, row), Fr::from(3)),
    ];
    for (what, cell, value) in cases {
        let mut t = honest.clone();
        forge(&mut t, cell, value);
        rejected_by_the_kind_gate(t, k, what);
    }
}

#[test]
fn the_output_kind_reveals_no_argmax() {
    let (honest, k, row) = softmax_claim(ClaimRequest::Output);
    let [sigma, _, v] = claim_instance_rows(&honest, row);
    assert_eq!((honest.instance[sigma], honest.instance[v]), (Fr::zero(), Fr::zero()));
    // Revealing the argmax under σ = 0 (v = K instead of 0) is rejected.
    let k_index = honest.get(g(4, row));
    assert_ne!(k_index, Fr::zero(), "the test input's largest logit is not the first");
    let mut t = honest.clone();
    forge(&mut t, g(5, row), k_index);
    rejected_by_the_kind_gate(t, k, "v = K under σ = 0");
    // So is e1 = 1 under σ = 0.
    let mut t = honest;
    forge(&mut t, g(1, row), Fr::one());
    rejected_by_the_kind_gate(t, k, "e1 = 1 under σ = 0");
}
