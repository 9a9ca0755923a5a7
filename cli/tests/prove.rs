//! `veil compile`, `prove`, `verify` and `bench`: usage errors, hostile inputs, exit statuses and the JSON
//! report. Verification runs on a small network compiled in-process (seconds); the shipped model's full
//! compile → prove → verify takes minutes and is `#[ignore]`d.

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use veil_core::compiled::{Compiled, ProveOptions};
use veil_core::prove::ClaimRequest;
use veil_core::quant::{quantize, Calibration, QuantConfig};
use veil_core::slice::{slice, CostModel, SlicePolicy};
use veil_core::tensor::Tensor;
use veil_verifier::backend::{ParamSet, Params};

/// A nonce in hex, and the same bytes.
const NONCE_HEX: &str = "6e6f6e63652d30313233";
const NONCE: &[u8] = b"nonce-0123";
const AUDIENCE: &str = "https://verifier.example/age-check";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh directory for one test's files (removed by the test when it passes).
fn temp_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("veil-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// What one `veil` run returned.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn json(&self) -> Result<Value> {
        serde_json::from_str(self.stdout.trim()).with_context(|| format!("not one JSON object: {:?}", self.stdout))
    }
}

/// Runs `veil` from the repository root with its parameters cache in `params`.
fn veil(args: &[&str], params: &Path) -> Result<Outcome> {
    let out = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .current_dir(root())
        .env("VEIL_PARAMS_DIR", params)
        .output()?;
    let outcome = Outcome {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout)?,
        stderr: String::from_utf8(out.stderr)?,
    };
    ensure!(!outcome.stderr.contains("panicked"), "veil {args:?} panicked: {}", outcome.stderr);
    Ok(outcome)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

#[test]
fn usage_errors_exit_2_with_a_clear_message() -> Result<()> {
    let dir = temp_dir("usage")?;
    let prove = ["prove", "x.veilc", "photo.png", "--audience", "a", "-o", "b.veilp"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        ([&prove[..], &["--claim", "argmax"]].concat(), "--nonce"),
        ([&prove[..], &["--claim", "argmax", "--nonce", "zz"]].concat(), "not a hex byte"),
        ([&prove[..], &["--claim", "argmax", "--nonce", "abc"]].concat(), "even number"),
        ([&prove[..], &["--claim", "argmax", "--nonce", ""]].concat(), "1 to 256 bytes"),
        ([&prove[..], &["--claim", "age18", "--nonce", "00"]].concat(), "unknown claim \"age18\""),
        ([&prove[..], &["--claim", "argmax", "--nonce", "00", "--parallel", "0"]].concat(), "--parallel"),
        (vec!["verify", "a.vk", "b.veilp", "--audience", "a"], "--nonce"),
        (vec!["verify", "a.vk", "b.veilp", "--audience", "a", "--nonce", "00", "--expect", "maybe"], "unknown claim"),
        (vec!["compile", "models/gender-v1.onnx", "-o", "x.veilc", "--scheme", "kzg"], "--insecure-test-srs"),
        (vec!["compile", "models/gender-v1.onnx", "-o", "x.veilc", "--per-layer", "--max-k", "17"], "--max-k"),
    ];
    for (args, needle) in cases {
        let out = veil(&args, &dir)?;
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: stderr {:?} lacks {needle:?}", out.stderr);
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn compile_refuses_files_that_are_not_onnx_models() -> Result<()> {
    let dir = temp_dir("compile-bad")?;
    // No manifest names this file.
    let out = veil(&["compile", "README.md", "-o", path(&dir.join("x.veilc"))], &dir)?;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("no manifest"), "{}", out.stderr);
    // A manifest names it, but it is not ONNX.
    let garbage = b"this is not an onnx model".to_vec();
    std::fs::write(dir.join("gender-v1.onnx"), &garbage)?;
    let manifest = std::fs::read_to_string(root().join("models/gender-v1.toml"))?;
    let real = veil_core::manifest::sha256_hex(&std::fs::read(root().join("models/gender-v1.onnx"))?);
    std::fs::write(dir.join("gender-v1.toml"), manifest.replace(&real, &veil_core::manifest::sha256_hex(&garbage)))?;
    let out = veil(&["compile", path(&dir.join("gender-v1.onnx")), "-o", path(&dir.join("x.veilc"))], &dir)?;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("corrupt or truncated"), "{}", out.stderr);
    assert!(!dir.join("x.veilc").exists() && !dir.join("x.veilc.vk").exists());
    // `prove` and `verify` refuse such files as models too.
    let img = "models/samples/face-1.png";
    let out =
        veil(&["prove", "README.md", img, "--claim", "argmax", "--nonce", "00", "--audience", "a", "-o", "b"], &dir)?;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("not a Veil compiled model"), "{}", out.stderr);
    let out = veil(&["verify", "README.md", "README.md", "--nonce", "00", "--audience", "a"], &dir)?;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("neither a compiled model"), "{}", out.stderr);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A small network (conv → ReLU → reshape → linear from `tests/data/ops`, 8-bit so circuits stay at 2^14 rows)
/// compiled in two slices, its files, and proof bundles made in-process.
struct Fixture {
    dir: PathBuf,
    compiled: PathBuf,
    vk: PathBuf,
    /// Both slices proved, argmax claim.
    full: PathBuf,
    /// Only slice 1 proved.
    partial: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| build_fixture(ParamSet::new(Params::ipa(14)), "veil-prove-fixture").expect("fixture"))
}

/// The test powers-of-tau ceremony file (snarkjs format, power 13; `tests/data/srs`).
const CEREMONY: &str = "tests/data/srs/test-pot13.ptau";

/// The same network compiled for KZG over [`CEREMONY`].
fn kzg_fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let file = std::io::BufReader::new(std::fs::File::open(root().join(CEREMONY)).expect("ceremony file"));
        let params = veil_verifier::srs::kzg_from_ptau(file, 13).expect("ceremony SRS");
        build_fixture(ParamSet::new(params), "veil-prove-kzg-fixture").expect("KZG fixture")
    })
}

fn build_fixture(mut params: ParamSet, name: &str) -> Result<Fixture> {
    let case = root().join("tests/data/ops/pytorch_style");
    let graph = veil_core::onnx::load_onnx_file(&case.join("model.onnx"), &Default::default())?;
    let io: Value = serde_json::from_str(&std::fs::read_to_string(case.join("io.json"))?)?;
    let input = Tensor::new(
        serde_json::from_value(io["inputs"][0]["shape"].clone())?,
        serde_json::from_value::<Vec<f32>>(io["inputs"][0]["data"].clone())?,
    )?;
    let calibration = Calibration::collect(&graph, [("case".to_string(), std::slice::from_ref(&input))])?;
    let config = QuantConfig { input_bits: 8, activation_bits: 8, weight_bits: 8, ..QuantConfig::default() };
    let q = quantize(&graph, &calibration, &config)?;
    let plan = slice(&q, &SlicePolicy::Explicit { cut_after: vec!["/relu/Relu".into()] }, &CostModel::default())?;
    let compiled = Compiled::new("tiny", None, q, &plan, &mut params, &|_, _, _| {})?;
    // Under the target directory, replaced on each run: a `static` fixture has no teardown.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let f = Fixture {
        compiled: dir.join("tiny.veilc"),
        vk: dir.join("tiny.veilc.vk"),
        full: dir.join("full.veilp"),
        partial: dir.join("partial.veilp"),
        dir,
    };
    std::fs::write(&f.compiled, compiled.to_bytes())?;
    std::fs::write(&f.vk, compiled.verifier.to_bytes())?;
    let mut rng = rand_core::OsRng;
    for (file, only) in [(&f.full, None), (&f.partial, Some(vec![1]))] {
        let options = ProveOptions { only, parallel: 1, key_cache: None };
        let bundle = compiled.prove(
            &params,
            &input,
            ClaimRequest::Argmax,
            NONCE,
            AUDIENCE,
            &options,
            &mut rng,
            &|_, _, _| {},
        )?;
        std::fs::write(file, bundle.to_bytes())?;
    }
    Ok(f)
}

/// `veil --json verify` of `bundle` against `artifact`, with extra arguments; returns the exit status and report.
fn verify(artifact: &Path, bundle: &Path, extra: &[&str]) -> Result<(Option<i32>, Value)> {
    let f = fixture();
    let mut args = vec!["--json", "verify", path(artifact), path(bundle), "--nonce", NONCE_HEX, "--audience", AUDIENCE];
    args.extend(extra);
    let out = veil(&args, &f.dir.join("params"))?;
    Ok((out.code, out.json()?))
}

#[test]
fn verify_accepts_a_real_bundle_from_the_artifact_or_the_compiled_model() -> Result<()> {
    let f = fixture();
    for artifact in [&f.vk, &f.compiled] {
        let (code, report) = verify(artifact, &f.full, &["--expect", "argmax", "--require-full"])?;
        assert_eq!(code, Some(0), "{report}");
        assert_eq!(report["accepted"], true);
        assert_eq!(report["coverage"], "full");
        assert_eq!(report["proved_slices"], serde_json::json!([0, 1]));
        assert_eq!(report["error"], Value::Null);
        assert_eq!(report["claim"]["kind"], "argmax");
        let keys: Vec<&String> = report.as_object().context("object")?.keys().collect();
        assert_eq!(keys, ["accepted", "claim", "coverage", "error", "proved_slices"]);
    }
    // Parameters were generated once, into the cache.
    assert!(std::fs::read_dir(f.dir.join("params"))?
        .any(|e| e.is_ok_and(|e| e.path().extension() == Some("params".as_ref()))));
    Ok(())
}

#[test]
fn kzg_bundles_verify_with_the_ceremony_file_the_model_was_compiled_with() -> Result<()> {
    let f = kzg_fixture();
    let params = f.dir.join("params");
    let run = |extra: &[&str]| -> Result<Outcome> {
        let mut args =
            vec!["--json", "verify", path(&f.vk), path(&f.full), "--nonce", NONCE_HEX, "--audience", AUDIENCE];
        args.extend(extra);
        veil(&args, &params)
    };
    let accepted = run(&["--srs", CEREMONY])?;
    assert_eq!(accepted.code, Some(0), "{}", accepted.stderr);
    assert_eq!(accepted.json()?["accepted"], true);
    // The SRS was cut from the file once and cached under the file's identifier.
    assert!(
        std::fs::read_dir(&params)?.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("kzg-ptau-")))
    );
    assert_eq!(run(&["--srs", CEREMONY])?.code, Some(0));
    let missing = run(&[])?;
    assert_eq!(missing.code, Some(2));
    assert!(missing.stderr.contains("--srs FILE.ptau"), "{}", missing.stderr);
    let insecure = run(&["--insecure-test-srs"])?;
    assert_eq!((insecure.code, insecure.json()?["error"].clone()), (Some(1), Value::from("wrong_params")));
    let not_ptau = run(&["--srs", "README.md"])?;
    assert_eq!(not_ptau.code, Some(2));
    assert!(not_ptau.stderr.contains("not a powers-of-tau file"), "{}", not_ptau.stderr);
    // IPA models take no setup file.
    let ipa = veil(
        &[
            "verify",
            path(&fixture().vk),
            path(&fixture().full),
            "--nonce",
            NONCE_HEX,
            "--audience",
            AUDIENCE,
            "--srs",
            CEREMONY,
        ],
        &params,
    )?;
    assert_eq!(ipa.code, Some(2));
    assert!(ipa.stderr.contains("this one uses IPA"), "{}", ipa.stderr);
    Ok(())
}

#[test]
fn keys_derives_each_slice_key_once_then_finds_it_in_the_cache() -> Result<()> {
    let f = fixture();
    let params = f.dir.join("keys-params");
    let run = || -> Result<Value> {
        let out = veil(&["--json", "keys", path(&f.compiled)], &params)?;
        ensure!(out.code == Some(0), "veil keys failed: {}", out.stderr);
        out.json()
    };
    let sources = |report: &Value| -> Vec<String> {
        let slices = report["slices"].as_array().cloned().unwrap_or_default();
        slices.iter().map(|s| s["source"].as_str().unwrap_or_default().to_string()).collect()
    };
    let first = run()?;
    assert_eq!(sources(&first), ["derived", "derived"], "{first}");
    for slice in first["slices"].as_array().context("slices")? {
        let file = PathBuf::from(slice["file"].as_str().context("file")?);
        assert!(file.starts_with(params.join("keys")), "{file:?}");
        assert_eq!(std::fs::metadata(&file)?.len(), slice["bytes"].as_u64().context("bytes")?);
    }
    let second = run()?;
    assert_eq!(sources(&second), ["cached", "cached"], "{second}");
    std::fs::remove_dir_all(&params)?;
    Ok(())
}

#[test]
fn verify_rejects_garbage_truncated_and_misbound_bundles_with_exit_1() -> Result<()> {
    let f = fixture();
    let bytes = std::fs::read(&f.full)?;
    let garbage = f.dir.join("garbage.veilp");
    std::fs::write(&garbage, b"definitely not a proof bundle")?;
    let truncated = f.dir.join("truncated.veilp");
    std::fs::write(&truncated, &bytes[..bytes.len() - 1])?;
    let empty = f.dir.join("empty.veilp");
    std::fs::write(&empty, b"")?;
    let cases: Vec<(&Path, Vec<&str>, &str)> = vec![
        (&garbage, vec![], "bad_format"),
        (&truncated, vec![], "bad_format"),
        (&empty, vec![], "bad_format"),
        (&f.full, vec!["--expect", "age>=18"], "wrong_claim"),
        (&f.full, vec!["--expect", "output"], "wrong_claim"),
        (&f.partial, vec!["--require-full"], "unproved_slices"),
    ];
    for (bundle, extra, code) in cases {
        let (status, report) = verify(&f.vk, bundle, &extra)?;
        assert_eq!(status, Some(1), "{bundle:?} {extra:?}: {report}");
        assert_eq!(
            report,
            serde_json::json!({ "accepted": false, "claim": null, "coverage": null, "proved_slices": [], "error": code }),
            "{bundle:?} {extra:?}"
        );
    }
    // Another nonce or audience than the ones the bundle is bound to.
    let params = f.dir.join("params");
    let base = ["--json", "verify", path(&f.vk), path(&f.full)];
    let other_nonce = veil(&[&base[..], &["--nonce", "00", "--audience", AUDIENCE]].concat(), &params)?;
    assert_eq!((other_nonce.code, other_nonce.json()?["error"].clone()), (Some(1), "wrong_nonce".into()));
    let other_audience = veil(&[&base[..], &["--nonce", NONCE_HEX, "--audience", "evil"]].concat(), &params)?;
    assert_eq!((other_audience.code, other_audience.json()?["error"].clone()), (Some(1), "wrong_audience".into()));
    // In text, a rejection names its code.
    let text = veil(&["verify", path(&f.vk), path(&garbage), "--nonce", NONCE_HEX, "--audience", AUDIENCE], &params)?;
    assert_eq!(text.code, Some(1));
    assert!(text.stdout.contains("rejected [bad_format]"), "{}", text.stdout);
    // A partial bundle is accepted when full coverage is not required, and says so.
    let (status, report) = verify(&f.vk, &f.partial, &[])?;
    assert_eq!(status, Some(0), "{report}");
    assert_eq!(
        (report["coverage"].clone(), report["proved_slices"].clone()),
        ("partial".into(), serde_json::json!([1]))
    );
    Ok(())
}

#[test]
fn verify_without_a_readable_bundle_or_artifact_exits_2() -> Result<()> {
    let f = fixture();
    let params = f.dir.join("params");
    let missing = f.dir.join("missing.veilp");
    let out = veil(&["verify", path(&f.vk), path(&missing), "--nonce", NONCE_HEX, "--audience", AUDIENCE], &params)?;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("missing.veilp"), "{}", out.stderr);
    let out = veil(&["verify", path(&missing), path(&f.full), "--nonce", NONCE_HEX, "--audience", AUDIENCE], &params)?;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    Ok(())
}

/// The shipped gender model, compiled at k ≤ 18, proved on a face and verified by the binary. Minutes of
/// work, plus generating the IPA parameters for 2^18 rows in a fresh cache (one to ten minutes, by the
/// machine) unless `VEIL_TEST_PARAMS_DIR` names a cache to reuse:
/// `cargo test --release -p veil-cli --test prove -- --ignored --nocapture`.
#[test]
#[ignore]
fn gender_model_compiles_proves_and_verifies_end_to_end() -> Result<()> {
    let dir = temp_dir("e2e")?;
    let params = std::env::var_os("VEIL_TEST_PARAMS_DIR").map_or_else(|| dir.join("params"), PathBuf::from);
    let (compiled, vk, bundle) = (dir.join("gender.veilc"), dir.join("gender.veilc.vk"), dir.join("face.veilp"));
    let (image, crop) = ("models/samples/test-image.png", "402,249,523,369");
    let timed = |args: &[&str]| -> Result<(Outcome, f64)> {
        let t = std::time::Instant::now();
        let out = veil(args, &params)?;
        let seconds = t.elapsed().as_secs_f64();
        eprintln!("veil {} ({seconds:.1} s): {}{}", args[1], out.stdout, out.stderr);
        ensure!(out.code == Some(0), "veil {args:?} failed: {}", out.stderr);
        Ok((out, seconds))
    };
    let (out, _) = timed(&["--json", "compile", "models/gender-v1.onnx", "-o", path(&compiled), "--max-k", "18"])?;
    let report = out.json()?;
    let slices = report["slices"].as_array().context("slices")?;
    ensure!(!slices.is_empty(), "no slices: {report}");
    assert!(slices.iter().all(|s| s["k"].as_u64().is_some_and(|k| k <= 18)), "{report}");
    let in_range = |s: &serde_json::Value| {
        s["weight_columns"].as_u64().is_some_and(|w| (1..=veil_verifier::circuit::MAX_WEIGHTS as u64).contains(&w))
    };
    assert!(slices.iter().all(in_range), "weight columns: {report}");
    assert!(slices.iter().all(|s| s["width"] == "wide" || s["width"] == "narrow"), "row widths: {report}");
    let prove = ["--json", "prove", path(&compiled), image, "--crop", crop, "--claim", "argmax"];
    let rest = ["--nonce", NONCE_HEX, "--audience", AUDIENCE, "-o", path(&bundle)];
    let (out, _) = timed(&[&prove[..], &rest[..]].concat())?;
    let proved = out.json()?;
    // The proof kept each slice's proving key for the next one.
    let kept = std::fs::read_dir(params.join("keys"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "veilpk"))
        .count();
    // A reused cache (`VEIL_TEST_PARAMS_DIR`) may also hold other models' keys.
    let shared = std::env::var_os("VEIL_TEST_PARAMS_DIR").is_some();
    assert!(kept == slices.len() || (shared && kept > slices.len()), "{kept} kept keys for {} slices", slices.len());
    let (out, _) = timed(&[
        "--json",
        "verify",
        path(&vk),
        path(&bundle),
        "--nonce",
        NONCE_HEX,
        "--audience",
        AUDIENCE,
        "--expect",
        "argmax",
        "--require-full",
    ])?;
    let report = out.json()?;
    assert_eq!(report["accepted"], true);
    assert_eq!(report["coverage"], "full");
    assert_eq!(report["claim"], proved["claim"]);
    // The proved claim is the integer reference's.
    let (out, _) =
        timed(&["--json", "run", "models/gender-v1.onnx", image, "--crop", crop, "--quantized", "--claim", "argmax"])?;
    assert_eq!(out.json()?["claim"]["value"], report["claim"]["index"]);
    let wrong = veil(&["verify", path(&vk), path(&bundle), "--nonce", "00", "--audience", AUDIENCE], &params)?;
    assert_eq!(wrong.code, Some(1), "{}", wrong.stdout);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// `--memory-budget` picks how many slices prove at once from the per-slice estimates (the cost model's
/// bytes per row of `2^k` at the slice's width), and refuses a budget that one slice alone exceeds.
#[test]
fn a_memory_budget_bounds_the_slices_proved_at_once() -> Result<()> {
    let f = fixture();
    let compiled = Compiled::from_bytes(&std::fs::read(&f.compiled)?)?;
    let cost = veil_core::slice::CostModel::default();
    let needs: Vec<u64> = compiled.verifier.slices.iter().map(|s| cost.memory_bytes_at(s.k, s.width) >> 20).collect();
    ensure!(needs.len() == 2, "the fixture has two slices: {needs:?}");
    let (big, small) = (needs[0].max(needs[1]), needs[0].min(needs[1]));
    let parallel =
        |only: Option<Vec<usize>>, mib| ProveOptions::within_memory(&compiled, only, mib).map(|o| o.parallel);
    assert_eq!(parallel(None, big)?, 1);
    assert_eq!(parallel(None, big + small - 1)?, 1);
    assert_eq!(parallel(None, big + small)?, 2);
    assert_eq!(parallel(None, 100_000)?, 2, "never more than the slices to prove");
    assert_eq!(parallel(Some(vec![1]), 100_000)?, 1);
    match ProveOptions::within_memory(&compiled, None, big - 1) {
        Err(veil_core::prove::ProveError::OverBudget { needed_mib, budget_mib, .. }) => {
            assert_eq!((needed_mib, budget_mib), (big, big - 1));
        }
        other => panic!("expected OverBudget, got {:?}", other.map(|o| o.parallel)),
    }
    // The binary refuses it before loading parameters or proving, naming the budget.
    let out = veil(
        &[
            "prove",
            path(&f.compiled),
            "models/samples/test-image.png",
            "--claim",
            "argmax",
            "--nonce",
            NONCE_HEX,
            "--audience",
            AUDIENCE,
            "-o",
            path(&f.dir.join("never.veilp")),
            "--memory-budget",
            &(big - 1).to_string(),
        ],
        &f.dir.join("params"),
    )?;
    ensure!(out.code == Some(1), "exit status {:?}: {}", out.code, out.stderr);
    ensure!(out.stderr.contains(&format!("over the budget of {} MiB", big - 1)), "{}", out.stderr);
    let both = veil(&["prove", path(&f.compiled), "x.png", "--parallel", "2", "--memory-budget", "100"], &f.dir)?;
    ensure!(both.code == Some(2), "--parallel with --memory-budget is a usage error: {}", both.stderr);
    Ok(())
}
