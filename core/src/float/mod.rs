//! The float evaluator: runs an IR [`Graph`] in f32 on candle-core CPU tensors.
//!
//! It is the reference the quantized graph is measured against and the source of calibration ranges
//! ([`run_all`] keeps every intermediate value). Operators map onto candle ops where candle has them;
//! the few semantics candle lacks (asymmetric padding, per-axis strides, pooling padding rules) are
//! built from explicit padding and masks around candle's kernels, one file per operator family.

mod conv;
mod elementwise;
mod error;
mod layout;
mod pool;

pub use error::FloatError;

use crate::ir::{Graph, Node, Op};
use crate::tensor::Tensor;
use candle_core::{Device, Tensor as CTensor};

/// Evaluates `graph` on `inputs` (one per graph input, in order) and returns the graph outputs in order.
pub fn run(graph: &Graph, inputs: &[Tensor<f32>]) -> Result<Vec<Tensor<f32>>, FloatError> {
    let values = evaluate(graph, inputs)?;
    graph
        .outputs
        .iter()
        .map(|id| {
            let name = graph.values.get(id.0).map_or_else(|| format!("#{}", id.0), |v| v.name.clone());
            let value = values
                .get(id.0)
                .and_then(Option::as_ref)
                .ok_or(FloatError::UndefinedValue { reader: "graph output".into(), value: id.0 })?;
            from_candle(value).map_err(|source| FloatError::candle(&name, "output", source))
        })
        .collect()
}

/// Evaluates `graph` on `inputs` and returns every value of the graph, indexed by `ValueId.0`: graph
/// inputs, every node output, and `None` for values no node computes (left over by graph rewrites).
pub fn run_all(graph: &Graph, inputs: &[Tensor<f32>]) -> Result<Vec<Option<Tensor<f32>>>, FloatError> {
    let values = evaluate(graph, inputs)?;
    values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            value
                .as_ref()
                .map(|v| from_candle(v).map_err(|source| FloatError::candle(&graph.values[i].name, "output", source)))
                .transpose()
        })
        .collect()
}

/// Runs every node in order, returning the candle value of every graph value that was computed.
fn evaluate(graph: &Graph, inputs: &[Tensor<f32>]) -> Result<Vec<Option<CTensor>>, FloatError> {
    if inputs.len() != graph.inputs.len() {
        return Err(FloatError::InputCount { expected: graph.inputs.len(), actual: inputs.len() });
    }
    let mut values: Vec<Option<CTensor>> = vec![None; graph.values.len()];
    for (id, input) in graph.inputs.iter().zip(inputs) {
        let info =
            graph.values.get(id.0).ok_or(FloatError::UndefinedValue { reader: "graph input".into(), value: id.0 })?;
        if input.shape() != info.shape.as_slice() {
            return Err(FloatError::InputShape {
                name: info.name.clone(),
                expected: info.shape.clone(),
                actual: input.shape().to_vec(),
            });
        }
        values[id.0] = Some(to_candle(input).map_err(|source| FloatError::candle(&info.name, "input", source))?);
    }
    for node in &graph.nodes {
        let args = node
            .inputs
            .iter()
            .map(|id| {
                values
                    .get(id.0)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| FloatError::UndefinedValue { reader: node.name.clone(), value: id.0 })
            })
            .collect::<Result<Vec<&CTensor>, _>>()?;
        let expected = graph
            .values
            .get(node.output.0)
            .map(|v| v.shape.as_slice())
            .ok_or_else(|| FloatError::UndefinedValue { reader: node.name.clone(), value: node.output.0 })?;
        let output = eval_node(node, &args, expected)?;
        values[node.output.0] = Some(output);
    }
    Ok(values)
}

/// Evaluates one node and checks its result against the shape the graph declares for it.
fn eval_node(node: &Node, args: &[&CTensor], expected: &[usize]) -> Result<CTensor, FloatError> {
    let arity = match node.op {
        Op::MatMul | Op::Add | Op::Sub | Op::Mul => Some(2),
        Op::Concat { .. } => None,
        _ => Some(1),
    };
    if arity.is_some_and(|n| n != args.len()) || args.is_empty() {
        return Err(FloatError::InputArity {
            node: node.name.clone(),
            op: node.op.kind(),
            expected: arity.unwrap_or(1),
            actual: args.len(),
        });
    }
    let output =
        dispatch(&node.op, args, expected).map_err(|source| FloatError::candle(&node.name, node.op.kind(), source))?;
    if output.dims() != expected {
        return Err(FloatError::OutputShape {
            node: node.name.clone(),
            op: node.op.kind(),
            expected: expected.to_vec(),
            actual: output.dims().to_vec(),
        });
    }
    Ok(output)
}

/// Applies `op` to its (arity-checked) arguments; `out_shape` is the declared output shape.
fn dispatch(op: &Op, args: &[&CTensor], out_shape: &[usize]) -> candle_core::Result<CTensor> {
    let x = args[0];
    match op {
        Op::Conv(c) => conv::conv(x, c),
        Op::Linear(l) => conv::linear(x, l),
        Op::MatMul => conv::matmul(x, args[1]),
        Op::Add => x.broadcast_add(args[1]),
        Op::Sub => x.broadcast_sub(args[1]),
        Op::Mul => x.broadcast_mul(args[1]),
        Op::Affine(a) => elementwise::affine(x, a),
        Op::Relu => x.relu(),
        Op::LeakyRelu { alpha } => elementwise::leaky_relu(x, *alpha),
        Op::Clip { min, max } => x.clamp(*min, *max),
        Op::Sigmoid => elementwise::sigmoid(x),
        Op::Tanh => x.tanh(),
        Op::Softmax { axis } => elementwise::softmax(x, *axis),
        Op::Pad(p) => layout::pad(x, p),
        Op::MaxPool(p) => pool::max_pool(x, p, out_shape),
        Op::AveragePool(p) => pool::average_pool(x, p, out_shape),
        Op::GlobalAveragePool => x.mean_keepdim((2, 3)),
        Op::Reshape { shape } => x.reshape(shape.as_slice()),
        Op::Transpose { perm } => x.permute(perm.as_slice())?.contiguous(),
        Op::Concat { axis } => CTensor::cat(args, *axis),
    }
}

/// Copies a Veil tensor into a candle CPU tensor.
fn to_candle(tensor: &Tensor<f32>) -> candle_core::Result<CTensor> {
    CTensor::from_slice(tensor.data(), tensor.shape(), &Device::Cpu)
}

/// Copies a candle tensor back into a Veil tensor.
fn from_candle(tensor: &CTensor) -> candle_core::Result<Tensor<f32>> {
    let data = tensor.flatten_all()?.to_vec1::<f32>()?;
    Tensor::new(tensor.dims().to_vec(), data).map_err(|e| candle_core::Error::Msg(e.to_string()))
}

/// A deterministic pseudo-random tensor with elements in `[-1, 1)` (tests only).
#[cfg(test)]
pub(crate) fn seeded_tensor(shape: &[usize], seed: u64) -> Tensor<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let data = (0..shape.iter().product::<usize>())
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::new(shape.to_vec(), data).expect("length matches the shape")
}
