//! `veil inspect MODEL`.

use anyhow::Result;
use std::path::PathBuf;
use veil_core::onnx::{load_onnx_file, ImportOptions};

/// Arguments of `veil inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model.
    model: PathBuf,
}

pub fn execute(args: &Args, json: bool) -> Result<()> {
    let graph = load_onnx_file(&args.model, &ImportOptions::default())?;
    let stats = graph.stats();
    if json {
        println!("{}", serde_json::to_string(&stats)?);
        return Ok(());
    }
    println!("{:<32} {:<18} {:<20} {:>12} {:>14}", "layer", "op", "output", "params", "MACs");
    for l in &stats.layers {
        println!("{:<32} {:<18} {:<20} {:>12} {:>14}", l.name, l.op, format!("{:?}", l.shape), l.params, l.macs);
    }
    let convs = stats.count("Conv");
    println!(
        "total: {} layers ({convs} convolutions), {} parameters ({:.2} M), {} MACs ({:.1} M)",
        stats.layers.len(),
        stats.params,
        stats.params as f64 / 1e6,
        stats.macs,
        stats.macs as f64 / 1e6
    );
    Ok(())
}
