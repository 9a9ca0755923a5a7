//! How a bundle's parts are tied together: the statement binding every slice proof carries as a public input,
//! and the commitment chain that links slice proofs to each other and to the private input.

use super::{BundleError, Claim, ProofBundle};
use crate::verdict::Rejection;
use crate::Digest;
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::{Field, PrimeField};
use sha2::{Digest as _, Sha256};
use std::collections::btree_map::{BTreeMap, Entry};

/// Domain separator that starts the statement-binding hash input (version 1 of the binding).
pub const BINDING_DOMAIN: &[u8] = b"veil/statement-binding/v1";

/// The field element every slice proof of a bundle carries as a public input, so that changing the model,
/// nonce, audience, claim or input commitment changes every proof's statement.
///
/// It is SHA-256 over this byte string (integers little-endian, lengths as u64):
///
/// ```text
/// BINDING_DOMAIN                                   25 bytes, "veil/statement-binding/v1"
/// model                                            32 bytes
/// len(nonce) u64 ‖ nonce
/// len(audience) u64 ‖ audience                     UTF-8 bytes
/// claim:  0x00 ‖ rank u64 ‖ dims u32… ‖ count u64 ‖ values i64…    Output
///         0x01 ‖ index u32                                         Argmax
///         0x02 ‖ threshold_quarters u32 ‖ holds u8 (0 or 1)        AgeAtLeast
/// input_commitment                                 32 bytes
/// ```
///
/// and the 32-byte hash `h` becomes a field element by clearing the top three bits of its last byte
/// (`h[31] &= 0x1f`) and reading it as a little-endian integer. That integer is below 2²⁵³, which is below
/// the BN254 scalar modulus (≈ 2²⁵³·⁶), so it is the element itself with no reduction: the binding has 253
/// uniformly distributed bits and `fr_to_bytes(binding)` is the masked hash.
pub fn statement_binding(
    model: &Digest,
    nonce: &[u8],
    audience: &str,
    claim: &Claim,
    input_commitment: &[u8; 32],
) -> Fr {
    let mut h = Sha256::new();
    h.update(BINDING_DOMAIN);
    h.update(model.as_bytes());
    update_with_len(&mut h, nonce);
    update_with_len(&mut h, audience.as_bytes());
    match claim {
        Claim::Output { values, shape } => {
            h.update([0]);
            h.update((shape.len() as u64).to_le_bytes());
            shape.iter().for_each(|d| h.update(d.to_le_bytes()));
            h.update((values.len() as u64).to_le_bytes());
            values.iter().for_each(|v| h.update(v.to_le_bytes()));
        }
        Claim::Argmax { index } => {
            h.update([1]);
            h.update(index.to_le_bytes());
        }
        Claim::AgeAtLeast { threshold_quarters, holds } => {
            h.update([2]);
            h.update(threshold_quarters.to_le_bytes());
            h.update([u8::from(*holds)]);
        }
    }
    h.update(input_commitment);
    let mut digest: [u8; 32] = h.finalize().into();
    digest[31] &= 0x1f;
    fr_from_253_bits(&digest)
}

fn update_with_len(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The field element whose little-endian encoding is `bytes`, for an integer below 2²⁵³ (always canonical).
/// Built as `hi·2¹²⁸ + lo` from two u128 halves, which needs no fallible conversion.
fn fr_from_253_bits(bytes: &[u8; 32]) -> Fr {
    let (lo, hi) = bytes.split_at(16);
    let half = |b: &[u8]| b.iter().rev().fold(0u128, |acc, &byte| (acc << 8) | u128::from(byte));
    let two_128 = Fr::from_u128(u128::MAX) + Fr::ONE;
    Fr::from_u128(half(hi)) * two_128 + Fr::from_u128(half(lo))
}

/// The 32-byte little-endian canonical encoding of a field element (`Fr::to_repr()`), as commitments and
/// public inputs are written in bundles.
pub fn fr_to_bytes(element: Fr) -> [u8; 32] {
    element.to_repr()
}

/// Reads a canonical encoding written by [`fr_to_bytes`]; an integer at or above the BN254 scalar modulus is
/// rejected (never reduced), so each element has exactly one encoding.
pub fn fr_from_bytes(bytes: &[u8; 32]) -> Result<Fr, BundleError> {
    Option::from(Fr::from_repr(*bytes)).ok_or_else(|| BundleError::NotAFieldElement { what: "field element".into() })
}

/// Which boundary tensors one slice of the compiled model reads and writes, in the order its proof's
/// commitments list them. Tensor ids are the compiled model's; they only need to be equal where two slices
/// refer to the same tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceBoundary {
    /// The slice's position in the chain.
    pub index: u32,
    /// Boundary tensors the slice reads (for slice 0, the model input first).
    pub inputs: Vec<u32>,
    /// Boundary tensors the slice produces.
    pub outputs: Vec<u32>,
}

/// Checks that the proved slices of `bundle` form one consistent computation of the model described by
/// `boundaries` (`boundaries[i]` describes slice `i`, with `index == i`, for every slice of the model).
///
/// In order, it rejects:
/// - a bundle that fails [`ProofBundle::validate`] ([`Rejection::BadFormat`]);
/// - a bundle whose `slices_total` is not the number of slices `boundaries` describes, or boundaries not
///   listed in slice order ([`Rejection::SliceCount`]);
/// - a proved slice with more or fewer commitments than its boundary has tensors
///   ([`Rejection::BoundaryCount`]);
/// - two commitments to one boundary tensor that differ ([`Rejection::BrokenChain`], naming the later slice
///   and the tensor id). This covers every tensor two proved slices both commit to: one slice's output and
///   the next slice's input, and a tensor read by several slices. The model input (slice 0's first input
///   tensor) counts as committed by `bundle.input_commitment`, so slice 0's first input commitment, and any
///   other proved slice's commitment to the model input, must equal it.
///
/// Unproved slices commit to nothing: with partial coverage the chain is only checked between proved
/// slices, and if slice 0 is not proved nothing ties `input_commitment` to the proofs.
pub fn check_chain(bundle: &ProofBundle, boundaries: &[SliceBoundary]) -> Result<(), Rejection> {
    bundle.validate().map_err(Rejection::BadFormat)?;
    let slice_count = Rejection::SliceCount {
        expected: u32::try_from(boundaries.len()).unwrap_or(u32::MAX),
        found: bundle.slices_total,
    };
    let in_order = boundaries.iter().enumerate().all(|(i, b)| b.index as usize == i);
    if boundaries.len() != bundle.slices_total as usize || !in_order {
        return Err(slice_count);
    }
    let mut committed: BTreeMap<u32, &[u8; 32]> = BTreeMap::new();
    if let Some(&model_input) = boundaries.first().and_then(|b| b.inputs.first()) {
        committed.insert(model_input, &bundle.input_commitment);
    }
    for slice in &bundle.slices {
        // `validate` put every index below `slices_total`, which is `boundaries.len()`.
        let Some(boundary) = boundaries.get(slice.index as usize) else { return Err(slice_count) };
        if slice.input_commitments.len() != boundary.inputs.len()
            || slice.output_commitments.len() != boundary.outputs.len()
        {
            return Err(Rejection::BoundaryCount {
                slice: slice.index,
                expected_inputs: boundary.inputs.len(),
                found_inputs: slice.input_commitments.len(),
                expected_outputs: boundary.outputs.len(),
                found_outputs: slice.output_commitments.len(),
            });
        }
        let inputs = boundary.inputs.iter().zip(&slice.input_commitments);
        let outputs = boundary.outputs.iter().zip(&slice.output_commitments);
        for (&tensor, commitment) in inputs.chain(outputs) {
            match committed.entry(tensor) {
                Entry::Vacant(entry) => {
                    entry.insert(commitment);
                }
                Entry::Occupied(entry) if *entry.get() != commitment => {
                    return Err(Rejection::BrokenChain { slice: slice.index, boundary: tensor as usize });
                }
                Entry::Occupied(_) => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_hash_is_the_element_itself() {
        for seed in 0u8..32 {
            let mut bytes: [u8; 32] = Sha256::digest([seed]).into();
            bytes[31] &= 0x1f;
            let element = fr_from_253_bits(&bytes);
            assert_eq!(fr_to_bytes(element), bytes);
            assert_eq!(fr_from_bytes(&bytes), Ok(element));
        }
        // The largest masked value, 2²⁵³ − 1.
        let mut top = [0xff; 32];
        top[31] = 0x1f;
        assert_eq!(fr_to_bytes(fr_from_253_bits(&top)), top);
    }
}
