//! Key generation and proof creation for slice circuits, under either commitment scheme.

use super::circuit::ReleasingCircuit;
use super::prover_params::{LagrangeBasis, ProverParams, ProverScheme, WrappedProver};
use super::{ProveError, SliceCircuit};
use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
use halo2_proofs::plonk::{create_proof, keygen_pk, keygen_vk_custom, Any, ProvingKey, VerifyingKey};
use halo2_proofs::poly::commitment::{CommitmentScheme, Prover};
use halo2_proofs::poly::ipa::commitment::IPACommitmentScheme;
use halo2_proofs::poly::ipa::multiopen::ProverIPA;
use halo2_proofs::poly::kzg::commitment::KZGCommitmentScheme;
use halo2_proofs::poly::kzg::multiopen::ProverSHPLONK;
use halo2_proofs::poly::Polynomial;
use halo2_proofs::transcript::{Blake2bWrite, Challenge255, TranscriptWriterBuffer};
use rand_core::{CryptoRng, RngCore};
use std::collections::HashSet;
use veil_verifier::backend::Params;

fn halo2(stage: &'static str) -> impl Fn(halo2_proofs::plonk::Error) -> ProveError {
    move |e| ProveError::Backend { stage, reason: e.to_string() }
}

/// Whether keys combine simple selectors that are never on in the same row into shared fixed columns
/// (halo2's selector compression, within the circuit's degree). It cuts the fixed columns the prover extends
/// and commits to; the verifying key then carries each selector's bitmap so a verifier can redo the packing.
const COMPRESS_SELECTORS: bool = true;

/// The verifying key of a slice circuit (`params` already sized to the circuit's `k`).
pub fn verifying_key(params: &Params, circuit: &SliceCircuit) -> Result<VerifyingKey<G1Affine>, ProveError> {
    let shape = circuit.without_witness();
    match params {
        Params::Ipa(p) => keygen_vk_custom(p, &shape, COMPRESS_SELECTORS),
        Params::Kzg(p) => keygen_vk_custom(p, &shape, COMPRESS_SELECTORS),
    }
    .map_err(halo2("verifying key"))
}

/// The proving key of a slice circuit, without the fixed columns' evaluation form the prover never reads.
/// The circuit is consumed: when nothing else holds its trace, the trace is freed before the key is
/// trimmed, the step where key generation's memory peaks (the full and the trimmed key are both live).
pub fn proving_key(
    params: &Params,
    vk: VerifyingKey<G1Affine>,
    circuit: SliceCircuit,
) -> Result<ProvingKey<G1Affine>, ProveError> {
    let shape = circuit.without_witness();
    drop(circuit);
    let pk = match params {
        Params::Ipa(p) => keygen_pk(p, vk, &shape),
        Params::Kzg(p) => keygen_pk(p, vk, &shape),
    }
    .map_err(halo2("proving key"))?;
    drop(shape);
    Ok(without_unread_fixed_values(pk))
}

/// Rebuilds `pk` keeping a fixed column's values (Lagrange form) only where the prover reads them: in the
/// permutation argument (a fixed column with equality; the slice circuit has none since its constants became
/// a gate). The constraint system has no halo2 lookups or shuffles, the other readers; gates read the
/// coefficient form. At `k = 18` this frees about 8 MiB per fixed column.
fn without_unread_fixed_values(pk: ProvingKey<G1Affine>) -> ProvingKey<G1Affine> {
    let cs = pk.get_vk().cs();
    debug_assert!(cs.lookups().is_empty());
    let permuted: HashSet<usize> =
        cs.permutation().get_columns().iter().filter(|c| *c.column_type() == Any::Fixed).map(|c| c.index()).collect();
    let values = pk
        .fixed_values()
        .iter()
        .enumerate()
        .map(|(i, v)| if permuted.contains(&i) { v.clone() } else { Polynomial::new(Vec::new()) })
        .collect();
    ProvingKey::from_parts(
        pk.get_vk().clone(),
        pk.l0().clone(),
        pk.l_last().clone(),
        pk.l_active_row().clone(),
        values,
        pk.fixed_polys().to_vec(),
        pk.permutation().clone(),
    )
}

/// Readies `params` for proving ahead of the first proof: their Lagrange-basis generators are decoded for the
/// prover's commitments ([`ProverParams::cached`]), about 0.4 s for IPA parameters at `k = 16`, which the first
/// proof would otherwise pay.
pub fn prepare(params: &Params) -> Result<(), ProveError> {
    match params {
        Params::Ipa(p) => ProverParams::cached(p).map(drop),
        Params::Kzg(p) => ProverParams::cached(p).map(drop),
    }
    .map_err(unreadable)
}

fn unreadable(e: std::io::Error) -> ProveError {
    ProveError::Backend { stage: "parameters", reason: e.to_string() }
}

type Ipa = IPACommitmentScheme<G1Affine>;
type IpaOpening<'p> = WrappedProver<ProverIPA<'p, G1Affine>>;
type Kzg = KZGCommitmentScheme<Bn256>;
type KzgOpening<'p> = WrappedProver<ProverSHPLONK<'p, Bn256>>;

/// halo2's `create_proof` over the prover's parameters for scheme `S`, with `S`'s multi-opening prover `P`.
fn halo2_proof<'p, S, P>(
    params: &'p ProverParams<S::ParamsProver>,
    pk: &ProvingKey<G1Affine>,
    circuits: &[ReleasingCircuit],
    instance: &[&[Fr]],
    rng: impl RngCore,
    transcript: &mut Blake2bWrite<Vec<u8>, G1Affine, Challenge255<G1Affine>>,
) -> Result<(), halo2_proofs::plonk::Error>
where
    S: CommitmentScheme<Scalar = Fr, Curve = G1Affine>,
    S::ParamsProver: LagrangeBasis,
    P: Prover<'p, ProverScheme<S>>,
{
    create_proof::<ProverScheme<S>, P, _, _, _, _>(params, pk, circuits, &[instance], rng, transcript)
}

/// Proves one slice; `circuit` must carry its witness. The circuit is consumed: its trace is released as
/// soon as halo2 has read the witness, before the quotient evaluation where the prover's memory peaks.
pub fn prove(
    params: &Params,
    pk: &ProvingKey<G1Affine>,
    circuit: SliceCircuit,
    rng: impl RngCore + CryptoRng,
) -> Result<Vec<u8>, ProveError> {
    let instance = circuit.instance();
    let inst: &[&[_]] = &[&instance];
    let mut t = Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]);
    let circuits = &[ReleasingCircuit::new(circuit)];
    match params {
        Params::Ipa(p) => halo2_proof::<Ipa, IpaOpening<'_>>(
            &*ProverParams::cached(p).map_err(unreadable)?,
            pk,
            circuits,
            inst,
            rng,
            &mut t,
        ),
        Params::Kzg(p) => halo2_proof::<Kzg, KzgOpening<'_>>(
            &*ProverParams::cached(p).map_err(unreadable)?,
            pk,
            circuits,
            inst,
            rng,
            &mut t,
        ),
    }
    .map_err(halo2("proof"))?;
    Ok(t.finalize())
}
