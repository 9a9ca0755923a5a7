//! Bit widths of the fixed-point scheme.

use serde::{Deserialize, Serialize};

/// Bit widths used by [`super::quantize`]. Defaults were chosen by measurement on the shipped models
/// (see README, "Quantization").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantConfig {
    /// Signed bits of the graph input.
    pub input_bits: u32,
    /// Signed bits of every intermediate activation.
    pub activation_bits: u32,
    /// Signed bits of weights (symmetric, per output channel).
    pub weight_bits: u32,
    /// Bits of requantization multipliers.
    pub multiplier_bits: u32,
    /// Fractional bits of `exp` inside softmax (`exp(0) = 2^exp_bits`).
    pub exp_bits: u32,
    /// Fractional bits of softmax probabilities and of sigmoid/tanh outputs' extra precision.
    pub probability_bits: u32,
    /// How per-channel weight scales are chosen.
    #[serde(default)]
    pub weight_scales: WeightScales,
}

/// How [`super::quantize`] chooses each output channel's weight scale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightScales {
    /// The smallest power of two that fits the channel's largest weight: every requantization multiplier is
    /// then a power of two, and a requantization's rounding remainder is as narrow as the weights' fraction
    /// bits (one range-check lookup instead of two; see `docs/quantization.md`). The default.
    #[default]
    PowerOfTwo,
    /// `max|W_c| / (2^(bits−1) − 1)`: every channel uses its full width, at the cost of wide multipliers and
    /// remainders.
    Real,
}

impl Default for QuantConfig {
    fn default() -> Self {
        Self {
            input_bits: 12,
            activation_bits: 12,
            weight_bits: 12,
            multiplier_bits: 16,
            exp_bits: 16,
            probability_bits: 16,
            weight_scales: WeightScales::PowerOfTwo,
        }
    }
}

impl QuantConfig {
    /// Checks that every width is in the range where the integer reference cannot overflow
    /// (accumulators are `i64`, requantization products `i128`).
    pub fn validate(&self) -> Result<(), String> {
        let fields = [
            ("input_bits", self.input_bits, 2, 16),
            ("activation_bits", self.activation_bits, 2, 16),
            ("weight_bits", self.weight_bits, 2, 16),
            ("multiplier_bits", self.multiplier_bits, 2, 24),
            ("exp_bits", self.exp_bits, 1, 24),
            ("probability_bits", self.probability_bits, 1, 24),
        ];
        for (name, value, lo, hi) in fields {
            if !(lo..=hi).contains(&value) {
                return Err(format!("{name} = {value} is outside {lo}..={hi}"));
            }
        }
        Ok(())
    }
}
