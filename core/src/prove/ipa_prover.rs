//! The IPA scheme as the prover runs it: halo2's `IPACommitmentScheme`, except that columns given in
//! evaluation form are committed with [`small_msm`](super::small_msm).
//!
//! halo2's `create_proof` commits to every advice column, permutation product and instance column through
//! `Params::commit_lagrange`. [`IpaProverParams`] answers that with the small-integer multiplication over the
//! same Lagrange-basis generators and the same blinding generator, so each commitment is the same point as
//! `ParamsIPA` would give. Everything else (the quotient's pieces, the multi-opening argument) is
//! halo2's own: [`IpaProver`] hands the openings to `ProverIPA` over the wrapped parameters. Proofs are
//! the proofs halo2's prover would write, and verify with `IPACommitmentScheme`
//! (`same_commitments_as_halo2s` checks both).

use super::small_msm;
use halo2_proofs::arithmetic::parallelize;
use halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G1};
use halo2_proofs::halo2curves::group::GroupEncoding;
use halo2_proofs::poly::commitment::{Blind, CommitmentScheme, Params, ParamsProver, Prover};
use halo2_proofs::poly::ipa::commitment::{IPACommitmentScheme, ParamsIPA};
use halo2_proofs::poly::ipa::msm::MSMIPA;
use halo2_proofs::poly::ipa::multiopen::ProverIPA;
use halo2_proofs::poly::{Coeff, LagrangeCoeff, Polynomial, ProverQuery};
use halo2_proofs::transcript::{EncodedChallenge, TranscriptWrite};
use rand_core::RngCore;
use std::io;
use std::sync::{Arc, Mutex};

/// IPA parameters with their Lagrange-basis generators and blinding generator at hand.
#[derive(Clone, Debug)]
pub struct IpaProverParams {
    inner: ParamsIPA<G1Affine>,
    lagrange: Arc<Vec<G1Affine>>,
    w: G1Affine,
}

/// Bytes of a compressed point in `ParamsIPA`'s serialization.
const POINT: usize = 32;

impl IpaProverParams {
    /// Wraps `inner`, reading its Lagrange-basis and blinding generators back from its serialization
    /// (`k`, the `2^k` generators, the `2^k` Lagrange-basis generators, `w`, `u`, compressed).
    pub fn new(inner: ParamsIPA<G1Affine>) -> io::Result<Self> {
        let mut bytes = Vec::new();
        inner.write(&mut bytes)?;
        let n = inner.n() as usize;
        let start = 4 + n * POINT;
        let point = |b: &[u8]| -> Option<G1Affine> {
            let mut repr = <G1Affine as GroupEncoding>::Repr::default();
            repr.as_mut().copy_from_slice(b.get(..POINT)?);
            Option::from(G1Affine::from_bytes(&repr))
        };
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "IPA parameters: a generator does not decode");
        let lagrange_bytes = bytes.get(start..start + n * POINT).ok_or_else(bad)?;
        let mut lagrange = vec![None; n];
        parallelize(&mut lagrange, |chunk, first| {
            for (i, out) in chunk.iter_mut().enumerate() {
                let at = (first + i) * POINT;
                *out = point(&lagrange_bytes[at..at + POINT]);
            }
        });
        let lagrange: Vec<G1Affine> = lagrange.into_iter().collect::<Option<_>>().ok_or_else(bad)?;
        let w = bytes.get(start + n * POINT..).and_then(point).ok_or_else(bad)?;
        Ok(IpaProverParams { inner, lagrange: Arc::new(lagrange), w })
    }

    /// The prover's parameters for `params`, decoded on the first call for their size and kept for the process
    /// (their Lagrange-basis generators take about 0.4 s to decode at `k = 16` on two cores, and 4 MiB).
    /// Entries are told apart by `k` and three of the generators, which Veil's parameters (hashed to the curve)
    /// never share across files; were they ever confused, proofs would fail to verify, not pass wrongly.
    pub fn cached(params: &ParamsIPA<G1Affine>) -> io::Result<Arc<IpaProverParams>> {
        type Entry = (u32, [G1Affine; 3], Arc<IpaProverParams>);
        static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
        let g = params.get_g();
        let probe = [g[0], g[g.len() / 2], g[g.len() - 1]];
        let find =
            |cache: &[Entry]| cache.iter().find(|(k, p, _)| *k == params.k() && *p == probe).map(|e| e.2.clone());
        if let Some(p) = find(&CACHE.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(p);
        }
        let p = Arc::new(IpaProverParams::new(params.clone())?);
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = find(&cache) {
            return Ok(p);
        }
        cache.push((params.k(), probe, p.clone()));
        Ok(p)
    }
}

impl<'params> Params<'params, G1Affine> for IpaProverParams {
    type MSM = MSMIPA<'params, G1Affine>;

    fn k(&self) -> u32 {
        self.inner.k()
    }

    fn n(&self) -> u64 {
        self.inner.n()
    }

    fn downsize(&mut self, k: u32) {
        let mut inner = self.inner.clone();
        inner.downsize(k);
        // The serialization of parameters halo2 just downsized always decodes.
        if let Ok(p) = IpaProverParams::new(inner) {
            *self = p;
        }
    }

    fn empty_msm(&'params self) -> MSMIPA<'params, G1Affine> {
        self.inner.empty_msm()
    }

    fn commit_lagrange(&self, poly: &Polynomial<Fr, LagrangeCoeff>, r: Blind<Fr>) -> G1 {
        small_msm::msm(poly, &self.lagrange) + self.w * r.0
    }

    fn write<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        self.inner.write(writer)
    }

    fn read<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        IpaProverParams::new(ParamsIPA::read(reader)?)
    }
}

impl<'params> ParamsProver<'params, G1Affine> for IpaProverParams {
    type ParamsVerifier = ParamsIPA<G1Affine>;

    fn new(k: u32) -> Self {
        let inner = ParamsIPA::new(k);
        // Fresh parameters always decode; keep them even if that ever failed, with the slow path.
        IpaProverParams::new(inner.clone()).unwrap_or_else(|_| IpaProverParams {
            lagrange: Arc::new(Vec::new()),
            w: G1Affine::default(),
            inner,
        })
    }

    fn commit(&self, poly: &Polynomial<Fr, Coeff>, r: Blind<Fr>) -> G1 {
        self.inner.commit(poly, r)
    }

    fn get_g(&self) -> &[G1Affine] {
        self.inner.get_g()
    }

    fn verifier_params(&'params self) -> &'params ParamsIPA<G1Affine> {
        &self.inner
    }
}

/// The commitment scheme of [`IpaProverParams`]: `IPACommitmentScheme` for everything but the prover's
/// parameters.
#[derive(Debug)]
pub struct IpaProverScheme;

impl CommitmentScheme for IpaProverScheme {
    type Scalar = Fr;
    type Curve = G1Affine;
    type ParamsProver = IpaProverParams;
    type ParamsVerifier = ParamsIPA<G1Affine>;

    fn new_params(k: u32) -> IpaProverParams {
        <IpaProverParams as ParamsProver<'_, G1Affine>>::new(k)
    }

    fn read_params<R: io::Read>(reader: &mut R) -> io::Result<IpaProverParams> {
        IpaProverParams::read(reader)
    }
}

/// halo2's IPA multi-opening prover over the wrapped parameters.
#[derive(Debug)]
pub struct IpaProver<'params>(ProverIPA<'params, G1Affine>);

impl<'params> Prover<'params, IpaProverScheme> for IpaProver<'params> {
    const QUERY_INSTANCE: bool =
        <ProverIPA<'params, G1Affine> as Prover<'params, IPACommitmentScheme<G1Affine>>>::QUERY_INSTANCE;

    fn new(params: &'params IpaProverParams) -> Self {
        IpaProver(<ProverIPA<'params, G1Affine> as Prover<'params, IPACommitmentScheme<G1Affine>>>::new(&params.inner))
    }

    fn create_proof<'com, E: EncodedChallenge<G1Affine>, T: TranscriptWrite<G1Affine, E>, R, I>(
        &self,
        rng: R,
        transcript: &mut T,
        queries: I,
    ) -> io::Result<()>
    where
        I: IntoIterator<Item = ProverQuery<'com, G1Affine>> + Clone,
        R: RngCore,
    {
        self.0.create_proof(rng, transcript, queries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prove::backend::{prove, proving_key, verifying_key};
    use crate::prove::forgery::op_case_with;
    use crate::prove::{slice_circuit, ClaimModel, ClaimRequest, SliceCircuit, SliceInputs};
    use crate::quant::QuantConfig;
    use crate::slice::{slice, CostModel, SlicePolicy};
    use halo2_proofs::plonk::create_proof;
    use halo2_proofs::transcript::{Blake2bWrite, Challenge255, TranscriptWriterBuffer};
    use rand_core::SeedableRng;
    use std::collections::HashMap;
    use veil_verifier::backend::Params as Backend;

    /// The `softmax` test model's only slice with its witness, quantized to 8 bits so that it fits `2^13` rows.
    fn circuit() -> SliceCircuit {
        let config = QuantConfig { input_bits: 8, activation_bits: 8, weight_bits: 8, ..QuantConfig::default() };
        let (q, values) = op_case_with("softmax", &config);
        let plan = slice(&q, &SlicePolicy::Balanced { max_k: 18 }, &CostModel::default()).expect("plan");
        let claims = ClaimModel::new(&q, None).expect("claim model");
        let spec = claims.slice_specs(&plan).remove(0);
        let blinds: HashMap<_, _> =
            spec.inputs.iter().chain(&spec.outputs).enumerate().map(|(i, &id)| (id, Fr::from(7 + i as u64))).collect();
        let inputs =
            SliceInputs { values: &values, blinds: &blinds, binding: Fr::from(3), claim: ClaimRequest::Argmax };
        slice_circuit(&q, &spec, Some(&claims), Some(&inputs)).expect("circuit")
    }

    /// With the same randomness, the prover over [`IpaProverParams`] commits to every column exactly as halo2's
    /// own IPA prover does, and its proof verifies. (halo2 draws the vanishing argument's random polynomial from
    /// the thread's generator, not the one it is given, so proofs agree only up to that commitment: on the
    /// advice columns' and the permutation products' commitments, the ones `commit_lagrange` makes.)
    #[test]
    fn same_commitments_as_halo2s() {
        let c = circuit();
        assert!(c.k() <= 14, "a small circuit: k = {}", c.k());
        let params = ParamsIPA::<G1Affine>::new(c.k());
        let backend = Backend::Ipa(params.clone());
        let vk = verifying_key(&backend, &c).expect("vk");
        let pk = proving_key(&backend, vk.clone(), c.clone()).expect("pk");
        let instance = c.instance();
        let seed = 11;
        let ours = prove(&backend, &pk, c.clone(), rand_chacha::ChaCha20Rng::seed_from_u64(seed)).expect("our proof");
        let mut t = Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]);
        create_proof::<IPACommitmentScheme<G1Affine>, ProverIPA<_>, _, _, _, _>(
            &params,
            &pk,
            &[c],
            &[&[&instance]],
            rand_chacha::ChaCha20Rng::seed_from_u64(seed),
            &mut t,
        )
        .expect("halo2's proof");
        let theirs = t.finalize();
        let cs = vk.cs();
        let products = cs.permutation().get_columns().len().div_ceil(cs.degree() - 2);
        let committed = (cs.num_advice_columns() + products) * POINT;
        assert_eq!(ours.len(), theirs.len());
        assert_eq!(ours[..committed], theirs[..committed], "the first {committed} bytes: the column commitments");
        assert!(veil_verifier::backend::verify(&backend, &vk, &instance, &ours), "our proof verifies");
        let mut flipped = ours.clone();
        flipped[committed / 2] ^= 1;
        assert!(!veil_verifier::backend::verify(&backend, &vk, &instance, &flipped), "a flipped commitment byte");
    }

    /// Parameters are decoded once per size: a second request gets the same prover parameters, and parameters of
    /// another size get their own.
    #[test]
    fn prover_parameters_are_decoded_once_per_size() {
        let (a, b) = (ParamsIPA::<G1Affine>::new(5), ParamsIPA::<G1Affine>::new(6));
        let first = IpaProverParams::cached(&a).expect("k = 5");
        assert!(Arc::ptr_eq(&first, &IpaProverParams::cached(&a).expect("again")));
        let other = IpaProverParams::cached(&b).expect("k = 6");
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!((first.k(), other.k()), (5, 6));
        assert_eq!(first.lagrange.len(), 32);
    }
}
