//! Slicing plans of the shipped models: coverage, chaining of boundaries, the k cap, and the policies.

use anyhow::{Context, Result};
use std::collections::HashSet;
use std::path::Path;
use veil_core::ir::ValueId;
use veil_core::quant::{QOp, QuantizedGraph};
use veil_core::slice::{slice, CostModel, SliceError, SlicePlan, SlicePolicy};
use veil_core::Model;
use veil_verifier::circuit::Width;

fn quantized(name: &str) -> Result<QuantizedGraph> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../models/{name}.onnx"));
    Ok(Model::load_onnx(&path)?.quantize_default()?)
}

/// Slices cover every node once, in order, and each slice reads only graph inputs or values that an earlier
/// slice exposes as output: the chain of boundary commitments covers every dependency.
fn assert_chains(graph: &QuantizedGraph, plan: &SlicePlan) {
    let mut next = 0;
    let mut exposed: HashSet<ValueId> = graph.inputs.iter().copied().collect();
    for s in &plan.slices {
        assert_eq!(s.nodes.start, next, "slice {} starts where the previous ended", s.index);
        assert!(s.nodes.end > s.nodes.start, "slice {} is not empty", s.index);
        for input in &s.inputs {
            assert!(exposed.contains(input), "slice {} reads {:?}, which no earlier slice exposes", s.index, input);
        }
        for node in &graph.nodes[s.nodes.clone()] {
            let read_later = graph.nodes[s.nodes.end..].iter().any(|n| n.inputs.contains(&node.output));
            assert_eq!(s.outputs.contains(&node.output), read_later || graph.outputs.contains(&node.output));
        }
        exposed.extend(s.outputs.iter().copied());
        next = s.nodes.end;
    }
    assert_eq!(next, graph.nodes.len());
    assert!(graph.outputs.iter().all(|o| plan.slices.last().is_some_and(|s| s.outputs.contains(o))));
}

#[test]
fn balanced_plans_respect_the_cap_and_chain() -> Result<()> {
    for (name, max_k) in [("gender-v1", 18), ("age-v1", 19), ("age-v1", 21)] {
        let graph = quantized(name)?;
        let plan = slice(&graph, &SlicePolicy::Balanced { max_k }, &CostModel::default())?;
        assert_chains(&graph, &plan);
        assert!(plan.max_k() <= max_k, "{name}: k {} over cap {max_k}", plan.max_k());
        assert!(plan.slices.iter().all(|s| s.rows < 1 << s.k));
    }
    Ok(())
}

#[test]
fn a_larger_cap_never_needs_more_slices() -> Result<()> {
    let graph = quantized("age-v1")?;
    let count = |k| slice(&graph, &SlicePolicy::Balanced { max_k: k }, &CostModel::default()).map(|p| p.slices.len());
    assert!(count(21)? <= count(20)?);
    assert!(count(20)? <= count(19)?);
    Ok(())
}

#[test]
fn per_layer_and_explicit_policies() -> Result<()> {
    let graph = quantized("age-v1")?;
    let per_layer = slice(&graph, &SlicePolicy::PerLayer, &CostModel::default())?;
    assert_eq!(per_layer.slices.len(), graph.nodes.len());
    assert_chains(&graph, &per_layer);
    // Cutting inside a residual block leaves two tensors crossing the cut: the block input and the branch.
    let cut = SlicePolicy::Explicit { cut_after: vec!["layer_47_conv".into()] };
    let plan = slice(&graph, &cut, &CostModel::default())?;
    assert_eq!(plan.slices.len(), 2);
    assert_chains(&graph, &plan);
    assert_eq!(plan.slices[0].outputs.len(), 2, "the skip connection crosses the cut");
    Ok(())
}

#[test]
fn impossible_caps_and_bad_cuts_are_typed_errors() -> Result<()> {
    let graph = quantized("gender-v1")?;
    let err = slice(&graph, &SlicePolicy::Balanced { max_k: 12 }, &CostModel::default()).unwrap_err();
    assert!(matches!(err, SliceError::NodeTooLarge { max_k: 12, .. }), "{err}");
    let bad = SlicePolicy::Explicit { cut_after: vec!["no_such_layer".into()] };
    assert_eq!(slice(&graph, &bad, &CostModel::default()).unwrap_err(), SliceError::UnknownCut("no_such_layer".into()));
    Ok(())
}

/// A slice's rows are the longer of its two tracks: the weights' rows run beside every other relation, so
/// age-v1 (2.69 M weights, 112 k rows of them at 24 a row) fits one slice of `2^18` rows, and each
/// convolution's weight rows are counted on the weight track, not added to its other rows.
#[test]
fn weight_rows_run_beside_the_other_relations() -> Result<()> {
    let graph = quantized("age-v1")?;
    let plan = slice(&graph, &SlicePolicy::Balanced { max_k: 18 }, &CostModel::default())?;
    assert_eq!(plan.slices.len(), 1, "one slice of 2^18 rows holds age-v1");
    let rows: Vec<_> =
        graph.nodes.iter().map(|n| veil_core::prove::node_rows(&graph, n, Width::Wide)).collect::<Result<_, _>>()?;
    let main: usize = rows.iter().map(|r| r.main).sum();
    let weights: usize = rows.iter().map(|r| r.weights).sum();
    let weight_count: usize = graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            veil_core::quant::QOp::Conv { weight, .. } | veil_core::quant::QOp::Linear { weight, .. } => {
                Some(weight.data().len())
            }
            _ => None,
        })
        .sum();
    let most = veil_verifier::circuit::MAX_WEIGHTS;
    assert!(weights * most >= weight_count, "{most} weights a row at most: {weights} rows for {weight_count}");
    assert!(main + weights > plan.slices[0].rows as usize, "the slice is shorter than the two tracks end to end");
    assert!(plan.slices[0].rows as usize >= weights.max(main), "the slice holds the longer track");
    Ok(())
}

/// Max pooling is separable: age-v1's 3×3 stride-2 pool over 64 × 29 × 29 takes the row maxima (64 · 29 · 14
/// windows of three) and then the column maxima (64 · 14 · 14 of three): 1,204 pairwise maxima a channel, where
/// maxima over whole windows take 1,568; two a narrow row, four a wide one.
#[test]
fn max_pooling_takes_row_maxima_then_column_maxima() -> Result<()> {
    let graph = quantized("age-v1")?;
    let pool = graph.nodes.iter().find(|n| matches!(n.op, QOp::MaxPool(_))).context("age-v1 has a max pool")?;
    for (width, lanes) in [(Width::Narrow, 2), (Width::Wide, 4)] {
        assert_eq!(veil_core::prove::node_rows(&graph, pool, width)?.main, 64 * 1_204 / lanes, "{width:?}");
    }
    Ok(())
}

/// The balanced planner takes the fewest slices first: with four maxima, four packed elements and two
/// Poseidon lanes a wide row, all of age-v1 fits one slice of `2^17` wide rows (its weight track, 24 weights
/// a row, is the longer one). Capped at `2^16` it takes four, the first ending at the max pool, whose output
/// is the smallest tensor to commit to after the input.
#[test]
fn the_balanced_plan_takes_the_fewest_slices() -> Result<()> {
    let graph = quantized("age-v1")?;
    let plan = slice(&graph, &SlicePolicy::Balanced { max_k: 17 }, &CostModel::default())?;
    assert_eq!(plan.slices.len(), 1);
    assert_eq!(plan.slices[0].k, 17);
    let plan = slice(&graph, &SlicePolicy::Balanced { max_k: 16 }, &CostModel::default())?;
    assert_eq!(plan.slices.len(), 4);
    assert_eq!(plan.slices[0].layers.last().map(String::as_str), Some("layer_49_maxpool"));
    Ok(())
}
