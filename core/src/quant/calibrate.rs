//! Calibration: the observed range of every tensor over sample inputs, from the float model.

use crate::ir::Graph;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The smallest and largest value a tensor took over the calibration inputs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// Smallest observed value.
    pub min: f32,
    /// Largest observed value.
    pub max: f32,
}

impl Range {
    /// The largest magnitude.
    pub fn max_abs(&self) -> f32 {
        self.min.abs().max(self.max.abs())
    }
}

/// Observed ranges per tensor name: what [`super::quantize`] turns into fractional bits. Ships with a
/// model as `<model>.calib.json` so every device quantizes identically.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Format version of this file.
    pub schema: u32,
    /// sha256 of the ONNX file the ranges were observed on, when known.
    pub model_sha256: Option<String>,
    /// Names of the calibration inputs.
    pub samples: Vec<String>,
    /// The bit widths to quantize with (the defaults when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<super::QuantConfig>,
    /// Range per tensor name.
    pub ranges: BTreeMap<String, Range>,
}

/// Current calibration file format.
pub const CALIBRATION_SCHEMA: u32 = 1;

impl Calibration {
    /// An empty calibration.
    pub fn new() -> Self {
        Self { schema: CALIBRATION_SCHEMA, ..Self::default() }
    }

    /// Widens the ranges with one inference: `values[i]` is the float value of `graph.values[i]`, if computed.
    pub fn observe(&mut self, graph: &Graph, values: &[Option<Tensor<f32>>]) {
        for (info, value) in graph.values.iter().zip(values) {
            let Some(t) = value else { continue };
            let (lo, hi) =
                t.data().iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            if lo > hi {
                continue;
            }
            let range = self.ranges.entry(info.name.clone()).or_insert(Range { min: lo, max: hi });
            range.min = range.min.min(lo);
            range.max = range.max.max(hi);
        }
    }

    /// Runs the float model on every input set and records the ranges of all tensors.
    #[cfg(feature = "float")]
    pub fn collect<'a>(
        graph: &Graph,
        samples: impl IntoIterator<Item = (String, &'a [Tensor<f32>])>,
    ) -> Result<Self, crate::float::FloatError> {
        let mut calibration = Self::new();
        for (name, inputs) in samples {
            // `run_all` returns the graph inputs too, so their ranges are recorded with the rest.
            let values = crate::float::run_all(graph, inputs)?;
            calibration.observe(graph, &values);
            calibration.samples.push(name);
        }
        Ok(calibration)
    }

    /// Serializes to pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("calibration serializes")
    }

    /// Parses JSON.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}
