//! The model facade: an imported graph with its manifest, and what its output means.

use crate::error::Error;
use crate::ir::Graph;
use crate::manifest::{ModelManifest, Task};
use crate::quant::{Calibration, QuantConfig, QuantizedGraph};
use crate::tensor::Tensor;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// An imported model with its manifest.
#[derive(Clone, Debug)]
pub struct Model {
    /// The manifest that describes the model.
    pub manifest: ModelManifest,
    /// Where the manifest was found (calibration and other paths are relative to its directory).
    pub manifest_path: PathBuf,
    /// The float graph.
    pub graph: Graph,
    /// The validated task.
    pub task: Task,
}

/// What an output vector of probabilities says.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "task", rename_all = "lowercase")]
pub enum Verdict {
    /// Age estimate.
    Age {
        /// `Σ pᵢ·ageᵢ` in years.
        expected_age: f64,
        /// The most probable bins, `(age, probability)`, best first.
        top: Vec<(f64, f64)>,
    },
    /// Gender (or any classifier): the most probable label.
    #[serde(rename = "label")]
    Label {
        /// The winning label.
        label: String,
        /// Its probability.
        probability: f64,
    },
}

impl Model {
    /// Loads an ONNX model and finds its manifest by content in the same directory.
    #[cfg(feature = "onnx")]
    pub fn load_onnx(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path)
            .map_err(|source| crate::onnx::ImportError::Io { path: path.display().to_string(), source })?;
        let (manifest, manifest_path) = crate::manifest::find_for_model(path, &bytes)?;
        let graph = crate::onnx::load_onnx(&bytes, &crate::onnx::ImportOptions::default())?;
        let task = manifest.task()?;
        let produced = graph.shape(graph.outputs[0]).to_vec();
        if produced != manifest.output.shape {
            return Err(Error::OutputShape { expected: manifest.output.shape.clone(), actual: produced });
        }
        Ok(Self { manifest, manifest_path, graph, task })
    }

    /// The directory holding the manifest.
    pub fn dir(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }

    /// Runs the float model on one preprocessed input and returns its output probabilities.
    #[cfg(feature = "float")]
    pub fn run_float(&self, input: &Tensor<f32>) -> Result<Vec<f64>, Error> {
        let outputs = crate::float::run(&self.graph, std::slice::from_ref(input))?;
        Ok(outputs[0].data().iter().map(|&p| p as f64).collect())
    }

    /// The calibration that ships with the model.
    pub fn default_calibration(&self) -> Result<Calibration, Error> {
        let path = self.manifest.calibration_path(self.dir());
        let err = |detail: String| Error::Calibration { path: path.clone(), detail };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| err(format!("{e} (run `veil quantize MODEL --calib DIR --save-calibration`)")))?;
        let calibration = Calibration::from_json(&text).map_err(|e| err(e.to_string()))?;
        if calibration.model_sha256.as_deref().is_some_and(|s| !s.eq_ignore_ascii_case(&self.manifest.sha256)) {
            return Err(err("was made for another model (sha256 differs)".into()));
        }
        Ok(calibration)
    }

    /// Quantizes with a calibration, using the config it pins (or the defaults).
    pub fn quantize(&self, calibration: &Calibration) -> Result<QuantizedGraph, Error> {
        let config = calibration.config.clone().unwrap_or_default();
        Ok(crate::quant::quantize(&self.graph, calibration, &config)?)
    }

    /// Quantizes with the calibration that ships with the model.
    pub fn quantize_default(&self) -> Result<QuantizedGraph, Error> {
        self.quantize(&self.default_calibration()?)
    }

    /// Reads an output probability vector according to the task.
    pub fn verdict(&self, probabilities: &[f64]) -> Verdict {
        verdict(&self.task, probabilities)
    }
}

/// Runs the integer reference on a float input: quantize the input, run, dequantize the first output.
pub fn run_quantized(graph: &QuantizedGraph, input: &Tensor<f32>) -> Result<Vec<f64>, Error> {
    let q = graph.quantize_input(0, input)?;
    let out = graph.run(std::slice::from_ref(&q))?;
    Ok(graph.dequantize(graph.outputs[0], &out[0]).into_data())
}

/// Reads an output probability vector according to a task.
pub fn verdict(task: &Task, probabilities: &[f64]) -> Verdict {
    match task {
        Task::Age { bins } => {
            let expected_age = bins.iter().zip(probabilities).map(|(a, p)| a * p).sum();
            let mut top: Vec<(f64, f64)> = bins.iter().copied().zip(probabilities.iter().copied()).collect();
            top.sort_by(|a, b| b.1.total_cmp(&a.1));
            top.truncate(5);
            Verdict::Age { expected_age, top }
        }
        Task::Gender { labels } => label_verdict(labels, probabilities),
        Task::Classifier { labels } => label_verdict(labels, probabilities),
    }
}

fn label_verdict(labels: &[String], probabilities: &[f64]) -> Verdict {
    let best = argmax(probabilities);
    Verdict::Label {
        label: labels.get(best).cloned().unwrap_or_default(),
        probability: probabilities.get(best).copied().unwrap_or(0.0),
    }
}

/// Index of the largest value (the first one on ties).
pub fn argmax(values: &[f64]) -> usize {
    values.iter().enumerate().fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) }).0
}

/// Checks a quantization config from the command line or a file.
pub fn validate_config(config: &QuantConfig) -> Result<(), Error> {
    config.validate().map_err(|e| Error::Quantize(crate::quant::QuantizeError::Config(e)))
}
