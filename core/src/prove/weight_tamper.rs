//! Tests of the weight track: it shares rows with the other relations, it binds the fixed weights to the
//! Freivalds check, and its chain follows the `horner_w` gate.

use super::forgery::{conv_relu_slice, conv_relu_slice_at, conv_relu_slice_with, failures, is_gate};
use super::trace::{h, Phase2, Sel, Trace};
use halo2_proofs::dev::{MockProver, VerifyFailure};
use halo2_proofs::halo2curves::bn256::Fr;
use veil_verifier::circuit::{Width, HW, MAX_WEIGHTS};

/// Rows where a weight selector is on.
fn weight_rows(t: &Trace) -> Vec<usize> {
    t.selectors.iter().filter(|(s, _)| matches!(s, Sel::HornerW | Sel::HornerWStart)).map(|&(_, r)| r).collect()
}

#[test]
fn the_weight_track_shares_rows_with_the_other_relations() {
    let (_, _, honest) = conv_relu_slice();
    let t = &honest.trace;
    let rows = weight_rows(t);
    assert_eq!(rows.len(), t.weight_rows, "every weight-track row has its gate");
    assert!(t.rows >= t.weight_rows);
    let shared = t
        .selectors
        .iter()
        .filter(|(s, r)| !matches!(s, Sel::HornerW | Sel::HornerWStart) && *r < t.weight_rows)
        .count();
    assert!(shared > 0, "another relation runs on a weight-track row");
    let c = super::SliceCircuit { trace: std::sync::Arc::clone(t), with_witness: true };
    MockProver::run(honest.k(), &c, vec![c.instance()]).expect("mock").assert_satisfied();
}

#[test]
fn a_circuit_with_one_weight_changed_rejects_the_honest_witness() {
    let (_, _, honest) = conv_relu_slice();
    let k = honest.k();
    let mut t = (*honest.trace).clone();
    let (col, row) = (0..t.wt.len())
        .flat_map(|j| (0..t.weight_rows).map(move |r| (j, r)))
        .find(|&(j, r)| t.wt[j][r] != Fr::zero())
        .expect("a non-zero weight");
    t.wt[col][row] += Fr::one();
    let fails = failures(t, k);
    assert!(
        fails.iter().any(|f| matches!(f, VerifyFailure::Permutation { .. })),
        "the Freivalds identity's two sides no longer agree: {fails:?}"
    );
}

/// At every width, from one weight column to the most (five pads chains that are no multiple of it), the honest
/// track satisfies every gate and a chain value off its Horner sum is rejected by `horner_w`.
#[test]
fn a_weight_chain_value_off_the_gate_is_rejected_by_horner_w_at_every_width() {
    for weights in [1, 5, MAX_WEIGHTS] {
        let (_, _, honest) = conv_relu_slice_with(weights);
        let k = honest.k();
        let mut t = (*honest.trace).clone();
        assert_eq!(t.wt.len(), weights);
        assert!(failures(t.clone(), k).is_empty(), "{weights} columns: the honest track holds");
        // A continuation row (its own `horner_w` row ties it to the row before), else a chain's first row.
        let starts: Vec<usize> = t.selectors.iter().filter(|(s, _)| *s == Sel::HornerWStart).map(|&(_, r)| r).collect();
        let row = t
            .selectors
            .iter()
            .filter(|(s, r)| *s == Sel::HornerW && !starts.contains(r))
            .map(|&(_, r)| r)
            .next()
            .unwrap_or(starts[0]);
        t.phase2.push(Phase2::Set { dst: h(HW, row), value: Fr::from(12345) });
        let fails = failures(t, k);
        assert!(!fails.is_empty(), "{weights} columns: accepted");
        assert!(fails.iter().any(|f| is_gate(f, "horner_w")), "{weights} columns: horner_w rejects it: {fails:?}");
    }
}

/// A slice takes the fewest weight columns that keep its `k`: its weights are then spread as long as its
/// other rows allow, and one column fewer would need a larger `k`.
#[test]
fn a_slice_takes_the_fewest_weight_columns_that_keep_its_size() {
    let (_, _, widest) = conv_relu_slice();
    let fewest = widest.fewest_weight_columns();
    assert!(fewest < MAX_WEIGHTS, "this slice's weights are few next to its other rows");
    let (_, _, narrow) = conv_relu_slice_with(fewest);
    assert_eq!(narrow.params().weights(), fewest);
    assert_eq!(narrow.k(), widest.k(), "the same size");
    assert_eq!(narrow.fewest_weight_columns(), fewest, "nothing narrower fits");
    assert!(narrow.trace.weight_rows > widest.trace.weight_rows, "the weights take more, narrower rows");
    if fewest > 1 {
        let (_, _, narrower) = conv_relu_slice_with(fewest - 1);
        assert!(narrower.k() > widest.k(), "{} columns would need 2^{} rows", fewest - 1, narrower.k());
    }
}

/// The key's column budget at the most weight columns, per row width. Wide: 32 fixed columns (2 tags, 6
/// coefficients, 24 weights), the table's 3 and at most 13 compressed selector columns (the weight selectors
/// allocated first share one); 24 equality columns (12 `g`, 7 `h`, four lookup outputs, the instance; no
/// constants column) and 36 advice columns (12 `lk`, 12 `g`, 7 `h`, the lookup multiplicities and four logUp
/// columns). Narrow: the same fixed columns, 16 equality columns (6 `g`, 7 `h`, two lookup outputs, the
/// instance) and 22 advice columns (6 `lk`, 6 `g`, 7 `h`, the multiplicities and two logUp columns). Each
/// fixed column costs about 17 MB at the peak of a `k = 18` proof, each equality column about 25 MB
/// (`docs/performance.md`), so a change that adds one shows here.
#[test]
fn a_slice_key_has_at_most_48_fixed_and_24_or_16_equality_columns() {
    for (width, equality, advice) in [(Width::Wide, 24, 36), (Width::Narrow, 16, 22)] {
        let (_, _, honest) = conv_relu_slice_at(MAX_WEIGHTS, width);
        // The column layout does not depend on the commitment scheme; a seeded KZG setup is quick to make.
        let params = veil_verifier::backend::Params::insecure_kzg_for_tests(honest.k(), 1);
        let vk = super::backend::verifying_key(&params, &honest.without_witness()).expect("vk");
        let cs = vk.cs();
        assert!(cs.num_fixed_columns() <= 48, "{width:?}: {} fixed columns", cs.num_fixed_columns());
        assert_eq!(cs.permutation().get_columns().len(), equality, "{width:?}: equality columns");
        assert_eq!(cs.num_advice_columns(), advice, "{width:?}: advice columns");
    }
}
