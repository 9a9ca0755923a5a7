//! `veil verify COMPILED_OR_VK BUNDLE --nonce HEX --audience STR`: checks a proof bundle. Exit status 0 when
//! accepted, 1 when rejected, 2 when it could not be checked (usage, files).

use crate::compile::{load_artifact, slice_ks};
use crate::prove::{describe_claim, parse_audience, parse_nonce, Nonce};
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;
use veil_core::claim::ClaimSpec;
use veil_verifier::bundle::{ProofBundle, MAX_BUNDLE_BYTES};
use veil_verifier::verdict::{Coverage, Rejection, Verdict, VerifyReport};
use veil_verifier::verify::{Expected, Verifier};

/// Arguments of `veil verify`.
#[derive(clap::Args)]
pub struct Args {
    /// The verifying artifact (`OUT.veilc.vk`) or the compiled model.
    artifact: PathBuf,
    /// The proof bundle.
    bundle: PathBuf,
    /// The nonce this verifier issued, in hex.
    #[arg(long, value_parser = parse_nonce)]
    nonce: Nonce,
    /// This verifier's audience string.
    #[arg(long, value_parser = parse_audience)]
    audience: String,
    /// The claim asked for: `output`, `argmax` or `age>=YEARS` (default: any the model supports).
    #[arg(long)]
    expect: Option<ClaimSpec>,
    /// Reject bundles that leave slices unproved.
    #[arg(long)]
    require_full: bool,
    /// Parameters and setup.
    #[command(flatten)]
    setup: crate::params::Setup,
}

fn expected(spec: Option<&ClaimSpec>) -> Result<Expected> {
    Ok(match spec {
        None => Expected::Any,
        Some(ClaimSpec::Output) => Expected::Output,
        Some(ClaimSpec::Argmax) => Expected::Argmax,
        Some(ClaimSpec::AgeAtLeast { threshold_quarters }) => match u32::try_from(*threshold_quarters) {
            Ok(t) => Expected::AgeAtLeast(t),
            Err(_) => bail!("--expect: the age threshold must be between 0 and {} years", u32::MAX / 4),
        },
    })
}

/// Reads at most one byte more than a bundle may have, so a huge file is rejected without reading it all.
fn read_bundle(path: &std::path::Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes)
}

/// Verifies; `Ok(true)` when the bundle is accepted.
pub fn execute(args: &Args, json: bool) -> Result<bool> {
    let expect = expected(args.expect.as_ref())?;
    let artifact = load_artifact(&args.artifact)?;
    let bytes = read_bundle(&args.bundle)?;
    let start = Instant::now();
    // Setup a verifying server does once: loading the parameters, then checking them and reading the keys.
    let (mut params_seconds, mut keys_seconds) = (0.0, 0.0);
    // Malformed bundles and bundles for another model are rejected before the parameters are loaded (which
    // may mean generating them).
    let precheck = ProofBundle::from_bytes(&bytes).map_err(Rejection::BadFormat).and_then(|b| {
        let digest = artifact.digest();
        if b.model == digest {
            Ok(())
        } else {
            Err(Rejection::WrongModel { expected: digest, found: b.model })
        }
    });
    let result = match precheck {
        Err(rejection) => Err(rejection),
        Ok(()) => {
            let scheme = artifact.scheme;
            let params = args.setup.cache(scheme, !json)?.param_set(scheme, &slice_ks(&artifact, None))?;
            params_seconds = start.elapsed().as_secs_f64();
            let keys_start = Instant::now();
            let verifier = Verifier::new(artifact, params);
            keys_seconds = keys_start.elapsed().as_secs_f64();
            verifier.and_then(|v| v.verify(&bytes, &args.nonce.0, &args.audience, expect)).and_then(|verdict| {
                if args.require_full {
                    verdict.require_full()
                } else {
                    Ok(verdict)
                }
            })
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let report = VerifyReport::from_result(&result);
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_text(&result, seconds - params_seconds - keys_seconds, keys_seconds, params_seconds);
    }
    Ok(report.accepted)
}

fn print_text(result: &Result<Verdict, Rejection>, seconds: f64, keys_seconds: f64, params_seconds: f64) {
    match result {
        Ok(verdict) => {
            println!("accepted: {}", describe_claim(&verdict.claim, None));
            match &verdict.coverage {
                Coverage::Full => println!("coverage: full (slices {:?})", verdict.proved_slices),
                Coverage::Partial { unproved } => println!(
                    "coverage: PARTIAL: slices {unproved:?} are not proved; the claim assumes they were computed honestly"
                ),
            }
            println!(
                "model {}; checked in {seconds:.2} s (setup a server does once: {params_seconds:.1} s loading the \
                 parameters, {keys_seconds:.2} s reading the keys)",
                verdict.model,
            );
        }
        Err(rejection) => println!("rejected [{}]: {rejection}", rejection.code()),
    }
}
