//! Lays out one slice of a quantized graph: boundary commitments, every node's relations, and (in the last
//! slice) the claim rows.

use super::claim_rows::{claim_rows, ClaimSetup, ClaimWitness};
use super::commit::{commit_rows, Boundary};
use super::conv::{conv, ConvGeom};
use super::division::{shared_terms, Output};
use super::ops::{add, max_groups, means, relu, sums, Cells};
use super::trace::{g, Trace};
use super::ProveError;
use crate::ir::{Pool, ValueId};
use crate::quant::reference::pool::window;
use crate::quant::{QNode, QOp, QuantizedGraph};
use crate::tensor::Tensor;
use halo2_proofs::halo2curves::bn256::Fr;
use std::collections::{HashMap, HashSet};
use veil_verifier::circuit::{GateSet, SliceParams, Width, MAX_WEIGHTS};

/// What a slice's trace is built from: the witness is absent when building keys.
pub(crate) struct SliceWitness<'a> {
    /// Every value of the graph (the integer reference's `run_all`).
    pub values: &'a [Option<Tensor<i64>>],
    /// The blinding value of each boundary tensor.
    pub blinds: &'a HashMap<ValueId, Fr>,
    /// The statement binding (nonce, audience, model, claim).
    pub binding: Fr,
    /// The claim asked for (last slice only).
    pub claim: Option<ClaimWitness>,
}

/// Builds the trace of `slice`.
pub(crate) fn build(
    graph: &QuantizedGraph,
    slice: &super::SliceSpec,
    claim: Option<&ClaimSetup>,
    witness: Option<&SliceWitness<'_>>,
) -> Result<Trace, ProveError> {
    let params = SliceParams::new(slice.weights)
        .ok_or_else(|| ProveError::Unsupported(format!("{} weight columns (1 to {MAX_WEIGHTS})", slice.weights)))?
        .with_width(slice.width);
    if !(1..=slice.width.max_poseidon_lanes()).contains(&slice.poseidon_lanes) {
        return Err(ProveError::Unsupported(format!(
            "{} Poseidon lanes in {:?} rows",
            slice.poseidon_lanes, slice.width
        )));
    }
    // Every optional gate until the trace is finished, then only the families it uses; the second Poseidon
    // lane is a layout choice and stays as the spec says.
    let params =
        if slice.poseidon_lanes > 1 { params } else { params.with_gates(GateSet::ALL.without(GateSet::SECOND_LANE)) };
    let mut t = Trace::new(params);
    if !super::RANGE_BITS.contains(&slice.range_bits) {
        return Err(ProveError::Unsupported(format!("range limbs of {} bits", slice.range_bits)));
    }
    t.range_bits = slice.range_bits;
    // The binding: a public input every proof must carry, copied into a cell so the permutation argument ties it.
    let row = t.alloc(1);
    t.set(g(0, row), witness.map_or(Fr::zero(), |w| w.binding));
    t.expose(g(0, row));
    let value_of = |id: ValueId| -> Vec<i64> {
        match witness.and_then(|w| w.values.get(id.0)).and_then(|v| v.as_ref()) {
            Some(tensor) => tensor.data().to_vec(),
            None => vec![0; graph.value(id).shape.iter().product()],
        }
    };
    let blind_of = |id: ValueId| witness.and_then(|w| w.blinds.get(&id).copied()).unwrap_or(Fr::zero());
    let mut cells: HashMap<ValueId, Cells> = HashMap::new();
    for &id in &slice.inputs {
        let info = graph.value(id);
        let b = Boundary { values: value_of(id), bits: info.bits, blind: blind_of(id) };
        cells.insert(id, commit_rows(&mut t, &b, None));
    }
    let nodes = &graph.nodes[slice.nodes.clone()];
    let last = nodes.len().saturating_sub(1);
    // Division outputs read only by ReLUs of this slice: the division applies the ReLU in its own lookup.
    let fused: HashSet<ValueId> =
        nodes.iter().map(|n| n.output).filter(|id| fuses_relu(graph, *id) && !slice.outputs.contains(id)).collect();
    for (i, node) in nodes.iter().enumerate() {
        if i == last && claim.is_some() && matches!(node.op, QOp::Softmax { .. }) {
            continue;
        }
        let relu_done = matches!(node.op, QOp::Relu) && fused.contains(&node.inputs[0]);
        let out = if relu_done {
            cells
                .get(&node.inputs[0])
                .cloned()
                .ok_or_else(|| ProveError::Unsupported(format!("{}: input", node.name)))?
        } else {
            lay_node(&mut t, graph, node, &cells, fused.contains(&node.output))?
        };
        if let Some(w) = witness.and_then(|w| w.values.get(node.output.0)).and_then(|v| v.as_ref()) {
            let expect: Vec<i64> =
                w.data().iter().map(|&v| if fused.contains(&node.output) { v.max(0) } else { v }).collect();
            if out.values != expect {
                let at = out.values.iter().zip(&expect).position(|(a, b)| a != b).unwrap_or(0);
                return Err(ProveError::ReferenceMismatch { node: node.name.clone(), index: at });
            }
        }
        cells.insert(node.output, out);
    }
    for &id in &slice.outputs {
        let c = cells
            .get(&id)
            .ok_or_else(|| ProveError::Unsupported(format!("boundary value {} is not computed in its slice", id.0)))?;
        let b = Boundary { values: c.values.clone(), bits: graph.value(id).bits, blind: blind_of(id) };
        let c = c.clone();
        commit_rows(&mut t, &b, Some(&c));
    }
    if let Some(setup) = claim {
        let logits = cells
            .get(&setup.logits)
            .ok_or_else(|| ProveError::Unsupported("the claim's logits are not computed in the last slice".into()))?
            .clone();
        claim_rows(&mut t, setup, &logits, witness.and_then(|w| w.claim.as_ref()))?;
    }
    t.finish()?;
    Ok(t)
}

/// Rows one node's relations take on their own (inputs already laid out elsewhere): the slicer's cost.
pub(crate) fn node_rows(graph: &QuantizedGraph, node: &QNode, width: Width) -> Result<super::NodeRows, ProveError> {
    let mut t = Trace::new(SliceParams::default().with_width(width));
    let row = t.alloc(1);
    let mut cells = HashMap::new();
    for &id in &node.inputs {
        let n: usize = graph.value(id).shape.iter().product();
        cells.insert(id, Cells { cells: vec![g(0, row); n], values: vec![0; n] });
    }
    lay_node(&mut t, graph, node, &cells, fuses_relu(graph, node.output))?;
    Ok(super::NodeRows { main: t.rows - 1, weights: t.weight_rows })
}

/// Whether a division node's output `id` is read only by ReLUs (and is no graph output), so the division can
/// apply the ReLU in its own lookup and the ReLU costs no row.
pub(crate) fn fuses_relu(graph: &QuantizedGraph, id: ValueId) -> bool {
    let divides = graph.nodes.iter().any(|n| {
        n.output == id
            && matches!(
                n.op,
                QOp::Conv { .. }
                    | QOp::Linear { .. }
                    | QOp::Add
                    | QOp::Sub
                    | QOp::AveragePool(_)
                    | QOp::GlobalAveragePool
            )
    });
    let mut readers = graph.nodes.iter().filter(|n| n.inputs.contains(&id)).peekable();
    divides && !graph.outputs.contains(&id) && readers.peek().is_some() && readers.all(|n| matches!(n.op, QOp::Relu))
}

fn lay_node(
    t: &mut Trace,
    graph: &QuantizedGraph,
    node: &QNode,
    cells: &HashMap<ValueId, Cells>,
    fuse_relu: bool,
) -> Result<Cells, ProveError> {
    let input = |i: usize| -> Result<&Cells, ProveError> {
        node.inputs
            .get(i)
            .and_then(|id| cells.get(id))
            .ok_or_else(|| ProveError::Unsupported(format!("{}: input {i} is not laid out", node.name)))
    };
    let info = |i: usize| graph.value(node.inputs[i]);
    let out = graph.value(node.output);
    let output = Output { bits: out.bits, relu: fuse_relu };
    let unsupported = |what: &str| ProveError::Unsupported(format!("{}: {what}", node.name));
    match &node.op {
        QOp::Conv { weight, bias, strides, pads, dilations, group, requant } => {
            if *group != 1 || *dilations != [1, 1] || info(0).shape[0] != 1 {
                return Err(unsupported("grouped, dilated or batched convolution"));
            }
            let (ws, xs) = (weight.shape(), &info(0).shape);
            let gm = ConvGeom {
                cin: xs[1],
                h: xs[2],
                w: xs[3],
                cout: ws[0],
                kh: ws[2],
                kw: ws[3],
                strides: *strides,
                pads: *pads,
                oh: out.shape[2],
                ow: out.shape[3],
            };
            let wd = weight.data();
            let at = |o: usize, c: usize, i: usize, j: usize| wd[((o * ws[1] + c) * ws[2] + i) * ws[3] + j];
            conv(t, input(0)?, &gm, &at, bias, requant, output, &node.name)
        }
        QOp::Linear { weight, bias, requant } => {
            let (k, n) = (weight.shape()[0], weight.shape()[1]);
            if input(0)?.len() != k {
                return Err(unsupported("linear layer over more than one row"));
            }
            let gm =
                ConvGeom { cin: k, h: 1, w: 1, cout: n, kh: 1, kw: 1, strides: [1, 1], pads: [0; 4], oh: 1, ow: 1 };
            let wd = weight.data();
            let at = |o: usize, c: usize, _: usize, _: usize| wd[c * n + o];
            conv(t, input(0)?, &gm, &at, bias, requant, output, &node.name)
        }
        QOp::Relu => Ok(relu(t, input(0)?, info(0).bits)),
        QOp::Add | QOp::Sub => {
            if info(0).shape != info(1).shape {
                return Err(unsupported("broadcasting addition"));
            }
            let sign = if matches!(node.op, QOp::Add) { 1 } else { -1 };
            add(t, (input(0)?, info(0).frac), (input(1)?, info(1).frac), sign, out.frac, output)
        }
        QOp::MaxPool(p) => max_pool(t, input(0)?, &info(0).shape, p, &out.shape, info(0).bits),
        QOp::AveragePool(p) => {
            let x = input(0)?;
            let wins = windows(&info(0).shape, p, &out.shape);
            pooled_means(t, x, wins, (info(0).frac, out.frac), output)
        }
        QOp::GlobalAveragePool => {
            let x = input(0)?;
            let hw = info(0).shape[2] * info(0).shape[3];
            let wins = (0..x.len() / hw.max(1)).map(|p| ((p * hw..(p + 1) * hw).collect(), hw)).collect();
            pooled_means(t, x, wins, (info(0).frac, out.frac), output)
        }
        QOp::Pad { pads, value } => {
            let x = input(0)?;
            let idx = Tensor::new(info(0).shape.clone(), (0..x.len() as i64).collect())
                .map_err(|_| unsupported("pad shape"))?;
            let padded = crate::tensor::pad(&idx, pads, -1);
            let fill = t.constant(*value);
            let mut c = Cells::default();
            for &i in padded.data() {
                let (cell, v) = if i < 0 { (fill, *value) } else { (x.cells[i as usize], x.values[i as usize]) };
                c.cells.push(cell);
                c.values.push(v);
            }
            Ok(c)
        }
        QOp::Reshape => Ok(input(0)?.clone()),
        QOp::Transpose { perm } => {
            let x = input(0)?;
            let idx = Tensor::new(info(0).shape.clone(), (0..x.len()).collect()).map_err(|_| unsupported("shape"))?;
            let moved = crate::tensor::transpose(&idx, perm);
            Ok(Cells {
                cells: moved.data().iter().map(|&i| x.cells[i]).collect(),
                values: moved.data().iter().map(|&i| x.values[i]).collect(),
            })
        }
        other => Err(unsupported(&format!("{} has no circuit yet", op_name(other)))),
    }
}

fn op_name(op: &QOp) -> &'static str {
    match op {
        QOp::MatMul => "MatMul",
        QOp::Mul => "Mul",
        QOp::Affine { .. } => "Affine",
        QOp::LeakyRelu { .. } => "LeakyRelu",
        QOp::Clip { .. } => "Clip",
        QOp::Table { .. } => "Table",
        QOp::Softmax { .. } => "Softmax (other than the final one)",
        QOp::Concat { .. } => "Concat",
        _ => "this operator",
    }
}

/// Max pooling, separably: first the maximum of each output column's window along every input row that some
/// window reads, then the maximum of those row maxima along each output row's window. A window is a
/// rectangle (padding clips it on each axis apart), and the maximum over a rectangle is the maximum of its
/// rows' maxima, so the outputs are the reference's. It takes `rows read · ow · (kw − 1) + oh · ow · (kh − 1)`
/// pairwise maxima instead of `oh · ow · (kh · kw − 1)`: never more, and for overlapping windows fewer
/// (age-v1's 3×3 stride-2 pool over 29×29: 1,204 instead of 1,568 a channel).
fn max_pool(
    t: &mut Trace,
    x: &Cells,
    in_shape: &[usize],
    pool: &Pool,
    out_shape: &[usize],
    bits: u32,
) -> Result<Cells, ProveError> {
    let [n, c, h, w] = [in_shape[0], in_shape[1], in_shape[2], in_shape[3]];
    let [oh, ow] = [out_shape[2], out_shape[3]];
    let span = |o, axis: usize, len| {
        let (first, end, _) =
            window(o, pool.strides[axis], pool.kernel[axis], pool.pads[axis], pool.pads[axis + 2], len);
        first..end
    };
    let rows: Vec<_> = (0..oh).map(|oy| span(oy, 0, h)).collect();
    let cols: Vec<_> = (0..ow).map(|ox| span(ox, 1, w)).collect();
    if rows.iter().chain(&cols).any(|r| r.is_empty()) {
        return Err(ProveError::Unsupported("a max-pooling window of padding only".into()));
    }
    let mut read = vec![false; h];
    rows.iter().for_each(|r| read[r.clone()].fill(true));
    // Row maxima, and where each (plane, input row, output column) went among them.
    let mut at = vec![usize::MAX; n * c * h * ow];
    let mut row_groups = Vec::new();
    for plane in 0..n * c {
        for y in (0..h).filter(|&y| read[y]) {
            for (ox, cs) in cols.iter().enumerate() {
                at[(plane * h + y) * ow + ox] = row_groups.len();
                let base = (plane * h + y) * w;
                row_groups.push(cs.clone().map(|i| (x.cells[base + i], x.values[base + i])).collect());
            }
        }
    }
    let row_max = max_groups(t, row_groups, bits);
    let mut groups = Vec::with_capacity(n * c * oh * ow);
    for plane in 0..n * c {
        for ys in &rows {
            for ox in 0..ow {
                groups.push(ys.clone().map(|y| row_max[at[(plane * h + y) * ow + ox]]).collect());
            }
        }
    }
    let m = max_groups(t, groups, bits);
    Ok(Cells { cells: m.iter().map(|c| c.0).collect(), values: m.iter().map(|c| c.1).collect() })
}

/// Each output position's input indices and divisor, matching the reference's windows.
fn windows(in_shape: &[usize], pool: &Pool, out_shape: &[usize]) -> Vec<(Vec<usize>, usize)> {
    let [n, c, h, w] = [in_shape[0], in_shape[1], in_shape[2], in_shape[3]];
    let [oh, ow] = [out_shape[2], out_shape[3]];
    let mut out = Vec::with_capacity(n * c * oh * ow);
    for plane in 0..n * c {
        for oy in 0..oh {
            let (y0, y1, cy) = window(oy, pool.strides[0], pool.kernel[0], pool.pads[0], pool.pads[2], h);
            for ox in 0..ow {
                let (x0, x1, cx) = window(ox, pool.strides[1], pool.kernel[1], pool.pads[1], pool.pads[3], w);
                let idx: Vec<usize> = (y0..y1).flat_map(|y| (x0..x1).map(move |x| (plane * h + y) * w + x)).collect();
                let count = if pool.count_include_pad { cy * cx } else { idx.len() };
                out.push((idx, count.max(1)));
            }
        }
    }
    out
}

fn pooled_means(
    t: &mut Trace,
    x: &Cells,
    wins: Vec<(Vec<usize>, usize)>,
    fracs: (i32, i32),
    output: Output,
) -> Result<Cells, ProveError> {
    let longest = wins.iter().map(|w| w.0.len()).max().unwrap_or(0).max(1);
    let counts: Vec<i128> = wins.iter().map(|w| w.1 as i128).collect();
    let windows = wins.iter().map(|(idx, _)| idx.iter().map(|&i| (x.cells[i], x.values[i])).collect::<Vec<_>>());
    // Small windows are summed inside their division row; larger ones through running sums first.
    if longest <= shared_terms(t.params.width()) {
        return means(t, &windows.collect::<Vec<_>>(), &counts, fracs, output);
    }
    let zero = t.zero();
    let groups: Vec<Vec<_>> = windows
        .map(|mut grp| {
            grp.resize(longest, (zero, 0));
            grp
        })
        .collect();
    let totals: Vec<Vec<_>> = sums(t, &groups)?.into_iter().map(|s| vec![s]).collect();
    means(t, &totals, &counts, fracs, output)
}
