//! Choosing each slice's constraint system: its row width, range-limb width and weight columns, by the
//! estimated cost of proving it.

use super::{slice_circuit, ClaimModel, ProveError, SliceCircuit, SliceSpec, RANGE_BITS};
use crate::quant::QuantizedGraph;
use halo2_proofs::halo2curves::bn256::Fr;
use veil_verifier::circuit::{SliceParams, Width, MAX_WEIGHTS};

/// The witness-free circuit of `slice` at the row width ([`SliceSpec::width`]) and range-limb width
/// ([`SliceSpec::range_bits`]) that cost least ([`estimated_cost`], with the fewest weight columns that keep
/// each candidate's `k`; a tie goes to the candidate with fewer rows), and the spec with those widths and
/// weight columns. A wide winner then tries one Poseidon lane ([`SliceSpec::poseidon_lanes`]): the longer
/// hashes cost rows, the second lane's gates cost every proof, and the cheaper layout is kept.
pub fn fit_slice(
    graph: &QuantizedGraph,
    slice: &SliceSpec,
    claim: Option<&ClaimModel>,
) -> Result<(SliceSpec, SliceCircuit), ProveError> {
    let mut best: Option<(u64, SliceSpec, SliceCircuit)> = None;
    let mut first_error = None;
    let mut consider = |spec: SliceSpec, best: &mut Option<(u64, SliceSpec, SliceCircuit)>| match slice_circuit(
        graph, &spec, claim, None,
    ) {
        Ok(c) => {
            let weights = c.fewest_weight_columns();
            let cost = estimated_cost(c.k(), c.params().with_weights(weights));
            let key = (cost, c.rows());
            if best.as_ref().is_none_or(|(b, _, bc)| key < (*b, bc.rows())) {
                *best = Some((cost, SliceSpec { weights, ..spec }, c));
            }
        }
        Err(e) => {
            first_error.get_or_insert(e);
        }
    };
    for width in Width::ALL {
        for bits in RANGE_BITS {
            let lanes = width.max_poseidon_lanes();
            let spec =
                SliceSpec { range_bits: bits, width, weights: MAX_WEIGHTS, poseidon_lanes: lanes, ..slice.clone() };
            consider(spec, &mut best);
        }
    }
    if let Some((_, spec, _)) = best.as_ref().filter(|(_, s, _)| s.poseidon_lanes > 1) {
        let one_lane = SliceSpec { weights: MAX_WEIGHTS, poseidon_lanes: 1, ..spec.clone() };
        consider(one_lane, &mut best);
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

/// What one polynomial of a proof costs against one gate constraint: a polynomial is committed or extended to
/// the quotient's four cosets and opened (about 70 ms for a fixed column and 150 to 210 ms for an advice
/// column in a `k = 16` proof on 2 cores), a constraint is evaluated on those cosets (about 23 ms).
const CONSTRAINTS_PER_POLYNOMIAL: u64 = 5;

/// Relative cost of proving a slice of `2^k` rows with the constraint system of `params`: `2^k` times the
/// polynomials each row feeds (advice, fixed and weight columns, and the permutation argument's columns and
/// grand products; selectors are about as many at every width and are left out), each weighed as
/// [`CONSTRAINTS_PER_POLYNOMIAL`] gate constraints, plus the gate constraints. Each polynomial is committed
/// or extended to the quotient's domain and opened once per proof, and every constraint is evaluated on that
/// domain, so this tracks proving time: a narrow row feeds about 0.7 times the polynomials of a wide one
/// (0.82 times the time for age-v1's weight-bound slice, measured), so narrow rows win unless wide ones halve
/// `2^k`.
pub fn estimated_cost(k: u32, params: SliceParams) -> u64 {
    let mut meta = halo2_proofs::plonk::ConstraintSystem::<Fr>::default();
    let _ = veil_verifier::circuit::configure(&mut meta, params);
    let equality = meta.permutation().get_columns().len();
    let products = equality.div_ceil(meta.degree().saturating_sub(2).max(1));
    let polynomials = meta.num_advice_columns() + meta.num_fixed_columns() + equality + products;
    let constraints: usize = meta.gates().iter().map(|g| g.polynomials().len()).sum();
    (polynomials as u64 * CONSTRAINTS_PER_POLYNOMIAL + constraints as u64) << k
}
