//! The commitment-scheme backend: IPA (transparent, the default) or KZG with SHPLONK (a ceremony SRS; cheap
//! verification), both over BN254. Everything above this module is scheme-agnostic: circuits only see the
//! field, bundles only see bytes.

use crate::circuit::{SliceParams, SliceShape};
use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::plonk::{verify_proof, VerifyingKey};
use halo2_proofs::poly::commitment::{Params as _, ParamsProver};
use halo2_proofs::poly::ipa::commitment::{IPACommitmentScheme, ParamsIPA};
use halo2_proofs::poly::ipa::multiopen::VerifierIPA;
use halo2_proofs::poly::ipa::strategy::{AccumulatorStrategy as IpaAccumulator, SingleStrategy as IpaSingle};
use halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_proofs::poly::kzg::multiopen::VerifierSHPLONK;
use halo2_proofs::poly::kzg::strategy::SingleStrategy as KzgSingle;
use halo2_proofs::poly::VerificationStrategy;
use halo2_proofs::transcript::{Blake2bRead, Challenge255, TranscriptReadBuffer};
use halo2_proofs::SerdeFormat;
use serde::{Deserialize, Serialize};

/// Which polynomial commitment scheme a compiled model uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scheme {
    /// Inner-product argument: no trusted setup; parameters are derived by hashing to the curve.
    Ipa,
    /// KZG with SHPLONK multi-opening: needs a structured reference string from a ceremony.
    Kzg,
}

/// Public parameters of either scheme.
#[derive(Clone, Debug)]
pub enum Params {
    /// IPA generators.
    Ipa(ParamsIPA<G1Affine>),
    /// A KZG structured reference string.
    Kzg(ParamsKZG<Bn256>),
}

/// Why parameters or keys could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// Bytes that do not decode.
    #[error("cannot read {what}: {reason}")]
    Read {
        /// What was being read.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// Parameters smaller than a circuit needs.
    #[error("parameters for 2^{have} rows cannot serve a circuit of 2^{need} rows")]
    TooSmall {
        /// Their size.
        have: u32,
        /// The circuit's size.
        need: u32,
    },
}

impl Params {
    /// Generates IPA parameters for `2^k` rows (slow for large `k`: cache them).
    pub fn ipa(k: u32) -> Self {
        Params::Ipa(ParamsIPA::new(k))
    }

    /// A KZG SRS from a seeded, publicly known secret: **insecure**, for tests and benchmarks only.
    pub fn insecure_kzg_for_tests(k: u32, seed: u64) -> Self {
        use rand_core::SeedableRng;
        Params::Kzg(ParamsKZG::setup(k, rand_chacha::ChaCha20Rng::seed_from_u64(seed)))
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        match self {
            Params::Ipa(_) => Scheme::Ipa,
            Params::Kzg(_) => Scheme::Kzg,
        }
    }

    /// `log2` of the rows they serve.
    pub fn k(&self) -> u32 {
        match self {
            Params::Ipa(p) => p.k(),
            Params::Kzg(p) => p.k(),
        }
    }

    /// The same parameters cut down to `2^k` rows.
    pub fn downsized(&self, k: u32) -> Result<Self, BackendError> {
        if k > self.k() {
            return Err(BackendError::TooSmall { have: self.k(), need: k });
        }
        let mut p = self.clone();
        match &mut p {
            Params::Ipa(p) => p.downsize(k),
            Params::Kzg(p) => p.downsize(k),
        }
        Ok(p)
    }

    /// Serializes them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = match self {
            Params::Ipa(p) => p.write(&mut out),
            Params::Kzg(p) => p.write(&mut out),
        };
        out
    }

    /// Reads parameters of `scheme`.
    pub fn from_bytes(scheme: Scheme, bytes: &[u8]) -> Result<Self, BackendError> {
        let err = |e: std::io::Error| BackendError::Read { what: "parameters", reason: e.to_string() };
        let mut r = bytes;
        Ok(match scheme {
            Scheme::Ipa => Params::Ipa(ParamsIPA::read(&mut r).map_err(err)?),
            Scheme::Kzg => Params::Kzg(ParamsKZG::read(&mut r).map_err(err)?),
        })
    }
}

/// Reads a slice verifying key; `params` rebuild its constraint system (they travel beside the key).
pub fn read_vk(bytes: &[u8], params: SliceParams) -> Result<VerifyingKey<G1Affine>, BackendError> {
    // halo2 sizes its selector bitmaps by the key's `k` before reading them: refuse an absurd `k` first.
    let k = bytes.get(1..5).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_le_bytes);
    let reason = match k {
        Some(k) if k <= crate::artifact::MAX_K => None,
        Some(k) => Some(format!("k = {k} exceeds the largest supported, {}", crate::artifact::MAX_K)),
        None => Some("truncated".to_string()),
    };
    if let Some(reason) = reason {
        return Err(BackendError::Read { what: "verifying key", reason });
    }
    let mut r = bytes;
    let read = std::panic::catch_unwind(move || {
        VerifyingKey::<G1Affine>::read::<_, SliceShape>(&mut r, SerdeFormat::RawBytes, params)
    });
    match read {
        Ok(Ok(vk)) => Ok(vk),
        Ok(Err(e)) => Err(BackendError::Read { what: "verifying key", reason: e.to_string() }),
        Err(_) => Err(BackendError::Read { what: "verifying key", reason: "malformed".into() }),
    }
}

/// Serializes a verifying key.
pub fn vk_bytes(vk: &VerifyingKey<G1Affine>) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = vk.write(&mut out, SerdeFormat::RawBytes);
    out
}

/// Checks one slice proof against its key and public inputs. Malformed proof bytes are a rejection, never a
/// panic.
pub fn verify(params: &Params, vk: &VerifyingKey<G1Affine>, instance: &[Fr], proof: &[u8]) -> bool {
    let check = || {
        let inst: &[&[Fr]] = &[instance];
        let mut t = Blake2bRead::<_, G1Affine, Challenge255<_>>::init(proof);
        match params {
            Params::Ipa(p) => verify_proof::<IPACommitmentScheme<G1Affine>, VerifierIPA<_>, _, _, _>(
                p,
                vk,
                IpaSingle::new(p),
                &[inst],
                &mut t,
            )
            .is_ok(),
            Params::Kzg(p) => verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<_>, _, _, _>(
                p.verifier_params(),
                vk,
                KzgSingle::new(p),
                &[inst],
                &mut t,
            )
            .is_ok(),
        }
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).unwrap_or(false)
}

/// One proof to check: its parameters, key, public inputs and bytes.
pub struct ProofCheck<'a> {
    /// Parameters of the proof's size.
    pub params: &'a Params,
    /// The slice's verifying key.
    pub vk: &'a VerifyingKey<G1Affine>,
    /// Its public inputs.
    pub instance: &'a [Fr],
    /// The proof bytes.
    pub proof: &'a [u8],
}

/// Checks many proofs, returning the position of an invalid one. IPA proofs of the same size are verified as
/// a batch: halo2 folds each proof's final multi-scalar multiplication (over the `2^k` parameter points) into
/// one, with random weights, so a bundle costs one large MSM per size instead of one per slice. When a batch
/// fails, its proofs are re-checked one by one to name the culprit. Without the `native` feature (wasm32)
/// every proof is checked on its own. Never panics on malformed bytes.
pub fn verify_all(checks: &[ProofCheck<'_>]) -> Result<(), usize> {
    // Batching draws its random weights from the operating system: native builds only (a wasm32 build has
    // no entropy source unless its embedding supplies one, so it checks proofs one by one).
    let batch = cfg!(feature = "native");
    let mut ipa_groups: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for (i, c) in checks.iter().enumerate() {
        match c.params {
            Params::Ipa(p) if batch => ipa_groups.entry(p.k()).or_default().push(i),
            _ => {
                if !verify(c.params, c.vk, c.instance, c.proof) {
                    return Err(i);
                }
            }
        }
    }
    for group in ipa_groups.values() {
        let batch = || -> Result<bool, usize> {
            let Params::Ipa(p) = checks[group[0]].params else { return Ok(false) };
            let mut strategy = IpaAccumulator::new(p);
            for &i in group {
                let c = &checks[i];
                let inst: &[&[Fr]] = &[c.instance];
                let mut t = Blake2bRead::<_, G1Affine, Challenge255<_>>::init(c.proof);
                strategy = verify_proof::<IPACommitmentScheme<G1Affine>, VerifierIPA<_>, _, _, _>(
                    p,
                    c.vk,
                    strategy,
                    &[inst],
                    &mut t,
                )
                .map_err(|_| i)?;
            }
            Ok(strategy.finalize())
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(batch)) {
            Ok(Ok(true)) => {}
            Ok(Err(i)) => return Err(i),
            _ => {
                let bad = group.iter().copied().find(|&i| {
                    let c = &checks[i];
                    !verify(c.params, c.vk, c.instance, c.proof)
                });
                return Err(bad.unwrap_or(group[0]));
            }
        }
    }
    Ok(())
}

/// Parameters for every circuit size a compiled model uses, all cut from one set (so one ceremony or one
/// hash-to-curve derivation serves every slice). Cutting IPA parameters down recomputes their Lagrange basis
/// (an FFT over curve points: minutes at `k = 18`), so each size is derived once, and [`ParamSet::load_or_create`]
/// keeps them on disk.
#[derive(Clone, Debug)]
pub struct ParamSet {
    by_k: std::collections::BTreeMap<u32, Params>,
}

impl ParamSet {
    /// A set from one parameter value (more sizes are derived on demand by [`ParamSet::ensure`]).
    pub fn new(params: Params) -> Self {
        ParamSet { by_k: [(params.k(), params)].into() }
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.by_k.values().next().map_or(Scheme::Ipa, Params::scheme)
    }

    /// The largest size held.
    pub fn max_k(&self) -> u32 {
        self.by_k.keys().next_back().copied().unwrap_or(0)
    }

    /// Derives the sizes `ks` that are missing, from the largest held.
    pub fn ensure(&mut self, ks: &[u32]) -> Result<(), BackendError> {
        for &k in ks {
            if self.by_k.contains_key(&k) {
                continue;
            }
            let largest = self.by_k.values().next_back().ok_or(BackendError::TooSmall { have: 0, need: k })?;
            let p = largest.downsized(k)?;
            self.by_k.insert(k, p);
        }
        Ok(())
    }

    /// The parameters for `2^k` rows.
    pub fn get(&self, k: u32) -> Result<&Params, BackendError> {
        self.by_k.get(&k).ok_or(BackendError::TooSmall { have: self.max_k(), need: k })
    }

    /// IPA parameters for sizes `ks` from the cache directory `dir` (files `ipa-k{K}.params`), generating and
    /// writing the missing ones. Generation happens once per machine; shipping the files spares devices it.
    pub fn load_or_create(dir: &std::path::Path, ks: &[u32]) -> Result<Self, BackendError> {
        let io = |e: std::io::Error| BackendError::Read { what: "parameter cache", reason: e.to_string() };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = |k: u32| dir.join(format!("ipa-k{k}.params"));
        let mut set: Option<ParamSet> = None;
        let mut wanted: Vec<u32> = ks.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        // Load what is cached, largest first.
        for &k in wanted.iter().rev() {
            if let Ok(bytes) = std::fs::read(path(k)) {
                let p = Params::from_bytes(Scheme::Ipa, &bytes)?;
                match &mut set {
                    Some(s) => {
                        s.by_k.insert(k, p);
                    }
                    None => set = Some(ParamSet::new(p)),
                }
            }
        }
        let top = wanted.last().copied().unwrap_or(1);
        let mut set = match set {
            Some(s) if s.max_k() >= top => s,
            _ => {
                let p = Params::ipa(top);
                write_atomic(&path(top), &p.to_bytes()).map_err(io)?;
                let mut s = set.unwrap_or_else(|| ParamSet::new(p.clone()));
                s.by_k.insert(top, p);
                s
            }
        };
        for &k in &wanted {
            if !set.by_k.contains_key(&k) {
                set.ensure(&[k])?;
                write_atomic(&path(k), &set.get(k)?.to_bytes()).map_err(io)?;
            }
        }
        Ok(set)
    }
}

fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_vk_refuses_truncated_keys_and_oversized_k_before_allocating() {
        let reason = |bytes: &[u8]| match read_vk(bytes, SliceParams::default()) {
            Err(BackendError::Read { what, reason }) => {
                assert_eq!(what, "verifying key");
                reason
            }
            other => panic!("expected a read error, got {:?}", other.map(|_| ())),
        };
        assert_eq!(reason(&[2, 17]), "truncated");
        // Version byte, k = 40 (little endian), compressed selectors: refused by size, not by halo2.
        assert!(reason(&[2, 40, 0, 0, 0, 1]).contains("k = 40"));
        // A plausible k with nothing after it reaches halo2 and fails there, still as a typed error.
        assert!(!reason(&[2, 17, 0, 0, 0, 1]).contains("k = "));
    }
}
