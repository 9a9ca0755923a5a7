//! The soundness test the Freivalds layout exists for: a prover that changes a convolution output and tunes
//! the rounding remainder and the free product coefficients *after* seeing the challenges satisfies the
//! identity at those challenges, and is rejected at the circuit's own.

use super::trace::{CellRef, Col, Sel, Trace};
use super::{slice_circuit, SliceSpec};
use crate::quant::{quantize, Calibration, QuantConfig};
use crate::tensor::Tensor;
use halo2_proofs::arithmetic::Field;
use halo2_proofs::dev::MockProver;
use halo2_proofs::halo2curves::bn256::Fr;
use std::collections::HashMap;
use veil_verifier::circuit::tables::fr_i128;
use veil_verifier::circuit::Width;

fn copy_source(t: &Trace, dst: CellRef) -> Option<CellRef> {
    t.copies.iter().find(|(a, _)| *a == dst).map(|&(_, b)| b)
}

/// The honest circuit of the `pytorch_style` test model's first convolution and its (fused) ReLU, with the
/// reference's values, at the most weight columns and with 15-bit range limbs (its remainders are up to 15
/// bits wide, so its requantizations take `div4` lanes).
pub(super) fn conv_relu_slice() -> (crate::quant::QuantizedGraph, Vec<Option<Tensor<i64>>>, super::SliceCircuit) {
    conv_relu_slice_with(veil_verifier::circuit::MAX_WEIGHTS)
}

/// [`conv_relu_slice`] with `weights` weight columns.
pub(super) fn conv_relu_slice_with(
    weights: usize,
) -> (crate::quant::QuantizedGraph, Vec<Option<Tensor<i64>>>, super::SliceCircuit) {
    conv_relu_slice_at(weights, Width::Wide)
}

/// [`conv_relu_slice`] with `weights` weight columns and rows of `width`.
pub(super) fn conv_relu_slice_at(
    weights: usize,
    width: Width,
) -> (crate::quant::QuantizedGraph, Vec<Option<Tensor<i64>>>, super::SliceCircuit) {
    let (q, values) = op_case("pytorch_style");
    // Slice: the convolution and its ReLU.
    let spec = SliceSpec {
        nodes: 0..2,
        inputs: vec![q.inputs[0]],
        outputs: vec![q.nodes[1].output],
        weights,
        range_bits: 15,
        width,
        poseidon_lanes: width.max_poseidon_lanes(),
    };
    let blinds: HashMap<_, _> = [(q.inputs[0], Fr::from(5)), (q.nodes[1].output, Fr::from(6))].into();
    let inputs = super::SliceInputs {
        values: &values,
        blinds: &blinds,
        binding: Fr::from(9),
        claim: super::ClaimRequest::Output,
    };
    let honest = slice_circuit(&q, &spec, None, Some(&inputs)).expect("circuit");
    (q, values, honest)
}

/// The `tests/data/ops` case `case`, quantized with the default configuration calibrated on its own input,
/// and the integer reference's values on that input.
pub(super) fn op_case(case: &str) -> (crate::quant::QuantizedGraph, Vec<Option<Tensor<i64>>>) {
    op_case_with(case, &QuantConfig::default())
}

/// [`op_case`] quantized with `config`.
pub(super) fn op_case_with(
    case: &str,
    config: &QuantConfig,
) -> (crate::quant::QuantizedGraph, Vec<Option<Tensor<i64>>>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/ops").join(case);
    let graph = crate::onnx::load_onnx_file(&dir.join("model.onnx"), &Default::default()).expect("model");
    let io: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("io.json")).expect("io")).expect("json");
    let shape: Vec<usize> = serde_json::from_value(io["inputs"][0]["shape"].clone()).expect("shape");
    let data: Vec<f32> = serde_json::from_value(io["inputs"][0]["data"].clone()).expect("data");
    let input = Tensor::new(shape, data).expect("input");
    let calibration = Calibration::collect(&graph, [("case".to_string(), std::slice::from_ref(&input))]).expect("cal");
    let q = quantize(&graph, &calibration, config).expect("quantize");
    let values = q.run_all(&[q.quantize_input(0, &input).expect("input")]).expect("run");
    (q, values)
}

/// Runs `MockProver` on `t` and returns its failures (empty when satisfied).
pub(super) fn failures(t: Trace, k: u32) -> Vec<halo2_proofs::dev::VerifyFailure> {
    let c = super::SliceCircuit { trace: std::sync::Arc::new(t), with_witness: true };
    MockProver::run(k, &c, vec![c.instance()]).expect("mock").verify().err().unwrap_or_default()
}

/// Whether `f` is a failure of the custom gate whose name contains `name`.
pub(super) fn is_gate(f: &halo2_proofs::dev::VerifyFailure, name: &str) -> bool {
    use halo2_proofs::dev::VerifyFailure;
    matches!(f, VerifyFailure::ConstraintNotSatisfied { constraint, .. } if format!("{constraint}").contains(name))
}

/// A field element holding a small signed integer, as that integer.
pub(super) fn small(f: Fr) -> i128 {
    let b = f.to_bytes();
    if b[16..].iter().all(|&x| x == 0) {
        i128::from_le_bytes(b[..16].try_into().unwrap_or([0; 16]))
    } else {
        -i128::from_le_bytes((-f).to_bytes()[..16].try_into().unwrap_or([0; 16]))
    }
}

#[test]
fn a_wrong_output_with_remainders_tuned_after_seeing_the_challenge_is_rejected() {
    let (q, values, honest) = conv_relu_slice();
    let k = honest.k();
    MockProver::run(k, &honest, vec![honest.instance()]).expect("mock").assert_satisfied();

    // Forge: pick a convolution output y ≤ −2 in a four-division row (so the fused ReLU's output stays 0) and
    // claim y + 1 instead.
    let mut t = (*honest.trace).clone();
    let conv_out = values[q.nodes[0].output.0].as_ref().expect("conv output");
    let div4_rows: std::collections::HashSet<usize> =
        t.selectors.iter().filter(|(s, _)| *s == Sel::Div4).map(|&(_, r)| r).collect();
    let idx = (0..conv_out.len())
        .find(|&i| conv_out.data()[i] <= -2 && div4_rows.contains(&t.div_lanes[i].0))
        .expect("a negative pre-activation in a div4 row");
    let (div_row, lane) = t.div_lanes[idx];
    // Every lane reads f0/f2/f3; lane l reads g[3l], its quotient and remainder in the slots of DIV_LANES[l].
    let (qs, rs) = veil_verifier::circuit::DIV_LANES[lane];
    let (gi, fixed, q_op, r_op) = (3 * lane, &t.f, 2 * qs, 2 * rs);
    let (m, c, d) = (small(fixed[0][div_row]), small(fixed[2][div_row]), small(fixed[3][div_row]));
    let lane_cell = CellRef { col: Col::G(gi), row: div_row };
    let p_cell = copy_source(&t, lane_cell).expect("P cell");
    let q_new = small(t.lk[q_op][div_row]) + 1;
    let p_new = (q_new * d - c + m - 1).div_euclid(m);
    let r_new = p_new * m + c - q_new * d;
    assert!((0..d).contains(&r_new), "remainder tuned into range");
    assert_eq!(small(t.lk[q_op + 1][div_row]), 0, "the fused ReLU's output stays 0");
    let delta = fr_i128(p_new - small(t.get(p_cell)));
    t.set(p_cell, fr_i128(p_new));
    t.set(lane_cell, fr_i128(p_new));
    t.lk[q_op][div_row] = fr_i128(q_new);
    t.lk[r_op][div_row] = fr_i128(r_new);

    // Knowing the challenges (z*, α*), move a free coefficient of the same output channel to cancel δ·z^e.
    let (z, alpha) = (Fr::from(12345), Fr::from(678));
    let column = match p_cell.col {
        Col::G(i) => i,
        _ => unreachable!("P cells are in g"),
    };
    let used: std::collections::HashSet<CellRef> = t.copies.iter().flat_map(|&(a, b)| [a, b]).collect();
    let r_g = (p_cell.row + 1..t.rows)
        .find(|&r| !used.contains(&CellRef { col: Col::G(column), row: r }))
        .expect("a free coefficient after the forged one");
    // A lane holds two coefficients a row, so the same column one row down is two powers of z lower: moving
    // δ at row r_v is cancelled by −δ·z^(2·(r_g − r_v)) at r_g.
    let shift = z.pow_vartime([2 * (r_g - p_cell.row) as u64]);
    let g_cell = CellRef { col: Col::G(column), row: r_g };
    let moved = t.get(g_cell) - delta * shift;
    t.set(g_cell, moved);
    let mut at_known = t.clone();
    at_known.run_phase2(z, alpha);
    let (lhs, rhs) = t
        .copies
        .iter()
        .rev()
        .find(|(a, b)| matches!(a.col, Col::H(2) | Col::H(5)) && matches!(b.col, Col::H(1)))
        .copied()
        .expect("the identity's copy");
    assert_eq!(at_known.get(lhs), at_known.get(rhs), "the forgery satisfies the identity at the challenges it saw");

    let forged = super::SliceCircuit { trace: std::sync::Arc::new(t), with_witness: true };
    let failures = MockProver::run(k, &forged, vec![forged.instance()]).expect("mock").verify().expect_err("rejected");
    // Every row gate, lookup and copy of the forgery holds except the identity tying the two sides.
    assert!(
        failures.iter().all(|f| matches!(f, halo2_proofs::dev::VerifyFailure::Permutation { .. })),
        "only the identity's equality fails: {failures:?}"
    );
}
