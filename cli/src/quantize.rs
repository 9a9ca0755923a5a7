//! `veil quantize MODEL --calib DIR`.

use anyhow::{Context, Result};
use std::path::PathBuf;
use veil_core::model::run_quantized;
use veil_core::preprocess::{load_image, preprocess};
use veil_core::quant::{Calibration, QuantConfig, WeightScales};
use veil_core::report::{compare, AccuracyReport};
use veil_core::samples::{images_in_dir, Role};
use veil_core::tensor::Tensor;
use veil_core::Model;

/// Arguments of `veil quantize`.
#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model.
    model: PathBuf,
    /// Directory of calibration images (with a samples.toml giving crops and roles, or plain images).
    #[arg(long)]
    calib: PathBuf,
    /// Where to write the quantized artifact (default: `<model name>.veilq` in the current directory).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Also write the calibration as the model's default (the manifest's `calibration` file).
    #[arg(long)]
    save_calibration: bool,
    /// Signed bits of the input tensor.
    #[arg(long)]
    input_bits: Option<u32>,
    /// Signed bits of activations.
    #[arg(long)]
    activation_bits: Option<u32>,
    /// Signed bits of weights.
    #[arg(long)]
    weight_bits: Option<u32>,
    /// Per-channel weight scales: powers of two (narrow requantization remainders, cheaper proofs) or real.
    #[arg(long, value_enum)]
    weight_scales: Option<ScalesArg>,
}

/// `--weight-scales` values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ScalesArg {
    PowerOfTwo,
    Real,
}

pub fn execute(args: &Args, json: bool) -> Result<()> {
    let model = Model::load_onnx(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let samples = images_in_dir(&args.calib)?;
    let norm = model.manifest.normalization();
    let mut inputs: Vec<(String, Role, Tensor<f32>)> = Vec::new();
    for sample in &samples {
        let image = load_image(&sample.file)?;
        inputs.push((sample.name.clone(), sample.role, preprocess(&image, &sample.crop(), &norm)?));
    }
    let calibration_set = inputs.iter().filter(|(_, role, _)| *role == Role::Calibration);
    let mut calibration =
        Calibration::collect(&model.graph, calibration_set.map(|(n, _, t)| (n.clone(), std::slice::from_ref(t))))?;
    if calibration.samples.is_empty() {
        anyhow::bail!("{} holds no calibration sample", args.calib.display());
    }
    let defaults = QuantConfig::default();
    let config = QuantConfig {
        input_bits: args.input_bits.unwrap_or(defaults.input_bits),
        activation_bits: args.activation_bits.unwrap_or(defaults.activation_bits),
        weight_bits: args.weight_bits.unwrap_or(defaults.weight_bits),
        weight_scales: match args.weight_scales {
            Some(ScalesArg::PowerOfTwo) => WeightScales::PowerOfTwo,
            Some(ScalesArg::Real) => WeightScales::Real,
            None => defaults.weight_scales,
        },
        ..defaults
    };
    veil_core::model::validate_config(&config)?;
    calibration.config = Some(config);
    // The manifest was matched to the model file by this digest.
    calibration.model_sha256 = Some(model.manifest.sha256.clone());
    let quantized = model.quantize(&calibration)?;
    let mut rows = Vec::new();
    for (name, role, input) in &inputs {
        let float = model.run_float(input)?;
        let quant = run_quantized(&quantized, input)?;
        let role = if *role == Role::Calibration { "calibration" } else { "holdout" };
        rows.push(compare(&model.task, name, role, &float, &quant));
    }
    let report = AccuracyReport::new(&model.manifest.name, rows);
    let output = args.output.clone().unwrap_or_else(|| PathBuf::from(format!("{}.veilq", model.manifest.name)));
    let bytes = quantized.to_bytes();
    std::fs::write(&output, &bytes).with_context(|| format!("writing {}", output.display()))?;
    let calibration_path = model.manifest.calibration_path(model.dir());
    if args.save_calibration {
        std::fs::write(&calibration_path, calibration.to_json() + "\n")
            .with_context(|| format!("writing {}", calibration_path.display()))?;
    }
    if json {
        let object = serde_json::json!({
            "model": model.manifest.name,
            "artifact": output,
            "artifact_bytes": bytes.len(),
            "artifact_sha256": veil_core::Digest::of(&bytes).to_string(),
            "config": calibration.config,
            "calibration_saved": args.save_calibration.then_some(&calibration_path),
            "report": report,
        });
        println!("{object}");
    } else {
        println!("{}", report.to_table());
        println!("wrote {} ({} bytes, sha256 {})", output.display(), bytes.len(), veil_core::Digest::of(&bytes));
        if args.save_calibration {
            println!("saved default calibration to {}", calibration_path.display());
        }
    }
    Ok(())
}
