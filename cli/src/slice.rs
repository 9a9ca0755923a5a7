//! `veil slice MODEL`: the slicing plan of a model's quantized graph.

use anyhow::{Context, Result};
use std::path::PathBuf;
use veil_core::slice::{slice, CostModel, SlicePolicy};
use veil_core::Model;

/// Arguments of `veil slice`.
#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model (quantized with the calibration shipped beside it).
    model: PathBuf,
    /// Largest circuit size exponent per slice (rows = 2^k) for the balanced policy.
    #[arg(long, default_value_t = 19)]
    max_k: u32,
    /// One layer per slice.
    #[arg(long, conflicts_with = "cut_after")]
    per_layer: bool,
    /// Cut after these layers (comma-separated node names).
    #[arg(long, value_delimiter = ',')]
    cut_after: Vec<String>,
}

/// The slicing policy the `--per-layer`, `--cut-after` and `--max-k` flags select (shared by `slice` and `compile`).
pub fn policy(per_layer: bool, cut_after: &[String], max_k: u32) -> SlicePolicy {
    if per_layer {
        SlicePolicy::PerLayer
    } else if !cut_after.is_empty() {
        SlicePolicy::Explicit { cut_after: cut_after.to_vec() }
    } else {
        SlicePolicy::Balanced { max_k }
    }
}

pub fn execute(args: &Args, json: bool) -> Result<()> {
    let model = Model::load_onnx(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let quantized = model.quantize_default()?;
    let policy = crate::slice::policy(args.per_layer, &args.cut_after, args.max_k);
    let plan = slice(&quantized, &policy, &CostModel::default())?;
    if json {
        println!("{}", serde_json::to_string(&plan)?);
        return Ok(());
    }
    println!(
        "{:>5} {:>6} {:>12} {:>4} {:>10}  layers (boundary in → out)",
        "slice", "nodes", "est. rows", "k", "est. MiB"
    );
    for s in &plan.slices {
        let names = |ids: &[veil_core::ir::ValueId]| {
            ids.iter().map(|id| quantized.value(*id).name.clone()).collect::<Vec<_>>().join(", ")
        };
        println!(
            "{:>5} {:>6} {:>12} {:>4} {:>10.0}  {} … {} ({} → {})",
            s.index,
            s.layers.len(),
            s.rows,
            s.k,
            s.memory_bytes as f64 / (1 << 20) as f64,
            s.layers.first().map_or("", String::as_str),
            s.layers.last().map_or("", String::as_str),
            names(&s.inputs),
            names(&s.outputs)
        );
    }
    println!(
        "{} slices, {} estimated rows in all, largest k = {} (estimates from the planned circuit layout; see core/src/slice/cost.rs)",
        plan.slices.len(),
        plan.total_rows(),
        plan.max_k()
    );
    Ok(())
}
