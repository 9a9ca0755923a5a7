//! The commitment-scheme backend: IPA (transparent, the default) or KZG with SHPLONK (a ceremony SRS; cheap
//! verification), both over BN254. Everything above this module is scheme-agnostic: circuits only see the
//! field, bundles only see bytes.

use crate::circuit::SliceShape;
use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::plonk::{verify_proof, VerifyingKey};
use halo2_proofs::poly::commitment::{Params as _, ParamsProver};
use halo2_proofs::poly::ipa::commitment::{IPACommitmentScheme, ParamsIPA};
use halo2_proofs::poly::ipa::multiopen::VerifierIPA;
use halo2_proofs::poly::ipa::strategy::SingleStrategy as IpaSingle;
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

/// Reads a slice verifying key.
pub fn read_vk(bytes: &[u8]) -> Result<VerifyingKey<G1Affine>, BackendError> {
    let mut r = bytes;
    let read = std::panic::catch_unwind(move || {
        VerifyingKey::<G1Affine>::read::<_, SliceShape>(&mut r, SerdeFormat::RawBytes, ())
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
