//! ONNX import: protobuf decoding, constant folding and lowering into the IR.
//!
//! Every supported ONNX op has one short lowering function, grouped by family in the `ops_*` modules and
//! found through [`lowering_for`]. Shape sub-graphs (`Shape`, `Gather`, `Unsqueeze`, `Concat` on
//! constants) are evaluated during import because every shape is static once the batch size is fixed.

mod context;
mod error;
mod ops_const;
mod ops_linear;
mod ops_math;
mod ops_pool;
mod ops_shape;
pub mod proto;

pub use context::Const;
pub use error::ImportError;

use crate::ir::{Graph, ValueId};
use context::{read_tensor, Builder, NodeCx, Slot};
use prost::Message;
use proto::{DimensionValue, ModelProto, ValueInfoProto};

/// Options for [`load_onnx`].
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The size given to a symbolic leading (batch) dimension of a graph input.
    pub batch: usize,
    /// Fold affine layers into neighbouring convolutions and linear layers.
    pub optimize: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self { batch: 1, optimize: true }
    }
}

type Lowering = fn(&mut NodeCx<'_>) -> Result<(), ImportError>;

/// The lowering function for an op type of the default ONNX domain, if Veil supports it.
fn lowering_for(op_type: &str) -> Option<Lowering> {
    Some(match op_type {
        "Conv" => ops_linear::conv,
        "Gemm" => ops_linear::gemm,
        "MatMul" => ops_linear::matmul,
        "BatchNormalization" => ops_linear::batch_normalization,
        "Add" => ops_math::add,
        "Sub" => ops_math::sub,
        "Mul" => ops_math::mul,
        "Div" => ops_math::div,
        "Relu" => ops_math::relu,
        "LeakyRelu" => ops_math::leaky_relu,
        "Clip" => ops_math::clip,
        "Sigmoid" => ops_math::sigmoid,
        "Tanh" => ops_math::tanh,
        "Softmax" => ops_math::softmax,
        "MaxPool" => ops_pool::max_pool,
        "AveragePool" => ops_pool::average_pool,
        "GlobalAveragePool" => ops_pool::global_average_pool,
        "Flatten" => ops_shape::flatten,
        "Reshape" => ops_shape::reshape,
        "Transpose" => ops_shape::transpose,
        "Concat" => ops_shape::concat,
        "Pad" => ops_shape::pad,
        "Squeeze" => ops_shape::squeeze,
        "Unsqueeze" => ops_shape::unsqueeze,
        "Identity" => ops_const::identity,
        "Dropout" => ops_const::identity,
        "Constant" => ops_const::constant,
        "Shape" => ops_const::shape,
        "Gather" => ops_const::gather,
        "Cast" => ops_const::cast,
        "Slice" => ops_const::slice,
        "ConstantOfShape" => ops_const::constant_of_shape,
        _ => return None,
    })
}

/// Reads and imports an ONNX file.
pub fn load_onnx_file(path: &std::path::Path, options: &ImportOptions) -> Result<Graph, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io { path: path.display().to_string(), source })?;
    load_onnx(&bytes, options)
}

/// Imports an ONNX model from its bytes into a static-shape IR graph.
pub fn load_onnx(bytes: &[u8], options: &ImportOptions) -> Result<Graph, ImportError> {
    let model = ModelProto::decode(bytes).map_err(|e| ImportError::Decode { detail: e.to_string() })?;
    let graph = model.graph.as_ref().ok_or(ImportError::MissingGraph)?;
    let mut b = Builder { opset: default_opset(&model)?, ..Builder::default() };
    for init in &graph.initializer {
        let value = read_tensor(init)?;
        b.bind(&init.name, Slot::Const(value));
    }
    let mut inputs = Vec::new();
    let initialized: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    for input in graph.input.iter().filter(|i| !initialized.contains(i.name.as_str())) {
        let shape = input_shape(input, options.batch)?;
        let id = b.add_value(&input.name, shape);
        b.bind(&input.name, Slot::Dynamic(id));
        inputs.push(id);
    }
    if inputs.is_empty() {
        return Err(ImportError::InvalidGraphIo {
            name: graph.name.clone(),
            detail: "the graph has no dynamic input".into(),
        });
    }
    for node in &graph.node {
        let unsupported = || ImportError::UnsupportedOp {
            op_type: if node.domain.is_empty() {
                node.op_type.clone()
            } else {
                format!("{}::{}", node.domain, node.op_type)
            },
            node: if node.name.is_empty() {
                node.output.first().cloned().unwrap_or_default()
            } else {
                node.name.clone()
            },
        };
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(unsupported());
        }
        let lower = lowering_for(&node.op_type).ok_or_else(unsupported)?;
        lower(&mut NodeCx { node, b: &mut b })?;
    }
    let outputs = graph
        .output
        .iter()
        .map(|o| match b.names.get(&o.name) {
            Some(Slot::Dynamic(id)) => Ok(*id),
            Some(Slot::Const(_)) => {
                Err(ImportError::InvalidGraphIo { name: o.name.clone(), detail: "output is a constant".into() })
            }
            None => Err(ImportError::InvalidGraphIo { name: o.name.clone(), detail: "no node produces it".into() }),
        })
        .collect::<Result<Vec<ValueId>, _>>()?;
    let mut ir = b.finish(inputs, outputs);
    if options.optimize {
        ir.optimize();
    }
    Ok(ir)
}

fn default_opset(model: &ModelProto) -> Result<i64, ImportError> {
    let mut version = None;
    for set in &model.opset_import {
        if set.domain.is_empty() || set.domain == "ai.onnx" {
            if !(7..=23).contains(&set.version) {
                return Err(ImportError::UnsupportedOpset { domain: set.domain.clone(), version: set.version });
            }
            version = Some(set.version);
        }
    }
    // Models without an opset_import entry for the default domain are pre-IR-3 files: treat as opset 1.
    version.ok_or(ImportError::UnsupportedOpset { domain: String::new(), version: 1 })
}

fn input_shape(input: &ValueInfoProto, batch: usize) -> Result<Vec<usize>, ImportError> {
    let bad = |detail: String| ImportError::InvalidGraphIo { name: input.name.clone(), detail };
    let tensor =
        input.r#type.as_ref().and_then(|t| t.tensor_type.as_ref()).ok_or_else(|| bad("not a tensor".into()))?;
    if tensor.elem_type != proto::data_type::FLOAT {
        return Err(bad(format!("element type {} is not float32", tensor.elem_type)));
    }
    let dims = &tensor.shape.as_ref().ok_or_else(|| bad("has no shape".into()))?.dim;
    let shape: Vec<usize> = dims
        .iter()
        .enumerate()
        .map(|(axis, d)| match &d.value {
            Some(DimensionValue::DimValue(v)) if *v > 0 => Ok(*v as usize),
            Some(DimensionValue::DimParam(_)) | None if axis == 0 => Ok(batch),
            other => Err(bad(format!("dimension {axis} ({other:?}) must be a positive constant"))),
        })
        .collect::<Result<_, _>>()?;
    if shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).is_none_or(|n| n > context::MAX_ELEMENTS) {
        return Err(bad(format!("shape {shape:?} exceeds {} elements", context::MAX_ELEMENTS)));
    }
    Ok(shape)
}
