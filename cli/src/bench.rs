//! `veil bench COMPILED IMAGE`: proves and verifies a compiled model on a photo and reports sizes, times and
//! peak memory per slice and in all.

use crate::compile::{load_compiled, slice_ks};
use crate::progress::Bar;
use crate::prove::{chosen_slices, claim_request, describe_claim, model_input};
use crate::run::parse_crop;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;
use veil_core::claim::ClaimSpec;
use veil_core::compiled::{KeySource, ProveOptions};
use veil_core::preprocess::Crop;
use veil_core::prove::{slice_circuit, ClaimModel, RowProfile};
use veil_core::Model;
use veil_verifier::verify::{Expected, Verifier};

/// Float inference runs timed for the prove/float ratio.
const FLOAT_RUNS: usize = 10;
const NONCE: &[u8] = b"veil-bench-nonce";
const AUDIENCE: &str = "veil-bench";

/// Arguments of `veil bench`.
#[derive(clap::Args)]
pub struct Args {
    /// The compiled model (`veil compile`).
    compiled: PathBuf,
    /// A PNG or JPEG photo.
    image: PathBuf,
    /// The claim to prove (default: `age>=18` for age models, else `argmax`).
    #[arg(long)]
    claim: Option<ClaimSpec>,
    /// Proving runs (times are medians).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,
    /// Crop box `left,top,right,bottom` in pixels (default: the centred square).
    #[arg(long, value_parser = parse_crop)]
    crop: Option<Crop>,
    /// Prove only these slices (comma-separated indices).
    #[arg(long, value_delimiter = ',')]
    slices: Vec<usize>,
    /// The ONNX model the compiled file was made from, to time plain float inference for comparison.
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// Parameters and setup.
    #[command(flatten)]
    setup: crate::params::Setup,
    /// Derive the proving keys inside every timed proof instead of reading them from the key cache (which is
    /// filled before timing, as a device's first proof would).
    #[arg(long)]
    no_key_cache: bool,
}

/// What `veil bench` reports for one slice.
#[derive(serde::Serialize)]
struct SliceFigures {
    index: usize,
    k: u32,
    /// Rows the circuit's trace uses.
    rows: usize,
    /// Rows of its lookup table.
    table_rows: usize,
    /// Where the rows go, by relation.
    row_profile: RowProfile,
    /// Weight columns of its constraint system (the weight track's width).
    weight_columns: usize,
    /// Row width of its constraint system: `narrow` or `wide`.
    width: &'static str,
    /// Median proving time (reading the proving key from the cache, or deriving it with `--no-key-cache`).
    prove_s: f64,
    proof_bytes: usize,
}

/// A row width as the bench table and JSON name it.
pub fn width_name(width: veil_verifier::circuit::Width) -> &'static str {
    match width {
        veil_verifier::circuit::Width::Narrow => "narrow",
        veil_verifier::circuit::Width::Wide => "wide",
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Peak resident memory of this process (VmHWM), in MiB; `None` where /proc is not available.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Restarts the peak-RSS count from the current RSS (Linux `clear_refs`); false where that is not possible.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Loads the ONNX model given for the float comparison and checks it is the one the compiled file came from.
fn load_onnx(path: &std::path::Path, compiled_sha256: &str, args: &Args) -> Result<Model> {
    let model = Model::load_onnx(path).with_context(|| format!("loading {}", path.display()))?;
    if !model.manifest.sha256.eq_ignore_ascii_case(compiled_sha256) {
        bail!("{} is not the model {} was compiled from (sha256 differs)", path.display(), args.compiled.display());
    }
    Ok(model)
}

/// Median float inference time of the ONNX model on the same photo, in seconds.
fn float_seconds(model: &Model, args: &Args) -> Result<f64> {
    let photo = veil_core::preprocess::load_image(&args.image)?;
    let crop = args.crop.unwrap_or(Crop::CenterSquare);
    let input = veil_core::preprocess::preprocess(&photo, &crop, &model.manifest.normalization())?;
    model.run_float(&input)?;
    let mut times = Vec::with_capacity(FLOAT_RUNS);
    for _ in 0..FLOAT_RUNS {
        let t = Instant::now();
        model.run_float(&input)?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

pub fn execute(args: &Args, json: bool) -> Result<()> {
    let compiled = load_compiled(&args.compiled)?;
    let manifest = compiled.manifest().with_context(|| format!("{} has no usable manifest", compiled.name))?;
    let spec = match &args.claim {
        Some(spec) => spec.clone(),
        None if compiled.ages.is_some() => ClaimSpec::AgeAtLeast { threshold_quarters: 72 },
        None => ClaimSpec::Argmax,
    };
    let request = claim_request(&compiled, &spec)?;
    let input = model_input(&compiled, &args.image, args.crop.as_ref())?;
    let only = chosen_slices(&compiled, &args.slices)?;
    // A wrong `--onnx` fails before minutes of proving; the model is loaded again to time it once the memory
    // peak is read, so it is not resident while proving.
    let onnx = args.onnx.as_deref();
    if let Some(path) = onnx {
        load_onnx(path, &manifest.sha256, args)?;
    }

    // Circuit sizes, from the witness-free circuits.
    let claims = ClaimModel::new(&compiled.graph, compiled.ages.as_deref())?;
    let n = compiled.slices.len();
    let rows = (0..n)
        .map(|i| {
            let c = slice_circuit(&compiled.graph, &compiled.slices[i], (i + 1 == n).then_some(&claims), None)?;
            Ok((c.rows(), c.table_rows(), c.row_profile()))
        })
        .collect::<Result<Vec<_>>>()?;

    let scheme = compiled.verifier.scheme;
    let t = Instant::now();
    // The verifier needs every slice's parameters even when only some slices are proved.
    let ks = slice_ks(&compiled.verifier, None);
    let cache = args.setup.cache(scheme, !json)?;
    let params = cache.param_set_for_proving(scheme, &ks)?;
    let params_seconds = t.elapsed().as_secs_f64();

    let chosen: Vec<usize> = only.clone().unwrap_or_else(|| (0..n).collect());
    // A device derives each proving key once, on its first proof: that happens here, outside the timed proofs,
    // and the peak-RSS count restarts after it.
    let key_cache = (!args.no_key_cache).then(|| cache.key_cache());
    let keys = match &key_cache {
        Some(keys) => {
            let t = Instant::now();
            let sources = compiled.prepare_keys(&params, keys, Some(&chosen))?;
            let derived = sources.iter().filter(|&&s| s == KeySource::Derived).count();
            Some((t.elapsed().as_secs_f64(), derived, reset_peak_rss()))
        }
        None => None,
    };
    let options = ProveOptions { only, parallel: 1, key_cache };
    let mut prove_times = Vec::new();
    let mut slice_times: Vec<Vec<f64>> = vec![Vec::new(); chosen.len()];
    let mut bundle = None;
    for _ in 0..args.runs {
        // With one slice at a time, slices finish in order: the gaps between progress calls time each one.
        let marks = Mutex::new(Vec::new());
        let bar = Bar::new(json);
        let progress = |stage: &str, done: usize, total: usize| {
            bar.update(stage, done, total);
            if let Ok(mut m) = marks.lock() {
                m.push(Instant::now());
            }
        };
        let t = Instant::now();
        let b =
            compiled.prove(&params, &input, request, NONCE, AUDIENCE, &options, &mut rand_core::OsRng, &progress)?;
        prove_times.push(t.elapsed().as_secs_f64());
        bar.finish();
        let marks = marks.into_inner().unwrap_or_default();
        for (slot, pair) in marks.windows(2).enumerate().take(chosen.len()) {
            slice_times[slot].push((pair[1] - pair[0]).as_secs_f64());
        }
        bundle = Some(b);
    }
    let bundle = bundle.context("no proving run")?;
    let bytes = bundle.to_bytes();

    let verifier = Verifier::new(compiled.verifier.clone(), params).map_err(|r| anyhow::anyhow!("{r}"))?;
    let mut verify_times = Vec::new();
    for _ in 0..args.runs {
        let t = Instant::now();
        verifier.verify(&bytes, NONCE, AUDIENCE, Expected::Any).context("the bundle does not verify")?;
        verify_times.push(t.elapsed().as_secs_f64());
    }
    let prove_s = median(prove_times.clone());
    let verify_s = median(verify_times);
    let peak = peak_rss_mib();
    crate::platform::keep_freed_blocks();
    let float = onnx.map(|path| float_seconds(&load_onnx(path, &manifest.sha256, args)?, args)).transpose()?;

    let slices: Vec<SliceFigures> = chosen
        .iter()
        .zip(&slice_times)
        .map(|(&i, times)| SliceFigures {
            index: i,
            k: compiled.verifier.slices[i].k,
            rows: rows[i].0,
            table_rows: rows[i].1,
            row_profile: rows[i].2,
            weight_columns: compiled.slices[i].weights,
            width: width_name(compiled.verifier.slices[i].width),
            prove_s: median(times.clone()),
            proof_bytes: bundle.slices.iter().find(|s| s.index as usize == i).map_or(0, |s| s.proof.len()),
        })
        .collect();
    if json {
        let mut object = serde_json::json!({
            "model": compiled.name,
            "scheme": format!("{scheme:?}").to_lowercase(),
            "claim": bundle.claim,
            "runs": args.runs,
            "slices": slices,
            "params_s": params_seconds,
            "key_cache": keys.is_some(),
            "keys_s": keys.map(|k| k.0),
            "keys_derived": keys.map(|k| k.1),
            "prove_s": prove_s,
            "prove_runs_s": prove_times,
            "verify_s": verify_s,
            "peak_rss_mib": peak,
            "bundle_bytes": bytes.len(),
        });
        if let Some(f) = float {
            object["float_s"] = f.into();
            object["prove_float_ratio"] = (prove_s / f).into();
        }
        println!("{object}");
        return Ok(());
    }
    println!("{} ({scheme:?}), claim {}", compiled.name, describe_claim(&bundle.claim, Some(&compiled)));
    println!(
        "{:>5} {:>3} {:>6} {:>9} {:>11} {:>9} {:>8}",
        "slice", "k", "width", "rows", "table rows", "prove s", "proof B"
    );
    for s in &slices {
        println!(
            "{:>5} {:>3} {:>6} {:>9} {:>11} {:>9.2} {:>8}",
            s.index, s.k, s.width, s.rows, s.table_rows, s.prove_s, s.proof_bytes
        );
    }
    print_row_profiles(&slices);
    println!("parameters loaded in {params_seconds:.1} s");
    match keys {
        Some((seconds, derived, reset)) => {
            println!(
                "proving keys ready in {seconds:.1} s ({derived} of {} derived, the rest read from {}){}",
                chosen.len(),
                cache.key_cache().dir().display(),
                if reset { "" } else { "; the peak RSS below includes deriving them" }
            );
            println!("prove  {prove_s:.2} s (median of {}; each proof reads its keys from the cache)", args.runs);
        }
        None => println!("prove  {prove_s:.2} s (median of {}; each proof derives its keys)", args.runs),
    }
    println!("verify {verify_s:.3} s");
    println!("bundle {} bytes", bytes.len());
    match peak {
        Some(mib) => println!("peak RSS {mib:.0} MiB"),
        None => println!("peak RSS unavailable (no /proc/self/status)"),
    }
    if let Some(f) = float {
        println!("float inference {:.2} ms (median of {FLOAT_RUNS}); prove/float = {:.0}×", f * 1e3, prove_s / f);
    }
    Ok(())
}

/// Prints where each slice's rows go, with how full its `2^k` rows are (proving cost follows `2^k`).
fn print_row_profiles(slices: &[SliceFigures]) {
    let Some(first) = slices.first() else { return };
    let names = first.row_profile.entries().map(|(name, _)| name);
    print!("{:>5}", "rows");
    for name in names {
        print!(" {name:>8}");
    }
    println!(" {:>8} {:>7} {:>6}", "weights*", "columns", "fill");
    for s in slices {
        print!("{:>5}", s.index);
        for (_, n) in s.row_profile.entries() {
            print!(" {n:>8}");
        }
        let fill = 100.0 * s.rows as f64 / (1u64 << s.k) as f64;
        println!(" {:>8} {:>7} {:>5.0}%", s.row_profile.weights, s.weight_columns, fill);
    }
    println!("* the weight track: fixed-weight evaluations in that many columns, laid beside the other relations");
}
