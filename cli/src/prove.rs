//! `veil prove COMPILED IMAGE --claim … --nonce HEX --audience STR -o BUNDLE`: proves what a compiled model
//! says about a private photo and writes the proof bundle.

use crate::compile::{load_compiled, slice_ks};
use crate::progress::Bar;
use crate::run::parse_crop;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;
use veil_core::claim::ClaimSpec;
use veil_core::compiled::{Compiled, ProveOptions};
use veil_core::manifest::Task;
use veil_core::preprocess::{load_image, preprocess, Crop};
use veil_core::prove::ClaimRequest;
use veil_core::tensor::Tensor;
use veil_verifier::bundle::{Claim, MAX_AUDIENCE_BYTES, MAX_NONCE_BYTES, MIN_NONCE_BYTES};

/// A verifier's nonce, given in hex on the command line.
#[derive(Clone, Debug)]
pub struct Nonce(pub Vec<u8>);

/// Parses a hex nonce of the length bundles allow.
pub fn parse_nonce(text: &str) -> Result<Nonce, String> {
    let text = text.trim();
    if text.len() & 1 == 1 {
        return Err(format!("a hex nonce has an even number of digits, got {}", text.len()));
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| {
            let pair = text.get(i..i + 2).ok_or("a hex nonce is ASCII hex digits")?;
            u8::from_str_radix(pair, 16).map_err(|_| format!("{pair:?} is not a hex byte"))
        })
        .collect::<Result<Vec<u8>, String>>()?;
    if !(MIN_NONCE_BYTES..=MAX_NONCE_BYTES).contains(&bytes.len()) {
        return Err(format!("a nonce is {MIN_NONCE_BYTES} to {MAX_NONCE_BYTES} bytes, got {}", bytes.len()));
    }
    Ok(Nonce(bytes))
}

/// Checks an audience's length.
pub fn parse_audience(text: &str) -> Result<String, String> {
    if text.len() > MAX_AUDIENCE_BYTES {
        return Err(format!("an audience is at most {MAX_AUDIENCE_BYTES} bytes, got {}", text.len()));
    }
    Ok(text.to_string())
}

/// Arguments of `veil prove`.
#[derive(clap::Args)]
pub struct Args {
    /// The compiled model (`veil compile`).
    compiled: PathBuf,
    /// A PNG or JPEG photo (it never leaves this machine; only the proof does).
    image: PathBuf,
    /// What to reveal: `output`, `argmax` or `age>=YEARS`.
    #[arg(long)]
    claim: ClaimSpec,
    /// The verifier's challenge, in hex.
    #[arg(long, value_parser = parse_nonce)]
    nonce: Nonce,
    /// Who the proof is for (the verifier's name or URL).
    #[arg(long, value_parser = parse_audience)]
    audience: String,
    /// The proof bundle to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Crop box `left,top,right,bottom` in pixels (default: the centred square).
    #[arg(long, value_parser = parse_crop)]
    crop: Option<Crop>,
    /// Prove only these slices (comma-separated indices); the verifier sees partial coverage.
    #[arg(long, value_delimiter = ',')]
    slices: Vec<usize>,
    /// Slices proved at once (each holds its proving key in memory).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    parallel: u16,
    /// Prove as many slices at once as fit this many MiB of estimated prover memory (about 11.5 KiB per row of
    /// 2^k for wide rows, 7 KiB for narrow ones); fails before proving if one slice alone does not fit.
    #[arg(long, conflicts_with = "parallel", value_parser = clap::value_parser!(u64).range(1..))]
    memory_budget: Option<u64>,
    /// Parameters and setup.
    #[command(flatten)]
    setup: crate::params::Setup,
    /// Derive every proving key for this proof and keep none (by default keys are kept in the parameters
    /// directory's `keys/`, about 300 MB per slice of 2^17 rows, and later proofs skip deriving them).
    #[arg(long)]
    no_key_cache: bool,
}

/// The prover's request for a claim, checked against what the compiled model can reveal.
pub fn claim_request(compiled: &Compiled, spec: &ClaimSpec) -> Result<ClaimRequest> {
    Ok(match spec {
        ClaimSpec::Output => ClaimRequest::Output,
        ClaimSpec::Argmax => ClaimRequest::Argmax,
        ClaimSpec::AgeAtLeast { threshold_quarters } => {
            if compiled.ages.is_none() {
                bail!("{} does not estimate age: use --claim argmax or output", compiled.name);
            }
            if *threshold_quarters < 0 {
                bail!("the age threshold cannot be negative");
            }
            ClaimRequest::AgeAtLeast(*threshold_quarters)
        }
    })
}

/// The model input for a photo, preprocessed as the compiled model's manifest says.
pub fn model_input(compiled: &Compiled, image: &Path, crop: Option<&Crop>) -> Result<Tensor<f32>> {
    let manifest = compiled.manifest().with_context(|| format!("{} has no usable manifest", compiled.name))?;
    let photo = load_image(image)?;
    Ok(preprocess(&photo, crop.unwrap_or(&Crop::CenterSquare), &manifest.normalization())?)
}

/// A claim in words; class labels come from the manifest when there is one.
pub fn describe_claim(claim: &Claim, compiled: Option<&Compiled>) -> String {
    match claim {
        Claim::Output { values, shape } => format!("output {shape:?}: {values:?}"),
        Claim::Argmax { index } => {
            let labels = compiled.and_then(|c| c.manifest().ok()).and_then(|m| m.task().ok());
            let label = match labels {
                Some(Task::Gender { labels }) => labels.get(*index as usize).cloned(),
                Some(Task::Classifier { labels }) => labels.get(*index as usize).cloned(),
                _ => None,
            };
            match label {
                Some(l) => format!("argmax = {index} ({l})"),
                None => format!("argmax = {index}"),
            }
        }
        Claim::AgeAtLeast { threshold_quarters, holds } => {
            format!("age >= {}: {holds}", *threshold_quarters as f64 / 4.0)
        }
    }
}

/// The slices to prove: `None` for all, else sorted, deduplicated and checked.
pub fn chosen_slices(compiled: &Compiled, slices: &[usize]) -> Result<Option<Vec<usize>>> {
    if slices.is_empty() {
        return Ok(None);
    }
    let n = compiled.slices.len();
    if let Some(bad) = slices.iter().find(|&&i| i >= n) {
        bail!("--slices: {} has slices 0..{n}, not {bad}", compiled.name);
    }
    let mut list = slices.to_vec();
    list.sort_unstable();
    list.dedup();
    Ok(Some(list))
}

pub fn execute(args: &Args, json: bool) -> Result<()> {
    let start = Instant::now();
    let compiled = load_compiled(&args.compiled)?;
    let request = claim_request(&compiled, &args.claim)?;
    let only = chosen_slices(&compiled, &args.slices)?;
    let mut options = match args.memory_budget {
        Some(mib) => ProveOptions::within_memory(&compiled, only, mib)?,
        None => ProveOptions { only, parallel: usize::from(args.parallel), key_cache: None },
    };
    let input = model_input(&compiled, &args.image, args.crop.as_ref())?;
    let scheme = compiled.verifier.scheme;
    let ks = slice_ks(&compiled.verifier, options.only.as_deref());
    let cache = args.setup.cache(scheme, true)?;
    let params = cache.param_set_for_proving(scheme, &ks)?;
    if !args.no_key_cache {
        options.key_cache = Some(cache.key_cache());
    }
    let bar = Bar::new(json);
    let progress = |stage: &str, done: usize, total: usize| bar.update(stage, done, total);
    let proving = Instant::now();
    let bundle = compiled.prove(
        &params,
        &input,
        request,
        &args.nonce.0,
        &args.audience,
        &options,
        &mut rand_core::OsRng,
        &progress,
    )?;
    let prove_seconds = proving.elapsed().as_secs_f64();
    bar.finish();
    bundle.validate().context("the prover made a malformed bundle")?;
    let bytes = bundle.to_bytes();
    std::fs::write(&args.output, &bytes).with_context(|| format!("writing {}", args.output.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    let proved = bundle.proved_slices();
    if json {
        let object = serde_json::json!({
            "model": compiled.name,
            "digest": bundle.model.to_string(),
            "claim": bundle.claim,
            "proved_slices": proved,
            "slices_total": bundle.slices_total,
            "bundle": args.output.display().to_string(),
            "bundle_bytes": bytes.len(),
            "prove_seconds": prove_seconds,
            "seconds": seconds,
            "parallel": options.parallel,
        });
        println!("{object}");
        return Ok(());
    }
    println!("claim: {}", describe_claim(&bundle.claim, Some(&compiled)));
    println!("proved slices {proved:?} of {}, up to {} at once", bundle.slices_total, options.parallel);
    println!(
        "wrote {} ({} bytes); proving took {prove_seconds:.1} s, {seconds:.1} s in all",
        args.output.display(),
        bytes.len()
    );
    Ok(())
}
