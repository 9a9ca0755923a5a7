//! Errors of the float evaluator.

/// Why a graph could not be evaluated in float. Every variant names the input or node at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FloatError {
    /// The number of tensors given differs from the number of graph inputs.
    #[error("the graph takes {expected} input(s) but {actual} were given")]
    InputCount {
        /// Graph inputs.
        expected: usize,
        /// Tensors given.
        actual: usize,
    },
    /// An input tensor does not have the static shape of its graph input.
    #[error("input {name:?} must have shape {expected:?}, got {actual:?}")]
    InputShape {
        /// The graph input's name.
        name: String,
        /// Its declared shape.
        expected: Vec<usize>,
        /// The shape of the tensor given.
        actual: Vec<usize>,
    },
    /// A node, graph input or graph output refers to a value that does not exist or is not computed
    /// before it is read (a malformed graph).
    #[error("{reader} reads value #{value}, which no graph input or earlier node defines")]
    UndefinedValue {
        /// The reading node's name, or "graph input" / "graph output".
        reader: String,
        /// Index of the value in `Graph::values`.
        value: usize,
    },
    /// A node has the wrong number of dynamic inputs for its operator.
    #[error("node {node:?} ({op}) takes {expected} input(s), got {actual}")]
    InputArity {
        /// Node name.
        node: String,
        /// Operator kind.
        op: &'static str,
        /// Inputs the operator takes (at least this many for `Concat`).
        expected: usize,
        /// Inputs the node has.
        actual: usize,
    },
    /// A node computed a tensor whose shape differs from the one the graph declares for its output.
    #[error("node {node:?} ({op}) produced shape {actual:?} but the graph declares {expected:?}")]
    OutputShape {
        /// Node name.
        node: String,
        /// Operator kind.
        op: &'static str,
        /// Declared shape.
        expected: Vec<usize>,
        /// Computed shape.
        actual: Vec<usize>,
    },
    /// candle-core failed while evaluating a node (or converting an input or output).
    #[error("node {node:?} ({op}): {source}")]
    Candle {
        /// Node name (or the input or output value name).
        node: String,
        /// Operator kind, or "input" / "output" for conversions.
        op: &'static str,
        /// The candle error.
        #[source]
        source: Box<candle_core::Error>,
    },
}

impl FloatError {
    pub(super) fn candle(node: &str, op: &'static str, source: candle_core::Error) -> Self {
        FloatError::Candle { node: node.to_string(), op, source: Box::new(source) }
    }
}
