//! Hostile bytes: the ONNX importer and the quantized-artifact loader read untrusted files, so every corrupt,
//! truncated or inconsistent input must give a typed error and never a panic, and an artifact that does
//! load must run.

mod common;

use anyhow::{bail, Context, Result};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use prost::Message;
use serde_json::Value;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use veil_core::ir::ValueId;
use veil_core::onnx::proto::{data_type, ModelProto};
use veil_core::onnx::{load_onnx, ImportError, ImportOptions};
use veil_core::quant::{
    quantize, ArtifactError, Calibration, QNode, QOp, QValue, QuantConfig, QuantizedGraph, Requant,
};
use veil_core::tensor::Tensor;

/// Mutated inputs per fuzzing property (`PROPTEST_CASES` raises it for deeper local runs).
const FUZZ_CASES: u32 = 300;

/// The small op case every byte-level fuzzing property starts from.
const FUZZ_CASE: &str = "conv_basic";

/// A shipped model, large enough that truncations cut through weights, nodes and graph I/O.
const SHIPPED_MODEL: &str = "models/gender-v1.onnx";

fn repo_file(relative: &str) -> Result<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative);
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

fn fuzz_model() -> Result<Vec<u8>> {
    let path = common::model_path(FUZZ_CASE);
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

/// Runs `property` on [`fuzz_cases`] mutations of `original`.
fn fuzz(original: &[u8], property: impl Fn(&[u8]) -> Result<(), TestCaseError>) -> Result<()> {
    runner().run(&mutation(), |m| property(&m.apply(original))).map_err(|e| anyhow::anyhow!("{e}"))
}

fn runner() -> TestRunner {
    TestRunner::new(Config { cases: fuzz_cases(), failure_persistence: None, ..Config::default() })
}

/// [`FUZZ_CASES`], or `PROPTEST_CASES` when larger.
fn fuzz_cases() -> u32 {
    FUZZ_CASES.max(Config::default().cases)
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
    let original = fuzz_model()?;
    let rejected = AtomicUsize::new(0);
    fuzz(&original, |bytes| {
        let result = catch_unwind(|| import(bytes));
        prop_assert!(result.is_ok(), "load_onnx panicked on {} mutated bytes", bytes.len());
        if matches!(result, Ok(Err(_))) {
            rejected.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    })?;
    println!("{} of {} mutated ONNX models rejected with a typed error", rejected.into_inner(), fuzz_cases());
    Ok(())
}

#[test]
fn conv_weight_size_mismatch_is_an_invalid_tensor() -> Result<()> {
    let mut model = ModelProto::decode(fuzz_model()?.as_slice())?;
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

#[test]
fn absurd_padding_is_rejected_at_import() -> Result<()> {
    let bytes = repo_file("tests/data/ops/pad_constant/model.onnx")?;
    let mut model = ModelProto::decode(bytes.as_slice())?;
    let graph = model.graph.as_mut().context("pad_constant has a graph")?;
    let pad = graph.node.iter().find(|n| n.op_type == "Pad").context("a Pad node")?;
    let pads_name = pad.input.get(1).context("Pad has a pads input")?.clone();
    let pads = graph.initializer.iter_mut().find(|t| t.name == pads_name).context("pads initializer")?;
    pads.raw_data.clear();
    pads.int64_data = vec![0, 0, 1 << 20, 1 << 20, 0, 0, 1 << 20, 1 << 20];
    match import(&model.encode_to_vec()) {
        Err(ImportError::InvalidNode { detail, .. }) => assert!(detail.contains("exceeds"), "detail {detail:?}"),
        other => bail!("expected InvalidNode for a padded shape beyond the element cap, got {other:?}"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Quantized-model artifacts.

/// An op case quantized with the defaults, calibrated on its own inputs.
fn case_graph(case: &str) -> Result<QuantizedGraph> {
    let graph = veil_core::onnx::load_onnx_file(&common::model_path(case), &ImportOptions::default())?;
    let inputs = common::load_io(case)?.input_tensors()?;
    let calibration = Calibration::collect(&graph, [(case.to_string(), inputs.as_slice())])?;
    Ok(quantize(&graph, &calibration, &QuantConfig::default())?)
}

/// The artifact bytes of the byte-level fuzzing case.
fn conv_artifact() -> Result<Vec<u8>> {
    Ok(case_graph(FUZZ_CASE)?.to_bytes())
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
    let inputs: Vec<Tensor<i64>> =
        graph.inputs.iter().map(|&id| Tensor::full(graph.value(id).shape.clone(), 0)).collect();
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
    println!("{accepted} of {} mutated artifacts validated and ran", fuzz_cases());
    // Mutated weight bytes mostly stay valid, so the run path must have been exercised.
    assert!(accepted > 0, "no mutated artifact validated: the run path was never fuzzed");
    Ok(())
}

/// Every op case quantized with the defaults, calibrated on its own inputs.
fn case_graphs() -> Result<Vec<(String, QuantizedGraph)>> {
    let cases = common::case_names()?.into_iter().filter(|c| c != common::UNSUPPORTED_CASE);
    cases.map(|case| Ok((case.clone(), case_graph(&case)?))).collect()
}

/// Numbers a hostile artifact would pick: edges of the bit widths, shifts and shapes the evaluator uses.
const EXTREMES: &[i128] = &[
    0,
    1,
    2,
    3,
    -1,
    7,
    31,
    32,
    33,
    63,
    64,
    65,
    127,
    128,
    -64,
    -65,
    1 << 16,
    1 << 28,
    1 << 31,
    1 << 40,
    1 << 62,
    i64::MAX as i128,
    i64::MIN as i128,
    u64::MAX as i128,
];

/// One field-level edit of a quantized graph's serialized tree.
#[derive(Clone, Debug)]
enum FieldEdit {
    /// Set a number (or an element of a number array) to an extreme.
    Set(Index, Index, Index),
    /// Drop the last element of an array.
    Pop(Index),
    /// Append a copy of an array's last element.
    Push(Index),
}

/// JSON pointers to the edit sites of a tree: every array, and every number outside a number array.
fn edit_sites(value: &Value, pointer: String, sites: &mut Vec<String>) {
    match value {
        Value::Number(_) => sites.push(pointer),
        Value::Array(items) => {
            sites.push(pointer.clone());
            if !items.iter().all(Value::is_number) {
                items.iter().enumerate().for_each(|(i, v)| edit_sites(v, format!("{pointer}/{i}"), sites));
            }
        }
        Value::Object(fields) => fields.iter().for_each(|(k, v)| edit_sites(v, format!("{pointer}/{k}"), sites)),
        _ => {}
    }
}

impl FieldEdit {
    /// Applies the edit and describes it (JSON pointer and new value) for failure reports.
    fn apply(&self, tree: &mut Value) -> String {
        let mut sites = Vec::new();
        edit_sites(tree, String::new(), &mut sites);
        let (Self::Set(site, _, _) | Self::Pop(site) | Self::Push(site)) = self;
        let pointer = &sites[site.index(sites.len())];
        let Some(target) = tree.pointer_mut(pointer) else { return format!("{pointer}: missing") };
        let extreme = |i: &Index| {
            let v = EXTREMES[i.index(EXTREMES.len())];
            u64::try_from(v).map(Value::from).unwrap_or_else(|_| Value::from(v as i64))
        };
        match (self, target) {
            (Self::Set(_, element, v), Value::Array(items)) if !items.is_empty() => {
                let at = element.index(items.len());
                items[at] = extreme(v);
                format!("{pointer}/{at} = {}", items[at])
            }
            (Self::Set(_, _, v), number @ Value::Number(_)) => {
                *number = extreme(v);
                format!("{pointer} = {number}")
            }
            (Self::Pop(_), Value::Array(items)) => {
                items.pop();
                format!("{pointer}: dropped last")
            }
            (Self::Push(_), Value::Array(items)) => {
                if let Some(last) = items.last().cloned() {
                    items.push(last);
                }
                format!("{pointer}: repeated last")
            }
            _ => format!("{pointer}: unchanged"),
        }
    }
}

fn field_edit() -> impl Strategy<Value = FieldEdit> {
    prop_oneof![
        4 => (any::<Index>(), any::<Index>(), any::<Index>()).prop_map(|(s, e, v)| FieldEdit::Set(s, e, v)),
        1 => any::<Index>().prop_map(FieldEdit::Pop),
        1 => any::<Index>().prop_map(FieldEdit::Push),
    ]
}

/// Structure-aware fuzzing: edits that keep the artifact decodable but make its fields inconsistent
/// (tensor data shorter than its shape, huge or zero dimensions, extreme shifts, fracs and constants),
/// which byte mutations rarely reach past the decoder.
#[test]
fn inconsistent_artifacts_never_panic() -> Result<()> {
    let graphs = case_graphs()?;
    let trees: Vec<Value> = graphs.iter().map(|(_, g)| serde_json::to_value(g)).collect::<Result<_, _>>()?;
    let (accepted, decoded) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let strategy = (any::<Index>(), prop::collection::vec(field_edit(), 1..=3));
    runner()
        .run(&strategy, |(which, edits)| {
            let at = which.index(trees.len());
            let mut tree = trees[at].clone();
            let applied: Vec<String> = edits.iter().map(|e| e.apply(&mut tree)).collect();
            let Ok(graph) = serde_json::from_value::<QuantizedGraph>(tree) else { return Ok(()) };
            decoded.fetch_add(1, Ordering::Relaxed);
            let bytes = graph.to_bytes();
            let result = catch_unwind(AssertUnwindSafe(|| load_and_run(&bytes)));
            prop_assert!(result.is_ok(), "{}: from_bytes or run panicked after {applied:?}", graphs[at].0);
            if matches!(result, Ok(Some(_))) {
                accepted.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{} edited artifacts decoded, {} of them validated and ran", decoded.into_inner(), accepted.into_inner());
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Artifacts the fuzzers found to panic or abort before validation checked them; each must now be rejected
// (or, for a repeated output, run).

/// `conv_basic`'s quantized graph after `edit`, through the artifact bytes.
fn edited_conv(edit: impl FnOnce(&mut QuantizedGraph)) -> Result<Result<QuantizedGraph, ArtifactError>> {
    let mut graph = QuantizedGraph::from_bytes(&conv_artifact()?)?;
    edit(&mut graph);
    Ok(QuantizedGraph::from_bytes(&graph.to_bytes()))
}

/// A tensor as serde decodes it, without the shape check of `Tensor::new`.
fn unchecked_tensor(shape: &[u64], data: &[i64]) -> Tensor<i64> {
    serde_json::from_value(serde_json::json!({ "shape": shape, "data": data })).expect("tensor fields")
}

fn conv_weight(graph: &mut QuantizedGraph) -> &mut Tensor<i64> {
    match &mut graph.nodes[0].op {
        QOp::Conv { weight, .. } => weight,
        other => panic!("conv_basic starts with {other:?}"),
    }
}

fn assert_invalid(result: Result<QuantizedGraph, ArtifactError>, node: &str) {
    match result {
        Err(ArtifactError::Invalid { node: n, detail }) => assert_eq!(n, node, "{detail}"),
        other => panic!("expected Invalid at {node:?}, got {other:?}"),
    }
}

#[test]
fn weight_shorter_than_its_shape_is_invalid() -> Result<()> {
    // Used to index past the weight data in the convolution loop.
    let result = edited_conv(|g| {
        let w = conv_weight(g);
        let shape: Vec<u64> = w.shape().iter().map(|&d| d as u64).collect();
        *w = unchecked_tensor(&shape, &w.data()[1..]);
    })?;
    let node = QuantizedGraph::from_bytes(&conv_artifact()?)?.nodes[0].name.clone();
    assert_invalid(result, &node);
    Ok(())
}

#[test]
fn huge_weight_shape_is_invalid() -> Result<()> {
    // Used to abort the process: validation allocated a weight-shaped tensor before checking the shape.
    let result = edited_conv(|g| {
        let w = conv_weight(g);
        let mut shape: Vec<u64> = w.shape().iter().map(|&d| d as u64).collect();
        shape[3] = 1 << 40;
        *w = unchecked_tensor(&shape, w.data());
    })?;
    assert!(matches!(result, Err(ArtifactError::Invalid { .. })), "{result:?}");
    Ok(())
}

#[test]
fn extreme_fractional_bits_are_invalid() -> Result<()> {
    // ±64 used to pass, making rescaling shifts of 128 bits or more.
    let result = edited_conv(|g| g.values[0].frac = 64)?;
    assert_invalid(result, "graph");
    Ok(())
}

#[test]
fn zero_sized_dimension_is_invalid() -> Result<()> {
    // A linear layer over an empty axis used to divide by its zero length.
    let value = |name: &str, shape: Vec<usize>| QValue { name: name.into(), shape, frac: 4, bits: 12 };
    let linear = QOp::Linear {
        weight: Tensor::new(vec![0, 2], vec![])?,
        bias: vec![0, 0],
        requant: Requant { multipliers: vec![1], shift: 0 },
    };
    let graph = QuantizedGraph {
        config: QuantConfig::default(),
        values: vec![value("x", vec![1, 0]), value("y", vec![1, 2])],
        nodes: vec![QNode { name: "fc".into(), op: linear, inputs: vec![ValueId(0)], output: ValueId(1) }],
        inputs: vec![ValueId(0)],
        outputs: vec![ValueId(1)],
    };
    assert_invalid(QuantizedGraph::from_bytes(&graph.to_bytes()), "graph");
    Ok(())
}

#[test]
fn repeated_output_runs() -> Result<()> {
    // Listing a value twice as an output used to panic in `run`, which moved each output out.
    let graph = edited_conv(|g| g.outputs.push(g.outputs[0]))??;
    let outputs = load_and_run(&graph.to_bytes()).context("artifact loads")?;
    assert_eq!(outputs.len(), 2);
    assert_eq!(outputs[0], outputs[1]);
    Ok(())
}
