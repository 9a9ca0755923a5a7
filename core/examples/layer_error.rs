//! Per-layer quantization error: `cargo run --release --example layer_error -- MODEL SAMPLE_DIR [ACT_BITS W_BITS]`.
//! Calibrates on every sample of the directory, then prints for each tensor of the first sample the largest
//! |float − dequantized| and its ratio to the tensor's float range: where precision is lost, layer by layer.

use veil_core::preprocess::{load_image, preprocess};
use veil_core::quant::{Calibration, QuantConfig};
use veil_core::samples::images_in_dir;
use veil_core::Model;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() >= 3, "usage: layer_error MODEL SAMPLE_DIR [ACT_BITS W_BITS]");
    let model = Model::load_onnx(args[1].as_ref())?;
    let norm = model.manifest.normalization();
    let samples = images_in_dir(std::path::Path::new(&args[2]))?;
    let inputs: Vec<_> = samples
        .iter()
        .map(|s| Ok((s.name.clone(), preprocess(&load_image(&s.file)?, &s.crop(), &norm)?)))
        .collect::<anyhow::Result<_>>()?;
    let mut calibration =
        Calibration::collect(&model.graph, inputs.iter().map(|(n, t)| (n.clone(), std::slice::from_ref(t))))?;
    let bits = |i: usize, d: u32| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (a, w) = (bits(3, 10), bits(4, 8));
    calibration.config =
        Some(QuantConfig { input_bits: a, activation_bits: a, weight_bits: w, ..QuantConfig::default() });
    let q = model.quantize(&calibration)?;
    let (_, input) = &inputs[0];
    let float = veil_core::float::run_all(&model.graph, std::slice::from_ref(input))?;
    let qin = q.quantize_input(0, input)?;
    let ints = q.run_all(std::slice::from_ref(&qin))?;
    for node in &q.nodes {
        let (Some(f), Some(i)) = (&float[node.output.0], &ints[node.output.0]) else { continue };
        let d = q.dequantize(node.output, i);
        let range = f.data().iter().fold(0f64, |m, &v| m.max((v as f64).abs()));
        let err = f.data().iter().zip(d.data()).fold(0f64, |m, (&x, &y)| m.max((x as f64 - y).abs()));
        let v = q.value(node.output);
        println!(
            "{:<28} frac {:>3} bits {:>2} range {:>9.4} max err {:>9.5} rel {:>7.4}",
            node.name,
            v.frac,
            v.bits,
            range,
            err,
            err / range.max(1e-9)
        );
    }
    Ok(())
}
