//! The halo2 circuit of one slice: replays a [`Trace`] into the shared constraint system.

use super::trace::{CellRef, Col, Sel, Trace};
use halo2_proofs::arithmetic::Field;
use halo2_proofs::circuit::{Cell, Layouter, SimpleFloorPlanner, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Any, Circuit, Column, ConstraintSystem, Error, Selector};
use std::borrow::Cow;
use std::sync::Arc;
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

    fn synthesize(&self, config: SliceConfig, mut layouter: impl Layouter<Fr>) -> Result<(), Error> {
        let c = &config;
        let t = &self.trace;
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
        )?;
        // The trace names lookup operands logically (`2j`, `2j + 1` for slot `j`); slots 1 and 2 have no `y`.
        let cell_of = |r: CellRef| -> Result<Cell, Error> {
            let column: Column<Any> = match r.col {
                Col::Lk(i) => c.lk[lk_index(i).ok_or(Error::Synthesis)?].into(),
                Col::G(i) => c.g[i].into(),
                Col::H(i) => c.h[i].into(),
            };
            Ok(Cell { row_offset: r.row, column })
        };
        let publics = layouter.assign_region(
            || "slice",
            |mut region| {
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
                let chip = PoseidonChip::construct(config.poseidon.clone());
                let known = |v: Fr| if self.with_witness { Value::known(v) } else { Value::unknown() };
                for (i, vals) in t.lk.iter().enumerate() {
                    let col = lk_index(i).map(|j| c.lk[j]);
                    for (row, v) in vals.iter().enumerate() {
                        if !bool::from(v.is_zero()) {
                            region.assign_advice(col.ok_or(Error::Synthesis)?, row, known(*v));
                        }
                    }
                }
                for (col, vals) in c.g.iter().zip(t.g.iter()) {
                    for (row, v) in vals.iter().enumerate() {
                        if !bool::from(v.is_zero()) {
                            region.assign_advice(*col, row, known(*v));
                        }
                    }
                }
                let mut hash_cells = Vec::with_capacity(t.hashes.len());
                for job in &t.hashes {
                    let inputs: Vec<(Cell, Value<Fr>)> =
                        job.inputs.iter().map(|&r| Ok((cell_of(r)?, known(t.get(r))))).collect::<Result<_, Error>>()?;
                    let (out, _, _) = chip.hash(&mut region, job.row, job.domain, &inputs)?;
                    hash_cells.push((out, job.instance_row));
                }
                region.next_phase();
                let z = region.get_challenge(c.z);
                let alpha = region.get_challenge(c.alpha);
                let mut challenges = None;
                z.zip(alpha).map(|(z, a)| challenges = Some((z, a)));
                let phase2 = match (challenges, self.with_witness) {
                    (Some((z, a)), true) => Cow::Owned(t.phase2_columns(z, a)),
                    _ => Cow::Borrowed(&t.h),
                };
                for (col, vals) in c.h.iter().zip(phase2.iter()) {
                    for (row, v) in vals.iter().enumerate() {
                        if !bool::from(v.is_zero()) {
                            region.assign_advice(*col, row, known(*v));
                        }
                    }
                }
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
        for (cell, row) in publics {
            layouter.constrain_instance(cell, c.instance, row);
        }
        Ok(())
    }
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
