//! `veil compile MODEL -o OUT.veilc`: quantize, slice and key a model; writes the compiled model and, beside
//! it, the verifying artifact (`OUT.veilc.vk`) that is all a verifier needs.

use crate::bench::width_name;
use crate::progress::Bar;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;
use veil_core::compiled::Compiled;
use veil_core::prove::{fit_slice, ClaimModel};
use veil_core::slice::SlicePolicy;
use veil_core::Model;
use veil_verifier::artifact::VerifyingArtifact;
use veil_verifier::backend::Scheme;

/// Commitment scheme on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemeArg {
    /// Inner-product argument: transparent setup (the default).
    Ipa,
    /// KZG: needs a ceremony SRS (`--srs FILE.ptau`; `--insecure-test-srs` for tests only).
    Kzg,
}

/// Arguments of `veil compile`.
#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model (its manifest and calibration are found beside it by content).
    model: PathBuf,
    /// The compiled model to write; the verifying artifact goes to the same path plus `.vk`.
    #[arg(short, long)]
    output: PathBuf,
    /// Largest circuit size exponent per slice (rows = 2^k) for the balanced policy (default: the smallest
    /// from 17 up that every layer fits). The planner's row counts are estimates: the compiled k of each slice
    /// is printed.
    #[arg(long)]
    max_k: Option<u32>,
    /// One layer per slice.
    #[arg(long, conflicts_with_all = ["cut_after", "max_k"])]
    per_layer: bool,
    /// Cut after these layers (comma-separated node names).
    #[arg(long, value_delimiter = ',', conflicts_with = "max_k")]
    cut_after: Vec<String>,
    /// Commitment scheme.
    #[arg(long, value_enum, default_value_t = SchemeArg::Ipa)]
    scheme: SchemeArg,
    /// Parameters and setup.
    #[command(flatten)]
    setup: crate::params::Setup,
}

/// The verifying artifact's path for a compiled model's path: the same name plus `.vk`.
pub fn vk_path(compiled: &Path) -> PathBuf {
    let mut name = compiled.as_os_str().to_owned();
    name.push(".vk");
    PathBuf::from(name)
}

/// Reads a compiled model file.
pub fn load_compiled(path: &Path) -> Result<Compiled> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Compiled::from_bytes(&bytes).with_context(|| format!("reading {}", path.display()))
}

/// Reads a verifying artifact, or takes it from a compiled model (told apart by their magic bytes).
pub fn load_artifact(path: &Path) -> Result<VerifyingArtifact> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let context = || format!("reading {}", path.display());
    if bytes.starts_with(veil_verifier::artifact::MAGIC) {
        VerifyingArtifact::from_bytes(&bytes).with_context(context)
    } else if bytes.starts_with(veil_core::compiled::MAGIC) {
        Ok(Compiled::from_bytes(&bytes).with_context(context)?.verifier)
    } else {
        bail!("{}: neither a compiled model (.veilc) nor a verifying artifact (.vk)", path.display())
    }
}

/// The size exponents of the slices `only` (all when `None`): the parameters proving or verifying needs.
pub fn slice_ks(artifact: &VerifyingArtifact, only: Option<&[usize]>) -> Vec<u32> {
    match only {
        Some(list) => list.iter().filter_map(|&i| artifact.slices.get(i)).map(|s| s.k).collect(),
        None => artifact.slices.iter().map(|s| s.k).collect(),
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

pub fn execute(args: &Args, json: bool) -> Result<()> {
    if args.scheme == SchemeArg::Kzg && args.setup.srs.is_none() && !args.setup.insecure_test_srs {
        // A usage error (exit status 2), before any work.
        clap::Error::raw(
            clap::error::ErrorKind::MissingRequiredArgument,
            "--scheme kzg needs --srs FILE.ptau (a powers-of-tau ceremony file) or --insecure-test-srs\n",
        )
        .exit();
    }
    let start = Instant::now();
    let model = Model::load_onnx(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let graph = model.quantize_default()?;
    let claims = ClaimModel::new(&graph, model.task.age_quarters().as_deref())?;
    let (plan, policy) = crate::slice::plan(&graph, args.per_layer, &args.cut_after, args.max_k)?;
    // The planner estimates rows; the parameters must cover the circuits' real sizes.
    let specs = claims.slice_specs(&plan);
    let ks = specs
        .iter()
        .enumerate()
        .map(|(i, s)| Ok(fit_slice(&graph, s, (i + 1 == specs.len()).then_some(&claims))?.1.k()))
        .collect::<Result<Vec<u32>>>()?;
    let k = ks.iter().copied().max().context("the plan has no slices")?;
    if let SlicePolicy::Balanced { max_k } = policy {
        if k > max_k {
            eprintln!("note: the planner's estimates were low: the largest slice needs 2^{k} rows (cap 2^{max_k})");
        }
    }
    let scheme = match args.scheme {
        SchemeArg::Ipa => Scheme::Ipa,
        SchemeArg::Kzg => Scheme::Kzg,
    };
    let mut params = args.setup.cache(scheme, true)?.param_set(scheme, &ks)?;
    let bar = Bar::new(json);
    let progress = |stage: &str, done: usize, total: usize| bar.update(stage, done, total);
    let compiled = Compiled::new(&model.manifest.name, Some(&model.manifest), graph, &plan, &mut params, &progress)?;
    bar.finish();
    let bytes = compiled.to_bytes();
    let vk = compiled.verifier.to_bytes();
    let vk_file = vk_path(&args.output);
    write(&args.output, &bytes)?;
    write(&vk_file, &vk)?;
    let digest = compiled.verifier.digest();
    let seconds = start.elapsed().as_secs_f64();
    let slices: Vec<serde_json::Value> = plan
        .slices
        .iter()
        .zip(&compiled.verifier.slices)
        .map(|(s, key)| {
            let (index, k, weights, width) = (key.index, key.k, key.weights, width_name(key.width));
            serde_json::json!({ "index": index, "layers": s.layers, "k": k, "estimated_k": s.k, "weight_columns": weights, "width": width })
        })
        .collect();
    if json {
        let object = serde_json::json!({
            "model": compiled.name,
            "digest": digest.to_string(),
            "scheme": format!("{scheme:?}").to_lowercase(),
            "params_k": k,
            "slices": slices,
            "compiled": args.output.display().to_string(),
            "compiled_bytes": bytes.len(),
            "vk": vk_file.display().to_string(),
            "vk_bytes": vk.len(),
            "seconds": seconds,
        });
        println!("{object}");
        return Ok(());
    }
    println!("{:>5} {:>4} {:>6} {:>6} {:>7}  layers", "slice", "k", "est. k", "width", "weights");
    for (s, key) in plan.slices.iter().zip(&compiled.verifier.slices) {
        let first = s.layers.first().map_or("", String::as_str);
        let last = s.layers.last().map_or("", String::as_str);
        let (index, k, weights, layers, width) = (key.index, key.k, key.weights, s.layers.len(), width_name(key.width));
        println!("{index:>5} {k:>4} {:>6} {width:>6} {weights:>7}  {layers} layers: {first} … {last}", s.k);
    }
    println!("model {} ({:?}, {} slices, parameters 2^{k})", compiled.name, scheme, plan.slices.len());
    println!("digest {digest}");
    println!(
        "wrote {} ({} bytes) and {} ({} bytes) in {seconds:.1} s",
        args.output.display(),
        bytes.len(),
        vk_file.display(),
        vk.len()
    );
    Ok(())
}
