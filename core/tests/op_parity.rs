//! Operator parity: every case under `tests/data/ops` is imported and run by the float evaluator, and its
//! outputs must match the onnxruntime outputs stored beside it.

mod common;

use anyhow::{bail, ensure, Result};
use common::{case_names, load_io, model_path, ops_dir, UNSUPPORTED_CASE};
use veil_core::float;
use veil_core::ir::Op;
use veil_core::onnx::{load_onnx_file, ImportError, ImportOptions};
use veil_core::tensor::Tensor;

/// Largest absolute difference allowed between the float evaluator and onnxruntime.
const ORT_TOLERANCE: f32 = 1e-4;

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Imports and runs one case; returns the largest difference from onnxruntime over its outputs.
fn run_case(case: &str) -> Result<f32> {
    let graph = load_onnx_file(&model_path(case), &ImportOptions::default())?;
    let io = load_io(case)?;
    let inputs = io.input_tensors()?;
    let outputs = float::run(&graph, &inputs)?;
    ensure!(outputs.len() == io.outputs.len(), "{} outputs, onnxruntime gave {}", outputs.len(), io.outputs.len());
    let mut worst = 0f32;
    for (got, want) in outputs.iter().zip(&io.outputs) {
        ensure!(
            got.shape() == want.shape.as_slice(),
            "output {:?}: shape {:?}, want {:?}",
            want.name,
            got.shape(),
            want.shape
        );
        let diff = max_abs_diff(got.data(), &want.data);
        ensure!(!diff.is_nan(), "output {:?} holds NaN", want.name);
        worst = worst.max(diff);
    }
    Ok(worst)
}

#[test]
fn every_op_case_matches_onnxruntime() -> Result<()> {
    let cases = case_names()?;
    ensure!(cases.len() > 1, "no op cases found under {}", ops_dir().display());
    let mut failures = Vec::new();
    let mut worst = (String::new(), 0f32);
    for case in cases.iter().filter(|c| c.as_str() != UNSUPPORTED_CASE) {
        match run_case(case) {
            Ok(diff) if diff <= ORT_TOLERANCE => {
                println!("{case:24} max |diff| = {diff:.3e}");
                if diff >= worst.1 {
                    worst = (case.clone(), diff);
                }
            }
            Ok(diff) => failures.push(format!("{case}: max |diff| {diff:.3e} > {ORT_TOLERANCE:e}")),
            Err(e) => failures.push(format!("{case}: {e:#}")),
        }
    }
    println!("worst case: {} with max |diff| = {:.3e}", worst.0, worst.1);
    if !failures.is_empty() {
        bail!("{} of {} cases failed:\n{}", failures.len(), cases.len() - 1, failures.join("\n"));
    }
    Ok(())
}

#[test]
fn unknown_op_is_rejected_with_a_typed_error() {
    match load_onnx_file(&model_path(UNSUPPORTED_CASE), &ImportOptions::default()) {
        Err(ImportError::UnsupportedOp { op_type, .. }) => assert_eq!(op_type, "Erf"),
        other => panic!("expected UnsupportedOp for Erf, got {other:?}"),
    }
}

#[test]
fn pytorch_shape_subgraph_folds_away() -> Result<()> {
    let graph = load_onnx_file(&model_path("pytorch_style"), &ImportOptions::default())?;
    let kinds: Vec<&str> = graph.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["Conv", "Relu", "Reshape", "Linear"], "leftover nodes in the IR");
    let Op::Reshape { shape } = &graph.nodes[2].op else { bail!("node 2 is not a Reshape") };
    assert_eq!(shape, &[1, 48]);
    Ok(())
}

#[test]
fn input_errors_are_typed() -> Result<()> {
    let graph = load_onnx_file(&model_path("relu"), &ImportOptions::default())?;
    assert!(matches!(float::run(&graph, &[]), Err(float::FloatError::InputCount { expected: 1, actual: 0 })));
    let wrong = Tensor::full(vec![1, 4, 3, 2], 0.0);
    match float::run(&graph, &[wrong]) {
        Err(float::FloatError::InputShape { name, expected, actual }) => {
            assert_eq!(name, "x");
            assert_eq!((expected, actual), (vec![1, 4, 3, 3], vec![1, 4, 3, 2]));
        }
        other => panic!("expected InputShape, got {other:?}"),
    }
    Ok(())
}
