//! Quantization: chooses every tensor's fixed-point format from calibration and lowers each float op to
//! its integer form. Floats appear only here, at translate time; the reference evaluator has none.

use super::{Calibration, QNode, QOp, QValue, QuantConfig, QuantizedGraph, Requant, TableFunction, WeightScales};
use crate::ir::{Affine, Graph, Node, Op};
use crate::tensor::Tensor;

/// Why a graph could not be quantized.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuantizeError {
    /// The configuration is out of range.
    #[error("invalid quantization config: {0}")]
    Config(String),
    /// The model's constants do not fit the integer format (e.g. weights of absurd magnitude).
    #[error("the quantized model is not representable: {0}")]
    Unrepresentable(String),
    /// Calibration did not observe a tensor that needs a range.
    #[error("calibration has no range for tensor {value:?}; recalibrate with this model")]
    MissingRange {
        /// The tensor name.
        value: String,
    },
}

/// Quantizes a float graph with the ranges of `calibration` and the widths of `config`.
pub fn quantize(
    graph: &Graph,
    calibration: &Calibration,
    config: &QuantConfig,
) -> Result<QuantizedGraph, QuantizeError> {
    config.validate().map_err(QuantizeError::Config)?;
    let values = choose_formats(graph, calibration, config)?;
    let nodes = graph
        .nodes
        .iter()
        .map(|node| {
            let fi = values[node.inputs[0].0].frac;
            let out = &values[node.output.0];
            QNode {
                name: node.name.clone(),
                op: lower_op(node, fi, out, &values, config),
                inputs: node.inputs.clone(),
                output: node.output,
            }
        })
        .collect();
    let quantized = QuantizedGraph {
        config: config.clone(),
        values,
        nodes,
        inputs: graph.inputs.clone(),
        outputs: graph.outputs.clone(),
    };
    // The loader's checks hold for what the quantizer emits too: absurd weights surface here, typed.
    quantized.validate().map_err(|e| QuantizeError::Unrepresentable(e.to_string()))?;
    Ok(quantized)
}

/// Largest `frac` such that `magnitude · 2^frac` fits in `bits` signed bits.
fn frac_for(magnitude: f32, bits: u32) -> i32 {
    let limit = ((1u64 << (bits - 1)) - 1) as f64;
    if !(magnitude.is_finite() && magnitude > 0.0) {
        return bits as i32 - 1;
    }
    ((limit / magnitude as f64).log2().floor() as i32).clamp(-32, 40)
}

fn choose_formats(
    graph: &Graph,
    calibration: &Calibration,
    config: &QuantConfig,
) -> Result<Vec<QValue>, QuantizeError> {
    let mut values: Vec<QValue> = graph
        .values
        .iter()
        .map(|v| QValue { name: v.name.clone(), shape: v.shape.clone(), frac: 0, bits: config.activation_bits })
        .collect();
    let range = |id: crate::ir::ValueId| {
        let name = &graph.values[id.0].name;
        calibration.ranges.get(name).copied().ok_or_else(|| QuantizeError::MissingRange { value: name.clone() })
    };
    for &input in &graph.inputs {
        values[input.0].bits = config.input_bits;
        values[input.0].frac = frac_for(range(input)?.max_abs(), config.input_bits);
    }
    let consumers = |id| graph.nodes.iter().filter(move |n: &&Node| n.inputs.contains(&id));
    for node in &graph.nodes {
        let input = values[node.inputs[0].0].clone();
        let out = &mut values[node.output.0];
        match &node.op {
            Op::Relu
            | Op::LeakyRelu { .. }
            | Op::Clip { .. }
            | Op::Pad(_)
            | Op::MaxPool(_)
            | Op::Reshape { .. }
            | Op::Transpose { .. } => {
                out.frac = input.frac;
                out.bits = input.bits;
            }
            Op::Softmax { .. } => {
                out.frac = config.probability_bits as i32;
                out.bits = config.probability_bits + 2;
            }
            Op::Sigmoid | Op::Tanh => out.frac = config.activation_bits as i32 - 1,
            _ => {
                let r = range(node.output)?;
                // A tensor only ever read through ReLU needs no room for its negative values: clamping
                // them to the most negative code and then applying ReLU gives 0 either way.
                let only_relu =
                    !graph.outputs.contains(&node.output) && consumers(node.output).all(|c| matches!(c.op, Op::Relu));
                let magnitude = if only_relu { r.max.max(0.0) } else { r.max_abs() };
                out.frac = frac_for(magnitude, config.activation_bits);
            }
        }
    }
    Ok(values)
}

fn lower_op(node: &Node, fi: i32, out: &QValue, values: &[QValue], config: &QuantConfig) -> QOp {
    let fo = out.frac;
    let in_bits = values[node.inputs[0].0].bits;
    let to_int = |v: f64, frac: i32, bits: u32| {
        let limit = (1i64 << (bits - 1)) as f64;
        (v * (frac as f64).exp2()).round().clamp(-limit, limit - 1.0) as i64
    };
    match &node.op {
        Op::Conv(c) => {
            let (weight, scales) = quantize_weights(&c.weight, 0, config);
            let bias = quantize_bias(c.bias.as_ref(), &scales, fi);
            let requant = requant(&scales, fi, fo, config.multiplier_bits);
            QOp::Conv {
                weight,
                bias,
                strides: c.strides,
                pads: c.pads,
                dilations: c.dilations,
                group: c.group,
                requant,
            }
        }
        Op::Linear(l) => {
            let (weight, scales) = quantize_weights(&l.weight, 1, config);
            let bias = quantize_bias(l.bias.as_ref(), &scales, fi);
            QOp::Linear { weight, bias, requant: requant(&scales, fi, fo, config.multiplier_bits) }
        }
        Op::MatMul => QOp::MatMul,
        Op::Add => QOp::Add,
        Op::Sub => QOp::Sub,
        Op::Mul => QOp::Mul,
        Op::Affine(a) => lower_affine(a, fi, fo, config.multiplier_bits),
        Op::Relu => QOp::Relu,
        Op::LeakyRelu { alpha } => QOp::LeakyRelu { alpha: (*alpha as f64 * 65536.0).round() as i64, shift: 16 },
        Op::Clip { min, max } => {
            QOp::Clip { min: to_int(*min as f64, fi, in_bits), max: to_int(*max as f64, fi, in_bits) }
        }
        Op::Sigmoid => table(TableFunction::Sigmoid, fi, in_bits, fo, out.bits),
        Op::Tanh => table(TableFunction::Tanh, fi, in_bits, fo, out.bits),
        Op::Softmax { axis } => QOp::Softmax { axis: *axis, exp_table: exp_table(fi, in_bits, config.exp_bits) },
        Op::Pad(p) => QOp::Pad { pads: p.pads.clone(), value: to_int(p.value as f64, fi, in_bits) },
        Op::MaxPool(p) => QOp::MaxPool(p.clone()),
        Op::AveragePool(p) => QOp::AveragePool(p.clone()),
        Op::GlobalAveragePool => QOp::GlobalAveragePool,
        Op::Reshape { .. } => QOp::Reshape,
        Op::Transpose { perm } => QOp::Transpose { perm: perm.clone() },
        Op::Concat { axis } => QOp::Concat { axis: *axis },
    }
}

/// Symmetric per-channel weights along `axis` (0 for conv `[out, …]`, 1 for linear `[in, out]`):
/// returns integer weights and each channel's scale (a power of two unless `config.weight_scales` is `Real`).
fn quantize_weights(w: &Tensor<f32>, axis: usize, config: &QuantConfig) -> (Tensor<i64>, Vec<f64>) {
    let bits = config.weight_bits;
    let shape = w.shape();
    let channels = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let channel_of = |i: usize| (i / inner) % channels;
    let mut max_abs = vec![0f64; channels];
    for (i, &v) in w.data().iter().enumerate() {
        let c = channel_of(i);
        max_abs[c] = max_abs[c].max((v as f64).abs());
    }
    let limit = ((1i64 << (bits - 1)) - 1) as f64;
    // Channels far weaker than the layer's strongest (dead channels: zero or denormal weights) share a floor
    // scale 2^-16 below it: finer scales would only yield multipliers that round to zero and biases that
    // overflow the accumulator.
    let layer_max = max_abs.iter().cloned().fold(0.0, f64::max);
    let floor = if layer_max > 0.0 { layer_max * (-16f64).exp2() } else { 1.0 };
    let fit = |m: f64| m.max(floor) / limit;
    let scales: Vec<f64> = match config.weight_scales {
        WeightScales::Real => max_abs.iter().map(|&m| fit(m)).collect(),
        // The smallest power of two not below the real scale, so the largest weight still fits.
        WeightScales::PowerOfTwo => max_abs.iter().map(|&m| fit(m).log2().ceil().exp2()).collect(),
    };
    let data = w.data().iter().enumerate().map(|(i, &v)| (v as f64 / scales[channel_of(i)]).round() as i64).collect();
    (Tensor::new(shape.to_vec(), data).expect("same shape"), scales)
}

fn quantize_bias(bias: Option<&Tensor<f32>>, scales: &[f64], fi: i32) -> Vec<i64> {
    match bias {
        None => vec![0; scales.len()],
        Some(b) => {
            // A bias beyond ±2^46 accumulator units saturates every output anyway; the clamp keeps sums in i64.
            let limit = (1u64 << 46) as f64;
            let to_int = |(&v, s): (&f32, &f64)| (v as f64 / (s * (-fi as f64).exp2())).round().clamp(-limit, limit);
            b.data().iter().zip(scales).map(|p| to_int(p) as i64).collect()
        }
    }
}

/// The largest shift that keeps every `real · 2^shift` within `bits` signed bits.
fn shift_for(max_real: f64, bits: u32) -> u32 {
    let limit = ((1u64 << (bits - 1)) - 1) as f64;
    if !(max_real.is_finite() && max_real > 0.0) {
        return 0;
    }
    ((limit / max_real).log2().floor()).clamp(0.0, 62.0) as u32
}

fn requant(scales: &[f64], fi: i32, fo: i32, bits: u32) -> Requant {
    let reals: Vec<f64> = scales.iter().map(|s| s * ((fo - fi) as f64).exp2()).collect();
    let shift = shift_for(reals.iter().cloned().fold(0.0, f64::max), bits);
    let multipliers = reals.iter().map(|r| (r * (shift as f64).exp2()).round() as i64).collect();
    Requant { multipliers, shift }
}

fn lower_affine(a: &Affine, fi: i32, fo: i32, bits: u32) -> QOp {
    let scale = a.scale.clone().unwrap_or_else(|| Tensor::scalar(1.0));
    let ratio = ((fo - fi) as f64).exp2();
    let max_real = scale.data().iter().map(|&s| (s as f64 * ratio).abs()).fold(0.0, f64::max);
    let shift = shift_for(max_real, bits);
    let multiplier = scale.map(|&s| (s as f64 * ratio * (shift as f64).exp2()).round() as i64);
    let offset = a.offset.as_ref().map(|o| o.map(|&v| (v as f64 * ((fo + shift as i32) as f64).exp2()).round() as i64));
    QOp::Affine { multiplier, offset, shift }
}

fn table(function: TableFunction, fi: i32, in_bits: u32, fo: i32, out_bits: u32) -> QOp {
    let lo = -(1i64 << (in_bits - 1));
    let limit = (1i64 << (out_bits - 1)) as f64;
    let table = (0..(1i64 << in_bits))
        .map(|i| {
            let x = (lo + i) as f64 * (-fi as f64).exp2();
            let y = match function {
                TableFunction::Sigmoid => 1.0 / (1.0 + (-x).exp()),
                TableFunction::Tanh => x.tanh(),
            };
            (y * (fo as f64).exp2()).round().clamp(-limit, limit - 1.0) as i64
        })
        .collect();
    QOp::Table { function, offset: lo, table }
}

/// `round(2^exp_bits · exp(−d · 2^−frac))` for `d = 0, 1, …` up to the last non-zero entry (at most the
/// input range, the largest possible `max − x`).
fn exp_table(fi: i32, in_bits: u32, exp_bits: u32) -> Vec<i64> {
    let one = (exp_bits as f64).exp2();
    let mut table = Vec::new();
    for d in 0..(1i64 << in_bits) {
        let e = (one * (-(d as f64) * (-fi as f64).exp2()).exp()).round() as i64;
        if e == 0 {
            break;
        }
        table.push(e);
    }
    table
}
