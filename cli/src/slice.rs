//! `veil slice MODEL`: the slicing plan of a model's quantized graph.

use anyhow::{Context, Result};
use std::path::PathBuf;
use veil_core::quant::QuantizedGraph;
use veil_core::slice::{slice, CostModel, SlicePlan, SlicePolicy};
use veil_core::Model;

/// Arguments of `veil slice`.
#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model (quantized with the calibration shipped beside it).
    model: PathBuf,
    /// Largest circuit size exponent per slice (rows = 2^k) for the balanced policy (default: the smallest from
    /// 17 up that every layer fits).
    #[arg(long)]
    max_k: Option<u32>,
    /// One layer per slice.
    #[arg(long, conflicts_with = "cut_after")]
    per_layer: bool,
    /// Cut after these layers (comma-separated node names).
    #[arg(long, value_delimiter = ',')]
    cut_after: Vec<String>,
}

/// The `k` cap the balanced policy tries first: slices of `2^17` rows prove in about 1.5 GB of memory.
pub const PREFERRED_K: u32 = 17;
/// The largest cap tried when none is given.
const LARGEST_AUTO_K: u32 = 22;

/// Plans `graph` under the `--per-layer`, `--cut-after` and `--max-k` flags (shared by `slice` and `compile`).
/// Without `--max-k`, the balanced policy takes the smallest cap from [`PREFERRED_K`] up under which every
/// layer, with its boundary commitments, fits a slice: a larger cap may prove as fast (age-v1 as one narrow
/// `k = 18` slice proves in about the time of two `k = 17` ones) but needs more memory and larger parameters.
/// Returns the plan and the policy used.
pub fn plan(
    graph: &QuantizedGraph,
    per_layer: bool,
    cut_after: &[String],
    max_k: Option<u32>,
) -> Result<(SlicePlan, SlicePolicy)> {
    let policy = if per_layer {
        SlicePolicy::PerLayer
    } else if !cut_after.is_empty() {
        SlicePolicy::Explicit { cut_after: cut_after.to_vec() }
    } else if let Some(max_k) = max_k {
        SlicePolicy::Balanced { max_k }
    } else {
        let mut last = None;
        for max_k in PREFERRED_K..=LARGEST_AUTO_K {
            let policy = SlicePolicy::Balanced { max_k };
            match slice(graph, &policy, &CostModel::default()) {
                Ok(plan) => return Ok((plan, policy)),
                Err(e) => last = Some(e),
            }
        }
        return Err(last.map_or_else(|| anyhow::anyhow!("no slicing found"), anyhow::Error::from));
    };
    Ok((slice(graph, &policy, &CostModel::default())?, policy))
}

pub fn execute(args: &Args, json: bool) -> Result<()> {
    let model = Model::load_onnx(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let quantized = model.quantize_default()?;
    let (plan, _) = plan(&quantized, args.per_layer, &args.cut_after, args.max_k)?;
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
