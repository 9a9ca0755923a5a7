//! Import state: what every ONNX name is bound to, and helpers that read node attributes and inputs.

use super::error::ImportError;
use super::proto::{data_type, AttributeProto, NodeProto, TensorProto};
use crate::ir::{infer_output_shape, Graph, Node, Op, ValueId, ValueInfo};
use crate::tensor::Tensor;
use std::collections::HashMap;

/// The most elements any tensor of an imported graph may hold (2^28: 1 GiB of f32).
pub const MAX_ELEMENTS: usize = 1 << 28;

/// A constant known at import time.
#[derive(Clone, Debug, PartialEq)]
pub enum Const {
    /// Float data (ONNX float and double).
    F32(Tensor<f32>),
    /// Integer data (ONNX int32, int64 and bool), used by shape computations.
    I64(Tensor<i64>),
}

impl Const {
    /// The shape of the constant.
    pub fn shape(&self) -> &[usize] {
        match self {
            Const::F32(t) => t.shape(),
            Const::I64(t) => t.shape(),
        }
    }

    /// The constant as floats.
    pub fn to_f32(&self) -> Tensor<f32> {
        match self {
            Const::F32(t) => t.clone(),
            Const::I64(t) => t.map(|&v| v as f32),
        }
    }

    /// The constant as integers (floats are truncated toward zero, as ONNX `Cast` does).
    pub fn to_i64(&self) -> Tensor<i64> {
        match self {
            Const::F32(t) => t.map(|&v| v as i64),
            Const::I64(t) => t.clone(),
        }
    }
}

/// What an ONNX value name is bound to.
#[derive(Clone, Debug)]
pub enum Slot {
    /// A tensor computed at run time.
    Dynamic(ValueId),
    /// A constant folded at import time.
    Const(Const),
}

/// The graph under construction.
#[derive(Default)]
pub struct Builder {
    pub(crate) names: HashMap<String, Slot>,
    pub(crate) graph_values: Vec<ValueInfo>,
    pub(crate) nodes: Vec<Node>,
    /// Version of the default ONNX opset.
    pub(crate) opset: i64,
}

/// One node being lowered, with the builder it writes into.
pub struct NodeCx<'a> {
    /// The ONNX node.
    pub node: &'a NodeProto,
    /// The builder.
    pub b: &'a mut Builder,
}

impl Builder {
    /// Binds a name to a slot.
    pub fn bind(&mut self, name: &str, slot: Slot) {
        self.names.insert(name.to_string(), slot);
    }

    /// Adds a fresh dynamic value.
    pub fn add_value(&mut self, name: &str, shape: Vec<usize>) -> ValueId {
        self.graph_values.push(ValueInfo { name: name.to_string(), shape });
        ValueId(self.graph_values.len() - 1)
    }

    /// Finishes the graph.
    pub fn finish(self, inputs: Vec<ValueId>, outputs: Vec<ValueId>) -> Graph {
        Graph { values: self.graph_values, nodes: self.nodes, inputs, outputs }
    }
}

impl NodeCx<'_> {
    /// The node's name, or its first output's when it has none.
    pub fn name(&self) -> String {
        if self.node.name.is_empty() {
            self.node.output.first().cloned().unwrap_or_default()
        } else {
            self.node.name.clone()
        }
    }

    /// The default-domain opset version the model imports.
    pub fn opset(&self) -> i64 {
        self.b.opset
    }

    /// An `InvalidNode` error for this node.
    pub fn invalid(&self, detail: impl Into<String>) -> ImportError {
        ImportError::InvalidNode { node: self.name(), op_type: self.node.op_type.clone(), detail: detail.into() }
    }

    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    /// An integer attribute, or `default` when absent.
    pub fn attr_int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).map_or(default, |a| a.i)
    }

    /// A float attribute, or `default` when absent.
    pub fn attr_float(&self, name: &str, default: f32) -> f32 {
        self.attr(name).map_or(default, |a| a.f)
    }

    /// An integer-list attribute, if present.
    pub fn attr_ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attr(name).map(|a| a.ints.clone())
    }

    /// A float-list attribute, if present.
    pub fn attr_floats(&self, name: &str) -> Option<Vec<f32>> {
        self.attr(name).map(|a| a.floats.clone())
    }

    /// A string attribute, or `default` when absent.
    pub fn attr_string(&self, name: &str, default: &str) -> String {
        self.attr(name).map_or(default.to_string(), |a| String::from_utf8_lossy(&a.s).into_owned())
    }

    /// A tensor attribute, if present.
    pub fn attr_tensor(&self, name: &str) -> Result<Option<Const>, ImportError> {
        self.attr(name).and_then(|a| a.t.as_ref()).map(read_tensor).transpose()
    }

    /// A list of non-negative sizes from an integer attribute.
    pub fn attr_sizes(&self, name: &str, default: Vec<usize>) -> Result<Vec<usize>, ImportError> {
        match self.attr_ints(name) {
            None => Ok(default),
            Some(v) => v
                .iter()
                .map(|&x| {
                    usize::try_from(x).map_err(|_| self.invalid(format!("attribute {name} has negative entry {x}")))
                })
                .collect(),
        }
    }

    /// Number of inputs actually given (trailing empty names do not count).
    pub fn input_count(&self) -> usize {
        self.node.input.iter().rposition(|n| !n.is_empty()).map_or(0, |i| i + 1)
    }

    /// The slot of input `i`, or `None` when the input is omitted.
    pub fn optional_input(&self, i: usize) -> Result<Option<Slot>, ImportError> {
        match self.node.input.get(i) {
            None => Ok(None),
            Some(name) if name.is_empty() => Ok(None),
            Some(name) => self
                .b
                .names
                .get(name)
                .cloned()
                .map(Some)
                .ok_or_else(|| ImportError::UndefinedValue { node: self.name(), name: name.clone() }),
        }
    }

    /// The slot of required input `i`.
    pub fn input(&self, i: usize) -> Result<Slot, ImportError> {
        self.optional_input(i)?.ok_or_else(|| self.invalid(format!("required input {i} is missing")))
    }

    /// Input `i`, which must be a constant.
    pub fn constant(&self, i: usize, what: &str) -> Result<Const, ImportError> {
        match self.input(i)? {
            Slot::Const(c) => Ok(c),
            Slot::Dynamic(_) => Err(self.invalid(format!("{what} (input {i}) must be a constant"))),
        }
    }

    /// Optional input `i`, which must be a constant when present.
    pub fn optional_constant(&self, i: usize, what: &str) -> Result<Option<Const>, ImportError> {
        match self.optional_input(i)? {
            None => Ok(None),
            Some(Slot::Const(c)) => Ok(Some(c)),
            Some(Slot::Dynamic(_)) => Err(self.invalid(format!("{what} (input {i}) must be a constant"))),
        }
    }

    /// The shape of a slot.
    pub fn shape_of(&self, slot: &Slot) -> Vec<usize> {
        match slot {
            Slot::Dynamic(id) => self.b.graph_values[id.0].shape.clone(),
            Slot::Const(c) => c.shape().to_vec(),
        }
    }

    /// Binds output `i` of the node.
    pub fn bind_output(&mut self, i: usize, slot: Slot) -> Result<(), ImportError> {
        let name = self.node.output.get(i).cloned().ok_or_else(|| self.invalid(format!("output {i} is missing")))?;
        self.b.bind(&name, slot);
        Ok(())
    }

    /// Emits an IR node computing `op` over `inputs`, named after this node's output `0`, and binds it.
    pub fn emit(&mut self, op: Op, inputs: Vec<ValueId>) -> Result<ValueId, ImportError> {
        let name = self.node.output.first().cloned().ok_or_else(|| self.invalid("node has no output"))?;
        self.emit_named(op, inputs, &name)
    }

    /// Emits an IR node whose output gets `value_name`; binds that name.
    pub fn emit_named(&mut self, op: Op, inputs: Vec<ValueId>, value_name: &str) -> Result<ValueId, ImportError> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|v| self.b.graph_values[v.0].shape.as_slice()).collect();
        let shape = infer_output_shape(&op, &shapes).map_err(|d| self.invalid(d))?;
        if shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).is_none_or(|n| n > MAX_ELEMENTS) {
            return Err(self.invalid(format!("output shape {shape:?} exceeds {MAX_ELEMENTS} elements")));
        }
        let output = self.b.add_value(value_name, shape);
        let node_name = self.name();
        self.b.nodes.push(Node { name: node_name, op, inputs, output });
        self.b.bind(value_name, Slot::Dynamic(output));
        Ok(output)
    }
}

/// Reads an ONNX tensor into a constant.
pub fn read_tensor(t: &TensorProto) -> Result<Const, ImportError> {
    let bad = |detail: String| ImportError::InvalidTensor { tensor: t.name.clone(), detail };
    if t.data_location == 1 || !t.external_data.is_empty() {
        return Err(bad("external data is not supported; embed the weights in the .onnx file".into()));
    }
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("negative dimension {d}"))))
        .collect::<Result<_, _>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= 1 << 31)
        .ok_or_else(|| bad(format!("dimensions {shape:?} are too large")))?;
    let raw = &t.raw_data;
    let from_raw = |width: usize| -> Result<Vec<&[u8]>, ImportError> {
        if raw.len() != count * width {
            return Err(bad(format!("raw data holds {} bytes, shape {shape:?} needs {}", raw.len(), count * width)));
        }
        Ok(raw.chunks_exact(width).collect())
    };
    let check = |n: usize| {
        if n == count {
            Ok(())
        } else {
            Err(bad(format!("holds {n} values, shape {shape:?} needs {count}")))
        }
    };
    let make_err = |e: crate::tensor::ShapeMismatch| bad(e.to_string());
    match t.data_type {
        data_type::FLOAT | data_type::DOUBLE => {
            let data: Vec<f32> = if !raw.is_empty() {
                if t.data_type == data_type::FLOAT {
                    from_raw(4)?.iter().map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
                } else {
                    from_raw(8)?
                        .iter()
                        .map(|c| f64::from_le_bytes(c[..8].try_into().expect("8 bytes")) as f32)
                        .collect()
                }
            } else if t.data_type == data_type::FLOAT {
                t.float_data.clone()
            } else {
                t.double_data.iter().map(|&v| v as f32).collect()
            };
            check(data.len())?;
            Tensor::new(shape, data).map(Const::F32).map_err(make_err)
        }
        data_type::INT64 | data_type::INT32 | data_type::BOOL => {
            let data: Vec<i64> = if !raw.is_empty() {
                match t.data_type {
                    data_type::INT64 => {
                        from_raw(8)?.iter().map(|c| i64::from_le_bytes(c[..8].try_into().expect("8 bytes"))).collect()
                    }
                    data_type::INT32 => {
                        from_raw(4)?.iter().map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64).collect()
                    }
                    _ => from_raw(1)?.iter().map(|c| i64::from(c[0] != 0)).collect(),
                }
            } else if t.data_type == data_type::INT64 {
                t.int64_data.clone()
            } else {
                t.int32_data.iter().map(|&v| v as i64).collect()
            };
            check(data.len())?;
            Tensor::new(shape, data).map(Const::I64).map_err(make_err)
        }
        other => Err(bad(format!("data type {other} is not supported (float, double, int32, int64, bool are)"))),
    }
}
