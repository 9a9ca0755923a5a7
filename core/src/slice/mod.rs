//! Slicing: partitioning a quantized graph into consecutive segments, each proved as its own circuit
//! (after Inference Labs' DSperse). A slice is a contiguous run of nodes in topological order; the tensors
//! entering and leaving it are its boundary, which the proving layer commits to so that consecutive slices
//! chain into a proof of the whole model.

mod cost;

pub use cost::CostModel;

use crate::ir::ValueId;
use crate::prove::NodeRows;
use crate::quant::{QOp, QuantizedGraph};
use serde::Serialize;
use std::collections::HashMap;
use std::ops::Range;
use veil_verifier::circuit::{SliceParams, Width, MAX_WEIGHTS};

/// How to cut a model into slices.
#[derive(Clone, Debug, PartialEq)]
pub enum SlicePolicy {
    /// As few slices as the `k` cap allows, with their estimated rows balanced.
    Balanced {
        /// Largest circuit size exponent (rows = 2^k) a slice may have.
        max_k: u32,
    },
    /// One node per slice.
    PerLayer,
    /// Cut after each named node.
    Explicit {
        /// Names of the nodes that end a slice (the last slice ends at the last node).
        cut_after: Vec<String>,
    },
}

/// Why a graph could not be sliced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SliceError {
    /// One node alone needs more rows than the cap allows.
    #[error("no slice holding node {node:?} (about {rows} rows alone, with its boundary commitments) fits 2^{max_k} rows; raise the k cap")]
    NodeTooLarge {
        /// The node.
        node: String,
        /// Its estimated rows.
        rows: u64,
        /// The cap.
        max_k: u32,
    },
    /// An explicit cut names no node, or names one twice.
    #[error("cut after {0:?}: no such node, or cut twice")]
    UnknownCut(String),
    /// The graph has no node.
    #[error("the graph has no node to slice")]
    Empty,
}

/// One slice of a plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Slice {
    /// Position in the chain.
    pub index: usize,
    /// Node indices (into `QuantizedGraph::nodes`) the slice proves.
    pub nodes: Range<usize>,
    /// Names of those nodes.
    pub layers: Vec<String>,
    /// Values the slice reads that earlier slices (or the caller) produce: its committed input.
    pub inputs: Vec<ValueId>,
    /// Values the slice produces that later slices read, or graph outputs: its committed output.
    pub outputs: Vec<ValueId>,
    /// Estimated rows, boundary commitments included.
    pub rows: u64,
    /// Circuit size exponent.
    pub k: u32,
    /// Estimated peak prover memory, bytes.
    pub memory_bytes: u64,
}

/// A slicing of a whole graph.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlicePlan {
    /// The slices in chain order.
    pub slices: Vec<Slice>,
}

impl SlicePlan {
    /// Largest `k` over the slices (the peak circuit).
    pub fn max_k(&self) -> u32 {
        self.slices.iter().map(|s| s.k).max().unwrap_or(0)
    }

    /// Total estimated rows.
    pub fn total_rows(&self) -> u64 {
        self.slices.iter().map(|s| s.rows).sum()
    }
}

/// Cuts `graph` into slices by `policy`, estimating each slice's size with `cost`.
pub fn slice(graph: &QuantizedGraph, policy: &SlicePolicy, cost: &CostModel) -> Result<SlicePlan, SliceError> {
    if graph.nodes.is_empty() {
        return Err(SliceError::Empty);
    }
    // Measured rows of each node's circuit at each row width; the formula estimate only for nodes without a
    // circuit yet.
    let measure = |width| -> Vec<NodeRows> {
        graph
            .nodes
            .iter()
            .map(|n| {
                crate::prove::node_rows(graph, n, width)
                    .unwrap_or_else(|_| NodeRows { main: cost.node_rows(graph, n) as usize, weights: 0 })
            })
            .collect()
    };
    let rows = measure(Width::Wide);
    let ends = match policy {
        SlicePolicy::PerLayer => (1..=graph.nodes.len()).collect(),
        SlicePolicy::Explicit { cut_after } => explicit_ends(graph, cut_after)?,
        SlicePolicy::Balanced { max_k } => {
            let by_width = Widths { narrow: measure(Width::Narrow), wide: rows.clone() };
            balanced_ends(graph, &by_width, *max_k, cost)?
        }
    };
    let mut slices = Vec::with_capacity(ends.len());
    let mut start = 0;
    for end in ends {
        slices.push(describe(graph, slices.len(), start..end, &rows, cost));
        start = end;
    }
    Ok(SlicePlan { slices })
}

fn explicit_ends(graph: &QuantizedGraph, cut_after: &[String]) -> Result<Vec<usize>, SliceError> {
    let mut ends = Vec::new();
    for name in cut_after {
        let i = graph.nodes.iter().position(|n| &n.name == name).ok_or_else(|| SliceError::UnknownCut(name.clone()))?;
        if ends.contains(&(i + 1)) {
            return Err(SliceError::UnknownCut(name.clone()));
        }
        ends.push(i + 1);
    }
    ends.sort_unstable();
    if ends.last() != Some(&graph.nodes.len()) {
        ends.push(graph.nodes.len());
    }
    Ok(ends)
}

/// The values a slice reads from outside it, and the values it produces that later nodes or the caller read.
fn boundary(graph: &QuantizedGraph, range: Range<usize>) -> (Vec<ValueId>, Vec<ValueId>) {
    let inside = |id: &ValueId| graph.nodes[range.clone()].iter().any(|n| n.output == *id);
    let mut inputs: Vec<ValueId> = Vec::new();
    for node in &graph.nodes[range.clone()] {
        for id in &node.inputs {
            if !inside(id) && !inputs.contains(id) {
                inputs.push(*id);
            }
        }
    }
    let read_later = |id: &ValueId| graph.nodes[range.end..].iter().any(|n| n.inputs.contains(id));
    let outputs = graph.nodes[range.clone()]
        .iter()
        .map(|n| n.output)
        .filter(|id| read_later(id) || graph.outputs.contains(id))
        .collect();
    (inputs, outputs)
}

/// Estimated rows of the slice `range`: its nodes plus the commitments to its boundary.
/// Estimated rows of the slice of nodes `range`: the longer of its two tracks.
fn range_rows(graph: &QuantizedGraph, range: Range<usize>, rows: &[NodeRows], cost: &CostModel) -> u64 {
    let (main, weights) = range_tracks(graph, range, (rows, Width::Wide), cost);
    main.max(weights)
}

/// Estimated rows of the slice of nodes `range` on its main track (boundary commitments included) and on its
/// weight track (at [`MAX_WEIGHTS`] weights a row), with `rows` measured at `width`.
fn range_tracks(
    graph: &QuantizedGraph,
    range: Range<usize>,
    (rows, width): (&[NodeRows], Width),
    cost: &CostModel,
) -> (u64, u64) {
    let (inputs, outputs) = boundary(graph, range.clone());
    let commit = |ids: &[ValueId]| -> u64 {
        ids.iter()
            .map(|id| {
                let v = graph.value(*id);
                crate::prove::commitment_rows(v.shape.iter().product(), v.bits, width) as u64
            })
            .sum()
    };
    // A ReLU counted as fused into its division (0 rows) whose division lies before the cut takes its own rows:
    // one maximum per lane.
    let inside = |id: &ValueId| graph.nodes[range.clone()].iter().any(|n| n.output == *id);
    let split_relus: u64 = graph.nodes[range.clone()]
        .iter()
        .filter(|n| matches!(n.op, QOp::Relu) && !inside(&n.inputs[0]) && crate::prove::fuses_relu(graph, n.inputs[0]))
        .map(|n| (graph.value(n.output).shape.iter().product::<usize>() as u64).div_ceil(width.y_slots().len() as u64))
        .sum();
    // The claim rows and the few constant cells are in the per-node figures; two rows for the binding. The
    // weight track runs beside the rest.
    let main = rows[range.clone()].iter().map(|r| r.main as u64).sum::<u64>();
    let weights = rows[range].iter().map(|r| r.weights as u64).sum::<u64>();
    let main = main + split_relus + commit(&inputs) + commit(&outputs) + 2 + cost.reserved_rows / 4;
    (main, weights)
}

/// Lookup-table rows the planner assumes for a slice: the clamp-and-ReLU and clamp families (2^(bits+2) and
/// 2^(bits+1) rows; the clamp family also range-checks boundary values), the 15-bit range family, the softmax
/// exp table (2^bits) and the age verdict's 6-bit top limb.
fn table_rows(graph: &QuantizedGraph) -> u64 {
    let bits = graph.config.activation_bits;
    (1u64 << (bits + 2)) + (1 << (bits + 1)) + (1 << 15) + (1 << bits) + (1 << 6) + 1
}

/// Node rows measured at each row width.
struct Widths {
    narrow: Vec<NodeRows>,
    wide: Vec<NodeRows>,
}

/// The planner's estimate of proving the slice of nodes `range` at its cheaper row width, among those that
/// fit `2^max_k` rows: `2^k` × the polynomials of its constraint system ([`crate::prove::estimated_cost`]),
/// with the fewest weight columns that hold its weights in `2^k` rows. `None` when no width fits. `polys`
/// caches the polynomial count per constraint system.
fn range_cost(
    graph: &QuantizedGraph,
    range: Range<usize>,
    by_width: &Widths,
    (max_k, cost): (u32, &CostModel),
    polys: &mut HashMap<SliceParams, u64>,
) -> Option<u64> {
    let mut best = None;
    for (width, rows) in [(Width::Narrow, &by_width.narrow), (Width::Wide, &by_width.wide)] {
        let (main, weights) = range_tracks(graph, range.clone(), (rows, width), cost);
        let k = cost.k_for(main.max(weights).max(table_rows(graph)), 0);
        if k > max_k {
            continue;
        }
        let usable = (1u64 << k).saturating_sub(cost.reserved_rows).max(1);
        let columns = (weights * MAX_WEIGHTS as u64).div_ceil(usable).clamp(1, MAX_WEIGHTS as u64) as usize;
        let params = SliceParams::default().with_weights(columns).with_width(width);
        let p = *polys.entry(params).or_insert_with(|| crate::prove::estimated_cost(0, params));
        let c = p << k;
        best = Some(best.map_or(c, |b: u64| b.min(c)));
    }
    best
}

/// Describes the slice `range`.
fn describe(graph: &QuantizedGraph, index: usize, range: Range<usize>, rows: &[NodeRows], cost: &CostModel) -> Slice {
    let (inputs, outputs) = boundary(graph, range.clone());
    let total = range_rows(graph, range.clone(), rows, cost);
    let k = cost.k_for(total.max(table_rows(graph)), 0);
    Slice {
        index,
        layers: graph.nodes[range.clone()].iter().map(|n| n.name.clone()).collect(),
        nodes: range,
        inputs,
        outputs,
        rows: total,
        k,
        memory_bytes: cost.memory_bytes(k),
    }
}

/// Ends of slices: the fewest slices whose estimated rows (boundary commitments included) fit `2^max_k`;
/// among those the partition with the least estimated proving cost (each slice at its cheaper row width, see
/// [`range_cost`]: where a cut falls decides whether a slice fits narrow rows, about two thirds the cost of
/// wide ones), and then the smallest largest slice, so sizes even out. Exact dynamic programming over cut
/// positions: a node too large alone may still fit with its neighbours, whose company removes a boundary.
fn balanced_ends(
    graph: &QuantizedGraph,
    by_width: &Widths,
    max_k: u32,
    cost: &CostModel,
) -> Result<Vec<usize>, SliceError> {
    let rows = &by_width.wide[..];
    let n = rows.len();
    let cap = (1u64 << max_k.min(40)).saturating_sub(cost.reserved_rows);
    let mut polys = HashMap::new();
    // best[i]: (slices, estimated cost, largest slice rows, previous cut) of the best partition of nodes 0..i.
    let mut best: Vec<Option<(usize, u64, u64, usize)>> = vec![None; n + 1];
    best[0] = Some((0, 0, 0, 0));
    for end in 1..=n {
        for start in 0..end {
            let Some((count, total, largest, _)) = best[start] else { continue };
            let r = range_rows(graph, start..end, rows, cost);
            if r > cap {
                continue;
            }
            let Some(c) = range_cost(graph, start..end, by_width, (max_k, cost), &mut polys) else { continue };
            let candidate = (count + 1, total.saturating_add(c), largest.max(r), start);
            if best[end].is_none_or(|b| (candidate.0, candidate.1, candidate.2) < (b.0, b.1, b.2)) {
                best[end] = Some(candidate);
            }
        }
    }
    if best[n].is_none() {
        // The longest prefix that can be sliced ends before the node no slice around it can hold.
        let stuck = (0..=n).rev().find(|&e| best[e].is_some()).unwrap_or(0);
        let node = graph.nodes[stuck].name.clone();
        return Err(SliceError::NodeTooLarge { node, rows: range_rows(graph, stuck..stuck + 1, rows, cost), max_k });
    }
    let mut ends = Vec::new();
    let mut end = n;
    while end > 0 {
        ends.push(end);
        end = best[end].map_or(0, |b| b.3);
    }
    ends.reverse();
    Ok(ends)
}
