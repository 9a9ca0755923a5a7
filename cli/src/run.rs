//! `veil run MODEL IMAGE [--quantized]`.

use anyhow::{Context, Result};
use std::path::PathBuf;
use veil_core::claim::{evaluate, ClaimSpec, ClaimValue};
use veil_core::manifest::Task;
use veil_core::model::run_quantized;
use veil_core::preprocess::{load_image, preprocess, Crop};
use veil_core::report::describe;
use veil_core::tensor::Tensor;
use veil_core::{Model, Verdict};

/// Arguments of `veil run`.
#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model (its manifest is found beside it by content).
    model: PathBuf,
    /// A PNG or JPEG photo.
    image: PathBuf,
    /// Run the quantized integer reference (with the calibration shipped with the model).
    #[arg(long)]
    quantized: bool,
    /// Also evaluate a claim on the integer reference: `output`, `argmax` or `age>=YEARS` (needs --quantized).
    #[arg(long, requires = "quantized")]
    claim: Option<ClaimSpec>,
    /// Crop box `left,top,right,bottom` in pixels (default: the centred square).
    #[arg(long, value_parser = parse_crop)]
    crop: Option<Crop>,
}

pub(crate) fn parse_crop(text: &str) -> Result<Crop, String> {
    let v: Vec<u32> = text
        .split(',')
        .map(|p| p.trim().parse::<u32>().map_err(|e| format!("{p:?}: {e}")))
        .collect::<Result<_, _>>()?;
    match v.as_slice() {
        [left, top, right, bottom] => Ok(Crop::Box { left: *left, top: *top, right: *right, bottom: *bottom }),
        _ => Err("expected four integers: left,top,right,bottom".into()),
    }
}

pub fn execute(args: &Args, json: bool) -> Result<()> {
    let model = Model::load_onnx(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let image = load_image(&args.image)?;
    let input = preprocess(&image, args.crop.as_ref().unwrap_or(&Crop::CenterSquare), &model.manifest.normalization())?;
    let (outputs, claim) = if args.quantized {
        let graph = model.quantize_default()?;
        let claim = args.claim.as_ref().map(|spec| claim_on(&model, &graph, &input, spec)).transpose()?;
        (run_quantized(&graph, &input)?, claim)
    } else {
        (model.run_float(&input)?, None)
    };
    let verdict = model.verdict(&outputs);
    if json {
        let mut object =
            serde_json::json!({ "model": model.manifest.name, "quantized": args.quantized, "outputs": outputs });
        match &verdict {
            Verdict::Age { expected_age, top } => {
                object["expected_age"] = (*expected_age).into();
                object["top_bins"] = serde_json::to_value(top)?;
            }
            Verdict::Label { label, probability } => {
                object["label"] = label.clone().into();
                object["probability"] = (*probability).into();
            }
        }
        if let Some(claim) = &claim {
            object["claim"] = serde_json::to_value(claim)?;
        }
        println!("{object}");
        return Ok(());
    }
    let mode = if args.quantized { "quantized (integer reference)" } else { "float" };
    println!("{} on {} [{mode}]: {}", model.manifest.name, args.image.display(), describe(&verdict));
    if let Some(claim) = &claim {
        println!("claim on the integer reference: {claim:?}");
    }
    if let Verdict::Age { top, .. } = &verdict {
        let bins: Vec<String> = top.iter().map(|(age, p)| format!("{age}: {p:.3}")).collect();
        println!("top bins (age: probability): {}", bins.join(", "));
    }
    Ok(())
}

/// Evaluates a claim on the integer reference's full witness.
fn claim_on(
    model: &Model,
    graph: &veil_core::quant::QuantizedGraph,
    input: &Tensor<f32>,
    spec: &ClaimSpec,
) -> Result<ClaimValue> {
    let witness = graph.run_all(&[graph.quantize_input(0, input)?])?;
    let bins = match &model.task {
        Task::Age { bins } => Some(bins.as_slice()),
        _ => None,
    };
    Ok(evaluate(graph, &witness, spec, bins)?)
}
