//! Veil's intermediate representation: a static-shape graph over a closed set of operators.
//!
//! Import lowers ONNX into this form with every shape known and every constant sub-graph folded, so later
//! stages (quantization, the integer reference, circuits) never meet a dynamic shape or a `Shape` op.

mod fold;
mod ops;
mod shape;
mod stats;

pub use ops::{Affine, Conv, Linear, Op, Pad, Pool};
pub use shape::infer_output_shape;
pub use stats::{LayerStats, ModelStats};

use serde::{Deserialize, Serialize};

/// Index of a value (a tensor edge) in [`Graph::values`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ValueId(pub usize);

/// A tensor edge of the graph: its ONNX name and static shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueInfo {
    /// Name taken from the source model.
    pub name: String,
    /// Static shape (the batch dimension is fixed at import, normally to 1).
    pub shape: Vec<usize>,
}

/// One operator application with a single output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Name of the source node (kept so errors and reports can point at a layer).
    pub name: String,
    /// The operator, with its constant parameters.
    pub op: Op,
    /// Dynamic inputs, in operator order.
    pub inputs: Vec<ValueId>,
    /// The value this node produces.
    pub output: ValueId,
}

/// A float model: values, nodes in topological order, graph inputs and outputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// Every value of the graph.
    pub values: Vec<ValueInfo>,
    /// Nodes in an order where every input is produced before it is read.
    pub nodes: Vec<Node>,
    /// Graph inputs, fed by the caller.
    pub inputs: Vec<ValueId>,
    /// Graph outputs.
    pub outputs: Vec<ValueId>,
}

impl Graph {
    /// The value behind an id.
    pub fn value(&self, id: ValueId) -> &ValueInfo {
        &self.values[id.0]
    }

    /// The shape of a value.
    pub fn shape(&self, id: ValueId) -> &[usize] {
        &self.values[id.0].shape
    }

    /// How many nodes read each value, plus one for each appearance as a graph output.
    pub fn use_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.values.len()];
        for node in &self.nodes {
            for input in &node.inputs {
                counts[input.0] += 1;
            }
        }
        for output in &self.outputs {
            counts[output.0] += 1;
        }
        counts
    }

    /// The node producing a value, if any (graph inputs have none).
    pub fn producer(&self, id: ValueId) -> Option<usize> {
        self.nodes.iter().position(|n| n.output == id)
    }

    /// Folds per-channel affine transforms into neighbouring convolutions and linear layers and drops
    /// nodes whose outputs are unused. Numerically equivalent up to float rounding.
    pub fn optimize(&mut self) {
        fold::fold_affines(self);
        fold::remove_dead_nodes(self);
    }

    /// Parameter and multiply-accumulate counts, per layer and in total.
    pub fn stats(&self) -> ModelStats {
        stats::model_stats(self)
    }
}
