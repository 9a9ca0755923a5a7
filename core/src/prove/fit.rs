//! Choosing each slice's constraint system: its row width, range-limb width and weight columns, by the
//! estimated cost of proving it.

use super::{slice_circuit, ClaimModel, ProveError, SliceCircuit, SliceSpec, RANGE_BITS};
use crate::quant::QuantizedGraph;
use halo2_proofs::halo2curves::bn256::Fr;
use veil_verifier::circuit::{SliceParams, Width, MAX_WEIGHTS};

/// The witness-free circuit of `slice` at the row width ([`SliceSpec::width`]) and range-limb width
/// ([`SliceSpec::range_bits`]) that cost least ([`estimated_cost`], with the fewest weight columns that keep
/// each candidate's `k`; a tie goes to the candidate with fewer rows), and the spec with those widths and
/// weight columns.
pub fn fit_slice(
    graph: &QuantizedGraph,
    slice: &SliceSpec,
    claim: Option<&ClaimModel>,
) -> Result<(SliceSpec, SliceCircuit), ProveError> {
    let mut best: Option<(u64, SliceSpec, SliceCircuit)> = None;
    let mut first_error = None;
    for width in Width::ALL {
        for bits in RANGE_BITS {
            let spec = SliceSpec { range_bits: bits, width, weights: MAX_WEIGHTS, ..slice.clone() };
            match slice_circuit(graph, &spec, claim, None) {
                Ok(c) => {
                    let weights = c.fewest_weight_columns();
                    let cost = estimated_cost(c.k(), c.params().with_weights(weights));
                    let key = (cost, c.rows());
                    if best.as_ref().is_none_or(|(b, _, bc)| key < (*b, bc.rows())) {
                        best = Some((cost, SliceSpec { weights, ..spec }, c));
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    let Some((_, spec, circuit)) = best else {
        return Err(first_error.unwrap_or_else(|| ProveError::Unsupported("no width lays the slice out".into())));
    };
    if spec.weights == circuit.params().weights() {
        return Ok((spec, circuit));
    }
    let circuit = slice_circuit(graph, &spec, claim, None)?;
    Ok((spec, circuit))
}

/// Relative cost of proving a slice of `2^k` rows with the constraint system of `params`: `2^k` times the
/// polynomials each row feeds (advice, fixed and weight columns, and the permutation argument's columns and
/// grand products; selectors are about as many at every width and are left out). Each of them is committed
/// or extended to the quotient's domain and opened once per proof, so this tracks proving time: a narrow row
/// feeds about 0.7 times the polynomials of a wide one (0.82 times the time for age-v1's weight-bound slice,
/// measured), so narrow rows win unless wide ones halve `2^k`.
pub fn estimated_cost(k: u32, params: SliceParams) -> u64 {
    let mut meta = halo2_proofs::plonk::ConstraintSystem::<Fr>::default();
    let _ = veil_verifier::circuit::configure(&mut meta, params);
    let equality = meta.permutation().get_columns().len();
    let products = equality.div_ceil(meta.degree().saturating_sub(2).max(1));
    let polynomials = meta.num_advice_columns() + meta.num_fixed_columns() + equality + products;
    (polynomials as u64) << k
}
