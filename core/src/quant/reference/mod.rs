//! The integer reference evaluator: Veil's specification of a quantized model's semantics.
//!
//! Integers only. Circuits must reproduce every tensor it computes bit for bit.

mod elementwise;
mod linear;

pub use linear::conv_accumulators_of as conv_accumulators;
pub(crate) mod pool;

use super::rounding::clamp_bits;
use super::{QNode, QOp, QuantizedGraph};
use crate::tensor::{pad, transpose, Tensor};
use elementwise::Binary;
use linear::ConvShape;

/// Why the reference evaluator refused its inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// Wrong number of inputs.
    #[error("the model takes {expected} input(s), {actual} given")]
    InputCount {
        /// Inputs the graph has.
        expected: usize,
        /// Inputs supplied.
        actual: usize,
    },
    /// An input of the wrong shape.
    #[error("input {input:?} must have shape {expected:?}, got {actual:?}")]
    InputShape {
        /// The input name.
        input: String,
        /// Its shape in the model.
        expected: Vec<usize>,
        /// The shape supplied.
        actual: Vec<usize>,
    },
    /// An input value outside its declared bit width.
    #[error("input {input:?} holds {value}, outside its {bits}-bit range")]
    InputRange {
        /// The input name.
        input: String,
        /// The offending value.
        value: i64,
        /// The declared width.
        bits: u32,
    },
}

impl QuantizedGraph {
    /// Runs the integer reference and returns the graph outputs.
    pub fn run(&self, inputs: &[Tensor<i64>]) -> Result<Vec<Tensor<i64>>, ReferenceError> {
        let all = self.run_all(inputs)?;
        // Cloned rather than taken: a graph may list the same value as two outputs.
        Ok(self.outputs.iter().map(|o| all[o.0].clone().expect("outputs are computed")).collect())
    }

    /// Runs the integer reference and returns every tensor, indexed by value id (the full witness).
    pub fn run_all(&self, inputs: &[Tensor<i64>]) -> Result<Vec<Option<Tensor<i64>>>, ReferenceError> {
        if inputs.len() != self.inputs.len() {
            return Err(ReferenceError::InputCount { expected: self.inputs.len(), actual: inputs.len() });
        }
        let mut values: Vec<Option<Tensor<i64>>> = vec![None; self.values.len()];
        for (id, input) in self.inputs.iter().zip(inputs) {
            let info = &self.values[id.0];
            if input.shape() != info.shape.as_slice() {
                return Err(ReferenceError::InputShape {
                    input: info.name.clone(),
                    expected: info.shape.clone(),
                    actual: input.shape().to_vec(),
                });
            }
            if let Some(&value) = input.data().iter().find(|&&v| clamp_bits(v as i128, info.bits) != v) {
                return Err(ReferenceError::InputRange { input: info.name.clone(), value, bits: info.bits });
            }
            values[id.0] = Some(input.clone());
        }
        for node in &self.nodes {
            let out = self.eval(node, &values);
            values[node.output.0] = Some(out);
        }
        Ok(values)
    }

    /// Evaluates one node; its inputs are computed (nodes are topologically ordered).
    fn eval(&self, node: &QNode, values: &[Option<Tensor<i64>>]) -> Tensor<i64> {
        let arg = |i: usize| values[node.inputs[i].0].as_ref().expect("topological order");
        let frac = |i: usize| self.values[node.inputs[i].0].frac;
        let out = &self.values[node.output.0];
        let (fo, bits, shape) = (out.frac, out.bits, out.shape.as_slice());
        let x = arg(0);
        let data = match &node.op {
            QOp::Conv { weight, bias, strides, pads, dilations, group, requant } => {
                let g = ConvShape {
                    strides: *strides,
                    pads: *pads,
                    dilations: *dilations,
                    group: *group,
                    out_shape: shape,
                };
                let acc = linear::conv_accumulators(x, weight, bias, &g);
                let plane = shape[2] * shape[3];
                linear::requantize(&acc, requant, bits, |i| (i / plane) % shape[1])
            }
            QOp::Linear { weight, bias, requant } => {
                let acc = linear::linear_accumulators(x, weight, bias);
                let n = weight.shape()[1];
                linear::requantize(&acc, requant, bits, |i| i % n)
            }
            QOp::MatMul => linear::matmul(x, arg(1), frac(0) + frac(1), fo, bits),
            QOp::Add => elementwise::binary(Binary::Add, (x, frac(0)), (arg(1), frac(1)), out),
            QOp::Sub => elementwise::binary(Binary::Sub, (x, frac(0)), (arg(1), frac(1)), out),
            QOp::Mul => elementwise::binary(Binary::Mul, (x, frac(0)), (arg(1), frac(1)), out),
            QOp::Affine { multiplier, offset, shift } => {
                elementwise::affine(x, multiplier, offset.as_ref(), *shift, bits)
            }
            QOp::Relu => x.data().iter().map(|&v| v.max(0)).collect(),
            QOp::LeakyRelu { alpha, shift } => elementwise::leaky_relu(x, *alpha, *shift, bits),
            QOp::Clip { min, max } => x.data().iter().map(|&v| v.clamp(*min, *max)).collect(),
            QOp::Table { offset, table, .. } => elementwise::table_lookup(x, *offset, table),
            QOp::Softmax { axis, exp_table } => pool::softmax(x, *axis, exp_table, fo),
            QOp::Pad { pads, value } => pad(x, pads, *value).into_data(),
            QOp::MaxPool(p) => pool::max_pool(x, p, shape, bits),
            QOp::AveragePool(p) => pool::average_pool(x, p, shape, frac(0), fo, bits),
            QOp::GlobalAveragePool => pool::global_average_pool(x, frac(0), fo, bits),
            QOp::Reshape => x.data().to_vec(),
            QOp::Transpose { perm } => transpose(x, perm).into_data(),
            QOp::Concat { axis } => {
                let parts: Vec<(&Tensor<i64>, i32)> = (0..node.inputs.len()).map(|i| (arg(i), frac(i))).collect();
                elementwise::concat(&parts, *axis, fo, bits).into_data()
            }
        };
        Tensor::new(shape.to_vec(), data).expect("validated graph: output shape matches")
    }
}
