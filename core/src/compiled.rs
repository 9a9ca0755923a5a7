//! A compiled model: the quantized graph, its slice plan and the verifying artifact (keys for every slice),
//! in one versioned file that phones and browsers load without the ONNX model. [`Compiled::prove`] turns a
//! preprocessed input into a proof bundle.

use crate::claim::age_score;
use crate::ir::ValueId;
use crate::manifest::ModelManifest;
mod keys;

pub use keys::KeySource;

use crate::prove::{
    commit, fit_slice, prove, slice_circuit, verifying_key, ClaimModel, ClaimRequest, KeyCache, ProveError,
    SliceInputs, SliceSpec,
};
use crate::quant::QuantizedGraph;
use crate::slice::SlicePlan;
use crate::tensor::Tensor;
use halo2_proofs::arithmetic::Field;
use halo2_proofs::halo2curves::bn256::Fr;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use veil_verifier::artifact::{ClaimInfo, SliceKey, VerifyingArtifact};
use veil_verifier::backend::{vk_bytes, ParamSet};
use veil_verifier::bundle::{fr_to_bytes, statement_binding, Claim, ProofBundle, SliceProof};
use veil_verifier::Digest;

/// Magic bytes of a compiled model file.
pub const MAGIC: &[u8; 8] = b"VEILCMP\0";
/// Its format version, bumped whenever the keys it holds would change for the same model: a new constraint
/// system (see `veil_verifier::artifact::VERSION`) or a new row layout of some relation. halo2 derives a
/// proving key from whatever verifying key it is given, so a model compiled with another layout would make
/// proofs that every verifier rejects; an older file is refused instead (`CompiledError::Format`). 8:
/// separable max pooling (the verifying artifacts of models without max pooling are unchanged). 9: wide rows
/// take four maxima and pack four elements a row and hash with two Poseidon lanes; commitments hash their
/// elements in two halves. 10: a gate set per slice and one gate per chain. 11: two Poseidon gates fewer. 12:
/// constants and the claim on one `arith` gate.
pub const VERSION: u16 = 12;

/// A compiled model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Compiled {
    /// Model name.
    pub name: String,
    /// The model manifest, as TOML (preprocessing, task, provenance); empty for a bare graph.
    pub manifest_toml: String,
    /// The quantized graph: the specification the circuits prove.
    pub graph: QuantizedGraph,
    /// The slices.
    pub slices: Vec<SliceSpec>,
    /// Age of each logit in quarter years, for age models.
    pub ages: Option<Vec<i64>>,
    /// What verifiers need (keys and boundaries); its digest names the model.
    pub verifier: VerifyingArtifact,
}

/// Why a compiled file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompiledError {
    /// Wrong magic or version.
    #[error("not a Veil compiled model (or an unsupported version)")]
    Format,
    /// The body does not decode.
    #[error("compiled model body: {0}")]
    Decode(String),
    /// The manifest inside does not parse.
    #[error("compiled model manifest: {0}")]
    Manifest(String),
}

/// Options of [`Compiled::prove`].
#[derive(Clone, Debug)]
pub struct ProveOptions {
    /// Prove only these slices (targeted verification); `None` proves all.
    pub only: Option<Vec<usize>>,
    /// Slices proved at once (each holds its proving key in memory).
    pub parallel: usize,
    /// Where proving keys are kept between proofs; `None` derives every key for every proof.
    pub key_cache: Option<KeyCache>,
}

impl Default for ProveOptions {
    fn default() -> Self {
        ProveOptions { only: None, parallel: 1, key_cache: None }
    }
}

impl ProveOptions {
    /// Proves `only` (every slice when `None`) with as many slices at once as fit `budget_mib` MiB of
    /// estimated prover memory
    /// ([`CostModel::memory_bytes_at`](crate::slice::CostModel::memory_bytes_at)): the largest `n` for which the `n` most demanding
    /// slices together stay within the budget, so any `n` slices running at once do. Fails with
    /// [`ProveError::OverBudget`] when one slice alone exceeds it.
    pub fn within_memory(compiled: &Compiled, only: Option<Vec<usize>>, budget_mib: u64) -> Result<Self, ProveError> {
        let cost = crate::slice::CostModel::default();
        let chosen: Vec<usize> = only.clone().unwrap_or_else(|| (0..compiled.slices.len()).collect());
        let mut needs: Vec<(u64, usize, u32)> = chosen
            .iter()
            .filter_map(|&i| {
                compiled.verifier.slices.get(i).map(|s| (cost.memory_bytes_at(s.k, s.width) >> 20, i, s.k))
            })
            .collect();
        needs.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(&(needed_mib, slice, k)) = needs.first().filter(|(mib, _, _)| *mib > budget_mib) {
            return Err(ProveError::OverBudget { slice, k, needed_mib, budget_mib });
        }
        let mut total = 0u64;
        let parallel = needs.iter().take_while(|(mib, _, _)| {
            total = total.saturating_add(*mib);
            total <= budget_mib
        });
        Ok(ProveOptions { parallel: parallel.count().max(1), only, key_cache: None })
    }
}

/// Progress of a long step: `(stage, done, total)`.
pub type Progress<'a> = &'a (dyn Fn(&str, usize, usize) + Sync);

impl Compiled {
    /// Compiles a quantized graph: one circuit per slice of `plan`, with its verifying key under `params`
    /// (which must cover the largest slice).
    pub fn new(
        name: &str,
        manifest: Option<&ModelManifest>,
        graph: QuantizedGraph,
        plan: &SlicePlan,
        params: &mut ParamSet,
        progress: Progress<'_>,
    ) -> Result<Self, ProveError> {
        let ages = manifest.map(ModelManifest::task).and_then(|t| t.ok()).and_then(|t| t.age_quarters());
        let claims = ClaimModel::new(&graph, ages.as_deref())?;
        let mut slices: Vec<SliceSpec> = claims.slice_specs(plan);
        let mut keys = Vec::with_capacity(slices.len());
        let count = slices.len();
        for (i, s) in slices.iter_mut().enumerate() {
            progress("keys", i, count);
            let last = i + 1 == count;
            // Each slice takes the row and range-limb widths that cost it least, with the fewest weight
            // columns that keep its size.
            let (fitted, circuit) = fit_slice(&graph, s, last.then_some(&claims))?;
            *s = fitted;
            let k = circuit.k();
            params.ensure(&[k]).map_err(|_| ProveError::TooLarge { k })?;
            let p = params.get(k).map_err(|_| ProveError::TooLarge { k })?;
            let vk = vk_bytes(&verifying_key(p, &circuit)?);
            keys.push(SliceKey {
                index: i as u32,
                k,
                weights: s.weights as u32,
                width: s.width,
                gates: circuit.params().gates(),
                vk_digest: Digest::of(&vk),
                params_digest: Digest::of(&p.to_bytes()),
                vk,
                inputs: s.inputs.iter().map(|v| v.0 as u32).collect(),
                outputs: s.outputs.iter().map(|v| v.0 as u32).collect(),
            });
        }
        progress("keys", count, count);
        let shape = graph.value(claims.logits()).shape.clone();
        let verifier = VerifyingArtifact {
            name: name.to_string(),
            scheme: params.scheme(),
            slices: keys,
            claim: ClaimInfo {
                logits: shape.iter().product::<usize>() as u32,
                shape: shape.iter().map(|&d| d as u32).collect(),
                age: claims.has_age(),
            },
        };
        let manifest_toml = match manifest {
            Some(m) => toml::to_string(m).map_err(|e| ProveError::Unsupported(e.to_string()))?,
            None => String::new(),
        };
        Ok(Compiled { name: name.to_string(), manifest_toml, graph, slices, ages, verifier })
    }

    /// The manifest.
    pub fn manifest(&self) -> Result<ModelManifest, CompiledError> {
        toml::from_str(&self.manifest_toml).map_err(|e| CompiledError::Manifest(e.to_string()))
    }

    /// Serializes the compiled model.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend(VERSION.to_le_bytes());
        out.extend(postcard::to_allocvec(self).unwrap_or_default());
        out
    }

    /// Reads a compiled model.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CompiledError> {
        if bytes.len() < 10 || &bytes[..8] != MAGIC || u16::from_le_bytes([bytes[8], bytes[9]]) != VERSION {
            return Err(CompiledError::Format);
        }
        let c: Compiled = postcard::from_bytes(&bytes[10..]).map_err(|e| CompiledError::Decode(e.to_string()))?;
        c.verifier.validate().map_err(|e| CompiledError::Decode(e.to_string()))?;
        Ok(c)
    }

    /// The claim a request reveals on the integer reference's witness.
    fn claim_value(
        &self,
        claims: &ClaimModel,
        values: &[Option<Tensor<i64>>],
        request: ClaimRequest,
    ) -> Result<Claim, ProveError> {
        let logits = values[claims.logits().0].as_ref().ok_or_else(|| ProveError::Unsupported("logits".into()))?;
        let z = logits.data();
        Ok(match request {
            ClaimRequest::Output => {
                Claim::Output { values: z.to_vec(), shape: logits.shape().iter().map(|&d| d as u32).collect() }
            }
            ClaimRequest::Argmax => {
                let m = z.iter().copied().max().unwrap_or(0);
                Claim::Argmax { index: z.iter().position(|&v| v == m).unwrap_or(0) as u32 }
            }
            ClaimRequest::AgeAtLeast(t) => {
                let ages = self.ages.as_deref().ok_or_else(|| ProveError::Unsupported("not an age model".into()))?;
                let t = u32::try_from(t).map_err(|_| ProveError::Unsupported("negative age threshold".into()))?;
                let exp = claims.exp_table();
                Claim::AgeAtLeast { threshold_quarters: t, holds: age_score(z, exp, ages, t as i64) >= 0 }
            }
        })
    }

    /// The circuit size of every slice (the parameter sizes [`Compiled::prove`] needs).
    pub fn ks(&self) -> Vec<u32> {
        self.verifier.slices.iter().map(|s| s.k).collect()
    }

    /// Proves the model on a preprocessed input for `claim`, bound to `nonce` and `audience`.
    /// `params` must hold the sizes of [`Compiled::ks`] (see [`ParamSet::ensure`]).
    #[allow(clippy::too_many_arguments)]
    pub fn prove(
        &self,
        params: &ParamSet,
        input: &Tensor<f32>,
        request: ClaimRequest,
        nonce: &[u8],
        audience: &str,
        options: &ProveOptions,
        rng: &mut (impl RngCore + CryptoRng),
        progress: Progress<'_>,
    ) -> Result<ProofBundle, ProveError> {
        let graph = &self.graph;
        let q = graph.quantize_input(0, input).map_err(|e| ProveError::Unsupported(e.to_string()))?;
        let values = graph.run_all(std::slice::from_ref(&q)).map_err(|e| ProveError::Unsupported(e.to_string()))?;
        let claims = ClaimModel::new(graph, self.ages.as_deref())?;
        let claim = self.claim_value(&claims, &values, request)?;
        let mut blinds: HashMap<ValueId, Fr> = HashMap::new();
        for s in &self.slices {
            for &id in s.inputs.iter().chain(&s.outputs) {
                blinds.entry(id).or_insert_with(|| Fr::random(&mut *rng));
            }
        }
        let input_id = graph.inputs[0];
        let input_commitment = fr_to_bytes(commit(q.data(), graph.value(input_id).bits, blinds[&input_id]));
        let model = self.verifier.digest();
        let binding = statement_binding(&model, nonce, audience, &claim, &input_commitment);
        let inputs = SliceInputs { values: &values, blinds: &blinds, binding, claim: request };
        let chosen: Vec<usize> = match &options.only {
            Some(list) => {
                let mut list = list.clone();
                list.sort_unstable();
                list.dedup();
                if let Some(&bad) = list.iter().find(|&&i| i >= self.slices.len()) {
                    return Err(ProveError::Unsupported(format!("slice {bad}: the model has {}", self.slices.len())));
                }
                list
            }
            None => (0..self.slices.len()).collect(),
        };
        let seeds: Vec<[u8; 32]> = chosen
            .iter()
            .map(|_| {
                let mut s = [0u8; 32];
                rng.fill_bytes(&mut s);
                s
            })
            .collect();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let prove_one = |slot: usize| -> Result<SliceProof, ProveError> {
            let i = chosen[slot];
            let last = i + 1 == self.slices.len();
            let key = &self.verifier.slices[i];
            let p = params.get(key.k).map_err(|_| ProveError::TooLarge { k: key.k })?;
            let witness = || slice_circuit(graph, &self.slices[i], last.then_some(&claims), Some(&inputs));
            let key_file = options.key_cache.as_ref().map(|c| c.path(&key.vk_digest));
            let (pk, circuit) = if key_file.is_some_and(|f| f.is_file()) {
                // A cached key is read while the witness (the integer reference's trace) is laid out. A key to
                // derive comes first and alone: its generation is where memory peaks, and it holds no trace.
                let (pk, circuit) = std::thread::scope(|scope| {
                    let circuit = scope.spawn(witness);
                    (self.slice_proving_key(p, i, &claims, options.key_cache.as_ref()), circuit.join())
                });
                let circuit = circuit.map_err(|_| ProveError::Unsupported("the witness thread stopped".into()))?;
                (pk?.0, circuit?)
            } else {
                let (pk, _) = self.slice_proving_key(p, i, &claims, options.key_cache.as_ref())?;
                (pk, witness()?)
            };
            let instance = circuit.instance();
            let proof = prove(p, &pk, circuit, rand_chacha::ChaCha20Rng::from_seed(seeds[slot]))?;
            let (n_in, n_out) = (key.inputs.len(), key.outputs.len());
            let bytes = |r: std::ops::Range<usize>| instance[r].iter().map(|&f| fr_to_bytes(f)).collect();
            let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            progress("prove", n, chosen.len());
            Ok(SliceProof {
                index: i as u32,
                vk_digest: key.vk_digest,
                input_commitments: bytes(1..1 + n_in),
                output_commitments: bytes(1 + n_in..1 + n_in + n_out),
                proof,
            })
        };
        progress("prove", 0, chosen.len());
        let workers = options.parallel.clamp(1, chosen.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut results: Vec<Option<Result<SliceProof, ProveError>>> = (0..chosen.len()).map(|_| None).collect();
        let slots = std::sync::Mutex::new(&mut results);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let slot = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if slot >= chosen.len() {
                        break;
                    }
                    let r = prove_one(slot);
                    if let Ok(mut guard) = slots.lock() {
                        guard[slot] = Some(r);
                    }
                });
            }
        });
        let slices = results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ProveError::Unsupported("a proving thread stopped".into()))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProofBundle {
            model,
            slices_total: self.slices.len() as u32,
            slices,
            claim,
            nonce: nonce.to_vec(),
            audience: audience.to_string(),
            input_commitment,
        })
    }
}
