//! Errors of ONNX import.

/// Why an ONNX model could not be imported. Every variant names the node, tensor or input at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The bytes are not a valid ONNX protobuf (corrupt or truncated file).
    #[error("not a valid ONNX model (corrupt or truncated protobuf): {detail}")]
    Decode {
        /// What the protobuf decoder reported.
        detail: String,
    },
    /// The model has no graph.
    #[error("the ONNX model has no graph (empty or not an ONNX file)")]
    MissingGraph,
    /// An operator set Veil does not read.
    #[error("unsupported operator set {domain:?} version {version}")]
    UnsupportedOpset {
        /// The opset domain ("" is the default ONNX domain).
        domain: String,
        /// Its version.
        version: i64,
    },
    /// An operator type Veil does not support.
    #[error("unsupported op {op_type:?} at node {node:?}")]
    UnsupportedOp {
        /// ONNX op type (with its domain when not the default one).
        op_type: String,
        /// Name of the node (or its first output when unnamed).
        node: String,
    },
    /// A supported operator used in a way Veil does not support, or with invalid attributes or inputs.
    #[error("node {node:?} ({op_type}): {detail}")]
    InvalidNode {
        /// Name of the node.
        node: String,
        /// ONNX op type.
        op_type: String,
        /// What is wrong.
        detail: String,
    },
    /// A node reads a value that no earlier node, initializer or graph input defines.
    #[error("node {node:?} reads undefined value {name:?}")]
    UndefinedValue {
        /// Name of the node.
        node: String,
        /// The missing value.
        name: String,
    },
    /// A constant tensor Veil cannot read.
    #[error("tensor {tensor:?}: {detail}")]
    InvalidTensor {
        /// Tensor name.
        tensor: String,
        /// What is wrong (data type, size, external data).
        detail: String,
    },
    /// A graph input or output Veil cannot handle.
    #[error("graph input/output {name:?}: {detail}")]
    InvalidGraphIo {
        /// The input or output name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// Reading the model file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}
