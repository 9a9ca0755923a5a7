//! The Poseidon chip with two lanes (wide rows): each lane hashes its own inputs under the shared schedule, an
//! idle lane hashes zeros that nothing reads, and a forged witness in either lane is rejected.

use halo2_proofs::{
    arithmetic::Field,
    circuit::{Layouter, SimpleFloorPlanner, Value},
    dev::MockProver,
    halo2curves::bn256::Fr,
    plonk::{Advice, Circuit, Column, ConstraintSystem, Error, Instance},
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use veil_verifier::poseidon::{self, PoseidonChip, PoseidonConfig};

/// Where the hashes start (the inputs sit in rows above).
const OFFSET: usize = 50;

#[derive(Clone, Copy, Debug)]
enum Tamper {
    /// Garbage in the second lane's state at a row of the hash.
    SecondLaneState(usize),
    /// The second lane's input is changed after it was copied in.
    SecondLaneInput(usize),
}

#[derive(Clone, Debug)]
struct LanesCircuit {
    domain: u64,
    /// One input list per hashed lane (one or two).
    lanes: Vec<Vec<Value<Fr>>>,
    tamper: Option<Tamper>,
}

#[derive(Clone, Debug)]
struct LanesConfig {
    input: Column<Advice>,
    second_state: [Column<Advice>; 3],
    out: Column<Instance>,
    poseidon: PoseidonConfig,
}

impl Circuit<Fr> for LanesCircuit {
    type Config = LanesConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = ();

    fn without_witnesses(&self) -> Self {
        let lanes = self.lanes.iter().map(|l| vec![Value::unknown(); l.len()]).collect();
        Self { domain: self.domain, lanes, tamper: None }
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> LanesConfig {
        let input = meta.advice_column();
        let lanes = [(); 2].map(|_| ([(); 3].map(|_| meta.advice_column()), [(); 3].map(|_| meta.advice_column())));
        let rc = [(); 3].map(|_| meta.fixed_column());
        let rc2 = [(); 3].map(|_| meta.fixed_column());
        let out = meta.instance_column();
        meta.enable_equality(input);
        meta.enable_equality(out);
        let poseidon = PoseidonChip::configure_lanes(meta, &lanes, rc, rc2);
        LanesConfig { input, second_state: lanes[1].0, out, poseidon }
    }

    fn synthesize(&self, config: LanesConfig, mut layouter: impl Layouter<Fr>) -> Result<(), Error> {
        let chip = PoseidonChip::construct(config.poseidon.clone());
        let outs = layouter.assign_region(
            || "poseidon lanes",
            |mut region| {
                let mut row = 0;
                let mut lanes = Vec::new();
                for inputs in &self.lanes {
                    let mut cells = Vec::new();
                    for v in inputs {
                        cells.push((region.assign_advice(config.input, row, *v).cell(), *v));
                        row += 1;
                    }
                    lanes.push(cells);
                }
                let views: Vec<&[_]> = lanes.iter().map(Vec::as_slice).collect();
                let (outs, rows) = chip.hash_lanes(&mut region, OFFSET, self.domain, &views)?;
                assert_eq!(rows, PoseidonChip::rows_for(self.lanes[0].len()));
                let garbage = Value::known(Fr::from(0xdead_beef));
                match self.tamper {
                    Some(Tamper::SecondLaneState(r)) => {
                        region.assign_advice(config.second_state[0], OFFSET + r, garbage);
                    }
                    Some(Tamper::SecondLaneInput(i)) => {
                        region.assign_advice(config.input, self.lanes[0].len() + i, garbage);
                    }
                    None => {}
                }
                Ok(outs.into_iter().map(|(cell, _)| cell).collect::<Vec<_>>())
            },
        )?;
        for (i, cell) in outs.into_iter().enumerate() {
            layouter.constrain_instance(cell, config.out, i);
        }
        Ok(())
    }
}

fn inputs(n: usize, seed: u64) -> Vec<Fr> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n).map(|_| Fr::random(&mut rng)).collect()
}

fn circuit(domain: u64, lanes: &[Vec<Fr>], tamper: Option<Tamper>) -> LanesCircuit {
    let lanes = lanes.iter().map(|l| l.iter().map(|x| Value::known(*x)).collect()).collect();
    LanesCircuit { domain, lanes, tamper }
}

fn run(c: &LanesCircuit, public: Vec<Fr>) -> Result<(), Vec<halo2_proofs::dev::VerifyFailure>> {
    let n = c.lanes[0].len();
    let k = ((OFFSET + PoseidonChip::rows_for(n) + 16) as f64).log2().ceil() as u32;
    MockProver::run(k, c, vec![public]).map_err(|e| panic!("{e}")).and_then(|p| p.verify())
}

#[test]
fn each_lane_hashes_its_own_inputs() {
    for (seed, n) in [1usize, 2, 5, 40].into_iter().enumerate() {
        let (a, b) = (inputs(n, seed as u64), inputs(n, 100 + seed as u64));
        let expected = vec![poseidon::hash(7, &a), poseidon::hash(7, &b)];
        assert_eq!(run(&circuit(7, &[a.clone(), b.clone()], None), expected.clone()), Ok(()), "{n} inputs");
        // The outputs are each lane's own: swapped, they fail.
        assert!(run(&circuit(7, &[a, b], None), vec![expected[1], expected[0]]).is_err());
    }
}

#[test]
fn an_idle_second_lane_leaves_the_first_hash_intact() {
    let a = inputs(5, 3);
    assert_eq!(run(&circuit(9, std::slice::from_ref(&a), None), vec![poseidon::hash(9, &a)]), Ok(()));
}

#[test]
fn a_forged_second_lane_is_rejected() {
    let (a, b) = (inputs(5, 4), inputs(5, 5));
    let expected = vec![poseidon::hash(2, &a), poseidon::hash(2, &b)];
    for row in [1, 20, 33, 38, 70] {
        let c = circuit(2, &[a.clone(), b.clone()], Some(Tamper::SecondLaneState(row)));
        assert!(run(&c, expected.clone()).is_err(), "state garbage at row {row} passed");
    }
    // The first absorb row's state is discarded in every lane (the sponge starts at `[domain, 0, 0]`).
    let c = circuit(2, &[a.clone(), b.clone()], Some(Tamper::SecondLaneState(0)));
    assert_eq!(run(&c, expected.clone()), Ok(()));
    for i in [0, 4] {
        let c = circuit(2, &[a.clone(), b.clone()], Some(Tamper::SecondLaneInput(i)));
        assert!(run(&c, expected.clone()).is_err(), "input {i} changed after the copy passed");
    }
}

#[test]
fn lanes_of_unequal_length_are_refused() {
    let c = circuit(2, &[inputs(4, 6), inputs(3, 7)], None);
    let k = ((OFFSET + PoseidonChip::rows_for(4) + 16) as f64).log2().ceil() as u32;
    assert!(MockProver::run(k, &c, vec![vec![Fr::ZERO; 2]]).is_err());
}
