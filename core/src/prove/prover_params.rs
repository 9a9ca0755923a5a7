//! The commitment schemes as the prover runs them: halo2's IPA and KZG schemes, except that columns given in
//! evaluation form are committed with [`small_msm`](super::small_msm).
//!
//! halo2's `create_proof` commits to every advice column, permutation product and instance column through
//! `Params::commit_lagrange`. [`ProverParams`] answers that with the small-integer multiplication over the
//! same Lagrange-basis generators (plus the blinding term IPA adds), so each commitment is the same point the
//! wrapped parameters would give. Everything else (the quotient's pieces, the multi-opening argument) is
//! halo2's own: [`WrappedProver`] hands the openings to the scheme's prover over the wrapped parameters. The
//! proofs are those halo2's prover writes, and verify with the unwrapped scheme (`same_commitments_as_halo2s`
//! checks both).

use super::small_msm;
use halo2_proofs::arithmetic::parallelize;
use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine, G1};
use halo2_proofs::halo2curves::group::GroupEncoding;
use halo2_proofs::poly::commitment::{Blind, CommitmentScheme, Params, ParamsProver, Prover};
use halo2_proofs::poly::ipa::commitment::ParamsIPA;
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_proofs::poly::{Coeff, LagrangeCoeff, Polynomial, ProverQuery};
use halo2_proofs::transcript::{EncodedChallenge, TranscriptWrite};
use halo2_proofs::{SerdeCurveAffine, SerdeFormat};
use rand_core::RngCore;
use std::any::{Any, TypeId};
use std::io;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

/// Parameters whose Lagrange-basis generators can be read back.
pub trait LagrangeBasis: Clone + Send + Sync + 'static {
    /// The `2^k` Lagrange-basis generators and the generator a commitment's blind multiplies (IPA's `w`; KZG
    /// commitments carry no blind).
    fn lagrange_basis(&self) -> io::Result<(Vec<G1Affine>, Option<G1Affine>)>;

    /// The generators in coefficient form, which tell parameters apart ([`ProverParams::cached`]).
    fn generators(&self) -> &[G1Affine];
}

fn undecodable() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "parameters: a generator does not decode")
}

/// Serialized as `k`, the `2^k` generators, the `2^k` Lagrange-basis generators, `w` and `u`, compressed.
impl LagrangeBasis for ParamsIPA<G1Affine> {
    fn lagrange_basis(&self) -> io::Result<(Vec<G1Affine>, Option<G1Affine>)> {
        const POINT: usize = 32;
        let mut bytes = Vec::new();
        self.write(&mut bytes)?;
        let n = self.n() as usize;
        let start = 4 + n * POINT;
        let point = |b: &[u8]| -> Option<G1Affine> {
            let mut repr = <G1Affine as GroupEncoding>::Repr::default();
            repr.as_mut().copy_from_slice(b.get(..POINT)?);
            Option::from(G1Affine::from_bytes(&repr))
        };
        let encoded = bytes.get(start..start + n * POINT).ok_or_else(undecodable)?;
        // Decompressing a point takes a square root: spread them over the threads.
        let mut lagrange = vec![None; n];
        parallelize(&mut lagrange, |chunk, first| {
            for (i, out) in chunk.iter_mut().enumerate() {
                *out = point(&encoded[(first + i) * POINT..]);
            }
        });
        let lagrange = lagrange.into_iter().collect::<Option<Vec<_>>>().ok_or_else(undecodable)?;
        let w = bytes.get(start + n * POINT..).and_then(point).ok_or_else(undecodable)?;
        Ok((lagrange, Some(w)))
    }

    fn generators(&self) -> &[G1Affine] {
        self.get_g()
    }
}

/// Serialized as `k`, the `2^k` powers, the `2^k` Lagrange-basis points, then the G2 points, uncompressed.
impl LagrangeBasis for ParamsKZG<Bn256> {
    fn lagrange_basis(&self) -> io::Result<(Vec<G1Affine>, Option<G1Affine>)> {
        let mut bytes = Vec::new();
        self.write_custom(&mut bytes, SerdeFormat::RawBytes)?;
        let n = self.n() as usize;
        let mut r = bytes.get(4..).ok_or_else(undecodable)?;
        for _ in 0..n {
            G1Affine::read(&mut r, SerdeFormat::RawBytesUnchecked)?;
        }
        let lagrange = (0..n).map(|_| G1Affine::read(&mut r, SerdeFormat::RawBytes)).collect::<io::Result<_>>()?;
        Ok((lagrange, None))
    }

    fn generators(&self) -> &[G1Affine] {
        self.get_g()
    }
}

/// Parameters `P` with their Lagrange-basis generators at hand.
#[derive(Clone, Debug)]
pub struct ProverParams<P> {
    inner: P,
    lagrange: Vec<G1Affine>,
    blind: Option<G1Affine>,
}

impl<P: LagrangeBasis> ProverParams<P> {
    /// Wraps `inner`, reading its Lagrange-basis generators back from its serialization.
    pub fn new(inner: P) -> io::Result<Self> {
        let (lagrange, blind) = inner.lagrange_basis()?;
        Ok(ProverParams { inner, lagrange, blind })
    }

    /// The prover's parameters for `params`, decoded on the first call for their type and size and kept for the
    /// process (IPA's Lagrange-basis generators take about 0.4 s to decompress at `k = 16` on two cores; they
    /// take 4 MiB). Entries are told apart by type, `k` and three of the generators, which differ between any
    /// two parameter files Veil uses; were two ever confused, proofs would fail to verify, not pass wrongly.
    pub fn cached(params: &P) -> io::Result<Arc<Self>> {
        type Entry = (TypeId, usize, [G1Affine; 3], Arc<dyn Any + Send + Sync>);
        static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
        let g = params.generators();
        let key = (TypeId::of::<P>(), g.len(), [g[0], g[g.len() / 2], g[g.len() - 1]]);
        let find = |cache: &[Entry]| {
            cache.iter().filter(|e| (e.0, e.1, e.2) == key).find_map(|e| e.3.clone().downcast::<Self>().ok())
        };
        if let Some(p) = find(&CACHE.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(p);
        }
        let p = Arc::new(ProverParams::new(params.clone())?);
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = find(&cache) {
            return Ok(p);
        }
        cache.push((key.0, key.1, key.2, p.clone()));
        Ok(p)
    }
}

impl<'params, P: Params<'params, G1Affine> + LagrangeBasis> Params<'params, G1Affine> for ProverParams<P> {
    type MSM = P::MSM;

    fn k(&self) -> u32 {
        self.inner.k()
    }

    fn n(&self) -> u64 {
        self.inner.n()
    }

    fn downsize(&mut self, k: u32) {
        let mut inner = self.inner.clone();
        inner.downsize(k);
        // Parameters halo2 has just downsized always decode; were they not, these stay as they were.
        if let Ok(p) = ProverParams::new(inner) {
            *self = p;
        }
    }

    fn empty_msm(&'params self) -> P::MSM {
        self.inner.empty_msm()
    }

    fn commit_lagrange(&self, poly: &Polynomial<Fr, LagrangeCoeff>, r: Blind<Fr>) -> G1 {
        // Without the generators at hand (never, for parameters that decode), halo2's own commitment.
        let Some(bases) = self.lagrange.get(..poly.len()) else { return self.inner.commit_lagrange(poly, r) };
        let sum = small_msm::msm(poly, bases);
        match self.blind {
            Some(w) => sum + w * r.0,
            None => sum,
        }
    }

    fn write<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        self.inner.write(writer)
    }

    fn read<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        ProverParams::new(P::read(reader)?)
    }
}

impl<'params, P: ParamsProver<'params, G1Affine> + LagrangeBasis> ParamsProver<'params, G1Affine> for ProverParams<P> {
    type ParamsVerifier = P::ParamsVerifier;

    fn new(k: u32) -> Self {
        let inner = P::new(k);
        // Fresh parameters always decode; were they not, commitments fall back to halo2's (`commit_lagrange`).
        ProverParams::new(inner.clone()).unwrap_or(ProverParams { inner, lagrange: Vec::new(), blind: None })
    }

    fn commit(&self, poly: &Polynomial<Fr, Coeff>, r: Blind<Fr>) -> G1 {
        self.inner.commit(poly, r)
    }

    fn get_g(&self) -> &[G1Affine] {
        self.inner.get_g()
    }

    fn verifier_params(&'params self) -> &'params P::ParamsVerifier {
        self.inner.verifier_params()
    }
}

/// The commitment scheme of [`ProverParams`] over scheme `S`: `S` for everything but the prover's parameters.
#[derive(Debug)]
pub struct ProverScheme<S>(PhantomData<S>);

impl<S> CommitmentScheme for ProverScheme<S>
where
    S: CommitmentScheme<Scalar = Fr, Curve = G1Affine>,
    S::ParamsProver: LagrangeBasis,
{
    type Scalar = Fr;
    type Curve = G1Affine;
    type ParamsProver = ProverParams<S::ParamsProver>;
    type ParamsVerifier = S::ParamsVerifier;

    fn new_params(k: u32) -> ProverParams<S::ParamsProver> {
        <ProverParams<S::ParamsProver> as ParamsProver<'_, G1Affine>>::new(k)
    }

    fn read_params<R: io::Read>(reader: &mut R) -> io::Result<ProverParams<S::ParamsProver>> {
        ProverParams::new(S::read_params(reader)?)
    }
}

/// Scheme `S`'s multi-opening prover `P`, over the wrapped parameters.
#[derive(Debug)]
pub struct WrappedProver<P>(P);

impl<'params, S, P> Prover<'params, ProverScheme<S>> for WrappedProver<P>
where
    S: CommitmentScheme<Scalar = Fr, Curve = G1Affine>,
    S::ParamsProver: LagrangeBasis,
    P: Prover<'params, S>,
{
    const QUERY_INSTANCE: bool = P::QUERY_INSTANCE;

    fn new(params: &'params ProverParams<S::ParamsProver>) -> Self {
        WrappedProver(P::new(&params.inner))
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
    use halo2_proofs::poly::ipa::commitment::IPACommitmentScheme;
    use halo2_proofs::poly::ipa::multiopen::ProverIPA;
    use halo2_proofs::poly::kzg::commitment::KZGCommitmentScheme;
    use halo2_proofs::poly::kzg::multiopen::ProverSHPLONK;
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

    /// Proves `c` with the wrapped scheme (`prove`) and with halo2's own prover `S`/`P` under the same
    /// randomness, and checks that every commitment `commit_lagrange` makes is the same and that the proof verifies.
    /// (halo2 draws the vanishing argument's random polynomial from the thread's generator, not the one it is given,
    /// so the proofs agree only up to that commitment: on the advice columns' and permutation products'.)
    fn same_commitments<'p, S, P>(backend: &'p Backend, params: &'p S::ParamsProver, c: SliceCircuit)
    where
        S: CommitmentScheme<Scalar = Fr, Curve = G1Affine>,
        S::ParamsProver: Sync,
        P: Prover<'p, S>,
    {
        let vk = verifying_key(backend, &c).expect("vk");
        let pk = proving_key(backend, vk.clone(), c.clone()).expect("pk");
        let instance = c.instance();
        let seed = 11;
        let ours = prove(backend, &pk, c.clone(), rand_chacha::ChaCha20Rng::seed_from_u64(seed)).expect("our proof");
        let mut t = Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]);
        let rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        create_proof::<S, P, _, _, _, _>(params, &pk, &[c], &[&[&instance]], rng, &mut t).expect("halo2's proof");
        let theirs = t.finalize();
        let cs = vk.cs();
        let products = cs.permutation().get_columns().len().div_ceil(cs.degree() - 2);
        let committed = (cs.num_advice_columns() + products) * 32;
        assert_eq!(ours.len(), theirs.len());
        assert_eq!(ours[..committed], theirs[..committed], "the first {committed} bytes: the column commitments");
        assert!(veil_verifier::backend::verify(backend, &vk, &instance, &ours), "our proof verifies");
        let mut flipped = ours.clone();
        flipped[committed / 2] ^= 1;
        assert!(!veil_verifier::backend::verify(backend, &vk, &instance, &flipped), "a flipped commitment byte");
    }

    #[test]
    fn same_commitments_as_halo2s_ipa() {
        let c = circuit();
        assert!(c.k() <= 14, "a small circuit: k = {}", c.k());
        let params = ParamsIPA::<G1Affine>::new(c.k());
        let backend = Backend::Ipa(params.clone());
        same_commitments::<IPACommitmentScheme<G1Affine>, ProverIPA<'_, G1Affine>>(&backend, &params, c);
    }

    #[test]
    fn same_commitments_as_halo2s_kzg() {
        let c = circuit();
        let backend = Backend::insecure_kzg_for_tests(c.k(), 3);
        let Backend::Kzg(params) = &backend else { panic!("KZG parameters") };
        same_commitments::<KZGCommitmentScheme<Bn256>, ProverSHPLONK<'_, Bn256>>(&backend, params, c);
    }

    /// Parameters are decoded once per type and size: a second request gets the same prover parameters, and
    /// parameters of another size or scheme get their own.
    #[test]
    fn prover_parameters_are_decoded_once_per_type_and_size() {
        let (a, b) = (ParamsIPA::<G1Affine>::new(5), ParamsIPA::<G1Affine>::new(6));
        let first = ProverParams::cached(&a).expect("k = 5");
        assert!(Arc::ptr_eq(&first, &ProverParams::cached(&a).expect("again")));
        let other = ProverParams::cached(&b).expect("k = 6");
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!((first.k(), other.k()), (5, 6));
        assert_eq!((first.lagrange.len(), first.blind.is_some()), (32, true));
        let Backend::Kzg(kzg) = Backend::insecure_kzg_for_tests(5, 1) else { panic!("KZG parameters") };
        let kzg = ProverParams::cached(&kzg).expect("KZG, k = 5");
        assert_eq!((kzg.k(), kzg.lagrange.len(), kzg.blind.is_some()), (5, 32, false));
    }
}
