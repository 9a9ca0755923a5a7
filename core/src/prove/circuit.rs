//! The halo2 circuit of one slice: replays a [`Trace`] into the shared constraint system.

use super::lookup;
use super::park::Parked;
use super::trace::{CellRef, Col, Sel, Trace};
use halo2_proofs::arithmetic::Field;
use halo2_proofs::circuit::{Cell, Layouter, Region, SimpleFloorPlanner, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Advice, Any, Circuit, Column, ConstraintSystem, Error, Selector};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use veil_verifier::circuit::{configure, lk_index, SliceConfig, SliceParams};
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
    type Params = SliceParams;

    fn without_witnesses(&self) -> Self {
        SliceCircuit { trace: Arc::clone(&self.trace), with_witness: false }
    }

    fn params(&self) -> SliceParams {
        self.trace.params
    }

    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, params: SliceParams) -> SliceConfig {
        configure(meta, params)
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> SliceConfig {
        configure(meta, SliceParams::default())
    }

    fn synthesize(&self, config: SliceConfig, layouter: impl Layouter<Fr>) -> Result<(), Error> {
        replay(Source::Shared(&self.trace), self.with_witness, &config, layouter)
    }
}

/// A slice circuit proved once. Its synthesis takes the trace out and, when it is the only holder, replays it
/// as the prover needs it: fixed cells, selectors and the table are skipped (a prover never reads them back;
/// the proving key has them); the lookup tags, fixed and `h` columns are parked while halo2 commits phase 1,
/// where the prover's memory peaks (`park.rs`); the phase-2 columns are computed in place; and the whole
/// trace (hundreds of MB for a large slice) is dropped when synthesis returns, before quotient evaluation.
/// halo2-axiom synthesizes a circuit that advances its own phases exactly once per proof; a second
/// synthesis fails with [`Error::Synthesis`].
pub(crate) struct ReleasingCircuit {
    circuit: Mutex<Option<SliceCircuit>>,
    /// The circuit's parameters, which halo2 asks for whether or not the trace is still here.
    params: SliceParams,
}

impl ReleasingCircuit {
    pub(crate) fn new(circuit: SliceCircuit) -> Self {
        let params = circuit.trace.params;
        ReleasingCircuit { circuit: Mutex::new(Some(circuit)), params }
    }
}

impl Circuit<Fr> for ReleasingCircuit {
    type Config = SliceConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = SliceParams;

    fn without_witnesses(&self) -> Self {
        let shape = self.circuit.lock().ok().and_then(|c| c.as_ref().map(SliceCircuit::without_witness));
        ReleasingCircuit { circuit: Mutex::new(shape), params: self.params }
    }

    fn params(&self) -> SliceParams {
        self.params
    }

    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, params: SliceParams) -> SliceConfig {
        configure(meta, params)
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> SliceConfig {
        configure(meta, SliceParams::default())
    }

    fn synthesize(&self, config: SliceConfig, layouter: impl Layouter<Fr>) -> Result<(), Error> {
        let circuit = self.circuit.lock().map_err(|_| Error::Synthesis)?.take().ok_or(Error::Synthesis)?;
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

    /// Before halo2 commits phase 1 (the prover's memory peak), frees what an owned trace no longer needs
    /// in full: its lookup tags, fixed columns and `h` columns (see `park.rs`).
    fn park(&mut self) -> Option<Parked> {
        match self {
            Source::Owned(t) => Some(t.park()),
            Source::Shared(_) => None,
        }
    }

    /// The phase-2 columns at `(z, α)`: computed in place when owned, else into a copy of the `h` columns.
    fn phase2(&mut self, z: Fr, alpha: Fr, parked: Option<Parked>) -> Cow<'_, [Vec<Fr>]> {
        match (self, parked) {
            (Source::Owned(t), Some(parked)) => {
                t.fill_parked_phase2(parked, z, alpha);
                Cow::Borrowed(&t.h)
            }
            (source, _) => Cow::Owned(source.trace().phase2_columns(z, alpha)),
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
    // The trace names lookup operands logically (`2j`, `2j + 1` for slot `j`); slots 1 and 2 have no `y`.
    let cell_of = |r: CellRef| -> Result<Cell, Error> {
        let column: Column<Any> = match r.col {
            Col::Lk(i) => (*lk_index(i).and_then(|j| c.lk.get(j)).ok_or(Error::Synthesis)?).into(),
            Col::G(i) => (*c.g.get(i).ok_or(Error::Synthesis)?).into(),
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
            let table = lookup::table(t);
            if !proving_only {
                assign_lookup_region(t, &table, c, &mut region)?;
                for (cols, fixed) in [(&c.tag[..], &t.tag), (&c.f[..], &t.f), (&c.wt[..], &t.wt)] {
                    for (col, values) in cols.iter().zip(fixed.iter()) {
                        for (row, v) in values.iter().enumerate() {
                            if !bool::from(v.is_zero()) {
                                region.assign_fixed(*col, row, *v);
                            }
                        }
                    }
                }
                for &(sel, row) in &t.selectors {
                    selector(c, sel).ok_or(Error::Synthesis)?.enable(&mut region, row)?;
                    if sel.continues_chain() {
                        region.assign_fixed(c.carry, row, Fr::one());
                    }
                }
            }
            // A value in a column the slice's width lacks is a layout bug: fail rather than drop it.
            let nonzero = |vals: &[Fr]| vals.iter().any(|v| !bool::from(v.is_zero()));
            for (i, vals) in t.lk.iter().enumerate() {
                match lk_index(i).and_then(|j| c.lk.get(j)) {
                    Some(&col) => assign_advice(&mut region, col, vals),
                    None if nonzero(vals) => return Err(Error::Synthesis),
                    None => {}
                }
            }
            for (i, vals) in t.g.iter().enumerate() {
                match c.g.get(i) {
                    Some(&col) => assign_advice(&mut region, col, vals),
                    None if nonzero(vals) => return Err(Error::Synthesis),
                    None => {}
                }
            }
            let lookups = with_witness.then(|| lookup::Indexed::new(t, &table));
            if let Some(ix) = &lookups {
                assign_advice(&mut region, c.logup.mult, &ix.mult);
            }
            let chip = PoseidonChip::construct(c.poseidon.clone());
            let mut hash_cells = Vec::with_capacity(t.hashes.len());
            for job in &t.hashes {
                let lanes: Vec<Vec<(Cell, Value<Fr>)>> = job
                    .lanes
                    .iter()
                    .map(|inputs| inputs.iter().map(|&r| Ok((cell_of(r)?, known(t.get(r))))).collect())
                    .collect::<Result<_, Error>>()?;
                let lanes: Vec<&[(Cell, Value<Fr>)]> = lanes.iter().map(Vec::as_slice).collect();
                let (outs, _) = chip.hash_lanes(&mut region, job.row, job.domain, &lanes)?;
                if let (Some(row), Some(&(out, _))) = (job.instance_row, outs.first()) {
                    hash_cells.push((out, row));
                }
            }
            let parked = source.park();
            region.next_phase();
            let z = region.get_challenge(c.z);
            let alpha = region.get_challenge(c.alpha);
            let mut challenges = None;
            z.zip(alpha).map(|(z, a)| challenges = Some((z, a)));
            let (theta, beta) = (region.get_challenge(c.logup.theta), region.get_challenge(c.logup.beta));
            let mut lookup_challenges = None;
            theta.zip(beta).map(|(th, b)| lookup_challenges = Some((th, b)));
            if let (Some((th, b)), Some(ix)) = (lookup_challenges, &lookups) {
                let columns = lookup::phase2(ix, &table, th, b).map_err(|_| Error::Synthesis)?;
                let targets = std::iter::once(c.logup.helper).chain(c.logup.pairs.iter().copied()).chain([c.logup.sum]);
                if columns.len() != c.logup.pairs.len() + 2 {
                    return Err(Error::Synthesis);
                }
                for (col, vals) in targets.zip(columns.iter()) {
                    assign_advice(&mut region, col, vals);
                }
            }
            drop((table, lookups));
            {
                let h = match (challenges, with_witness) {
                    (Some((z, a)), true) => source.phase2(z, a, parked),
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

/// Assigns the lookup table's fixed columns and the logUp selectors over the region (every trace and table row).
fn assign_lookup_region(
    t: &Trace,
    table: &[[Fr; 3]],
    c: &SliceConfig,
    region: &mut Region<'_, Fr>,
) -> Result<(), Error> {
    for (row, tuple) in table.iter().enumerate() {
        for (col, v) in c.logup.table.iter().zip(tuple) {
            if !bool::from(v.is_zero()) {
                region.assign_fixed(*col, row, *v);
            }
        }
    }
    let rows = lookup::region_rows(t, table.len());
    for row in 0..rows {
        c.logup.row.enable(region, row)?;
        if row > 0 {
            c.logup.next.enable(region, row)?;
        }
    }
    c.logup.first.enable(region, 0)?;
    c.logup.last.enable(region, rows - 1)
}

/// The selector of `sel`, if the slice's constraint system has its gate. A main-track chain's start and step
/// share their chain's selector; [`SliceConfig::carry`] tells them apart.
fn selector(c: &SliceConfig, sel: Sel) -> Option<Selector> {
    let s = &c.s;
    Some(match sel {
        Sel::HornerZ => s.horner_z,
        Sel::HornerZStart => s.horner_z,
        Sel::HornerW => s.horner_w,
        Sel::HornerWStart => s.horner_w_start,
        Sel::HornerA => s.horner_a,
        Sel::HornerAStart => s.horner_a,
        Sel::Power => s.power,
        Sel::PowerStart => s.power,
        Sel::Dot => s.dot,
        Sel::DotStart => s.dot,
        Sel::Div => s.div?,
        Sel::Div2 => s.div2?,
        Sel::Div4 => s.div4?,
        Sel::Bound => s.bound?,
        Sel::Sum => s.sum?,
        Sel::SumStart => s.sum?,
        Sel::Max => s.max?,
        Sel::Pack => s.pack,
        Sel::PackStart => s.pack,
        Sel::Claim | Sel::Constant => s.arith,
    })
}
