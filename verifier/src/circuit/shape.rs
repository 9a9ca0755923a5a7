//! A witness-free stand-in for the slice circuit, for reading verifying keys: halo2 rebuilds a key's constraint
//! system from the circuit type's `configure`, which is all this type provides.

use super::{configure, SliceConfig, SliceParams};
use halo2_proofs::circuit::{Layouter, SimpleFloorPlanner};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Circuit, ConstraintSystem, Error};

/// The slice circuit's shape: the constraint system with its parameters, without a layout.
#[derive(Clone, Copy, Debug, Default)]
pub struct SliceShape(pub SliceParams);

impl Circuit<Fr> for SliceShape {
    type Config = SliceConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = SliceParams;

    fn without_witnesses(&self) -> Self {
        *self
    }

    fn params(&self) -> SliceParams {
        self.0
    }

    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, params: SliceParams) -> SliceConfig {
        configure(meta, params)
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> SliceConfig {
        configure(meta, SliceParams::default())
    }

    /// A shape has no layout; synthesizing it is a usage error, reported rather than panicking.
    fn synthesize(&self, _: SliceConfig, _: impl Layouter<Fr>) -> Result<(), Error> {
        Err(Error::Synthesis)
    }
}
