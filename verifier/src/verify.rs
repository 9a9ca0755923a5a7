//! Verifying a proof bundle against a compiled model's verifying artifact.

use crate::artifact::VerifyingArtifact;
use crate::backend::{read_vk, verify_all, ParamSet, ProofCheck};
use crate::bundle::{check_chain, fr_from_bytes, Claim, ProofBundle};
use crate::verdict::{Rejection, Verdict};
use halo2_proofs::halo2curves::bn256::Fr;

/// The claim a verifier asks for (a relying party decides this, not the prover).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Any claim kind the model supports.
    Any,
    /// The revealed output.
    Output,
    /// The argmax.
    Argmax,
    /// The age predicate at this threshold (quarter years).
    AgeAtLeast(u32),
}

/// What the verifier holds: the artifact (and its digest) with parameters for its largest slice.
pub struct Verifier {
    artifact: VerifyingArtifact,
    digest: crate::Digest,
    params: ParamSet,
    vks: Vec<halo2_proofs::plonk::VerifyingKey<halo2_proofs::halo2curves::bn256::G1Affine>>,
}

impl Verifier {
    /// Prepares a verifier: `params` must hold (or be able to derive) the parameters every slice's key was made
    /// with; they are checked against the artifact's digests.
    pub fn new(artifact: VerifyingArtifact, mut params: ParamSet) -> Result<Self, Rejection> {
        let wrong = |slice: u32| Rejection::WrongKey { slice };
        if params.scheme() != artifact.scheme {
            return Err(Rejection::WrongParams);
        }
        let ks: Vec<u32> = artifact.slices.iter().map(|s| s.k).collect();
        params.ensure(&ks).map_err(|_| Rejection::WrongParams)?;
        let mut checked = std::collections::BTreeMap::new();
        for s in &artifact.slices {
            let digest = match checked.get(&s.k) {
                Some(d) => *d,
                None => {
                    let p = params.get(s.k).map_err(|_| Rejection::WrongParams)?;
                    let d = crate::Digest::of(&p.to_bytes());
                    checked.insert(s.k, d);
                    d
                }
            };
            if digest != s.params_digest {
                return Err(Rejection::WrongParams);
            }
        }
        let vks = artifact
            .slices
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let params = artifact.slice_params(i).ok_or(wrong(s.index))?;
                read_vk(&s.vk, params).map_err(|_| wrong(s.index))
            })
            .collect::<Result<_, _>>()?;
        Ok(Verifier { digest: artifact.digest(), artifact, params, vks })
    }

    /// The model digest bundles must name.
    pub fn model(&self) -> crate::Digest {
        self.digest
    }

    /// The artifact.
    pub fn artifact(&self) -> &VerifyingArtifact {
        &self.artifact
    }

    /// Verifies bundle bytes for the nonce and audience this verifier issued. Returns the verdict (which
    /// states coverage) or the first rejection. Never panics on hostile bytes.
    pub fn verify(&self, bytes: &[u8], nonce: &[u8], audience: &str, expected: Expected) -> Result<Verdict, Rejection> {
        let bundle = ProofBundle::from_bytes(bytes)?;
        if bundle.model != self.digest {
            return Err(Rejection::WrongModel { expected: self.digest, found: bundle.model });
        }
        if bundle.nonce != nonce {
            return Err(Rejection::WrongNonce);
        }
        if bundle.audience != audience {
            return Err(Rejection::WrongAudience);
        }
        check_chain(&bundle, &self.artifact.boundaries())?;
        let last = self.artifact.slices.len() - 1;
        // The claim's public inputs live in the last slice: without its proof nothing backs the claim.
        if !bundle.slices.iter().any(|s| s.index as usize == last) {
            return Err(Rejection::UnprovedSlices { missing: vec![last as u32] });
        }
        self.check_claim(&bundle.claim, expected)?;
        let binding = bundle.binding();
        let mut instances = Vec::with_capacity(bundle.slices.len());
        for sp in &bundle.slices {
            let i = sp.index as usize;
            let key = &self.artifact.slices[i];
            if sp.vk_digest != key.vk_digest {
                return Err(Rejection::WrongKey { slice: sp.index });
            }
            let mut instance = vec![binding];
            for c in sp.input_commitments.iter().chain(&sp.output_commitments) {
                instance.push(fr_from_bytes(c)?);
            }
            if i == last {
                instance.extend(claim_instance(&bundle.claim, self.artifact.claim.logits as usize));
            }
            let params = self.params.get(key.k).map_err(|_| Rejection::WrongParams)?;
            instances.push((params, instance));
        }
        let checks: Vec<ProofCheck<'_>> = bundle
            .slices
            .iter()
            .zip(&instances)
            .map(|(sp, (params, instance))| ProofCheck {
                params,
                vk: &self.vks[sp.index as usize],
                instance,
                proof: &sp.proof,
            })
            .collect();
        verify_all(&checks).map_err(|at| Rejection::InvalidProof { slice: bundle.slices[at].index })?;
        Verdict::for_verified(&bundle)
    }

    fn check_claim(&self, claim: &Claim, expected: Expected) -> Result<(), Rejection> {
        let wrong = |reason: &str| Err(Rejection::WrongClaim { reason: reason.into() });
        let info = &self.artifact.claim;
        match (claim, expected) {
            (Claim::Output { values, .. }, Expected::Any | Expected::Output) => {
                if values.len() != info.logits as usize {
                    return wrong("the output has the wrong number of values");
                }
            }
            (Claim::Argmax { index }, Expected::Any | Expected::Argmax) => {
                if *index >= info.logits {
                    return wrong("argmax index out of range");
                }
            }
            (Claim::AgeAtLeast { threshold_quarters, .. }, Expected::Any | Expected::AgeAtLeast(_)) => {
                if !info.age {
                    return wrong("the model does not estimate age");
                }
                if let Expected::AgeAtLeast(t) = expected {
                    if *threshold_quarters != t {
                        return wrong("the age threshold is not the one asked for");
                    }
                }
            }
            _ => return wrong("the claim kind is not the one asked for"),
        }
        Ok(())
    }
}

/// The last slice's claim public inputs `[σ, T, v, o_0, …]` for a claim.
pub fn claim_instance(claim: &Claim, logits: usize) -> Vec<Fr> {
    let signed = |v: i64| if v >= 0 { Fr::from(v as u64) } else { -Fr::from(v.unsigned_abs()) };
    let mut out = vec![Fr::zero(); 3 + logits];
    match claim {
        Claim::Output { values, .. } => {
            for (o, &v) in out[3..].iter_mut().zip(values) {
                *o = signed(v);
            }
        }
        Claim::Argmax { index } => {
            out[0] = Fr::from(1);
            out[2] = Fr::from(*index as u64);
        }
        Claim::AgeAtLeast { threshold_quarters, holds } => {
            out[0] = Fr::from(2);
            out[1] = Fr::from(*threshold_quarters as u64);
            out[2] = Fr::from(*holds as u64);
        }
    }
    out
}
