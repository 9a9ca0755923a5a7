//! Pipeline benchmarks on the shipped models: import, float inference, quantization and the integer
//! reference. `cargo bench -p veil-core` prints medians; compare ratios, not absolute times (shared machine).

use criterion::{criterion_group, criterion_main, Criterion};
use std::path::{Path, PathBuf};
use veil_core::model::run_quantized;
use veil_core::preprocess::{load_image, preprocess, Crop};
use veil_core::Model;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn bench_model(c: &mut Criterion, name: &str) {
    let path = models_dir().join(format!("{name}.onnx"));
    let model = Model::load_onnx(&path).expect("shipped model loads");
    let image = load_image(&models_dir().join("samples/astronaut.png")).expect("sample decodes");
    let crop = Crop::Box { left: 150, top: 25, right: 310, bottom: 185 };
    let input = preprocess(&image, &crop, &model.manifest.normalization()).expect("preprocess");
    let calibration = model.default_calibration().expect("shipped calibration");
    let quantized = model.quantize(&calibration).expect("quantize");
    let bytes = std::fs::read(&path).expect("model bytes");

    let mut group = c.benchmark_group(name);
    group.sample_size(20);
    group.bench_function("import_onnx", |b| {
        b.iter(|| veil_core::onnx::load_onnx(&bytes, &Default::default()).expect("import"))
    });
    group.bench_function("preprocess", |b| {
        b.iter(|| preprocess(&image, &crop, &model.manifest.normalization()).expect("preprocess"))
    });
    group.bench_function("float_inference", |b| b.iter(|| model.run_float(&input).expect("float run")));
    group.bench_function("quantize", |b| b.iter(|| model.quantize(&calibration).expect("quantize")));
    group.bench_function("integer_reference", |b| b.iter(|| run_quantized(&quantized, &input).expect("reference")));
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    bench_model(c, "gender-v1");
    bench_model(c, "age-v1");
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
