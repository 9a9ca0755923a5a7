//! Golden digests of the shipped models' quantized form. Phones, browsers and servers must derive the same
//! integer model and the same integer outputs; a change that alters either fails here until the goldens are
//! regenerated on purpose with `VEIL_UPDATE_GOLDEN=1 cargo test --release -p veil-core --test golden`.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use veil_core::preprocess::{load_image, preprocess, Crop};
use veil_core::{Digest, Model};

const MODELS: [&str; 2] = ["age-v1", "gender-v1"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn golden_path() -> PathBuf {
    root().join("tests/golden/quantized.txt")
}

/// `name.artifact` → digest of the artifact bytes; `name.astronaut` → digest of the integer outputs on the
/// astronaut sample (little-endian i64s).
fn current() -> Result<BTreeMap<String, String>> {
    let image = load_image(&root().join("models/samples/astronaut.png"))?;
    let crop = Crop::Box { left: 150, top: 25, right: 310, bottom: 185 };
    let mut out = BTreeMap::new();
    for name in MODELS {
        let model = Model::load_onnx(&root().join(format!("models/{name}.onnx")))?;
        let graph = model.quantize_default()?;
        out.insert(format!("{name}.artifact"), graph.digest().to_string());
        let input = graph.quantize_input(0, &preprocess(&image, &crop, &model.manifest.normalization())?)?;
        let outputs = graph.run(&[input])?;
        let bytes: Vec<u8> = outputs[0].data().iter().flat_map(|v| v.to_le_bytes()).collect();
        out.insert(format!("{name}.astronaut"), Digest::of(&bytes).to_string());
    }
    Ok(out)
}

#[test]
fn quantized_models_match_their_golden_digests() -> Result<()> {
    let now = current()?;
    if std::env::var_os("VEIL_UPDATE_GOLDEN").is_some() {
        let text: String = now.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        std::fs::write(golden_path(), text)?;
        return Ok(());
    }
    let text = std::fs::read_to_string(golden_path())
        .context("tests/golden/quantized.txt (regenerate with VEIL_UPDATE_GOLDEN=1)")?;
    let golden: BTreeMap<String, String> =
        text.lines().filter_map(|l| l.split_once(' ')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect();
    assert_eq!(
        golden, now,
        "the quantized models changed; if on purpose, regenerate with VEIL_UPDATE_GOLDEN=1 and say why in the commit"
    );
    Ok(())
}
