//! Poseidon: native parity with circomlib, and the chip against the native sponge under `MockProver`.

use halo2_proofs::{
    circuit::{Layouter, SimpleFloorPlanner, Value},
    dev::MockProver,
    halo2curves::bn256::Fr,
    halo2curves::ff::{Field, PrimeField},
    plonk::{Advice, Circuit, Column, ConstraintSystem, Error, Fixed, Instance},
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use veil_verifier::poseidon::{self, PoseidonChip, PoseidonConfig};

/// Parses a big-endian `0x` hex string.
fn fr(hex: &str) -> Fr {
    let digits = hex.trim_start_matches("0x");
    assert_eq!(digits.len(), 64);
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).unwrap();
    }
    bytes.reverse();
    Fr::from_repr(bytes).unwrap()
}

#[test]
fn permutation_matches_reference_vector() {
    // Test vector of the Poseidon reference implementation (poseidonperm_x5_254_3) for input [0, 1, 2];
    // lane 0 is circomlib's poseidon([1, 2]).
    let mut state = [Fr::from(0), Fr::from(1), Fr::from(2)];
    poseidon::permute(&mut state);
    assert_eq!(state[0], fr("0x115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a"));
    assert_eq!(state[1], fr("0x0fca49b798923ab0239de1c9e7a4a9a2210312b6a2f616d18b5a87f9b628ae29"));
    assert_eq!(state[2], fr("0x0e7ae82e40091e63cbd4f16a6d16310b3729d4b6e138fcf54110e2867045a30c"));
}

#[test]
fn sponge_definition() {
    let (a, b, c) = (Fr::from(11), Fr::from(22), Fr::from(33));
    // Two inputs, domain 0: one permutation of [0, a, b], output lane 1.
    let mut s = [Fr::ZERO, a, b];
    poseidon::permute(&mut s);
    assert_eq!(poseidon::hash(0, &[a, b]), s[1]);
    // The circomlib vector through the sponge: hash(0, [1, 2]) is lane 1 of permute([0, 1, 2]).
    assert_eq!(
        poseidon::hash(0, &[Fr::from(1), Fr::from(2)]),
        fr("0x0fca49b798923ab0239de1c9e7a4a9a2210312b6a2f616d18b5a87f9b628ae29")
    );
    // Three inputs under domain 7: two permutations, the second absorbing (c, 0).
    let mut s = [Fr::from(7), a, b];
    poseidon::permute(&mut s);
    s[1] += c;
    poseidon::permute(&mut s);
    assert_eq!(poseidon::hash(7, &[a, b, c]), s[1]);
    // Empty input: one permutation of [domain, 0, 0]; documented padding collisions.
    let mut s = [Fr::from(5), Fr::ZERO, Fr::ZERO];
    poseidon::permute(&mut s);
    assert_eq!(poseidon::hash(5, &[]), s[1]);
    assert_eq!(poseidon::hash(5, &[]), poseidon::hash(5, &[Fr::ZERO, Fr::ZERO]));
    assert_eq!(poseidon::hash(5, &[a]), poseidon::hash(5, &[a, Fr::ZERO]));
    // Domains separate.
    assert_ne!(poseidon::hash(1, &[a, b]), poseidon::hash(2, &[a, b]));
}

/// Which cell the prover tampers with after honest assignment (test-only knob).
#[derive(Clone, Copy, Debug)]
enum Tamper {
    /// Overwrite `state[col]` at this row (relative to the hash's offset).
    State { row: usize, col: usize },
    /// Overwrite `aux[col]` at this row (relative to the hash's offset).
    Aux { row: usize, col: usize },
    /// Overwrite input `i` in the input column (the copy inside the chip keeps the honest value).
    Input(usize),
    /// A consistent forged trace whose capacity starts at this domain instead of the fixed one.
    Capacity(u64),
    /// A consistent forged trace starting from `[domain, e, 0]` (first input lowered by `e` in the absorb row).
    InitialRate(Fr),
    /// A consistent forged trace absorbing this value in the padding lane (odd input counts only).
    Padding(Fr),
}

const OFFSET: usize = 3;
/// Rows per permutation: 8 full rounds, 57 partial rounds two per row, and the output row.
const PERMUTATION_ROWS: usize = 38;

#[derive(Clone, Debug)]
struct HashCircuit {
    domain: u64,
    inputs: Vec<Value<Fr>>,
    tamper: Option<Tamper>,
}

#[derive(Clone, Debug)]
struct TestConfig {
    input: Column<Advice>,
    state: [Column<Advice>; 3],
    aux: [Column<Advice>; 3],
    rc: [Column<Fixed>; 3],
    out: Column<Instance>,
    poseidon: PoseidonConfig,
}

impl Circuit<Fr> for HashCircuit {
    type Config = TestConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = ();

    fn without_witnesses(&self) -> Self {
        Self { domain: self.domain, inputs: vec![Value::unknown(); self.inputs.len()], tamper: None }
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> TestConfig {
        let input = meta.advice_column();
        let state = [(); 3].map(|_| meta.advice_column());
        let aux = [(); 3].map(|_| meta.advice_column());
        let rc = [(); 3].map(|_| meta.fixed_column());
        let rc2 = [(); 3].map(|_| meta.fixed_column());
        let out = meta.instance_column();
        meta.enable_equality(input);
        meta.enable_equality(out);
        let poseidon = PoseidonChip::configure(meta, state, aux, rc, rc2);
        TestConfig { input, state, aux, rc, out, poseidon }
    }

    fn synthesize(&self, config: TestConfig, mut layouter: impl Layouter<Fr>) -> Result<(), Error> {
        let chip = PoseidonChip::construct(config.poseidon.clone());
        let out = layouter.assign_region(
            || "poseidon test",
            |mut region| {
                let cells: Vec<_> = self
                    .inputs
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (region.assign_advice(config.input, i, *v).cell(), *v))
                    .collect();
                let (mut out, _, rows) = chip.hash(&mut region, OFFSET, self.domain, &cells)?;
                assert_eq!(rows, PoseidonChip::rows_for(self.inputs.len()));
                let garbage = Value::known(Fr::from(0xdead_beef));
                // Forged traces re-run the chip with other data (overwriting its witness), then restore the
                // fixed cells of the honest layout, so that exactly one constraint is left to catch the forgery.
                match self.tamper {
                    Some(Tamper::Capacity(other)) => {
                        out = chip.hash(&mut region, OFFSET, other, &cells)?.0;
                        region.assign_fixed(config.rc[0], OFFSET, Fr::from(self.domain));
                    }
                    Some(Tamper::InitialRate(e)) => {
                        let mut forged = cells.clone();
                        forged[0].1 = forged[0].1 + Value::known(e);
                        out = chip.hash(&mut region, OFFSET, self.domain, &forged)?.0;
                        region.assign_advice(config.state[1], OFFSET, Value::known(e));
                        region.assign_advice(config.aux[1], OFFSET, cells[0].1);
                    }
                    Some(Tamper::Padding(d)) => {
                        let n = cells.len();
                        assert!(n % 2 == 1);
                        let mut forged = cells.clone();
                        forged.push((region.assign_advice(config.input, n, Value::known(d)).cell(), Value::known(d)));
                        out = chip.hash(&mut region, OFFSET, self.domain, &forged)?.0;
                        region.assign_fixed(config.rc[2], OFFSET + PERMUTATION_ROWS * (n / 2), Fr::ONE);
                    }
                    _ => {}
                }
                match self.tamper {
                    None | Some(Tamper::Capacity(_) | Tamper::InitialRate(_) | Tamper::Padding(_)) => {}
                    Some(Tamper::State { row, col }) => {
                        region.assign_advice(config.state[col], OFFSET + row, garbage);
                    }
                    Some(Tamper::Aux { row, col }) => {
                        region.assign_advice(config.aux[col], OFFSET + row, garbage);
                    }
                    Some(Tamper::Input(i)) => {
                        region.assign_advice(config.input, i, garbage);
                    }
                }
                Ok(out)
            },
        )?;
        layouter.constrain_instance(out, config.out, 0);
        Ok(())
    }
}

fn random_inputs(n: usize, seed: u64) -> Vec<Fr> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n).map(|_| Fr::random(&mut rng)).collect()
}

fn circuit(domain: u64, inputs: &[Fr], tamper: Option<Tamper>) -> HashCircuit {
    HashCircuit { domain, inputs: inputs.iter().map(|x| Value::known(*x)).collect(), tamper }
}

/// Smallest k whose usable rows hold the hash (with a margin for blinding rows).
fn k_for(n: usize) -> u32 {
    let needed = OFFSET.max(n) + PoseidonChip::rows_for(n) + 16;
    (needed as f64).log2().ceil() as u32
}

fn run(c: &HashCircuit, public: Fr) -> Result<(), Vec<halo2_proofs::dev::VerifyFailure>> {
    let n = c.inputs.len();
    MockProver::run(k_for(n), c, vec![vec![public]]).unwrap().verify()
}

#[test]
fn degree_and_rows() {
    let mut cs = ConstraintSystem::<Fr>::default();
    HashCircuit::configure(&mut cs);
    println!("constraint system degree = {}", cs.degree());
    assert!(cs.degree() <= 4, "degree {}", cs.degree());
    assert_eq!(PoseidonChip::rows_for(0), PERMUTATION_ROWS + 1);
    assert_eq!(PoseidonChip::rows_for(1), PERMUTATION_ROWS + 1);
    assert_eq!(PoseidonChip::rows_for(2), PERMUTATION_ROWS + 1);
    assert_eq!(PoseidonChip::rows_for(3), 2 * PERMUTATION_ROWS + 1);
    assert_eq!(PoseidonChip::rows_for(40), PERMUTATION_ROWS * 20 + 1);
}

#[test]
fn chip_matches_native() {
    for (i, n) in [0usize, 1, 2, 3, 7, 40].into_iter().enumerate() {
        let inputs = random_inputs(n, i as u64);
        let domain = 1000 + i as u64;
        let expected = poseidon::hash(domain, &inputs);
        let c = circuit(domain, &inputs, None);
        MockProver::run(k_for(n), &c, vec![vec![expected]]).unwrap().assert_satisfied();
    }
}

#[test]
fn wrong_public_output_fails() {
    let inputs = random_inputs(3, 9);
    let expected = poseidon::hash(4, &inputs);
    assert!(run(&circuit(4, &inputs, None), expected).is_ok());
    assert!(run(&circuit(4, &inputs, None), expected + Fr::ONE).is_err());
    // A different domain or input length is a different output.
    assert!(run(&circuit(5, &inputs, None), expected).is_err());
    assert!(run(&circuit(4, &inputs[..2], None), expected).is_err());
}

#[test]
fn tampered_witness_fails() {
    let inputs = random_inputs(3, 10);
    let expected = poseidon::hash(2, &inputs);
    let cases = [
        // The state after the first absorb (capacity and both rate lanes).
        Tamper::State { row: 1, col: 0 },
        Tamper::State { row: 1, col: 1 },
        Tamper::State { row: 1, col: 2 },
        // Inside full rounds, a double partial round, the single partial round, at the second absorb row and
        // in the second permutation.
        Tamper::State { row: 2, col: 0 },
        Tamper::State { row: 20, col: 2 },
        Tamper::State { row: 33, col: 1 },
        Tamper::State { row: PERMUTATION_ROWS, col: 1 },
        Tamper::State { row: PERMUTATION_ROWS + 20, col: 0 },
        // Witnesses: squares in a full round; both squares and the middle state of a double partial round; the
        // square of the single partial round and its ones in the lanes without an S-box.
        Tamper::Aux { row: 1, col: 2 },
        Tamper::Aux { row: 20, col: 0 },
        Tamper::Aux { row: 20, col: 1 },
        Tamper::Aux { row: 20, col: 2 },
        Tamper::Aux { row: 33, col: 0 },
        Tamper::Aux { row: 33, col: 1 },
        Tamper::Aux { row: 33, col: 2 },
        // Absorbed input copies, and the padding lane of the last absorb row (must stay zero).
        Tamper::Aux { row: 0, col: 1 },
        Tamper::Aux { row: PERMUTATION_ROWS, col: 1 },
        Tamper::Aux { row: PERMUTATION_ROWS, col: 2 },
        // The input cell outside the chip no longer matches its absorbed copy.
        Tamper::Input(2),
    ];
    for tamper in cases {
        assert!(run(&circuit(2, &inputs, Some(tamper)), expected).is_err(), "{tamper:?} was accepted");
    }
    // Sanity: the first absorb row's state is discarded (the sponge starts at `[domain, 0, 0]` whatever it holds),
    // so tampering it changes nothing.
    for col in 0..3 {
        assert!(run(&circuit(2, &inputs, Some(Tamper::State { row: 0, col })), expected).is_ok());
    }
}

/// The verification failures of a circuit, formatted.
fn failures(c: &HashCircuit, public: Fr) -> String {
    format!("{:?}", run(c, public).expect_err("forgery accepted"))
}

#[test]
fn forged_traces_fail_on_the_right_constraint() {
    let inputs = random_inputs(3, 11);
    let (a, b, c) = (inputs[0], inputs[1], inputs[2]);
    let e = Fr::from(77);
    let d = Fr::from(1234);

    // Capacity started at another domain: only the first absorb's capacity constraint catches it.
    let forged = poseidon::hash(6, &inputs);
    let f = failures(&circuit(2, &inputs, Some(Tamper::Capacity(6))), forged);
    assert!(f.contains("capacity kept"), "{f}");
    assert!(!f.contains("rate") && !f.contains("round"), "{f}");

    // Rate lane 0 started at e (the absorbed copy of input 0 is honest, the state after it shifted by e): the
    // first absorb discards the row's state, so its rate constraint catches it.
    let forged = poseidon::hash(2, &[a + e, b, c]);
    let f = failures(&circuit(2, &inputs, Some(Tamper::InitialRate(e))), forged);
    assert!(f.contains("rate[0] += input"), "{f}");
    assert!(!f.contains("capacity") && !f.contains("round"), "{f}");

    // A non-zero value smuggled into the padding lane.
    let forged = poseidon::hash(2, &[a, b, c, d]);
    let f = failures(&circuit(2, &inputs, Some(Tamper::Padding(d))), forged);
    assert!(f.contains("padding lane 2 is zero"), "{f}");
    assert!(!f.contains("capacity") && !f.contains("round"), "{f}");
    // Control: the same forgery with a zero padding value is the honest trace and passes.
    let honest = poseidon::hash(2, &inputs);
    assert!(run(&circuit(2, &inputs, Some(Tamper::Padding(Fr::ZERO))), honest).is_ok());
}

#[test]
fn empty_input_padding_is_constrained() {
    let expected = poseidon::hash(9, &[]);
    assert!(run(&circuit(9, &[], None), expected).is_ok());
    for col in [1, 2] {
        assert!(run(&circuit(9, &[], Some(Tamper::Aux { row: 0, col })), expected).is_err());
    }
}

/// A real KZG (SHPLONK) proof of a 3-input hash verifies, and fails against a wrong public output.
#[test]
fn real_proof_roundtrip() {
    use halo2_proofs::{
        halo2curves::bn256::{Bn256, G1Affine},
        plonk::{create_proof, keygen_pk, keygen_vk, verify_proof},
        poly::{
            commitment::ParamsProver,
            kzg::{
                commitment::{KZGCommitmentScheme, ParamsKZG},
                multiopen::{ProverSHPLONK, VerifierSHPLONK},
                strategy::SingleStrategy,
            },
        },
        transcript::{Blake2bRead, Blake2bWrite, Challenge255, TranscriptReadBuffer, TranscriptWriterBuffer},
    };
    let inputs = random_inputs(3, 12);
    let expected = poseidon::hash(3, &inputs);
    let c = circuit(3, &inputs, None);
    let k = k_for(inputs.len());
    let params = ParamsKZG::<Bn256>::setup(k, ChaCha20Rng::seed_from_u64(1));
    let vk = keygen_vk(&params, &c.without_witnesses()).unwrap();
    let pk = keygen_pk(&params, vk, &c.without_witnesses()).unwrap();
    let public = [expected];
    let instances: &[&[Fr]] = &[&public];
    let mut transcript = Blake2bWrite::<_, G1Affine, Challenge255<_>>::init(vec![]);
    create_proof::<KZGCommitmentScheme<Bn256>, ProverSHPLONK<_>, _, _, _, _>(
        &params,
        &pk,
        std::slice::from_ref(&c),
        &[instances],
        ChaCha20Rng::seed_from_u64(2),
        &mut transcript,
    )
    .unwrap();
    let proof = transcript.finalize();
    let verify = |out: Fr| {
        let public = [out];
        let instances: &[&[Fr]] = &[&public];
        let mut t = Blake2bRead::<_, G1Affine, Challenge255<_>>::init(&proof[..]);
        verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<_>, _, _, _>(
            params.verifier_params(),
            pk.get_vk(),
            SingleStrategy::new(&params),
            &[instances],
            &mut t,
        )
        .is_ok()
    };
    assert!(verify(expected));
    assert!(!verify(expected + Fr::ONE));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, .. ProptestConfig::default() })]

    #[test]
    fn chip_matches_native_random(n in 0usize..12, seed in any::<u64>(), domain in any::<u64>()) {
        let inputs = random_inputs(n, seed);
        let expected = poseidon::hash(domain, &inputs);
        prop_assert!(run(&circuit(domain, &inputs, None), expected).is_ok());
    }
}
