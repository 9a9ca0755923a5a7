//! The accuracy report: float model versus its quantized integer reference, sample by sample.

use crate::manifest::Task;
use crate::model::{argmax, verdict, Verdict};
use serde::Serialize;

/// Float versus quantized output for one sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleAccuracy {
    /// Sample name.
    pub sample: String,
    /// "calibration" or "holdout" (whether the sample was used to choose scales).
    pub role: String,
    /// Largest absolute difference between float and quantized probabilities.
    pub max_abs_dprob: f64,
    /// Whether both pick the same class.
    pub argmax_agree: bool,
    /// The float model's verdict.
    pub float: Verdict,
    /// The quantized model's verdict.
    pub quantized: Verdict,
    /// |float − quantized| expected age, for age models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_error: Option<f64>,
}

/// The report over all samples.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccuracyReport {
    /// Model name.
    pub model: String,
    /// One row per sample.
    pub samples: Vec<SampleAccuracy>,
    /// Largest |Δprob| over all samples.
    pub max_abs_dprob: f64,
    /// Whether every sample's argmax agrees.
    pub all_argmax_agree: bool,
    /// Largest expected-age error, for age models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_error: Option<f64>,
}

/// Compares float and quantized probabilities of one sample.
pub fn compare(task: &Task, sample: &str, role: &str, float: &[f64], quantized: &[f64]) -> SampleAccuracy {
    let max_abs_dprob = float.iter().zip(quantized).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    let (fv, qv) = (verdict(task, float), verdict(task, quantized));
    let age_error = match (&fv, &qv) {
        (Verdict::Age { expected_age: a, .. }, Verdict::Age { expected_age: b, .. }) => Some((a - b).abs()),
        _ => None,
    };
    SampleAccuracy {
        sample: sample.to_string(),
        role: role.to_string(),
        max_abs_dprob,
        argmax_agree: argmax(float) == argmax(quantized),
        float: fv,
        quantized: qv,
        age_error,
    }
}

impl AccuracyReport {
    /// Summarises sample rows.
    pub fn new(model: &str, samples: Vec<SampleAccuracy>) -> Self {
        let max_abs_dprob = samples.iter().map(|s| s.max_abs_dprob).fold(0.0, f64::max);
        let all_argmax_agree = samples.iter().all(|s| s.argmax_agree);
        let ages: Vec<f64> = samples.iter().filter_map(|s| s.age_error).collect();
        let max_age_error = (!ages.is_empty()).then(|| ages.iter().copied().fold(0.0, f64::max));
        Self { model: model.to_string(), samples, max_abs_dprob, all_argmax_agree, max_age_error }
    }

    /// A plain-text table for terminals.
    pub fn to_table(&self) -> String {
        let mut out = format!("accuracy of quantized {} vs float\n", self.model);
        out += &format!(
            "{:<22} {:<12} {:>10} {:>7}  {:<28} {:<28}\n",
            "sample", "role", "max|Δp|", "argmax", "float", "quantized"
        );
        for s in &self.samples {
            out += &format!(
                "{:<22} {:<12} {:>10.5} {:>7}  {:<28} {:<28}\n",
                s.sample,
                s.role,
                s.max_abs_dprob,
                if s.argmax_agree { "same" } else { "DIFF" },
                describe(&s.float),
                describe(&s.quantized)
            );
        }
        out += &format!("max |Δprob| {:.5}; argmax agrees on all: {}", self.max_abs_dprob, self.all_argmax_agree);
        if let Some(e) = self.max_age_error {
            out += &format!("; max expected-age error {e:.3} years");
        }
        out
    }
}

/// A short human description of a verdict.
pub fn describe(v: &Verdict) -> String {
    match v {
        Verdict::Age { expected_age, .. } => format!("age {expected_age:.2}"),
        Verdict::Label { label, probability } => format!("{label} ({probability:.4})"),
    }
}
