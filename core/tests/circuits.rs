//! Slice circuits of the shipped models under halo2's `MockProver`: every slice's constraints hold on the
//! integer reference's witness, the claim computed in-circuit equals the reference's, and tampered witnesses
//! are rejected.

use anyhow::{Context, Result};
use halo2_proofs::dev::MockProver;
use halo2_proofs::halo2curves::bn256::Fr;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use veil_core::prove::{fit_slice, slice_circuit, ClaimModel, ClaimRequest, SliceInputs};
use veil_core::quant::QuantizedGraph;
use veil_core::slice::{slice, CostModel, SlicePolicy};
use veil_core::tensor::Tensor;
use veil_core::Model;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sample_input(model: &str) -> Result<Tensor<f32>> {
    let dir = root().join(format!("models/expected/{model}"));
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(entries[0].path())?)?;
    let shape: Vec<usize> = serde_json::from_value(json["input"]["shape"].clone())?;
    let data: Vec<f32> = serde_json::from_value(json["input"]["data"].clone())?;
    Ok(Tensor::new(shape, data)?)
}

fn load(model: &str) -> Result<(QuantizedGraph, Option<Vec<i64>>)> {
    let m = Model::load_onnx(&root().join(format!("models/{model}.onnx")))?;
    let ages = m.task.age_quarters();
    Ok((m.quantize_default()?, ages))
}

fn mock_all_slices(model: &str, policy: SlicePolicy, claim: ClaimRequest) -> Result<()> {
    let (graph, ages) = load(model)?;
    let plan = slice(&graph, &policy, &CostModel::default())?;
    let claims = ClaimModel::new(&graph, ages.as_deref())?;
    let input = graph.quantize_input(0, &sample_input(model)?)?;
    let values = graph.run_all(&[input])?;
    let blinds: HashMap<_, _> = plan
        .slices
        .iter()
        .flat_map(|s| s.inputs.iter().chain(&s.outputs))
        .enumerate()
        .map(|(i, &id)| (id, Fr::from(1000 + i as u64)))
        .collect();
    let inputs = SliceInputs { values: &values, blinds: &blinds, binding: Fr::from(77), claim };
    let last = plan.slices.len() - 1;
    for (s, spec) in plan.slices.iter().zip(claims.slice_specs(&plan)) {
        let c = slice_circuit(&graph, &spec, (s.index == last).then_some(&claims), Some(&inputs))
            .with_context(|| format!("slice {}", s.index))?;
        let k = c.k();
        eprintln!(
            "{model} slice {} ({}): {} rows, table {}, k {k}",
            s.index,
            s.layers.join(","),
            c.rows(),
            c.table_rows()
        );
        let prover = MockProver::run(k, &c, vec![c.instance()])?;
        prover.assert_satisfied();
    }
    Ok(())
}

#[test]
fn gender_slices_are_satisfied() -> Result<()> {
    mock_all_slices("gender-v1", SlicePolicy::Balanced { max_k: 18 }, ClaimRequest::Argmax)
}

#[test]
fn age_slices_are_satisfied_with_the_age_claim() -> Result<()> {
    mock_all_slices("age-v1", SlicePolicy::Balanced { max_k: 19 }, ClaimRequest::AgeAtLeast(72))
}

/// Completeness on every committed sample: each slice lays out (no quotient beyond the clamp table) and its
/// circuit reproduces every tensor of the integer reference bit for bit (`build` compares them).
#[test]
fn every_sample_lays_out_bit_identical_to_the_reference() -> Result<()> {
    for (model, max_k) in [("gender-v1", 18), ("age-v1", 19)] {
        let (graph, ages) = load(model)?;
        let plan = slice(&graph, &SlicePolicy::Balanced { max_k }, &CostModel::default())?;
        let claims = ClaimModel::new(&graph, ages.as_deref())?;
        let specs = claims.slice_specs(&plan);
        let dir = root().join(format!("models/expected/{model}"));
        let mut samples = 0;
        for entry in std::fs::read_dir(dir)? {
            let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(entry?.path())?)?;
            let shape: Vec<usize> = serde_json::from_value(json["input"]["shape"].clone())?;
            let data: Vec<f32> = serde_json::from_value(json["input"]["data"].clone())?;
            let values = graph.run_all(&[graph.quantize_input(0, &Tensor::new(shape, data)?)?])?;
            let blinds = HashMap::new();
            let inputs =
                SliceInputs { values: &values, blinds: &blinds, binding: Fr::from(1), claim: ClaimRequest::Argmax };
            for (i, spec) in specs.iter().enumerate() {
                slice_circuit(&graph, spec, (i + 1 == specs.len()).then_some(&claims), Some(&inputs))
                    .with_context(|| format!("{model} slice {i}"))?;
            }
            samples += 1;
        }
        assert_eq!(samples, 10, "{model}: every committed sample");
    }
    Ok(())
}

/// The rows a node's divisions take: requantizations whose remainder fits one 15-bit limb (after the
/// multiplier's shared power of two is shed) go four per row when neighbours share their coefficients (the
/// outputs of one channel, with its multiplier and bias), the others one per row; averages (a window of
/// four values, the same coefficients everywhere) two per row.
fn division_rows(graph: &veil_core::quant::QuantizedGraph, node: &veil_core::quant::QNode, limb: u32) -> usize {
    use veil_core::quant::QOp;
    let outputs: usize = graph.value(node.output).shape.iter().product();
    let (requant, bias) = match &node.op {
        QOp::Conv { requant, bias, .. } | QOp::Linear { requant, bias, .. } => (requant, bias),
        QOp::AveragePool(_) => return outputs.div_ceil(2),
        _ => return 0,
    };
    let plane = outputs / bias.len();
    let multiplier = |o: usize| requant.multipliers[if requant.multipliers.len() == 1 { 0 } else { o }];
    // Runs of equal coefficients fill rows of four; a run's last row may have spare lanes.
    let (mut rows, mut run, mut key) = (0usize, 0usize, None);
    for (o, &b) in bias.iter().enumerate() {
        let m = multiplier(o);
        let width = requant.shift - m.trailing_zeros().min(requant.shift);
        if width > limb {
            rows += run.div_ceil(4) + plane;
            (run, key) = (0, None);
            continue;
        }
        // The coefficients are the multiplier and `bias·m` (a dead channel, `m = 0`, ignores its bias).
        let coefficients = (m, b as i128 * m as i128);
        if key != Some(coefficients) {
            rows += run.div_ceil(4);
            (run, key) = (0, Some(coefficients));
        }
        run += plane;
    }
    rows + run.div_ceil(4)
}

/// The row profile accounts for every row, and its requantization count is the number of rows the slice's
/// divisions take ([`division_rows`]; no divisor here needs a bound row), so a layout change that silently
/// adds rows per activation shows up.
#[test]
fn row_profile_accounts_for_every_row_of_the_gender_slices() -> Result<()> {
    let (graph, ages) = load("gender-v1")?;
    let plan = slice(&graph, &SlicePolicy::Balanced { max_k: 17 }, &CostModel::default())?;
    let claims = ClaimModel::new(&graph, ages.as_deref())?;
    let specs = claims.slice_specs(&plan);
    let mut requantized = 0;
    let mut limbs = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let (fitted, c) = fit_slice(&graph, spec, (i + 1 == specs.len()).then_some(&claims))?;
        limbs.push(fitted.range_bits);
        let p = c.row_profile();
        assert_eq!(p.total, c.rows(), "slice {i}: total");
        assert_eq!(p.entries().iter().map(|(_, n)| n).sum::<usize>(), p.total, "slice {i}: buckets sum to total");
        assert!(p.poseidon > 0 && p.packing > 0, "slice {i}: boundary commitments are profiled");
        requantized += p.requantization;
    }
    // gender-v1 is one slice, and its many 13- to 15-bit remainders make the wide limbs the smaller circuit.
    assert_eq!(limbs, [15], "one slice with 15-bit limbs");
    let divided: usize = graph.nodes.iter().map(|n| division_rows(&graph, n, 15)).sum();
    let values: usize = graph
        .nodes
        .iter()
        .filter(|n| division_rows(&graph, n, 15) > 0)
        .map(|n| graph.value(n.output).shape.iter().product::<usize>())
        .sum();
    assert!(3 * divided < values, "most divisions share a row with three others: {divided} rows for {values} values");
    assert_eq!(requantized, divided, "division rows as the layout rule says");
    Ok(())
}
