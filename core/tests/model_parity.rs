//! Model parity: the shipped models, imported and run by the float evaluator on every stored sample, must
//! reproduce onnxruntime's probabilities, and their size and cost must match the published figures.

use anyhow::{ensure, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use veil_core::float;
use veil_core::ir::Graph;
use veil_core::onnx::{load_onnx_file, ImportOptions};
use veil_core::tensor::Tensor;

/// Largest absolute probability difference allowed between the float evaluator and onnxruntime.
const PROB_TOLERANCE: f32 = 1e-4;

/// Largest difference allowed between the expected age computed here and onnxruntime's, in years.
const AGE_TOLERANCE_YEARS: f64 = 0.01;

/// Relative tolerance on parameter and multiply-accumulate counts.
const STATS_TOLERANCE: f64 = 0.01;

#[derive(Deserialize)]
struct NamedTensor {
    name: String,
    shape: Vec<usize>,
    data: Vec<f32>,
}

#[derive(Deserialize)]
struct Sample {
    input: NamedTensor,
    output: NamedTensor,
    expected_age: Option<f64>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load_model(model: &str) -> Result<Graph> {
    let path = repo_root().join("models").join(format!("{model}.onnx"));
    load_onnx_file(&path, &ImportOptions::default()).with_context(|| format!("importing {}", path.display()))
}

/// Every stored sample of a model, with its file stem, sorted by name.
fn samples(model: &str) -> Result<Vec<(String, Sample)>> {
    let dir = repo_root().join("models/expected").join(model);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let name = p.file_stem().context("sample name")?.to_string_lossy().into_owned();
            let sample = serde_json::from_str(&std::fs::read_to_string(p)?).with_context(|| format!("{name}.json"))?;
            Ok((name, sample))
        })
        .collect()
}

/// The 81 age bins: 0.25 years, then 1 to 80.
fn age_bins() -> Vec<f64> {
    std::iter::once(0.25).chain((1..=80).map(f64::from)).collect()
}

/// Runs every sample of `model` and checks it; returns the worst probability difference and, for the age
/// model, the worst expected-age difference.
fn check_samples(model: &str) -> Result<(f32, f64)> {
    let graph = load_model(model)?;
    let samples = samples(model)?;
    ensure!(!samples.is_empty(), "no samples for {model}");
    let (mut worst_prob, mut worst_age) = (0f32, 0f64);
    for (name, sample) in &samples {
        let input = Tensor::new(sample.input.shape.clone(), sample.input.data.clone())
            .with_context(|| format!("{model}/{name}: input {:?}", sample.input.name))?;
        let outputs = float::run(&graph, &[input]).with_context(|| format!("{model}/{name}"))?;
        let probs = outputs.first().context("the model has no output")?;
        ensure!(probs.shape() == sample.output.shape.as_slice(), "{model}/{name}: output shape {:?}", probs.shape());
        let diff = probs.data().iter().zip(&sample.output.data).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        println!("{model}/{name}: max |Δprob| = {diff:.3e}");
        ensure!(diff <= PROB_TOLERANCE, "{model}/{name}: max |Δprob| {diff:.3e} > {PROB_TOLERANCE:e}");
        worst_prob = worst_prob.max(diff);
        if let Some(expected) = sample.expected_age {
            let bins = age_bins();
            ensure!(probs.len() == bins.len(), "{model}/{name}: {} probabilities for {} bins", probs.len(), bins.len());
            let age: f64 = probs.data().iter().zip(&bins).map(|(&p, &a)| f64::from(p) * a).sum();
            let delta = (age - expected).abs();
            println!("{model}/{name}: age {age:.4} vs {expected:.4} (Δ {delta:.2e})");
            ensure!(delta <= AGE_TOLERANCE_YEARS, "{model}/{name}: age {age} vs onnxruntime's {expected}");
            worst_age = worst_age.max(delta);
        }
    }
    Ok((worst_prob, worst_age))
}

fn assert_close(what: &str, actual: usize, expected: f64) {
    let rel = (actual as f64 - expected).abs() / expected;
    assert!(rel <= STATS_TOLERANCE, "{what}: {actual} is {:.2}% away from {expected:e}", rel * 100.0);
}

#[test]
fn age_model_matches_onnxruntime_on_every_sample() -> Result<()> {
    let (prob, age) = check_samples("age-v1")?;
    println!("age-v1 worst: |Δprob| {prob:.3e}, |Δage| {age:.3e} years");
    Ok(())
}

#[test]
fn gender_model_matches_onnxruntime_on_every_sample() -> Result<()> {
    let (prob, _) = check_samples("gender-v1")?;
    println!("gender-v1 worst: |Δprob| {prob:.3e}");
    Ok(())
}

#[test]
fn age_model_stats_match_published_figures() -> Result<()> {
    let stats = load_model("age-v1")?.stats();
    println!("age-v1: {} Conv, {} params, {} MACs", stats.count("Conv"), stats.params, stats.macs);
    assert_eq!(stats.count("Conv"), 11, "Conv layers of age-v1");
    assert_close("age-v1 params", stats.params, 2.69e6);
    assert_close("age-v1 MACs", stats.macs, 63.4e6);
    Ok(())
}

#[test]
fn gender_model_stats_match_published_figures() -> Result<()> {
    let stats = load_model("gender-v1")?.stats();
    println!("gender-v1: {} Conv, {} params, {} MACs", stats.count("Conv"), stats.params, stats.macs);
    assert_close("gender-v1 MACs", stats.macs, 24.5e6);
    Ok(())
}
