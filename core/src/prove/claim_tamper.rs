//! Negative tests of the claim kind's `arith` rows: the public kind `σ` alone decides which value is revealed.
//! A prover that asks for one kind and witnesses another kind's indicators, or reveals another value, is
//! rejected by the `arith` gate, even when the public inputs are forged to agree with its cells.

use super::forgery::{failures, is_gate, op_case};
use super::trace::{g, CellRef, Sel, Trace};
use super::{slice_circuit, ClaimModel, ClaimRequest, SliceInputs};
use crate::slice::{slice, CostModel, SlicePolicy};
use halo2_proofs::halo2curves::bn256::Fr;
use std::collections::HashMap;

/// The honest last-slice trace of the `softmax` test model (ten logits) with `claim`, its `k`, and the row of
/// its first claim-kind equation (`e1 = σ(2 − σ)`, with `σ` in `g3`; `2·e2 = σ − e1` and `e0 = 1 − e1 − e2`
/// follow in `g0` of the next two rows).
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
    let row = c.trace.selectors.iter().find(|(s, _)| *s == Sel::Claim).map(|&(_, r)| r).expect("claim rows");
    ((*c.trace).clone(), c.k(), row)
}

/// The cell behind public input `row`.
fn public_cell(t: &Trace, row: usize) -> CellRef {
    t.public.iter().find(|&&(_, r)| r == row).map(|&(c, _)| c).expect("public cell")
}

/// The instance rows of the public `σ`, `T` and `v`: `σ` is `g3` of the first claim row, the other two follow it.
fn claim_instance_rows(t: &Trace, kind_row: usize) -> [usize; 3] {
    let sigma = t.public.iter().find(|(c, _)| *c == g(3, kind_row)).map(|&(_, r)| r).expect("public σ");
    [sigma, sigma + 1, sigma + 2]
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

/// Asserts that `MockProver` rejects `t` with a failure of the `arith` gate among its failures.
fn rejected_by_the_kind_gate(t: Trace, k: u32, what: &str) {
    let fails = failures(t, k);
    assert!(fails.iter().any(|f| is_gate(f, "arith")), "{what}: the claim's arith rows reject: {fails:?}");
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
        ("e1 = 0 under σ = 1", g(0, row), Fr::zero()),
        // e0 = [σ = 0] set: every logit's o_i = e0·z_i would reveal it.
        ("e0 = 1 under σ = 1", g(0, row + 2), Fr::one()),
        // Another revealed index than the one the claim rows computed.
        ("v = K + 1", public_cell(&honest, v), honest.instance[v] + Fr::one()),
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
    // Revealing the argmax under σ = 0 (v = K instead of 0) is rejected. `v = t1 + t2` reads `t1 = e1·K`
    // from the row two above it, whose `g2` is `K`.
    let v_cell = public_cell(&honest, v);
    let k_index = honest.get(g(2, v_cell.row - 2));
    assert_ne!(k_index, Fr::zero(), "the test input's largest logit is not the first");
    let mut t = honest.clone();
    forge(&mut t, v_cell, k_index);
    rejected_by_the_kind_gate(t, k, "v = K under σ = 0");
    // So is e1 = 1 under σ = 0.
    let mut t = honest;
    forge(&mut t, g(0, row), Fr::one());
    rejected_by_the_kind_gate(t, k, "e1 = 1 under σ = 0");
}

/// The honest trace of the `softmax` test model with ages `0, 1, …, 9` years per logit and the claim
/// "expected age ≥ `years`", its `k`, the age bit's cell (copied into `t2 = e2·b`, the row above `v`) and the
/// revealed value's.
fn age_claim(years: i64) -> (Trace, u32, CellRef, CellRef) {
    let (q, values) = op_case("softmax");
    let plan = slice(&q, &SlicePolicy::Balanced { max_k: 18 }, &CostModel::default()).expect("plan");
    let ages: Vec<i64> = (0..10).map(|y| 4 * y).collect();
    let claims = ClaimModel::new(&q, Some(&ages)).expect("claim model");
    let spec = claims.slice_specs(&plan).remove(0);
    let blinds: HashMap<_, _> =
        spec.inputs.iter().chain(&spec.outputs).enumerate().map(|(i, &id)| (id, Fr::from(40 + i as u64))).collect();
    let claim = ClaimRequest::AgeAtLeast(4 * years);
    let inputs = SliceInputs { values: &values, blinds: &blinds, binding: Fr::from(3), claim };
    let c = slice_circuit(&q, &spec, Some(&claims), Some(&inputs)).expect("circuit");
    let t = (*c.trace).clone();
    let row = c.trace.selectors.iter().find(|(s, _)| *s == Sel::Claim).map(|&(_, r)| r).expect("claim rows");
    let v = public_cell(&t, claim_instance_rows(&t, row)[2]);
    let bit = t.copies.iter().find(|(dst, _)| *dst == g(2, v.row - 1)).map(|&(_, src)| src).expect("b's cell");
    (t, c.k(), bit, v)
}

/// Sets `cell` and every cell copied from it (and their public inputs) to `value`: the copy constraints then
/// still hold, and only the gates can tell.
fn forge_with_copies(t: &mut Trace, cell: CellRef, value: Fr) {
    let copies: Vec<CellRef> = t.copies.iter().filter(|(_, src)| *src == cell).map(|&(dst, _)| dst).collect();
    for c in std::iter::once(cell).chain(copies) {
        forge(t, c, value);
    }
}

#[test]
fn the_age_bit_cannot_be_flipped() {
    let (mut verdicts, mut checked) = (Vec::new(), 0);
    for years in [0, 3, 9] {
        let (honest, k, bit, v) = age_claim(years);
        assert!(failures(honest.clone(), k).is_empty(), "{years} years: the honest age rows hold");
        let b = honest.get(bit);
        verdicts.push(b);
        let mut t = honest;
        // The bit everywhere it is read, and the revealed value with it (v = t2 = e2·b under σ = 2).
        forge_with_copies(&mut t, bit, Fr::one() - b);
        forge(&mut t, v, Fr::one() - b);
        forge_with_copies(&mut t, g(0, v.row - 1), Fr::one() - b);
        let fails = failures(t, k);
        assert!(fails.iter().any(|f| is_gate(f, "arith")), "{years} years: flipping the bit is rejected: {fails:?}");
        checked += 1;
    }
    assert_eq!(checked, 3);
    assert!(verdicts.contains(&Fr::one()) && verdicts.contains(&Fr::zero()), "both verdicts were tried: {verdicts:?}");
}
