//! Hostile bytes: the ONNX importer and the quantized-artifact loader read untrusted files, so every corrupt,
//! truncated or inconsistent input must give a typed error and never a panic, and an artifact that does
//! load must run.

use anyhow::{bail, Context, Result};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use prost::Message;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use veil_core::onnx::proto::{data_type, ModelProto};
use veil_core::onnx::{load_onnx, ImportError, ImportOptions};
use veil_core::quant::{quantize, ArtifactError, Calibration, QuantConfig, QuantizedGraph};
use veil_core::tensor::Tensor;

/// Mutated inputs per fuzzing property.
const FUZZ_CASES: u32 = 300;

/// The small op model every fuzzing property starts from.
const FUZZ_MODEL: &str = "tests/data/ops/conv_basic/model.onnx";

/// A shipped model, large enough that truncations cut through weights, nodes and graph I/O.
const SHIPPED_MODEL: &str = "models/gender-v1.onnx";

fn repo_file(relative: &str) -> Result<Vec<u8>> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative);
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

fn import(bytes: &[u8]) -> Result<veil_core::ir::Graph, ImportError> {
    load_onnx(bytes, &ImportOptions::default())
}

/// A seeded xorshift64* stream: reproducible "random" bytes without a dependency.
fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.max(1);
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// One corruption of a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    /// Overwrite bytes at chosen positions.
    Overwrite(Vec<(Index, u8)>),
    /// Flip one bit at each chosen position.
    FlipBits(Vec<(Index, u8)>),
    /// Keep only a prefix.
    Truncate(Index),
}

impl Mutation {
    fn apply(&self, original: &[u8]) -> Vec<u8> {
        let mut bytes = original.to_vec();
        match self {
            Mutation::Overwrite(edits) => edits.iter().for_each(|(at, v)| bytes[at.index(original.len())] = *v),
            Mutation::FlipBits(edits) => {
                edits.iter().for_each(|(at, bit)| bytes[at.index(original.len())] ^= 1 << (bit % 8))
            }
            Mutation::Truncate(at) => bytes.truncate(at.index(original.len())),
        }
        bytes
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let edits = || prop::collection::vec((any::<Index>(), any::<u8>()), 1..=8);
    prop_oneof![
        3 => edits().prop_map(Mutation::Overwrite),
        3 => edits().prop_map(Mutation::FlipBits),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// Runs `property` on `FUZZ_CASES` mutations of `original`.
fn fuzz(original: &[u8], property: impl Fn(&[u8]) -> Result<(), TestCaseError>) -> Result<()> {
    let mut runner = TestRunner::new(Config { cases: FUZZ_CASES, failure_persistence: None, ..Config::default() });
    runner.run(&mutation(), |m| property(&m.apply(original))).map_err(|e| anyhow::anyhow!("{e}"))
}

// ---------------------------------------------------------------------------------------------------------
// ONNX import.

#[test]
fn empty_onnx_has_no_graph() {
    assert!(matches!(import(&[]), Err(ImportError::MissingGraph)));
}

#[test]
fn truncated_onnx_is_a_typed_error() -> Result<()> {
    let bytes = repo_file(SHIPPED_MODEL)?;
    for cut in [1, 100, bytes.len() / 2, bytes.len() - 1] {
        let err = match import(&bytes[..cut]) {
            Ok(_) => bail!("{SHIPPED_MODEL} truncated to {cut} bytes imported"),
            Err(e) => e,
        };
        // Most cuts land inside a length-delimited field; a cut on a field boundary leaves a well-formed but
        // incomplete message, which the importer must reject for what is missing.
        let named = matches!(
            err,
            ImportError::Decode { .. }
                | ImportError::MissingGraph
                | ImportError::InvalidTensor { .. }
                | ImportError::InvalidGraphIo { .. }
                | ImportError::UndefinedValue { .. }
        );
        let message = err.to_string();
        assert!(named && !message.is_empty(), "cut at {cut}: unexpected error {err:?}");
        println!("cut at {cut:>7}: {message}");
    }
    Ok(())
}

#[test]
fn random_bytes_are_rejected() {
    for seed in 1..=64u64 {
        for len in [1, 7, 64, 1000] {
            let bytes = seeded_bytes(seed * 7919 + len as u64, len);
            let result = catch_unwind(|| import(&bytes));
            assert!(matches!(result, Ok(Err(_))), "seed {seed}, {len} bytes: {result:?}");
        }
    }
}

#[test]
fn mutated_onnx_never_panics() -> Result<()> {
    let original = repo_file(FUZZ_MODEL)?;
    let rejected = AtomicUsize::new(0);
    fuzz(&original, |bytes| {
        let result = catch_unwind(|| import(bytes));
        prop_assert!(result.is_ok(), "load_onnx panicked on {} mutated bytes", bytes.len());
        if matches!(result, Ok(Err(_))) {
            rejected.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    })?;
    println!("{} of {FUZZ_CASES} mutated ONNX models rejected with a typed error", rejected.into_inner());
    Ok(())
}

#[test]
fn conv_weight_size_mismatch_is_an_invalid_tensor() -> Result<()> {
    let mut model = ModelProto::decode(repo_file(FUZZ_MODEL)?.as_slice())?;
    let graph = model.graph.as_mut().context("conv_basic has a graph")?;
    let conv = graph.node.iter().find(|n| n.op_type == "Conv").context("conv_basic has a Conv")?;
    let weight_name = conv.input.get(1).context("Conv has a weight input")?.clone();
    let weight = graph.initializer.iter_mut().find(|t| t.name == weight_name).context("weight initializer")?;
    assert_eq!(weight.data_type, data_type::FLOAT);
    if weight.raw_data.is_empty() {
        weight.raw_data = weight.float_data.drain(..).flat_map(f32::to_le_bytes).collect();
    }
    // One float short of what the dims describe.
    weight.raw_data.truncate(weight.raw_data.len() - 4);
    match import(&model.encode_to_vec()) {
        Err(ImportError::InvalidTensor { tensor, detail }) => {
            assert_eq!(tensor, weight_name);
            assert!(detail.contains("raw data"), "detail {detail:?}");
        }
        other => bail!("expected InvalidTensor for {weight_name:?}, got {other:?}"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Quantized-model artifacts.

/// The artifact of `conv_basic` quantized with the defaults, calibrated on its own inputs.
fn conv_artifact() -> Result<Vec<u8>> {
    let graph = import(&repo_file(FUZZ_MODEL)?)?;
    let inputs: Vec<Tensor<f32>> =
        graph.inputs.iter().map(|&id| Tensor::full(graph.shape(id).to_vec(), 0.5)).collect();
    let calibration = Calibration::collect(&graph, [("half".to_string(), inputs.as_slice())])?;
    Ok(quantize(&graph, &calibration, &QuantConfig::default())?.to_bytes())
}

#[test]
fn artifact_header_errors_are_typed() -> Result<()> {
    let bytes = conv_artifact()?;
    assert!(matches!(QuantizedGraph::from_bytes(&[]), Err(ArtifactError::BadMagic)));
    assert!(matches!(QuantizedGraph::from_bytes(&bytes[..8]), Err(ArtifactError::BadMagic)));
    let mut wrong_magic = bytes.clone();
    wrong_magic[0] ^= 0xff;
    assert!(matches!(QuantizedGraph::from_bytes(&wrong_magic), Err(ArtifactError::BadMagic)));
    let mut wrong_version = bytes.clone();
    wrong_version[8..10].copy_from_slice(&7u16.to_le_bytes());
    assert!(matches!(
        QuantizedGraph::from_bytes(&wrong_version),
        Err(ArtifactError::Version { found: 7, supported: 1 })
    ));
    assert!(matches!(QuantizedGraph::from_bytes(&bytes[..bytes.len() / 2]), Err(ArtifactError::Decode(_))));
    assert_eq!(QuantizedGraph::from_bytes(&bytes)?.to_bytes(), bytes, "artifact does not round-trip");
    Ok(())
}

/// Loads artifact bytes and, when they validate, runs the reference on zero inputs; `Some(outputs)` when it
/// loaded.
fn load_and_run(bytes: &[u8]) -> Option<Vec<Tensor<i64>>> {
    let graph = QuantizedGraph::from_bytes(bytes).ok()?;
    let inputs: Vec<Tensor<i64>> = graph.inputs.iter().map(|&id| Tensor::full(graph.value(id).shape.clone(), 0)).collect();
    Some(graph.run(&inputs).expect("zero inputs of the declared shapes are valid"))
}

#[test]
fn mutated_artifact_never_panics() -> Result<()> {
    let original = conv_artifact()?;
    let accepted = AtomicUsize::new(0);
    fuzz(&original, |bytes| {
        let result = catch_unwind(AssertUnwindSafe(|| load_and_run(bytes)));
        prop_assert!(result.is_ok(), "from_bytes or run panicked on {} mutated bytes", bytes.len());
        if matches!(result, Ok(Some(_))) {
            accepted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    })?;
    let accepted = accepted.into_inner();
    println!("{accepted} of {FUZZ_CASES} mutated artifacts validated and ran");
    // Mutated weight bytes mostly stay valid, so the run path must have been exercised.
    assert!(accepted > 0, "no mutated artifact validated: the run path was never fuzzed");
    Ok(())
}
