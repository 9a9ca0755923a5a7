//! Claims on the integer reference of the shipped models, checked against the float model on every sample.

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use veil_core::claim::{evaluate, ClaimSpec, ClaimValue};
use veil_core::manifest::Task;
use veil_core::tensor::Tensor;
use veil_core::Model;

/// Thresholds this close to the float model's expected age may go either way (quantization moves the
/// age by up to ~0.25 year on these samples); farther ones must match the float verdict.
const AGE_MARGIN_YEARS: f64 = 1.0;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// (stored input tensor, stored onnxruntime JSON) for every sample of a model.
fn samples(model: &str) -> Result<Vec<(Tensor<f32>, Value)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root().join(format!("models/expected/{model}")))? {
        let json: Value = serde_json::from_str(&std::fs::read_to_string(entry?.path())?)?;
        let shape: Vec<usize> = serde_json::from_value(json["input"]["shape"].clone())?;
        let data: Vec<f32> = serde_json::from_value(json["input"]["data"].clone())?;
        out.push((Tensor::new(shape, data)?, json));
    }
    Ok(out)
}

#[test]
fn age_claim_agrees_with_the_float_expected_age_away_from_the_threshold() -> Result<()> {
    let model = Model::load_onnx(&root().join("models/age-v1.onnx"))?;
    let Task::Age { bins } = &model.task else { anyhow::bail!("age-v1 is an age model") };
    let graph = model.quantize_default()?;
    let mut decided = 0;
    for (input, expected) in samples("age-v1")? {
        let age = expected["expected_age"].as_f64().context("expected_age")?;
        let witness = graph.run_all(&[graph.quantize_input(0, &input)?])?;
        for years in (0..=80).map(|y| y as f64) {
            if (age - years).abs() < AGE_MARGIN_YEARS {
                continue;
            }
            let spec = ClaimSpec::AgeAtLeast { threshold_quarters: (years * 4.0) as i64 };
            let claim = evaluate(&graph, &witness, &spec, Some(bins))?;
            assert_eq!(claim, ClaimValue::AgeAtLeast(age >= years), "age {age} vs threshold {years}");
            decided += 1;
        }
    }
    assert!(decided > 700, "only {decided} thresholds checked");
    Ok(())
}

#[test]
fn argmax_and_output_claims_read_the_integer_reference() -> Result<()> {
    let model = Model::load_onnx(&root().join("models/gender-v1.onnx"))?;
    let graph = model.quantize_default()?;
    for (input, expected) in samples("gender-v1")? {
        let q = graph.quantize_input(0, &input)?;
        let witness = graph.run_all(std::slice::from_ref(&q))?;
        let want = if expected["label"] == "female" { 0 } else { 1 };
        assert_eq!(evaluate(&graph, &witness, &ClaimSpec::Argmax, None)?, ClaimValue::Argmax(want));
        // The output claim reveals the logits: the softmax's input.
        let softmax = graph.nodes.last().context("nodes")?;
        let logits = witness[softmax.inputs[0].0].as_ref().context("logits")?;
        assert_eq!(evaluate(&graph, &witness, &ClaimSpec::Output, None)?, ClaimValue::Output(logits.data().to_vec()));
        // The gender model has two classes, not 81 age bins: the age claim is refused, typed.
        let age = evaluate(&graph, &witness, &ClaimSpec::AgeAtLeast { threshold_quarters: 72 }, Some(&[1.0, 2.0, 3.0]));
        assert!(matches!(age, Err(veil_core::claim::ClaimError::NotAnAgeModel { .. })));
    }
    Ok(())
}
