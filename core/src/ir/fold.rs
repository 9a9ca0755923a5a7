//! Graph rewrites that fold constant affine transforms into neighbouring linear layers.
//!
//! dlib-style exports write every batch-norm as `Mul` + `Add` after a convolution, and scalar `Mul`s before
//! fully connected layers; folding them removes whole layers from the quantized graph and from circuits.

#[cfg(test)]
use super::ValueId;
use super::{Graph, Op};
use crate::tensor::Tensor;

/// Folds affines into the convolution or linear layer before them (per output channel) or, for a pure
/// scalar scale, into the convolution or linear layer after them (through reshapes). Repeats to a fixpoint.
pub(super) fn fold_affines(graph: &mut Graph) {
    while fold_one_backward(graph) || fold_one_forward(graph) {}
}

/// Removes nodes whose outputs no graph output depends on.
pub(super) fn remove_dead_nodes(graph: &mut Graph) {
    let mut live = vec![false; graph.values.len()];
    for output in &graph.outputs {
        live[output.0] = true;
    }
    let mut keep = vec![false; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate().rev() {
        if live[node.output.0] {
            keep[i] = true;
            for input in &node.inputs {
                live[input.0] = true;
            }
        }
    }
    let mut flags = keep.into_iter();
    graph.nodes.retain(|_| flags.next().unwrap_or(false));
}

fn fold_one_backward(graph: &mut Graph) -> bool {
    let uses = graph.use_counts();
    for ai in 0..graph.nodes.len() {
        let Op::Affine(affine) = &graph.nodes[ai].op else { continue };
        let x = graph.nodes[ai].inputs[0];
        if uses[x.0] != 1 {
            continue;
        }
        let Some(pi) = graph.producer(x) else { continue };
        let rank = graph.shape(x).len();
        let (channel_axis, channels) = match &graph.nodes[pi].op {
            Op::Conv(c) => (1, c.weight.shape()[0]),
            Op::Linear(l) => (rank - 1, l.weight.shape()[1]),
            _ => continue,
        };
        let scale = match &affine.scale {
            Some(t) => match per_axis_values(t, rank, channel_axis, channels) {
                Some(v) => v,
                None => continue,
            },
            None => vec![1.0; channels],
        };
        let offset = match &affine.offset {
            Some(t) => match per_axis_values(t, rank, channel_axis, channels) {
                Some(v) => v,
                None => continue,
            },
            None => vec![0.0; channels],
        };
        let output = graph.nodes[ai].output;
        let (weight, bias, out_axis) = match &mut graph.nodes[pi].op {
            Op::Conv(c) => (&mut c.weight, &mut c.bias, 0),
            Op::Linear(l) => (&mut l.weight, &mut l.bias, 1),
            _ => unreachable!("matched above"),
        };
        scale_along_axis(weight, out_axis, &scale);
        let old_bias = bias.take().map(Tensor::into_data).unwrap_or_else(|| vec![0.0; channels]);
        let new_bias: Vec<f32> = (0..channels).map(|c| old_bias[c] * scale[c] + offset[c]).collect();
        *bias = Some(Tensor::new(vec![channels], new_bias).expect("length matches"));
        graph.nodes[pi].output = output;
        graph.nodes.remove(ai);
        return true;
    }
    false
}

fn fold_one_forward(graph: &mut Graph) -> bool {
    let uses = graph.use_counts();
    for ai in 0..graph.nodes.len() {
        let Op::Affine(affine) = &graph.nodes[ai].op else { continue };
        let (Some(scale), None) = (&affine.scale, &affine.offset) else { continue };
        if scale.len() != 1 {
            continue;
        }
        let factor = scale.data()[0];
        let (x, y) = (graph.nodes[ai].inputs[0], graph.nodes[ai].output);
        // Follow single-use layout-only nodes to the consumer that would absorb the factor.
        let mut current = y;
        let target = loop {
            if uses[current.0] != 1 {
                break None;
            }
            let Some(ci) = graph.nodes.iter().position(|n| n.inputs.contains(&current)) else { break None };
            match &graph.nodes[ci].op {
                op if op.is_layout_only() => current = graph.nodes[ci].output,
                Op::Conv(_) | Op::Linear(_) => break Some(ci),
                _ => break None,
            }
        };
        let Some(ti) = target else { continue };
        match &mut graph.nodes[ti].op {
            Op::Conv(c) => c.weight.data_mut().iter_mut().for_each(|w| *w *= factor),
            Op::Linear(l) => l.weight.data_mut().iter_mut().for_each(|w| *w *= factor),
            _ => unreachable!("target is a conv or linear"),
        }
        for node in &mut graph.nodes {
            node.inputs.iter_mut().filter(|i| **i == y).for_each(|i| *i = x);
        }
        graph.nodes.remove(ai);
        return true;
    }
    false
}

/// The values of `t` along `axis` of a rank-`rank` tensor, if `t` broadcasts to it varying along that axis
/// only (a scalar counts, repeated `len` times).
fn per_axis_values(t: &Tensor<f32>, rank: usize, axis: usize, len: usize) -> Option<Vec<f32>> {
    if t.len() == 1 {
        return Some(vec![t.data()[0]; len]);
    }
    let shape = t.shape();
    if shape.len() > rank {
        return None;
    }
    let offset = rank - shape.len();
    let varying: Vec<usize> = (0..shape.len()).filter(|&i| shape[i] != 1).collect();
    if varying.len() != 1 || varying[0] + offset != axis || shape[varying[0]] != len {
        return None;
    }
    Some(t.data().to_vec())
}

fn scale_along_axis(weight: &mut Tensor<f32>, axis: usize, factors: &[f32]) {
    let shape = weight.shape().to_vec();
    let inner: usize = shape[axis + 1..].iter().product();
    let len = shape[axis];
    for (i, w) in weight.data_mut().iter_mut().enumerate() {
        *w *= factors[(i / inner) % len];
    }
}

/// Looks a value up by name (tests only).
#[cfg(test)]
fn value(graph: &Graph, name: &str) -> ValueId {
    ValueId(graph.values.iter().position(|v| v.name == name).expect("value exists"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Affine, Conv, Node, ValueInfo};

    fn conv_affine_graph() -> Graph {
        let values = ["x", "c", "y"].iter().map(|n| ValueInfo { name: n.to_string(), shape: vec![1, 2, 3, 3] });
        let conv = Conv {
            weight: Tensor::new(vec![2, 2, 1, 1], vec![1.0, 2.0, 3.0, 4.0]).unwrap(),
            bias: Some(Tensor::new(vec![2], vec![0.5, -0.5]).unwrap()),
            strides: [1, 1],
            pads: [0; 4],
            dilations: [1, 1],
            group: 1,
        };
        let affine = Affine {
            scale: Some(Tensor::new(vec![1, 2, 1, 1], vec![2.0, -1.0]).unwrap()),
            offset: Some(Tensor::new(vec![1, 2, 1, 1], vec![1.0, 1.0]).unwrap()),
        };
        Graph {
            values: values.collect(),
            nodes: vec![
                Node { name: "conv".into(), op: Op::Conv(conv), inputs: vec![ValueId(0)], output: ValueId(1) },
                Node { name: "bn".into(), op: Op::Affine(affine), inputs: vec![ValueId(1)], output: ValueId(2) },
            ],
            inputs: vec![ValueId(0)],
            outputs: vec![ValueId(2)],
        }
    }

    #[test]
    fn per_channel_affine_folds_into_conv() {
        let mut g = conv_affine_graph();
        g.optimize();
        assert_eq!(g.nodes.len(), 1);
        assert_eq!(g.nodes[0].output, value(&g, "y"));
        let Op::Conv(c) = &g.nodes[0].op else { panic!("conv expected") };
        assert_eq!(c.weight.data(), &[2.0, 4.0, -3.0, -4.0]);
        assert_eq!(c.bias.as_ref().unwrap().data(), &[2.0, 1.5]);
    }

    #[test]
    fn affine_on_a_shared_value_is_kept() {
        let mut g = conv_affine_graph();
        g.outputs.push(ValueId(1));
        g.optimize();
        assert_eq!(g.nodes.len(), 2);
    }
}
