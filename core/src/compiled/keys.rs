//! Proving keys of a compiled model's slices: derived from a slice's layout and verifying key, or read back
//! from a [`KeyCache`].

use super::Compiled;
use crate::prove::{proving_key, slice_circuit, ClaimModel, KeyCache, ProveError};
use halo2_proofs::halo2curves::bn256::G1Affine;
use halo2_proofs::plonk::ProvingKey;
use veil_verifier::backend::{read_vk, Params};

/// Where a slice's proving key came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// Read back from the key cache.
    Cached,
    /// Derived from the slice (and stored in the key cache when there is one).
    Derived,
}

impl Compiled {
    /// The proving key of slice `i` under `params` (sized to its `k`): from `cache` when it holds an intact
    /// key for this slice's verifying key, else derived and, with a cache, stored there.
    pub(super) fn slice_proving_key(
        &self,
        params: &Params,
        i: usize,
        claims: &ClaimModel,
        cache: Option<&KeyCache>,
    ) -> Result<(ProvingKey<G1Affine>, KeySource), ProveError> {
        let key = self.verifier.slices.get(i).ok_or_else(|| ProveError::Unsupported(format!("no slice {i}")))?;
        let shape_params = self
            .verifier
            .slice_params(i)
            .ok_or_else(|| ProveError::Unsupported(format!("slice {i}: {} weight columns", key.weights)))?;
        if let Some(pk) = cache.and_then(|c| c.load(&key.vk_digest, shape_params)) {
            return Ok((pk, KeySource::Cached));
        }
        let vk = read_vk(&key.vk, shape_params).map_err(|e| ProveError::Unsupported(e.to_string()))?;
        // The key comes from the slice's shape alone (the layout never depends on the witness), and that shape
        // is dropped before the witness is laid out: key generation's peak then holds no trace.
        let last = i + 1 == self.slices.len();
        let shape = slice_circuit(&self.graph, &self.slices[i], last.then_some(claims), None)?;
        let pk = proving_key(params, vk, shape)?;
        if let Some(cache) = cache {
            cache.store(&key.vk_digest, &pk).map_err(|e| ProveError::KeyCache {
                path: cache.path(&key.vk_digest).display().to_string(),
                reason: e.to_string(),
            })?;
        }
        Ok((pk, KeySource::Derived))
    }

    /// Makes sure `cache` holds the proving key of every slice in `only` (every slice when `None`), deriving
    /// the missing ones one at a time; returns where each came from. A device does this once per model, so
    /// its proofs skip key derivation.
    pub fn prepare_keys(
        &self,
        params: &veil_verifier::backend::ParamSet,
        cache: &KeyCache,
        only: Option<&[usize]>,
    ) -> Result<Vec<KeySource>, ProveError> {
        let claims = ClaimModel::new(&self.graph, self.ages.as_deref())?;
        let all: Vec<usize> = (0..self.slices.len()).collect();
        only.unwrap_or(&all)
            .iter()
            .map(|&i| {
                let k = self.verifier.slices.get(i).map(|s| s.k).ok_or_else(|| {
                    ProveError::Unsupported(format!("slice {i}: the model has {}", self.slices.len()))
                })?;
                let p = params.get(k).map_err(|_| ProveError::TooLarge { k })?;
                self.slice_proving_key(p, i, &claims, Some(cache)).map(|(_, source)| source)
            })
            .collect()
    }
}
