//! Parity of Rust preprocessing with the stored reference inputs in `models/expected/<model>/<sample>.json`,
//! which `scripts/gen_sample_expectations.py` produced with Pillow and numpy.
//!
//! Named tolerances: PNG samples decode identically, so only float summation order differs
//! ([`PNG_TOLERANCE`]). JPEG samples were decoded by Pillow's libjpeg for the reference and by the
//! `image` crate's decoder here; the two may differ by a few levels per pixel ([`JPEG_TOLERANCE`]).
#![cfg(feature = "images")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use veil_core::manifest;
use veil_core::preprocess::{decode_image, load_image, preprocess, RgbImage};
use veil_core::samples::load_samples;

/// Largest allowed |Rust − reference| of a normalised input element for PNG samples.
const PNG_TOLERANCE: f32 = 1e-5;
/// Largest allowed |Rust − reference| for JPEG samples: three pixel levels at scale 1/256.
///
/// The decoders differ mostly in chroma upsampling of these 4:2:0 files: per decoded pixel by up to
/// 4 levels (mean 0.14–0.35), after area averaging by up to 2.12 levels (age-v1, 64×64) and 1.79 levels
/// (gender-v1, 32×32) on the sample crops.
const JPEG_TOLERANCE: f32 = 3.0 / 256.0;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn is_jpeg(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
}

/// The `input.data` array of a stored expectation.
fn expected_input(path: &Path) -> Result<Vec<f32>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    let data = json["input"]["data"].as_array().with_context(|| format!("{path:?} has no input.data"))?;
    data.iter().map(|v| v.as_f64().map(|x| x as f32).context("non-numeric input element")).collect()
}

#[test]
fn preprocessing_matches_the_reference_inputs() -> Result<()> {
    let models = models_dir();
    let samples = load_samples(&models.join("samples/samples.toml"))?;
    let mut images: HashMap<PathBuf, RgbImage> = HashMap::new();
    let mut failures = Vec::new();
    for model in ["age-v1", "gender-v1"] {
        let manifest = manifest::load(&models.join(format!("{model}.toml")))?;
        let norm = manifest.normalization();
        for sample in &samples {
            if !images.contains_key(&sample.file) {
                images.insert(sample.file.clone(), load_image(&sample.file)?);
            }
            let image = &images[&sample.file];
            let got = preprocess(image, &sample.crop(), &norm)?;
            let want = expected_input(&models.join(format!("expected/{model}/{}.json", sample.name)))?;
            ensure!(
                got.len() == want.len(),
                "{model}/{}: {} elements, expected {}",
                sample.name,
                got.len(),
                want.len()
            );
            let max_diff = got.data().iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            let (kind, tolerance) =
                if is_jpeg(&sample.file) { ("jpeg", JPEG_TOLERANCE) } else { ("png", PNG_TOLERANCE) };
            // Expressed in pixel levels too, since the JPEG differences come from decoded bytes.
            let levels = max_diff / norm.scale;
            println!("{model:9} {:20} {kind}: max |diff| = {max_diff:.3e} ({levels:.3} levels)", sample.name);
            if max_diff > tolerance {
                failures.push(format!("{model}/{}: {max_diff:e} > {tolerance:e}", sample.name));
            }
        }
    }
    ensure!(failures.is_empty(), "preprocessing differs from the reference: {failures:?}");
    Ok(())
}

#[test]
fn decode_from_bytes_equals_load_from_file() -> Result<()> {
    let path = models_dir().join("samples/face-1.png");
    let from_file = load_image(&path)?;
    let from_bytes = decode_image(&std::fs::read(&path)?)?;
    ensure!(from_file == from_bytes);
    ensure!((from_file.width(), from_file.height()) == (164, 189));
    Ok(())
}
