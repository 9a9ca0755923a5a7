//! A witness-free stand-in for the slice circuit, for reading verifying keys: halo2 rebuilds a key's constraint
//! system from the circuit type's `configure`, which is all this type provides.

use super::{configure, SliceConfig};
use halo2_proofs::circuit::{Layouter, SimpleFloorPlanner};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Circuit, ConstraintSystem, Error};

/// The slice circuit's shape: the constraint system without a layout.
#[derive(Clone, Copy, Debug, Default)]
pub struct SliceShape;

impl Circuit<Fr> for SliceShape {
    type Config = SliceConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = ();

    fn without_witnesses(&self) -> Self {
        SliceShape
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> SliceConfig {
        configure(meta)
    }

    /// A shape has no layout; synthesizing it is a usage error, reported rather than panicking.
    fn synthesize(&self, _: SliceConfig, _: impl Layouter<Fr>) -> Result<(), Error> {
        Err(Error::Synthesis)
    }
}
