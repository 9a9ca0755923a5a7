//! End-to-end tests of the `veil` binary on the shipped models and samples.

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Float `veil run` must reproduce onnxruntime's expected age to this many years.
const FLOAT_AGE_TOLERANCE: f64 = 0.01;
/// The quantized model's expected age must stay this close to the float model's (the target).
const QUANTIZED_AGE_TOLERANCE: f64 = 1.0;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn veil(args: &[&str]) -> Result<(bool, Value, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_veil")).args(args).current_dir(root()).output()?;
    let stdout = String::from_utf8(out.stdout)?;
    let stderr = String::from_utf8(out.stderr)?;
    let json = if args.contains(&"--json") && out.status.success() {
        serde_json::from_str(stdout.trim()).with_context(|| format!("stdout is not one JSON object: {stdout:?}"))?
    } else {
        Value::Null
    };
    Ok((out.status.success(), json, stderr))
}

/// (sample file, crop argument, stored expectation) for every expectation of a model.
fn expectations(model: &str) -> Result<Vec<(String, String, Value)>> {
    let samples: toml::Value = toml::from_str(&std::fs::read_to_string(root().join("models/samples/samples.toml"))?)?;
    let mut out = Vec::new();
    for sample in samples["sample"].as_array().context("sample list")? {
        let name = sample["name"].as_str().context("name")?;
        let file = sample["file"].as_str().context("file")?;
        let path = root().join(format!("models/expected/{model}/{name}.json"));
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let crop: Vec<String> = expected["crop"].as_array().context("crop")?.iter().map(|v| v.to_string()).collect();
        out.push((format!("models/samples/{file}"), crop.join(","), expected));
    }
    ensure!(out.len() >= 5, "expected several samples, found {}", out.len());
    Ok(out)
}

#[test]
fn inspect_reports_age_model_size() -> Result<()> {
    let (ok, json, err) = veil(&["--json", "inspect", "models/age-v1.onnx"])?;
    ensure!(ok, "inspect failed: {err}");
    let convs = json["layers"].as_array().context("layers")?.iter().filter(|l| l["op"] == "Conv").count();
    assert_eq!(convs, 11);
    let params = json["params"].as_f64().context("params")?;
    let macs = json["macs"].as_f64().context("macs")?;
    assert!((params / 2.69e6 - 1.0).abs() < 0.005, "params {params}");
    assert!((macs / 63.4e6 - 1.0).abs() < 0.005, "MACs {macs}");
    Ok(())
}

#[test]
fn run_age_model_float_and_quantized_on_every_sample() -> Result<()> {
    for (file, crop, expected) in expectations("age-v1")? {
        let want = expected["expected_age"].as_f64().context("expected_age")?;
        let (ok, float, err) = veil(&["--json", "run", "models/age-v1.onnx", &file, "--crop", &crop])?;
        ensure!(ok, "run failed on {file}: {err}");
        assert_eq!(float["model"], "age-v1");
        assert_eq!(float["quantized"], false);
        assert_eq!(float["outputs"].as_array().map(Vec::len), Some(81));
        let float_age = float["expected_age"].as_f64().context("float age")?;
        assert!(
            (float_age - want).abs() <= FLOAT_AGE_TOLERANCE,
            "{file} {crop}: float {float_age} vs onnxruntime {want}"
        );
        let (ok, quant, err) = veil(&["--json", "run", "models/age-v1.onnx", &file, "--crop", &crop, "--quantized"])?;
        ensure!(ok, "quantized run failed on {file}: {err}");
        assert_eq!(quant["quantized"], true);
        let quant_age = quant["expected_age"].as_f64().context("quantized age")?;
        assert!(
            (quant_age - float_age).abs() <= QUANTIZED_AGE_TOLERANCE,
            "{file} {crop}: quantized {quant_age} vs float {float_age}"
        );
    }
    Ok(())
}

#[test]
fn run_gender_model_labels_match_onnxruntime() -> Result<()> {
    for (file, crop, expected) in expectations("gender-v1")? {
        for mode in [None, Some("--quantized")] {
            let mut args = vec!["--json", "run", "models/gender-v1.onnx", file.as_str(), "--crop", crop.as_str()];
            args.extend(mode);
            let (ok, json, err) = veil(&args)?;
            ensure!(ok, "run failed on {file}: {err}");
            assert_eq!(json["label"], expected["label"], "{file} {crop} {mode:?}");
            let p = json["probability"].as_f64().context("probability")?;
            assert!((0.5..=1.0).contains(&p), "{file}: probability {p}");
        }
    }
    Ok(())
}

#[test]
fn model_identity_comes_from_the_manifest_not_the_file_name() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("veil-rename-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(root().join("models/gender-v1.onnx"), dir.join("mystery.onnx"))?;
    for file in ["gender-v1.toml", "gender-v1.calib.json"] {
        std::fs::copy(root().join("models").join(file), dir.join(file))?;
    }
    let model = dir.join("mystery.onnx");
    let (ok, json, err) =
        veil(&["--json", "run", model.to_str().context("utf-8 path")?, "models/samples/face-2.png", "--quantized"])?;
    std::fs::remove_dir_all(&dir)?;
    ensure!(ok, "run failed: {err}");
    assert_eq!(json["model"], "gender-v1");
    assert!(json["label"].is_string());
    Ok(())
}

#[test]
fn bad_inputs_fail_with_a_clear_error() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("veil-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let truncated = dir.join("truncated.onnx");
    let bytes = std::fs::read(root().join("models/gender-v1.onnx"))?;
    std::fs::write(&truncated, &bytes[..bytes.len() / 2])?;
    let not_image = dir.join("not-an-image.png");
    std::fs::write(&not_image, b"this is not a png")?;
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["inspect".into(), truncated.display().to_string()], "corrupt or truncated"),
        (vec!["inspect".into(), "tests/data/ops/unknown_op/model.onnx".into()], "unsupported op \"Erf\""),
        (vec!["run".into(), "models/gender-v1.onnx".into(), not_image.display().to_string()], "decode"),
        (
            vec![
                "run".into(),
                "models/gender-v1.onnx".into(),
                "models/samples/face-1.png".into(),
                "--crop".into(),
                "0,0,500,500".into(),
            ],
            "outside",
        ),
        (vec!["run".into(), "models/gender-v1.onnx".into(), "models/samples/missing.png".into()], "missing.png"),
    ];
    for (args, needle) in cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, err) = veil(&refs)?;
        assert!(!ok, "{args:?} should fail");
        assert!(err.to_lowercase().contains(&needle.to_lowercase()), "{args:?}: stderr {err:?} lacks {needle:?}");
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn quantize_writes_a_loadable_artifact_and_reports_accuracy() -> Result<()> {
    let out = std::env::temp_dir().join(format!("veil-gender-{}.veilq", std::process::id()));
    let (ok, json, err) = veil(&[
        "--json",
        "quantize",
        "models/gender-v1.onnx",
        "--calib",
        "models/samples",
        "-o",
        out.to_str().context("path")?,
    ])?;
    ensure!(ok, "quantize failed: {err}");
    let report = &json["report"];
    assert_eq!(report["all_argmax_agree"], true);
    assert_eq!(report["samples"].as_array().map(Vec::len), Some(10));
    let bytes = std::fs::read(&out)?;
    std::fs::remove_file(&out)?;
    let graph = veil_core::quant::QuantizedGraph::from_bytes(&bytes)?;
    assert!(graph.nodes.iter().any(|n| matches!(n.op, veil_core::quant::QOp::Conv { .. })));
    Ok(())
}

/// JPEG decoders may differ by a few levels per pixel; the age estimate may move this much between the
/// original JPEG and its lossless PNG copy.
const JPEG_AGE_TOLERANCE: f64 = 0.25;

#[test]
fn jpeg_originals_agree_with_their_png_copies() -> Result<()> {
    for (file, crop, _) in expectations("age-v1")?.into_iter().filter(|(f, _, _)| f.contains("test-image")) {
        let jpeg = file.replace(".png", ".jpg");
        let run = |path: &str, model: &str| veil(&["--json", "run", model, path, "--crop", &crop]);
        let (ok_png, png, _) = run(&file, "models/age-v1.onnx")?;
        let (ok_jpg, jpg, err) = run(&jpeg, "models/age-v1.onnx")?;
        ensure!(ok_png && ok_jpg, "run failed on {jpeg}: {err}");
        let (a, b) = (png["expected_age"].as_f64().context("age")?, jpg["expected_age"].as_f64().context("age")?);
        assert!((a - b).abs() <= JPEG_AGE_TOLERANCE, "{jpeg} {crop}: {b} vs PNG {a}");
        let (_, png, _) = run(&file, "models/gender-v1.onnx")?;
        let (_, jpg, _) = run(&jpeg, "models/gender-v1.onnx")?;
        assert_eq!(png["label"], jpg["label"], "{jpeg} {crop}");
    }
    Ok(())
}

#[test]
fn slice_prints_a_plan_covering_every_layer() -> Result<()> {
    // age-v1 fits one slice of 2^18 rows (its weights run beside the other relations), and several when cut.
    let (ok, json, err) = veil(&["--json", "slice", "models/age-v1.onnx", "--max-k", "18"])?;
    ensure!(ok, "slice failed: {err}");
    let slices = json["slices"].as_array().context("slices")?;
    ensure!(slices.len() == 1, "age-v1 at k ≤ 18 is one slice, got {}", slices.len());
    let (ok, cut, err) =
        veil(&["--json", "slice", "models/age-v1.onnx", "--cut-after", "layer_47_conv,layer_28_conv"])?;
    ensure!(ok, "slice failed: {err}");
    let cut = cut["slices"].as_array().context("slices")?;
    ensure!(cut.len() == 3, "two cuts make three slices, got {}", cut.len());
    let layers: usize = cut.iter().map(|s| s["layers"].as_array().map_or(0, Vec::len)).sum();
    assert_eq!(layers, 37, "every quantized layer is in exactly one slice");
    let layers: usize = slices.iter().map(|s| s["layers"].as_array().map_or(0, Vec::len)).sum();
    assert_eq!(layers, 37, "every quantized layer is in exactly one slice");
    assert!(slices.iter().all(|s| s["k"].as_u64().is_some_and(|k| k <= 18)));
    let (ok, _, err) = veil(&["slice", "models/gender-v1.onnx", "--max-k", "10"])?;
    assert!(!ok && err.contains("raise the k cap"), "{err}");
    Ok(())
}

#[test]
fn run_reports_the_age_claim_on_the_integer_reference() -> Result<()> {
    let base = ["--json", "run", "models/age-v1.onnx", "models/samples/astronaut.png", "--crop", "150,25,310,185"];
    for (threshold, expected) in [("age>=18", true), ("age>=60", false)] {
        let mut args = base.to_vec();
        args.extend(["--quantized", "--claim", threshold]);
        let (ok, json, err) = veil(&args)?;
        ensure!(ok, "run failed: {err}");
        assert_eq!(json["claim"], serde_json::json!({ "kind": "age_at_least", "value": expected }), "{threshold}");
    }
    let mut float_only = base.to_vec();
    float_only.extend(["--claim", "argmax"]);
    let (ok, _, err) = veil(&float_only)?;
    assert!(!ok && err.contains("--quantized"), "a claim needs the integer reference: {err}");
    Ok(())
}

/// `veil inspect model | head` closes the pipe early: the binary must end quietly (killed by SIGPIPE, as C
/// tools are), never panic on the failed write.
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_the_binary_without_a_panic() -> Result<()> {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(["inspect", "models/age-v1.onnx"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    drop(child.stdout.take()); // the reader goes away before anything is written
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!stderr.contains("panicked"), "veil panicked on a closed stdout: {stderr}");
    ensure!(out.status.code() != Some(101), "exit status {:?}", out.status);
    Ok(())
}
