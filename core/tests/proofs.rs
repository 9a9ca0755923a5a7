//! End-to-end proofs on a small real network (conv → ReLU → reshape → linear, from `tests/data/ops`),
//! sliced in two: real halo2 proofs (IPA) verified by `veil-verifier`, and every rejection the verifier
//! owes a relying party.

use anyhow::Result;
use std::sync::OnceLock;
use veil_core::compiled::{Compiled, KeySource, ProveOptions};
use veil_core::prove::{ClaimRequest, KeyCache, ProveError};
use veil_core::quant::{quantize, Calibration, QuantConfig};
use veil_core::slice::{slice, CostModel, SlicePolicy};
use veil_core::tensor::Tensor;
use veil_verifier::artifact::VerifyingArtifact;
use veil_verifier::backend::{ParamSet, Params};
use veil_verifier::bundle::{Claim, ProofBundle};
use veil_verifier::circuit::{GateSet, Width, MAX_WEIGHTS};
use veil_verifier::verdict::{Coverage, Rejection};
use veil_verifier::verify::{Expected, Verifier};
use veil_verifier::Digest;

const NONCE: &[u8] = b"nonce-0123456789";
const AUDIENCE: &str = "https://verifier.example/age-check";

struct Fixture {
    compiled: Compiled,
    params: ParamSet,
    input: Tensor<f32>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| build(ParamSet::new(Params::ipa(13))).expect("fixture"))
}

/// KZG parameters for `2^13` rows cut from a real powers-of-tau ceremony file (snarkjs format, one
/// contribution; `tests/data/srs`).
fn ceremony_params() -> Result<Params> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/srs/test-pot13.ptau");
    Ok(veil_verifier::srs::kzg_from_ptau(std::io::BufReader::new(std::fs::File::open(path)?), 13)?)
}

/// The same network compiled for KZG over the ceremony's reference string.
fn kzg_fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| ceremony_params().and_then(|p| build(ParamSet::new(p))).expect("KZG fixture"))
}

fn build(mut params: ParamSet) -> Result<Fixture> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/ops/pytorch_style");
    let options = veil_core::onnx::ImportOptions::default();
    let graph = veil_core::onnx::load_onnx_file(&dir.join("model.onnx"), &options)?;
    let io: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("io.json"))?)?;
    let input = Tensor::new(
        serde_json::from_value(io["inputs"][0]["shape"].clone())?,
        serde_json::from_value::<Vec<f32>>(io["inputs"][0]["data"].clone())?,
    )?;
    let calibration = Calibration::collect(&graph, [("case".to_string(), std::slice::from_ref(&input))])?;
    // 8-bit activations keep the lookup table, and so every circuit, small (2^14 rows): these tests are about the
    // protocol, the shipped 12-bit models are proved in `veil bench` and the CLI end-to-end test.
    let config = QuantConfig { input_bits: 8, activation_bits: 8, weight_bits: 8, ..QuantConfig::default() };
    let q = quantize(&graph, &calibration, &config)?;
    let plan = slice(&q, &SlicePolicy::Explicit { cut_after: vec!["/relu/Relu".into()] }, &CostModel::default())?;
    let compiled = Compiled::new("tiny", None, q, &plan, &mut params, &|_, _, _| {})?;
    Ok(Fixture { compiled, params, input })
}

fn prove(claim: ClaimRequest, options: &ProveOptions) -> Result<ProofBundle> {
    prove_with(fixture(), claim, options)
}

fn prove_with(f: &Fixture, claim: ClaimRequest, options: &ProveOptions) -> Result<ProofBundle> {
    let mut rng = rand_core::OsRng;
    Ok(f.compiled.prove(&f.params, &f.input, claim, NONCE, AUDIENCE, options, &mut rng, &|_, _, _| {})?)
}

fn verifier() -> Result<Verifier> {
    verifier_with(fixture(), fixture().params.clone())
}

/// A verifier of `f`'s model (read back from the artifact's bytes) holding `params`.
fn verifier_with(f: &Fixture, params: ParamSet) -> Result<Verifier, anyhow::Error> {
    let bytes = f.compiled.verifier.to_bytes();
    let artifact = veil_verifier::artifact::VerifyingArtifact::from_bytes(&bytes)?;
    Ok(Verifier::new(artifact, params)?)
}

#[test]
fn kzg_proofs_over_a_ceremony_srs_verify_and_need_that_srs() -> Result<()> {
    let f = kzg_fixture();
    let bundle = prove_with(f, ClaimRequest::Argmax, &ProveOptions::default())?;
    let bytes = bundle.to_bytes();
    let verdict = verifier_with(f, f.params.clone())?.verify(&bytes, NONCE, AUDIENCE, Expected::Argmax)?;
    assert_eq!(verdict.coverage, Coverage::Full);
    assert_eq!(verdict.claim, argmax_bundle().claim, "KZG and IPA prove the same claim");
    // A flipped proof byte.
    let mut flipped = bundle.clone();
    let at = flipped.slices[1].proof.len() / 2;
    flipped.slices[1].proof[at] ^= 1;
    let v = verifier_with(f, f.params.clone())?;
    assert_eq!(
        v.verify(&flipped.to_bytes(), NONCE, AUDIENCE, Expected::Argmax).unwrap_err(),
        Rejection::InvalidProof { slice: 1 }
    );
    // Another reference string of the same size (the insecure test SRS), or the other scheme: the keys were
    // not made with them.
    let other = ParamSet::new(Params::insecure_kzg_for_tests(13, 0));
    assert_eq!(
        verifier_with(f, other).err().and_then(|e| e.downcast::<Rejection>().ok()),
        Some(Rejection::WrongParams)
    );
    let ipa = fixture().params.clone();
    assert_eq!(verifier_with(f, ipa).err().and_then(|e| e.downcast::<Rejection>().ok()), Some(Rejection::WrongParams));
    Ok(())
}

fn argmax_bundle() -> &'static ProofBundle {
    static B: OnceLock<ProofBundle> = OnceLock::new();
    B.get_or_init(|| prove(ClaimRequest::Argmax, &ProveOptions::default()).expect("proof"))
}

#[test]
fn argmax_proof_verifies_with_full_coverage_and_matches_the_reference() -> Result<()> {
    let f = fixture();
    let bundle = argmax_bundle();
    let verdict = verifier()?.verify(&bundle.to_bytes(), NONCE, AUDIENCE, Expected::Argmax)?;
    assert_eq!(verdict.coverage, Coverage::Full);
    let q = f.compiled.graph.quantize_input(0, &f.input)?;
    let logits = f.compiled.graph.run(&[q])?.remove(0);
    let m = logits.data().iter().max().copied().unwrap_or(0);
    let expected = logits.data().iter().position(|&v| v == m).unwrap_or(0) as u32;
    assert_eq!(verdict.claim, Claim::Argmax { index: expected });
    Ok(())
}

#[test]
fn output_claim_reveals_the_reference_logits() -> Result<()> {
    let f = fixture();
    let bundle = prove(ClaimRequest::Output, &ProveOptions { parallel: 2, ..ProveOptions::default() })?;
    let verdict = verifier()?.verify(&bundle.to_bytes(), NONCE, AUDIENCE, Expected::Output)?;
    let q = f.compiled.graph.quantize_input(0, &f.input)?;
    let logits = f.compiled.graph.run(&[q])?.remove(0);
    let Claim::Output { values, .. } = verdict.claim else { anyhow::bail!("output claim expected") };
    assert_eq!(values, logits.data());
    Ok(())
}

fn rejection(bytes: &[u8]) -> Rejection {
    verifier()
        .map(|v| v.verify(bytes, NONCE, AUDIENCE, Expected::Argmax))
        .expect("verifier")
        .expect_err("must be rejected")
}

#[test]
fn a_flipped_proof_byte_in_each_slice_is_an_invalid_proof() {
    for i in 0..argmax_bundle().slices.len() {
        let mut b = argmax_bundle().clone();
        let p = &mut b.slices[i].proof;
        let at = p.len() / 2;
        p[at] ^= 1;
        assert_eq!(rejection(&b.to_bytes()), Rejection::InvalidProof { slice: i as u32 });
    }
}

#[test]
fn swapped_and_dropped_slices() -> Result<()> {
    let mut swapped = argmax_bundle().clone();
    swapped.slices.swap(0, 1);
    assert_eq!(rejection(&swapped.to_bytes()).code(), "bad_format");
    let mut relabelled = argmax_bundle().clone();
    let (a, b) = (relabelled.slices[0].proof.clone(), relabelled.slices[1].proof.clone());
    relabelled.slices[0].proof = b;
    relabelled.slices[1].proof = a;
    assert_eq!(rejection(&relabelled.to_bytes()).code(), "invalid_proof");
    let mut dropped = argmax_bundle().clone();
    dropped.slices.remove(0);
    let verdict = verifier()?.verify(&dropped.to_bytes(), NONCE, AUDIENCE, Expected::Argmax)?;
    assert_eq!(verdict.coverage, Coverage::Partial { unproved: vec![0] });
    assert_eq!(verdict.require_full().unwrap_err().code(), "unproved_slices");
    Ok(())
}

#[test]
fn altered_commitments_break_the_chain_or_the_proof() {
    let mut one_side = argmax_bundle().clone();
    one_side.slices[0].output_commitments[0][0] ^= 1;
    assert!(matches!(rejection(&one_side.to_bytes()), Rejection::BrokenChain { .. } | Rejection::BadFormat(_)));
    let mut both = argmax_bundle().clone();
    let mut c = both.slices[0].output_commitments[0];
    c[0] ^= 1;
    both.slices[0].output_commitments[0] = c;
    both.slices[1].input_commitments[0] = c;
    assert!(matches!(rejection(&both.to_bytes()), Rejection::InvalidProof { .. } | Rejection::BadFormat(_)));
    let mut input = argmax_bundle().clone();
    input.input_commitment[1] ^= 1;
    assert!(matches!(rejection(&input.to_bytes()), Rejection::BrokenChain { .. } | Rejection::BadFormat(_)));
}

#[test]
fn wrong_nonce_audience_claim_model_and_truncation() -> Result<()> {
    let bytes = argmax_bundle().to_bytes();
    let v = verifier()?;
    assert_eq!(v.verify(&bytes, b"another-nonce", AUDIENCE, Expected::Argmax).unwrap_err(), Rejection::WrongNonce);
    assert_eq!(
        v.verify(&bytes, NONCE, "https://evil.example", Expected::Argmax).unwrap_err(),
        Rejection::WrongAudience
    );
    assert_eq!(v.verify(&bytes, NONCE, AUDIENCE, Expected::Output).unwrap_err().code(), "wrong_claim");
    // A relay rewriting the bundle's nonce and claim cannot make the proofs fit the new statement.
    let mut rebound = argmax_bundle().clone();
    rebound.nonce = b"another-nonce".to_vec();
    assert_eq!(
        v.verify(&rebound.to_bytes(), b"another-nonce", AUDIENCE, Expected::Argmax).unwrap_err().code(),
        "invalid_proof"
    );
    let mut other_claim = argmax_bundle().clone();
    let Claim::Argmax { index } = other_claim.claim else { anyhow::bail!("argmax") };
    other_claim.claim = Claim::Argmax { index: (index + 1) % 5 };
    assert_eq!(
        v.verify(&other_claim.to_bytes(), NONCE, AUDIENCE, Expected::Argmax).unwrap_err().code(),
        "invalid_proof"
    );
    let mut other_model = argmax_bundle().clone();
    other_model.model = veil_verifier::Digest::of(b"another model");
    assert_eq!(v.verify(&other_model.to_bytes(), NONCE, AUDIENCE, Expected::Argmax).unwrap_err().code(), "wrong_model");
    for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
        assert_eq!(v.verify(&bytes[..cut], NONCE, AUDIENCE, Expected::Argmax).unwrap_err().code(), "bad_format");
    }
    Ok(())
}

/// Another number of weight columns in range than `weights`.
fn artifact_width(weights: u32) -> u32 {
    weights % MAX_WEIGHTS as u32 + 1
}

/// A slice's weight columns are part of its constraint system: an artifact naming a number out of range is refused
/// when the verifier is built, and one naming another number in range is another model (its digest differs) that
/// accepts none of this model's proofs, renamed or not.
#[test]
fn an_artifact_with_other_weight_columns_is_refused_or_verifies_nothing() -> Result<()> {
    let f = fixture();
    let widths: Vec<u32> = f.compiled.verifier.slices.iter().map(|s| s.weights).collect();
    assert!(widths.iter().all(|&w| (1..=MAX_WEIGHTS as u32).contains(&w)), "{widths:?}");
    assert!(widths.iter().any(|&w| w < MAX_WEIGHTS as u32), "the tiny model's slices need few weight columns");
    for bad in [0, MAX_WEIGHTS as u32 + 1, u32::MAX] {
        let mut artifact = f.compiled.verifier.clone();
        artifact.slices[1].weights = bad;
        let refused = Verifier::new(artifact, f.params.clone()).err();
        assert_eq!(refused, Some(Rejection::WrongKey { slice: 1 }), "{bad} weight columns");
    }
    let bundle = argmax_bundle();
    for (slice, &weights) in widths.iter().enumerate() {
        let mut artifact = f.compiled.verifier.clone();
        artifact.slices[slice].weights = artifact_width(weights);
        let Ok(other) = Verifier::new(artifact, f.params.clone()) else { continue };
        assert_ne!(other.model(), verifier()?.model(), "the weight columns are part of the model digest");
        assert_eq!(
            other.verify(&bundle.to_bytes(), NONCE, AUDIENCE, Expected::Argmax).unwrap_err().code(),
            "wrong_model"
        );
        // Renaming the model changes the statement every proof is bound to.
        let renamed = ProofBundle { model: other.model(), ..bundle.clone() };
        let code = other.verify(&renamed.to_bytes(), NONCE, AUDIENCE, Expected::Argmax).unwrap_err().code();
        assert_eq!(code, "invalid_proof", "slice {slice} read with {} weight columns", artifact_width(weights));
    }
    Ok(())
}

/// Checks an artifact altered in slice `slice`'s constraint system (`what` names the change): it is refused as
/// that slice's wrong key when the key does not read, and otherwise is another model (its digest differs) that
/// rejects this model's argmax bundle as `wrong_model`, and as `invalid_proof` once renamed to it.
fn refused_or_verifies_nothing(artifact: VerifyingArtifact, slice: usize, what: &str) -> Result<()> {
    let f = fixture();
    let bundle = argmax_bundle();
    let other = match Verifier::new(artifact, f.params.clone()) {
        Ok(other) => other,
        Err(refused) => {
            assert_eq!(refused, Rejection::WrongKey { slice: slice as u32 }, "slice {slice}, {what}");
            return Ok(());
        }
    };
    assert_ne!(other.model(), verifier()?.model(), "{what} is part of the model digest");
    let code = other.verify(&bundle.to_bytes(), NONCE, AUDIENCE, Expected::Argmax).unwrap_err().code();
    assert_eq!(code, "wrong_model");
    // Renaming the model changes the statement every proof is bound to.
    let renamed = ProofBundle { model: other.model(), ..bundle.clone() };
    let code = other.verify(&renamed.to_bytes(), NONCE, AUDIENCE, Expected::Argmax).unwrap_err().code();
    assert_eq!(code, "invalid_proof", "slice {slice} read with {what}");
    Ok(())
}

/// A slice's row width is part of its constraint system too: an artifact naming the other width for a slice
/// is refused when its key does not read at that width, and otherwise is another model that accepts none of
/// this model's proofs, renamed or not.
#[test]
fn an_artifact_with_another_row_width_is_refused_or_verifies_nothing() -> Result<()> {
    let f = fixture();
    for slice in 0..f.compiled.verifier.slices.len() {
        let mut artifact = f.compiled.verifier.clone();
        let width = &mut artifact.slices[slice].width;
        *width = if *width == Width::Wide { Width::Narrow } else { Width::Wide };
        refused_or_verifies_nothing(artifact, slice, "the other row width")?;
    }
    Ok(())
}

/// A slice's optional gates are part of its constraint system as well: an artifact naming another gate set for
/// a slice (every optional family, or the slice's own with one family added or removed) is refused when its
/// key does not read with those gates, and otherwise is another model that accepts none of this model's
/// proofs, renamed or not.
#[test]
fn an_artifact_with_other_optional_gates_is_refused_or_verifies_nothing() -> Result<()> {
    let f = fixture();
    for slice in 0..f.compiled.verifier.slices.len() {
        let own = f.compiled.verifier.slices[slice].gates;
        assert_ne!(own, GateSet::ALL, "slice {slice}: the tiny model leaves some optional gates out");
        let toggled = if own.contains(GateSet::MAX) { own.without(GateSet::MAX) } else { own.union(GateSet::MAX) };
        for gates in [GateSet::ALL, toggled] {
            let mut artifact = f.compiled.verifier.clone();
            artifact.slices[slice].gates = gates;
            refused_or_verifies_nothing(artifact, slice, &format!("the gate set {gates:?}"))?;
        }
    }
    Ok(())
}

/// A fresh, empty key cache directory, removed when dropped.
struct TempKeys(KeyCache);

impl TempKeys {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("veil-keys-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempKeys(KeyCache::new(dir))
    }
}

impl Drop for TempKeys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.dir());
    }
}

fn vk_digest(slice: usize) -> Digest {
    fixture().compiled.verifier.slices[slice].vk_digest
}

/// Whether `keys` gives back an intact proving key for `slice`.
fn loads(keys: &KeyCache, slice: usize) -> bool {
    let params = fixture().compiled.verifier.slice_params(slice).expect("the fixture has the slice");
    keys.load(&vk_digest(slice), params).is_some()
}

#[test]
fn proofs_store_their_proving_keys_and_later_proofs_read_them_back() -> Result<()> {
    let keys = TempKeys::new("reuse");
    let options = ProveOptions { key_cache: Some(keys.0.clone()), ..ProveOptions::default() };
    let first = prove(ClaimRequest::Argmax, &options)?;
    let stamps =
        (0..2).map(|i| Ok(std::fs::metadata(keys.0.path(&vk_digest(i)))?.modified()?)).collect::<Result<Vec<_>>>()?;
    let second = prove(ClaimRequest::Argmax, &options)?;
    for (i, stamp) in stamps.iter().enumerate() {
        let path = keys.0.path(&vk_digest(i));
        assert_eq!(std::fs::metadata(&path)?.modified()?, *stamp, "slice {i}'s key was written again");
    }
    let sources = fixture().compiled.prepare_keys(&fixture().params, &keys.0, None)?;
    assert_eq!(sources, [KeySource::Cached, KeySource::Cached]);
    for bundle in [first, second] {
        let verdict = verifier()?.verify(&bundle.to_bytes(), NONCE, AUDIENCE, Expected::Argmax)?;
        assert_eq!(verdict.coverage, Coverage::Full);
    }
    Ok(())
}

#[test]
fn a_damaged_or_misfiled_cached_key_is_never_used_and_is_replaced() -> Result<()> {
    let keys = TempKeys::new("damaged");
    let f = fixture();
    assert_eq!(f.compiled.prepare_keys(&f.params, &keys.0, None)?, [KeySource::Derived, KeySource::Derived]);
    let (path0, path1) = (keys.0.path(&vk_digest(0)), keys.0.path(&vk_digest(1)));
    let intact = std::fs::read(&path0)?;
    assert!(loads(&keys.0, 0));

    // One flipped payload byte: the hash no longer matches.
    let mut flipped = intact.clone();
    flipped[veil_core::prove::KEY_HEADER_LEN + 1000] ^= 1;
    std::fs::write(&path0, &flipped)?;
    assert!(!loads(&keys.0, 0));
    // Cut short, or empty.
    std::fs::write(&path0, &intact[..intact.len() / 2])?;
    assert!(!loads(&keys.0, 0));
    std::fs::write(&path0, b"")?;
    assert!(!loads(&keys.0, 0));
    // Slice 0's intact key filed under slice 1's verifying key.
    std::fs::write(&path1, &intact)?;
    assert!(!loads(&keys.0, 1));

    // Both are derived again and stored intact; proofs from them verify.
    assert_eq!(f.compiled.prepare_keys(&f.params, &keys.0, None)?, [KeySource::Derived, KeySource::Derived]);
    assert_eq!(std::fs::read(&path0)?, intact, "a key file's bytes depend on the key alone");
    assert!(loads(&keys.0, 1));
    let options = ProveOptions { key_cache: Some(keys.0.clone()), ..ProveOptions::default() };
    let bundle = prove(ClaimRequest::Argmax, &options)?;
    verifier()?.verify(&bundle.to_bytes(), NONCE, AUDIENCE, Expected::Argmax)?;
    Ok(())
}

/// A compiled file of another format version (one made before the last layout change, whose keys describe
/// other circuits) is refused as a whole rather than proving circuits its keys do not describe.
#[test]
fn a_compiled_file_of_another_version_is_refused() {
    let bytes = fixture().compiled.to_bytes();
    for version in [veil_core::compiled::VERSION - 1, veil_core::compiled::VERSION + 1] {
        let mut old = bytes.clone();
        old[8..10].copy_from_slice(&version.to_le_bytes());
        assert!(
            matches!(Compiled::from_bytes(&old), Err(veil_core::compiled::CompiledError::Format)),
            "version {version}"
        );
    }
    assert!(Compiled::from_bytes(&bytes).is_ok());
}

#[test]
fn a_key_that_cannot_be_stored_fails_the_proof_with_a_typed_error() -> Result<()> {
    let keys = TempKeys::new("blocked");
    // A file where the cache directory should be.
    std::fs::write(keys.0.dir(), b"not a directory")?;
    let options = ProveOptions { key_cache: Some(keys.0.clone()), ..ProveOptions::default() };
    let err = prove(ClaimRequest::Argmax, &options).expect_err("the key cannot be stored");
    match err.downcast_ref::<ProveError>() {
        Some(ProveError::KeyCache { path, .. }) => assert!(path.ends_with(".veilpk"), "{path}"),
        other => panic!("expected a key cache error, got {other:?}"),
    }
    std::fs::remove_file(keys.0.dir())?;
    Ok(())
}
