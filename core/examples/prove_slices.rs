//! Times key generation, proving and verification of every slice of a shipped model.
//!
//! Usage: `cargo run --release --example prove_slices -- MODEL [ipa|kzg] [per-layer|MAX_K]`

use anyhow::{Context, Result};
use halo2_proofs::halo2curves::bn256::Fr;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;
use veil_core::manifest::Task;
use veil_core::prove::{prove, proving_key, slice_circuit, verifying_key, ClaimModel, ClaimRequest, SliceInputs};
use veil_core::slice::{slice, CostModel, SlicePolicy};
use veil_core::tensor::Tensor;
use veil_core::Model;
use veil_verifier::backend::{verify, Params};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).context("usage: prove_slices MODEL [ipa|kzg] [per-layer|MAX_K]")?;
    let kzg = args.get(2).is_some_and(|s| s == "kzg");
    let policy = match args.get(3).map(String::as_str) {
        Some("per-layer") | None => SlicePolicy::PerLayer,
        Some(k) => SlicePolicy::Balanced { max_k: k.parse()? },
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let model = Model::load_onnx(&root.join(format!("models/{name}.onnx")))?;
    let ages: Option<Vec<i64>> = match &model.task {
        Task::Age { bins } => Some(bins.iter().map(|b| (b * 4.0).round() as i64).collect()),
        _ => None,
    };
    let graph = model.quantize_default()?;
    let plan = slice(&graph, &policy, &CostModel::default())?;
    let claims = ClaimModel::new(&graph, ages.as_deref())?;
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        std::fs::read_dir(root.join(format!("models/expected/{name}")))?.next().context("sample")??.path(),
    )?)?;
    let input = Tensor::new(
        serde_json::from_value(json["input"]["shape"].clone())?,
        serde_json::from_value::<Vec<f32>>(json["input"]["data"].clone())?,
    )?;
    let values = graph.run_all(&[graph.quantize_input(0, &input)?])?;
    let blinds: HashMap<_, _> = plan
        .slices
        .iter()
        .flat_map(|s| s.inputs.iter().chain(&s.outputs))
        .map(|&id| (id, Fr::from(12345 + id.0 as u64)))
        .collect();
    let inputs = SliceInputs { values: &values, blinds: &blinds, binding: Fr::from(7), claim: ClaimRequest::Argmax };
    let max_k = 18;
    let t0 = Instant::now();
    let big = if kzg { Params::insecure_kzg_for_tests(max_k, 1) } else { Params::ipa(max_k) };
    eprintln!("params k={max_k}: {:.1} s", t0.elapsed().as_secs_f64());
    let last = plan.slices.len() - 1;
    println!("slice  rows     k  keygen_s  prove_s  verify_ms  proof_B");
    for (s, spec) in plan.slices.iter().zip(claims.slice_specs(&plan)) {
        let c = slice_circuit(&graph, &spec, (s.index == last).then_some(&claims), Some(&inputs))?;
        let params = big.downsized(c.k())?;
        let t = Instant::now();
        let vk = verifying_key(&params, &c)?;
        let pk = proving_key(&params, vk.clone(), &c)?;
        let keygen = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let proof = prove(&params, &pk, &c, rand_core::OsRng)?;
        let proving = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let ok = verify(&params, &vk, &c.instance(), &proof);
        let verifying = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "{:5} {:6} {:3} {:9.2} {:8.2} {:10.1} {:8} {}",
            s.index,
            c.rows(),
            c.k(),
            keygen,
            proving,
            verifying,
            proof.len(),
            if ok { "ok" } else { "REJECTED" }
        );
    }
    Ok(())
}
