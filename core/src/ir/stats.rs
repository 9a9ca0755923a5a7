//! Parameter and multiply-accumulate counts.

use super::{Graph, Op};
use serde::Serialize;

/// Size and cost of one layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerStats {
    /// Node name.
    pub name: String,
    /// Operator kind.
    pub op: &'static str,
    /// Output shape.
    pub shape: Vec<usize>,
    /// Constant parameters held by the layer.
    pub params: usize,
    /// Multiply-accumulates of one inference.
    pub macs: usize,
}

/// Size and cost of a whole model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelStats {
    /// Total parameters.
    pub params: usize,
    /// Total multiply-accumulates.
    pub macs: usize,
    /// Per layer, in execution order.
    pub layers: Vec<LayerStats>,
}

impl ModelStats {
    /// How many layers have the given operator kind.
    pub fn count(&self, op: &str) -> usize {
        self.layers.iter().filter(|l| l.op == op).count()
    }
}

pub(super) fn model_stats(graph: &Graph) -> ModelStats {
    let layers: Vec<LayerStats> = graph
        .nodes
        .iter()
        .map(|node| {
            let shape = graph.shape(node.output).to_vec();
            let out_elems: usize = shape.iter().product();
            let (params, macs) = match &node.op {
                Op::Conv(c) => {
                    let w = c.weight.shape();
                    (c.weight.len() + c.bias.as_ref().map_or(0, |b| b.len()), out_elems * w[1] * w[2] * w[3])
                }
                Op::Linear(l) => {
                    (l.weight.len() + l.bias.as_ref().map_or(0, |b| b.len()), out_elems * l.weight.shape()[0])
                }
                Op::MatMul => {
                    let a = graph.shape(node.inputs[0]);
                    (0, out_elems * a[a.len() - 1])
                }
                Op::Affine(a) => {
                    (a.scale.as_ref().map_or(0, |t| t.len()) + a.offset.as_ref().map_or(0, |t| t.len()), 0)
                }
                _ => (0, 0),
            };
            LayerStats { name: node.name.clone(), op: node.op.kind(), shape, params, macs }
        })
        .collect();
    ModelStats { params: layers.iter().map(|l| l.params).sum(), macs: layers.iter().map(|l| l.macs).sum(), layers }
}
