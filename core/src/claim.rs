//! Claims: what a proof reveals about a model's output, defined on the integer reference so that circuits
//! can compute them exactly.
//!
//! - [`ClaimSpec::Output`] reveals the logits (the input of the final softmax, or the graph output when the
//!   graph has none): probabilities are a public function of them (the final softmax of the integer reference).
//! - [`ClaimSpec::Argmax`] reveals the index of the largest *logit* (the input of the final softmax, or the
//!   output itself when the graph has none); the lowest index wins ties.
//! - [`ClaimSpec::AgeAtLeast`] reveals one bit: whether the expected age `Σ pᵢ·ageᵢ` is at least a public
//!   threshold `T`. It is decided without division over the logits `z`:
//!   `S = Σᵢ E[max z − zᵢ] · (4·ageᵢ − 4·T) ≥ 0`, where `E` is the final softmax's own exp table and ages are
//!   counted in quarter years (the bins are 0.25, 1, 2, …, 80). Since `pᵢ = E[…]ᵢ / Σⱼ E[…]ⱼ` up to the
//!   table's rounding and `Σⱼ E[…]ⱼ > 0`, the sign of `S` is the sign of `Σ pᵢ·ageᵢ − T`.

use crate::quant::{QOp, QuantizedGraph};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// What a proof reveals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClaimSpec {
    /// The logits.
    Output,
    /// The index of the largest logit.
    Argmax,
    /// Whether the expected age is at least `threshold_quarters / 4` years.
    AgeAtLeast {
        /// The public threshold in quarter years (18 years = 72).
        threshold_quarters: i64,
    },
}

/// The revealed value of a claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum ClaimValue {
    /// The logits.
    Output(Vec<i64>),
    /// The winning class.
    Argmax(usize),
    /// The predicate's truth.
    AgeAtLeast(bool),
}

/// Why a claim cannot be evaluated on a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// The age predicate needs a graph that ends in softmax over the age bins.
    #[error("the age claim needs a model whose output is a softmax over {bins} age bins: {detail}")]
    NotAnAgeModel {
        /// Bins supplied.
        bins: usize,
        /// What is missing.
        detail: String,
    },
    /// An age bin is not a whole number of quarter years.
    #[error("age bin {0} is not a multiple of 0.25 years")]
    BinResolution(f64),
    /// The witness lacks a tensor the claim reads.
    #[error("the witness has no value for tensor {0:?}")]
    MissingValue(String),
    /// A claim text that does not parse.
    #[error("unknown claim {0:?}: expected output, argmax or age>=YEARS (a multiple of 0.25)")]
    Parse(String),
}

impl std::str::FromStr for ClaimSpec {
    type Err = ClaimError;

    /// Parses `output`, `argmax` or `age>=18` (years, a multiple of 0.25).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ClaimError::Parse(text.to_string());
        match text.trim() {
            "output" => Ok(Self::Output),
            "argmax" => Ok(Self::Argmax),
            other => {
                let years: f64 = other.strip_prefix("age>=").ok_or_else(bad)?.trim().parse().map_err(|_| bad())?;
                let quarters = years * 4.0;
                if !quarters.is_finite() || quarters.fract() != 0.0 || quarters.abs() > 1e6 {
                    return Err(bad());
                }
                Ok(Self::AgeAtLeast { threshold_quarters: quarters as i64 })
            }
        }
    }
}

/// The final softmax node's index, if the graph's (first) output is a softmax.
fn final_softmax(graph: &QuantizedGraph) -> Option<usize> {
    let output = *graph.outputs.first()?;
    graph.nodes.iter().position(|n| n.output == output && matches!(n.op, QOp::Softmax { .. }))
}

/// Evaluates a claim on a full witness (`QuantizedGraph::run_all`). `age_bins` is needed by the age claim.
pub fn evaluate(
    graph: &QuantizedGraph,
    witness: &[Option<Tensor<i64>>],
    spec: &ClaimSpec,
    age_bins: Option<&[f64]>,
) -> Result<ClaimValue, ClaimError> {
    let value = |id: crate::ir::ValueId| {
        witness.get(id.0).and_then(Option::as_ref).ok_or_else(|| ClaimError::MissingValue(graph.value(id).name.clone()))
    };
    let output = *graph.outputs.first().ok_or_else(|| ClaimError::MissingValue("<graph output>".into()))?;
    let softmax = final_softmax(graph);
    let logits_id = softmax.map_or(output, |i| graph.nodes[i].inputs[0]);
    match spec {
        ClaimSpec::Output => Ok(ClaimValue::Output(value(logits_id)?.data().to_vec())),
        ClaimSpec::Argmax => Ok(ClaimValue::Argmax(argmax(value(logits_id)?.data()))),
        ClaimSpec::AgeAtLeast { threshold_quarters } => {
            let bins = age_bins.unwrap_or(&[]);
            let not_age = |detail: &str| ClaimError::NotAnAgeModel { bins: bins.len(), detail: detail.into() };
            let i = softmax.ok_or_else(|| not_age("the output is not produced by a softmax"))?;
            let QOp::Softmax { exp_table, .. } = &graph.nodes[i].op else { unreachable!("final_softmax") };
            let logits = value(logits_id)?.data();
            if logits.len() != bins.len() || bins.is_empty() {
                return Err(not_age(&format!("the softmax has {} inputs", logits.len())));
            }
            let quarters = quarter_years(bins)?;
            Ok(ClaimValue::AgeAtLeast(age_score(logits, exp_table, &quarters, *threshold_quarters) >= 0))
        }
    }
}

/// `S = Σᵢ E[max z − zᵢ] · (ageᵢ − T)` with ages and `T` in quarter years (`E` is 0 past its end).
pub fn age_score(logits: &[i64], exp_table: &[i64], ages_quarters: &[i64], threshold_quarters: i64) -> i128 {
    let max = logits.iter().copied().max().unwrap_or(0);
    logits
        .iter()
        .zip(ages_quarters)
        .map(|(&z, &a)| {
            let e = usize::try_from(max - z).ok().and_then(|d| exp_table.get(d)).copied().unwrap_or(0);
            e as i128 * (a as i128 - threshold_quarters as i128)
        })
        .sum()
}

/// Age bins in whole quarter years.
pub fn quarter_years(bins: &[f64]) -> Result<Vec<i64>, ClaimError> {
    bins.iter()
        .map(|&b| {
            let q = b * 4.0;
            if q.is_finite() && q.fract() == 0.0 && q.abs() < 1e9 {
                Ok(q as i64)
            } else {
                Err(ClaimError::BinResolution(b))
            }
        })
        .collect()
}

/// Index of the largest value; the lowest index wins ties.
fn argmax(values: &[i64]) -> usize {
    values.iter().enumerate().fold((0, i64::MIN), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) }).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_parse() {
        assert_eq!("age>=18".parse::<ClaimSpec>(), Ok(ClaimSpec::AgeAtLeast { threshold_quarters: 72 }));
        assert_eq!("age>=20.25".parse::<ClaimSpec>(), Ok(ClaimSpec::AgeAtLeast { threshold_quarters: 81 }));
        assert_eq!("argmax".parse::<ClaimSpec>(), Ok(ClaimSpec::Argmax));
        for bad in ["age>=18.1", "age>18", "age>=x", "age>=inf", "max"] {
            assert!(bad.parse::<ClaimSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn age_score_sign_follows_the_weighted_mean() {
        // Two bins, 10 and 30 years, equal logits: the mean is 20.
        let table = [1 << 16, 1 << 15, 1 << 14];
        let ages = quarter_years(&[10.0, 30.0]).unwrap();
        assert!(age_score(&[5, 5], &table, &ages, 80) == 0); // exactly 20 ≥ 20
        assert!(age_score(&[5, 5], &table, &ages, 81) < 0);
        // Logit of the 30-year bin one step higher: weights 1/2 and 1: mean 23.3.
        assert!(age_score(&[4, 5], &table, &ages, 92) > 0);
        assert!(age_score(&[4, 5], &table, &ages, 94) < 0);
        // Past the table the weight is zero: only the top bin counts.
        assert!(age_score(&[0, 9], &table, &ages, 119) > 0);
        assert_eq!(quarter_years(&[0.3]), Err(ClaimError::BinResolution(0.3)));
    }
}
