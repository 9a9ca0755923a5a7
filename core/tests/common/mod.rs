//! Shared loading of the operator cases under `tests/data/ops`: each case is a `model.onnx` with an
//! `io.json` holding the inputs and the onnxruntime outputs (see `tests/data/ops/README.md`).

// Each test binary compiles its own copy and uses a different subset.
#![allow(dead_code)]

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use veil_core::tensor::Tensor;

/// The case that uses an op Veil must reject.
pub const UNSUPPORTED_CASE: &str = "unknown_op";

/// A named float tensor as stored in `io.json`: flat row-major data.
#[derive(Deserialize)]
pub struct NamedTensor {
    /// The graph input or output name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values.
    pub data: Vec<f32>,
}

impl NamedTensor {
    /// The tensor, checked against its shape.
    pub fn to_tensor(&self) -> Result<Tensor<f32>> {
        Tensor::new(self.shape.clone(), self.data.clone()).with_context(|| format!("tensor {:?}", self.name))
    }
}

/// The inputs of one case and what onnxruntime computed from them.
#[derive(Deserialize)]
pub struct CaseIo {
    /// Graph inputs in graph order.
    pub inputs: Vec<NamedTensor>,
    /// onnxruntime's outputs in graph order.
    pub outputs: Vec<NamedTensor>,
}

impl CaseIo {
    /// The inputs as tensors.
    pub fn input_tensors(&self) -> Result<Vec<Tensor<f32>>> {
        self.inputs.iter().map(NamedTensor::to_tensor).collect()
    }
}

/// `tests/data/ops` at the repository root.
pub fn ops_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/ops")
}

/// The `model.onnx` of a case.
pub fn model_path(case: &str) -> PathBuf {
    ops_dir().join(case).join("model.onnx")
}

/// Every case directory (one holding a `model.onnx`), sorted by name.
pub fn case_names() -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(ops_dir()).context("listing tests/data/ops")? {
        let path = entry?.path();
        if path.join("model.onnx").is_file() {
            names.push(path.file_name().context("case name")?.to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Parses a case's `io.json`.
pub fn load_io(case: &str) -> Result<CaseIo> {
    let text = std::fs::read_to_string(ops_dir().join(case).join("io.json"))?;
    serde_json::from_str(&text).with_context(|| format!("{case}: io.json"))
}
