//! `veil keys COMPILED`: derives every slice's proving key into the key cache ahead of the first proof (at
//! install or deploy time), so no proof pays for key derivation.

use crate::compile::{load_compiled, slice_ks};
use anyhow::Result;
use std::path::PathBuf;
use std::time::Instant;
use veil_core::compiled::KeySource;

/// Arguments of `veil keys`.
#[derive(clap::Args)]
pub struct Args {
    /// The compiled model (`veil compile`).
    compiled: PathBuf,
    /// Parameters and setup.
    #[command(flatten)]
    setup: crate::params::Setup,
}

pub fn execute(args: &Args, json: bool) -> Result<()> {
    let compiled = load_compiled(&args.compiled)?;
    let scheme = compiled.verifier.scheme;
    let cache = args.setup.cache(scheme, !json)?;
    let params = cache.param_set(scheme, &slice_ks(&compiled.verifier, None))?;
    let keys = cache.key_cache();
    let t = Instant::now();
    let sources = compiled.prepare_keys(&params, &keys, None)?;
    let seconds = t.elapsed().as_secs_f64();
    let slices: Vec<serde_json::Value> = sources
        .iter()
        .zip(&compiled.verifier.slices)
        .map(|(source, slice)| {
            let path = keys.path(&slice.vk_digest);
            serde_json::json!({
                "index": slice.index,
                "k": slice.k,
                "source": if *source == KeySource::Derived { "derived" } else { "cached" },
                "file": path.display().to_string(),
                "bytes": std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::json!({ "model": compiled.name, "slices": slices, "seconds": seconds }));
        return Ok(());
    }
    for s in &slices {
        let text = |key: &str| s[key].as_str().unwrap_or_default().to_string();
        println!("slice {} (k = {}): {} {} ({} bytes)", s["index"], s["k"], text("source"), text("file"), s["bytes"]);
    }
    println!("proving keys of {} ready in {seconds:.1} s", compiled.name);
    Ok(())
}
