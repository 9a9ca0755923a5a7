//! The halo2 circuit of one slice: replays a [`Trace`] into the shared constraint system.

use super::trace::{CellRef, Col, Sel, Trace};
use halo2_proofs::arithmetic::Field;
use halo2_proofs::circuit::{Cell, Layouter, Region, SimpleFloorPlanner, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Advice, Any, Circuit, Column, ConstraintSystem, Error, Selector};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use veil_verifier::circuit::tables::fr_i64;
use veil_verifier::circuit::{configure, lk_index, SliceConfig};
use veil_verifier::poseidon::PoseidonChip;

/// One slice's circuit: its trace (with or without witness values).
#[derive(Clone, Debug)]
pub struct SliceCircuit {
    pub(crate) trace: Arc<Trace>,
    pub(crate) with_witness: bool,
}

impl Circuit<Fr> for SliceCircuit {
    type Config = SliceConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = ();

    fn without_witnesses(&self) -> Self {
        SliceCircuit { trace: Arc::clone(&self.trace), with_witness: false }
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> SliceConfig {
        configure(meta)
    }

    fn synthesize(&self, config: SliceConfig, layouter: impl Layouter<Fr>) -> Result<(), Error> {
        replay(Source::Shared(&self.trace), self.with_witness, &config, layouter)
    }
}

/// A slice circuit proved once. Its synthesis takes the trace out and, when it is the only holder, replays it
/// as the prover needs it: fixed cells, selectors and the table are skipped (a prover never reads them back;
/// the proving key has them), the lookup tags are freed before phase 2, the phase-2 columns are computed in
/// place, and the whole trace (hundreds of MB for a large slice) is dropped when synthesis returns, before
/// halo2 evaluates the quotient, where the prover's memory peaks. halo2-axiom synthesizes a circuit that
/// advances its own phases exactly once per proof; a second synthesis fails with [`Error::Synthesis`].
pub(crate) struct ReleasingCircuit(Mutex<Option<SliceCircuit>>);

impl ReleasingCircuit {
    pub(crate) fn new(circuit: SliceCircuit) -> Self {
        ReleasingCircuit(Mutex::new(Some(circuit)))
    }
}

impl Circuit<Fr> for ReleasingCircuit {
    type Config = SliceConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = ();

    fn without_witnesses(&self) -> Self {
        let shape = self.0.lock().ok().and_then(|c| c.as_ref().map(SliceCircuit::without_witness));
        ReleasingCircuit(Mutex::new(shape))
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> SliceConfig {
        configure(meta)
    }

    fn synthesize(&self, config: SliceConfig, layouter: impl Layouter<Fr>) -> Result<(), Error> {
        let circuit = self.0.lock().map_err(|_| Error::Synthesis)?.take().ok_or(Error::Synthesis)?;
        match Arc::try_unwrap(circuit.trace) {
            Ok(trace) if circuit.with_witness => {
                replay(Source::Owned(Box::new(trace)), circuit.with_witness, &config, layouter)
            }
            Ok(trace) => replay(Source::Shared(&trace), false, &config, layouter),
            Err(shared) => replay(Source::Shared(&shared), circuit.with_witness, &config, layouter),
        }
    }
}

/// The trace a synthesis replays: shared (key generation, `MockProver`, a circuit proved while something
/// else still holds its trace) or owned by a one-shot proof, which frees columns as soon as they are read.
enum Source<'a> {
    Shared(&'a Trace),
    Owned(Box<Trace>),
}

impl Source<'_> {
    fn trace(&self) -> &Trace {
        match self {
            Source::Shared(t) => t,
            Source::Owned(t) => t,
        }
    }

    /// A prover (the only owner) never reads fixed cells or selectors back, so it skips assigning them.
    fn proving_only(&self) -> bool {
        matches!(self, Source::Owned(_))
    }

    /// Frees what phase 2 no longer reads: the lookup tags (the phase-2 program may copy lookup operands).
    fn release_phase1(&mut self) {
        if let Source::Owned(t) = self {
            t.tag = Vec::new();
        }
    }

    /// The phase-2 columns at `(z, α)`: computed in place when owned, else into a copy of the `h` columns.
    fn phase2(&mut self, z: Fr, alpha: Fr) -> Cow<'_, [Vec<Fr>]> {
        match self {
            Source::Shared(t) => Cow::Owned(t.phase2_columns(z, alpha)),
            Source::Owned(t) => {
                t.fill_phase2(z, alpha);
                Cow::Borrowed(&t.h)
            }
        }
    }
}

/// Replays a trace into the slice circuit's columns.
fn replay(
    mut source: Source<'_>,
    with_witness: bool,
    c: &SliceConfig,
    mut layouter: impl Layouter<Fr>,
) -> Result<(), Error> {
    let proving_only = source.proving_only();
    if !proving_only {
        assign_table(source.trace(), c, &mut layouter)?;
    }
    // The trace names lookup operands logically (`2j`, `2j + 1` for slot `j`); slots 1 and 2 have no `y`.
    let cell_of = |r: CellRef| -> Result<Cell, Error> {
        let column: Column<Any> = match r.col {
            Col::Lk(i) => c.lk[lk_index(i).ok_or(Error::Synthesis)?].into(),
            Col::G(i) => c.g[i].into(),
            Col::H(i) => c.h[i].into(),
        };
        Ok(Cell { row_offset: r.row, column })
    };
    let known = |v: Fr| if with_witness { Value::known(v) } else { Value::unknown() };
    let assign_advice = |region: &mut Region<'_, Fr>, col: Column<Advice>, values: &[Fr]| {
        for (row, v) in values.iter().enumerate() {
            if !bool::from(v.is_zero()) {
                region.assign_advice(col, row, known(*v));
            }
        }
    };
    let publics = layouter.assign_region(
        || "slice",
        |mut region| {
            let t = source.trace();
            if !proving_only {
                for (cols, fixed) in [(&c.tag[..], &t.tag), (&c.f[..], &t.f), (&c.fw[..], &t.fw)] {
                    for (col, values) in cols.iter().zip(fixed.iter()) {
                        for (row, v) in values.iter().enumerate() {
                            if !bool::from(v.is_zero()) {
                                region.assign_fixed(*col, row, *v);
                            }
                        }
                    }
                }
                for &(sel, row) in &t.selectors {
                    selector(c, sel).enable(&mut region, row)?;
                }
            }
            for (i, vals) in t.lk.iter().enumerate() {
                if let Some(j) = lk_index(i) {
                    assign_advice(&mut region, c.lk[j], vals);
                } else if vals.iter().any(|v| !bool::from(v.is_zero())) {
                    return Err(Error::Synthesis);
                }
            }
            for (col, vals) in c.g.iter().zip(t.g.iter()) {
                assign_advice(&mut region, *col, vals);
            }
            let chip = PoseidonChip::construct(c.poseidon.clone());
            let mut hash_cells = Vec::with_capacity(t.hashes.len());
            for job in &t.hashes {
                let inputs: Vec<(Cell, Value<Fr>)> =
                    job.inputs.iter().map(|&r| Ok((cell_of(r)?, known(t.get(r))))).collect::<Result<_, Error>>()?;
                let (out, _, _) = chip.hash(&mut region, job.row, job.domain, &inputs)?;
                hash_cells.push((out, job.instance_row));
            }
            source.release_phase1();
            region.next_phase();
            let z = region.get_challenge(c.z);
            let alpha = region.get_challenge(c.alpha);
            let mut challenges = None;
            z.zip(alpha).map(|(z, a)| challenges = Some((z, a)));
            {
                let h = match (challenges, with_witness) {
                    (Some((z, a)), true) => source.phase2(z, a),
                    _ => Cow::Borrowed(&source.trace().h[..]),
                };
                for (col, vals) in c.h.iter().zip(h.iter()) {
                    assign_advice(&mut region, *col, vals);
                }
            }
            let t = source.trace();
            for &(a, b) in &t.copies {
                region.constrain_equal(cell_of(a)?, cell_of(b)?);
            }
            for &(cell, v) in &t.constants {
                region.constrain_constant(cell_of(cell)?, v)?;
            }
            let mut publics: Vec<(Cell, usize)> =
                t.public.iter().map(|&(r, row)| Ok((cell_of(r)?, row))).collect::<Result<_, Error>>()?;
            publics.extend(hash_cells);
            Ok(publics)
        },
    )?;
    drop(source);
    for (cell, row) in publics {
        layouter.constrain_instance(cell, c.instance, row);
    }
    Ok(())
}

/// Assigns the lookup table: the all-zero row, then every family the trace uses.
fn assign_table(t: &Trace, c: &SliceConfig, layouter: &mut impl Layouter<Fr>) -> Result<(), Error> {
    layouter.assign_table(
        || "table",
        |mut table| {
            let mut row = 0;
            let mut put = |tag: u64, x: i64, y: i64| -> Result<(), Error> {
                table.assign_cell(|| "tag", c.table[0], row, || Value::known(Fr::from(tag)))?;
                table.assign_cell(|| "x", c.table[1], row, || Value::known(fr_i64(x)))?;
                table.assign_cell(|| "y", c.table[2], row, || Value::known(fr_i64(y)))?;
                row += 1;
                Ok(())
            };
            put(0, 0, 0)?;
            for fam in &t.families {
                for (x, y) in fam.rows(&t.exp_tables) {
                    put(fam.tag(), x, y)?;
                }
            }
            Ok(())
        },
    )
}

fn selector(c: &SliceConfig, sel: Sel) -> Selector {
    let s = &c.s;
    match sel {
        Sel::HornerZ => s.horner_z,
        Sel::HornerZStart => s.horner_z_start,
        Sel::HornerW => s.horner_w,
        Sel::HornerWStart => s.horner_w_start,
        Sel::HornerA => s.horner_a,
        Sel::HornerAStart => s.horner_a_start,
        Sel::Power => s.power,
        Sel::PowerStart => s.power_start,
        Sel::Dot => s.dot,
        Sel::DotStart => s.dot_start,
        Sel::Div => s.div,
        Sel::Div2 => s.div2,
        Sel::Bound => s.bound,
        Sel::Sum => s.sum,
        Sel::SumStart => s.sum_start,
        Sel::Max => s.max,
        Sel::Pack => s.pack,
        Sel::PackStart => s.pack_start,
        Sel::Claim => s.claim,
        Sel::ClaimStart => s.claim_start,
        Sel::VerdictAge => s.verdict_age,
        Sel::VerdictKind => s.verdict_kind,
    }
}
