//! The proof bundle: byte format round trips and hostile input, statement binding, chain check, verdicts and
//! the JSON report.

use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::Field;
use proptest::prelude::*;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use veil_verifier::bundle::*;
use veil_verifier::verdict::{Coverage, Rejection, Verdict, VerifyReport};
use veil_verifier::Digest;

/// Counts this thread's allocations, so tests can bound what parsing hostile bytes allocates.
mod alloc_probe {
    #![allow(unsafe_code)] // A global allocator cannot be written without `unsafe`; it only forwards to `System`.

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        /// (largest single allocation, total bytes allocated) on this thread since the last reset.
        static STATS: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }

    fn note(size: usize) {
        let _ = STATS.try_with(|s| {
            let (largest, total) = s.get();
            s.set((largest.max(size), total.saturating_add(size)));
        });
    }

    /// Forwards to `System`, recording sizes.
    pub struct Probe;

    unsafe impl GlobalAlloc for Probe {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            System.alloc(layout)
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            System.alloc_zeroed(layout)
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            System.dealloc(ptr, layout)
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note(new_size);
            System.realloc(ptr, layout, new_size)
        }
    }

    /// Runs `f` and returns its result with the largest and the total allocation it made on this thread.
    pub fn measure<R>(f: impl FnOnce() -> R) -> (R, usize, usize) {
        STATS.with(|s| s.set((0, 0)));
        let result = f();
        let (largest, total) = STATS.with(|s| s.get());
        (result, largest, total)
    }
}

#[global_allocator]
static PROBE: alloc_probe::Probe = alloc_probe::Probe;

/// A 4-slice chain with a skip connection: tensor 1 is read by slices 1 and 2.
fn boundaries() -> Vec<SliceBoundary> {
    vec![
        SliceBoundary { index: 0, inputs: vec![0], outputs: vec![1] },
        SliceBoundary { index: 1, inputs: vec![1], outputs: vec![2] },
        SliceBoundary { index: 2, inputs: vec![2, 1], outputs: vec![3, 4] },
        SliceBoundary { index: 3, inputs: vec![3, 4], outputs: vec![5] },
    ]
}

fn commitment(tensor: u32) -> [u8; 32] {
    fr_to_bytes(Fr::from(1000 + u64::from(tensor)) * Fr::from(u64::MAX).square())
}

fn slice_proof(b: &SliceBoundary) -> SliceProof {
    SliceProof {
        index: b.index,
        vk_digest: Digest::of(&b.index.to_le_bytes()),
        input_commitments: b.inputs.iter().map(|&t| commitment(t)).collect(),
        output_commitments: b.outputs.iter().map(|&t| commitment(t)).collect(),
        proof: (0..100 + 7 * b.index).map(|i| i as u8).collect(),
    }
}

fn sample() -> ProofBundle {
    ProofBundle {
        model: Digest::of(b"age-v1 compiled artifact"),
        slices_total: 4,
        slices: boundaries().iter().map(slice_proof).collect(),
        claim: Claim::Output { values: vec![-3, 0, 7, i64::MAX, i64::MIN, 300], shape: vec![2, 3] },
        nonce: b"nonce-0123456789".to_vec(),
        audience: "https://verifier.example".into(),
        input_commitment: commitment(0),
    }
}

/// `sample` with slice 1 left out.
fn partial() -> ProofBundle {
    let mut b = sample();
    b.slices.remove(1);
    b
}

/// Frames `body` with a valid header.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn reparse(bundle: &ProofBundle) -> Result<ProofBundle, BundleError> {
    ProofBundle::from_bytes(&bundle.to_bytes())
}

fn too_large(result: Result<ProofBundle, BundleError>) -> (String, usize, usize) {
    match result {
        Err(BundleError::TooLarge { what, limit, actual }) => (what, limit, actual),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

/// The BN254 scalar modulus, little-endian.
fn modulus() -> [u8; 32] {
    let mut bytes = fr_to_bytes(-Fr::ONE);
    for byte in bytes.iter_mut() {
        let (sum, carry) = byte.overflowing_add(1);
        *byte = sum;
        if !carry {
            break;
        }
    }
    bytes
}

// ---- Format ----

#[test]
fn bundles_round_trip_with_the_documented_header() {
    let claims = [
        Claim::Argmax { index: 7 },
        Claim::AgeAtLeast { threshold_quarters: 72, holds: true },
        Claim::Output { values: vec![], shape: vec![0] },
        Claim::Output { values: vec![5], shape: vec![] },
    ];
    let mut bundles = vec![sample(), partial()];
    bundles.extend(claims.into_iter().map(|claim| ProofBundle { claim, ..sample() }));
    for bundle in bundles {
        let bytes = bundle.to_bytes();
        assert_eq!(&bytes[..8], b"VEILPRF\0");
        assert_eq!(&bytes[8..10], &[1, 0]);
        assert_eq!(u32::from_le_bytes(bytes[10..14].try_into().unwrap()) as usize, bytes.len() - HEADER_LEN);
        assert_eq!(ProofBundle::from_bytes(&bytes), Ok(bundle));
    }
}

#[test]
fn every_truncation_is_a_typed_error() {
    let bytes = sample().to_bytes();
    for len in 0..bytes.len() {
        let needed = if len < HEADER_LEN { HEADER_LEN } else { bytes.len() };
        assert_eq!(
            ProofBundle::from_bytes(&bytes[..len]),
            Err(BundleError::Truncated { needed, available: len }),
            "prefix of {len} bytes"
        );
    }
}

#[test]
fn every_single_byte_deletion_is_rejected() {
    let bytes = sample().to_bytes();
    for at in 0..bytes.len() {
        let mut cut = bytes.clone();
        cut.remove(at);
        assert!(ProofBundle::from_bytes(&cut).is_err(), "deleting byte {at}");
    }
}

#[test]
fn wrong_magic_and_version_are_rejected() {
    let bytes = sample().to_bytes();
    for at in 0..MAGIC.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x20;
        assert_eq!(ProofBundle::from_bytes(&bad), Err(BundleError::BadMagic));
    }
    assert_eq!(ProofBundle::from_bytes(b"VEILQNT\0"), Err(BundleError::BadMagic));
    assert_eq!(ProofBundle::from_bytes(b"{\"json\": true}"), Err(BundleError::BadMagic));
    for version in [0u16, 2, 0x0100, u16::MAX] {
        let mut bad = bytes.clone();
        bad[8..10].copy_from_slice(&version.to_le_bytes());
        assert_eq!(
            ProofBundle::from_bytes(&bad),
            Err(BundleError::UnsupportedVersion { found: version, supported: 1 })
        );
    }
}

#[test]
fn trailing_bytes_are_rejected_after_the_frame_and_inside_the_body() {
    let bytes = sample().to_bytes();
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0, 0]);
    assert_eq!(ProofBundle::from_bytes(&longer), Err(BundleError::TrailingBytes { extra: 2 }));
    // A header that declares one byte more than the encoded bundle, and that byte present.
    let mut body = bytes[HEADER_LEN..].to_vec();
    body.push(0);
    assert_eq!(ProofBundle::from_bytes(&framed(&body)), Err(BundleError::TrailingBytes { extra: 1 }));
}

#[test]
fn over_long_encodings_are_not_canonical() {
    let bytes = sample().to_bytes();
    let body = &bytes[HEADER_LEN..];
    // The body starts with the 32 model bytes, then `slices_total` (4) as a one-byte varint.
    assert_eq!(body[32], 4);
    let mut padded = body[..32].to_vec();
    padded.extend_from_slice(&[0x84, 0x00]);
    padded.extend_from_slice(&body[33..]);
    assert_eq!(ProofBundle::from_bytes(&framed(&padded)), Err(BundleError::NonCanonical));
}

#[test]
fn a_bool_other_than_zero_or_one_is_a_decode_error() {
    let bundle = ProofBundle { claim: Claim::AgeAtLeast { threshold_quarters: 72, holds: true }, ..sample() };
    let mut bytes = bundle.to_bytes();
    // Encoded as ... variant 2, threshold 72 (one-byte varint 0x48), holds 0x01, then the nonce.
    let at = bytes.windows(3).position(|w| w == [2, 0x48, 1]).expect("claim bytes") + 2;
    bytes[at] = 2;
    assert!(matches!(ProofBundle::from_bytes(&bytes), Err(BundleError::Decode(_))));
}

#[test]
fn oversize_fields_are_rejected_with_their_sizes() {
    let b = ProofBundle { nonce: vec![7; MAX_NONCE_BYTES + 1], ..sample() };
    assert_eq!(too_large(reparse(&b)), ("nonce bytes".into(), 256, 257));
    let b = ProofBundle { nonce: vec![7; MAX_NONCE_BYTES], ..sample() };
    assert_eq!(reparse(&b), Ok(b));
    let b = ProofBundle { nonce: vec![], ..sample() };
    assert_eq!(reparse(&b), Err(BundleError::Invalid { what: "nonce".into(), reason: "must not be empty" }));

    let b = ProofBundle { audience: "é".repeat(129), ..sample() };
    assert_eq!(too_large(reparse(&b)), ("audience bytes".into(), 256, 258));
    let b = ProofBundle { audience: String::new(), ..sample() };
    assert_eq!(reparse(&b), Ok(b));

    let mut b = sample();
    b.slices[2].proof = vec![1; MAX_PROOF_BYTES + 1];
    assert_eq!(too_large(reparse(&b)), ("slice 2 proof bytes".into(), MAX_PROOF_BYTES, MAX_PROOF_BYTES + 1));
    let mut b = sample();
    b.slices[1].output_commitments = vec![commitment(2); MAX_BOUNDARY_COMMITMENTS + 1];
    assert_eq!(too_large(reparse(&b)), ("slice 1 output commitments".into(), 256, 257));

    let n = MAX_SLICES + 1;
    let slices = (0..n as u32).map(|index| SliceProof { index, proof: vec![], ..slice_proof(&boundaries()[0]) });
    let b = ProofBundle { slices_total: n as u32, slices: slices.collect(), ..sample() };
    assert_eq!(too_large(reparse(&b)), ("slices".into(), MAX_SLICES, n));
    let b = ProofBundle { slices_total: n as u32, ..sample() };
    assert_eq!(too_large(reparse(&b)), ("slices_total".into(), MAX_SLICES, n));

    let values = vec![0; MAX_OUTPUT_VALUES + 1];
    let b = ProofBundle { claim: Claim::Output { shape: vec![values.len() as u32], values }, ..sample() };
    assert_eq!(too_large(reparse(&b)), ("output claim values".into(), MAX_OUTPUT_VALUES, MAX_OUTPUT_VALUES + 1));
    let b = ProofBundle { claim: Claim::Output { values: vec![1], shape: vec![1; MAX_SHAPE_RANK + 1] }, ..sample() };
    assert_eq!(too_large(reparse(&b)), ("output claim shape rank".into(), MAX_SHAPE_RANK, MAX_SHAPE_RANK + 1));
    let b = ProofBundle { claim: Claim::Output { values: vec![1, 2, 3], shape: vec![2, 2] }, ..sample() };
    assert!(matches!(reparse(&b), Err(BundleError::Invalid { what, .. }) if what == "output claim"));
    let b =
        ProofBundle { claim: Claim::Output { values: vec![1], shape: vec![u32::MAX, u32::MAX, u32::MAX] }, ..sample() };
    assert!(matches!(reparse(&b), Err(BundleError::Invalid { .. })));
}

#[test]
fn bundles_over_four_mib_are_rejected_from_the_header() {
    let mut b = sample();
    for slice in &mut b.slices {
        slice.proof = vec![9; MAX_PROOF_BYTES];
    }
    let bytes = b.to_bytes();
    assert!(bytes.len() > MAX_BUNDLE_BYTES);
    assert_eq!(too_large(ProofBundle::from_bytes(&bytes)), ("bundle bytes".into(), MAX_BUNDLE_BYTES, bytes.len()));
    let mut header = bytes[..HEADER_LEN].to_vec();
    header[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
    let actual = u32::MAX as usize + HEADER_LEN;
    assert_eq!(too_large(ProofBundle::from_bytes(&header)), ("bundle bytes".into(), MAX_BUNDLE_BYTES, actual));
}

#[test]
fn structure_is_validated() {
    let invalid = |b: ProofBundle| match reparse(&b) {
        Err(BundleError::Invalid { what, reason }) => format!("{what}: {reason}"),
        other => panic!("expected Invalid, got {other:?}"),
    };
    let mut b = sample();
    b.slices.swap(1, 2);
    assert_eq!(invalid(b), "slice 1: slice indices must strictly increase");
    let mut b = sample();
    b.slices[2].index = 1;
    assert_eq!(invalid(b), "slice 1: slice indices must strictly increase");
    let b = ProofBundle { slices_total: 3, ..sample() };
    assert_eq!(invalid(b), "slice 3: index must be below slices_total");
    let b = ProofBundle { slices: vec![], ..sample() };
    assert_eq!(invalid(b), "slices: a bundle proves at least one slice");
    let b = ProofBundle { slices_total: 0, ..sample() };
    assert_eq!(invalid(b), "slices_total: a model has at least one slice");
}

#[test]
fn field_elements_must_be_canonical() {
    let m = modulus();
    assert!(fr_from_bytes(&m).is_err());
    assert!(fr_from_bytes(&[0xff; 32]).is_err());
    assert_eq!(fr_from_bytes(&fr_to_bytes(-Fr::ONE)), Ok(-Fr::ONE));
    assert_eq!(fr_to_bytes(Fr::ONE), {
        let mut one = [0; 32];
        one[0] = 1;
        one
    });
    let b = ProofBundle { input_commitment: m, ..sample() };
    assert_eq!(reparse(&b), Err(BundleError::NotAFieldElement { what: "input_commitment".into() }));
    let mut b = sample();
    b.slices[1].output_commitments[0] = [0xff; 32];
    assert_eq!(reparse(&b), Err(BundleError::NotAFieldElement { what: "slice 1 output commitment 0".into() }));
}

/// Hostile length prefixes: each claims far more data than follows.
fn hostile_bodies() -> Vec<Vec<u8>> {
    let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]; // 2⁶⁴ − 1 as a varint
    let model = [0u8; 32];
    let mut bodies = Vec::new();
    let with = |parts: &[&[u8]]| parts.concat();
    bodies.push(with(&[&model, &[4], &huge])); // slices
    bodies.push(with(&[&model, &[4, 1, 0], &model, &huge])); // input commitments
    bodies.push(with(&[&model, &[4, 1, 0], &model, &[0], &huge])); // output commitments
    bodies.push(with(&[&model, &[4, 1, 0], &model, &[0, 0], &huge])); // proof
    bodies.push(with(&[&model, &[4, 1, 0], &model, &[0, 0, 0], &[0], &huge])); // output claim values
    bodies.push(with(&[&model, &[4, 1, 0], &model, &[0, 0, 0], &[1, 3], &huge])); // nonce
    bodies.push(with(&[&model, &[4, 1, 0], &model, &[0, 0, 0], &[1, 3, 1, 9], &huge])); // audience
    bodies
}

#[test]
fn hostile_lengths_allocate_nothing_they_claim() {
    for body in hostile_bodies() {
        let bytes = framed(&body);
        let (result, largest, total) = alloc_probe::measure(|| ProofBundle::from_bytes(&bytes));
        assert!(matches!(result, Err(BundleError::Decode(_))), "{result:?}");
        // `total > 0` shows the probe is counting (the error message alone allocates).
        assert!(total > 0 && largest <= 4096 && total <= 16 * 1024, "largest {largest}, total {total}");
    }
    // Valid bundles allocate in proportion to their size.
    let values = vec![0; MAX_OUTPUT_VALUES];
    let big = ProofBundle { claim: Claim::Output { shape: vec![values.len() as u32], values }, ..sample() };
    for bundle in [sample(), big] {
        let bytes = bundle.to_bytes();
        let (result, _, total) = alloc_probe::measure(|| ProofBundle::from_bytes(&bytes));
        assert!(result.is_ok());
        assert!(total <= 32 * bytes.len() + 64 * 1024, "{total} bytes allocated for {}", bytes.len());
    }
}

// ---- Binding ----

/// The encoding as `docs/bundle-format.md` writes it, built independently of the library.
fn documented_binding(b: &ProofBundle) -> [u8; 32] {
    let mut m = b"veil/statement-binding/v1".to_vec();
    m.extend_from_slice(b.model.as_bytes());
    m.extend_from_slice(&(b.nonce.len() as u64).to_le_bytes());
    m.extend_from_slice(&b.nonce);
    m.extend_from_slice(&(b.audience.len() as u64).to_le_bytes());
    m.extend_from_slice(b.audience.as_bytes());
    match &b.claim {
        Claim::Output { values, shape } => {
            m.push(0);
            m.extend_from_slice(&(shape.len() as u64).to_le_bytes());
            shape.iter().for_each(|d| m.extend_from_slice(&d.to_le_bytes()));
            m.extend_from_slice(&(values.len() as u64).to_le_bytes());
            values.iter().for_each(|v| m.extend_from_slice(&v.to_le_bytes()));
        }
        Claim::Argmax { index } => {
            m.push(1);
            m.extend_from_slice(&index.to_le_bytes());
        }
        Claim::AgeAtLeast { threshold_quarters, holds } => {
            m.push(2);
            m.extend_from_slice(&threshold_quarters.to_le_bytes());
            m.push(u8::from(*holds));
        }
    }
    m.extend_from_slice(&b.input_commitment);
    let mut h: [u8; 32] = Sha256::digest(&m).into();
    h[31] &= 0x1f;
    h
}

#[test]
fn binding_follows_the_documented_encoding() {
    let claims = [Claim::Argmax { index: 3 }, Claim::AgeAtLeast { threshold_quarters: 72, holds: false }];
    let mut bundles = vec![sample()];
    bundles.extend(claims.into_iter().map(|claim| ProofBundle { claim, ..sample() }));
    for b in bundles {
        assert_eq!(fr_to_bytes(b.binding()), documented_binding(&b));
        assert_eq!(b.binding(), statement_binding(&b.model, &b.nonce, &b.audience, &b.claim, &b.input_commitment));
    }
}

#[test]
fn binding_changes_with_every_bound_field() {
    let base = sample();
    let mut variants = vec![base.clone()];
    let mut push = |f: &dyn Fn(&mut ProofBundle)| {
        let mut b = base.clone();
        f(&mut b);
        variants.push(b);
    };
    push(&|b| b.nonce[0] ^= 1);
    push(&|b| b.nonce.push(0));
    push(&|b| b.audience.push('/'));
    push(&|b| b.model = Digest::of(b"another model"));
    push(&|b| b.input_commitment = commitment(99));
    push(&|b| b.claim = Claim::Output { values: vec![-3, 0, 7, i64::MAX, i64::MIN, 301], shape: vec![2, 3] });
    push(&|b| b.claim = Claim::Output { values: vec![-3, 0, 7, i64::MAX, i64::MIN, 300], shape: vec![3, 2] });
    push(&|b| b.claim = Claim::Argmax { index: 0 });
    push(&|b| b.claim = Claim::Argmax { index: 1 });
    push(&|b| b.claim = Claim::AgeAtLeast { threshold_quarters: 72, holds: true });
    push(&|b| b.claim = Claim::AgeAtLeast { threshold_quarters: 72, holds: false });
    push(&|b| b.claim = Claim::AgeAtLeast { threshold_quarters: 73, holds: true });
    // Length prefixes keep a byte moving between nonce and audience from colliding.
    push(&|b| {
        b.nonce = b"ab".to_vec();
        b.audience = "c".into();
    });
    push(&|b| {
        b.nonce = b"a".to_vec();
        b.audience = "bc".into();
    });
    let bindings: BTreeSet<[u8; 32]> = variants.iter().map(|b| fr_to_bytes(b.binding())).collect();
    assert_eq!(bindings.len(), variants.len());
    // Slices, proofs and keys are not part of the statement.
    let mut b = base.clone();
    b.slices.remove(2);
    b.slices[0].proof.clear();
    assert_eq!(b.binding(), base.binding());
}

// ---- Chain ----

#[test]
fn chain_check_accepts_consistent_chains() {
    assert_eq!(check_chain(&sample(), &boundaries()), Ok(()));
    assert_eq!(check_chain(&partial(), &boundaries()), Ok(()));
}

#[test]
fn chain_check_rejects_altered_commitments() {
    let mut b = sample();
    b.slices[1].input_commitments[0] = commitment(77);
    assert_eq!(check_chain(&b, &boundaries()), Err(Rejection::BrokenChain { slice: 1, boundary: 1 }));
    // The skip connection: slice 2's second input is tensor 1, which slice 0 wrote.
    let mut b = sample();
    b.slices[2].input_commitments[1] = commitment(77);
    assert_eq!(check_chain(&b, &boundaries()), Err(Rejection::BrokenChain { slice: 2, boundary: 1 }));
    let mut b = sample();
    b.slices[3].output_commitments[0] = commitment(77);
    assert_eq!(check_chain(&b, &boundaries()), Ok(()), "a final output is committed once");
    let mut b = sample();
    b.slices[2].output_commitments[1] = commitment(77);
    assert_eq!(check_chain(&b, &boundaries()), Err(Rejection::BrokenChain { slice: 3, boundary: 4 }));
}

#[test]
fn chain_check_rejects_a_wrong_input_commitment() {
    let b = ProofBundle { input_commitment: commitment(77), ..sample() };
    assert_eq!(check_chain(&b, &boundaries()), Err(Rejection::BrokenChain { slice: 0, boundary: 0 }));
}

#[test]
fn chain_check_rejects_swapped_slices() {
    // Slice 1's proof and commitments presented as slice 0 and the other way round.
    let mut b = sample();
    let (first, second) = b.slices.split_at_mut(1);
    std::mem::swap(&mut first[0], &mut second[0]);
    (b.slices[0].index, b.slices[1].index) = (0, 1);
    assert_eq!(check_chain(&b, &boundaries()), Err(Rejection::BrokenChain { slice: 0, boundary: 0 }));
    // Out of order in the bundle.
    let mut b = sample();
    b.slices.swap(2, 3);
    assert!(matches!(check_chain(&b, &boundaries()), Err(Rejection::BadFormat(BundleError::Invalid { .. }))));
    // Slices 2 and 3 swapped wholesale: the commitment counts no longer fit the model.
    let mut b = sample();
    b.slices.swap(2, 3);
    (b.slices[2].index, b.slices[3].index) = (2, 3);
    assert!(matches!(check_chain(&b, &boundaries()), Err(Rejection::BoundaryCount { slice: 2, .. })));
}

#[test]
fn chain_check_rejects_a_bundle_for_another_slicing() {
    let mut fewer = boundaries();
    fewer.pop();
    assert_eq!(check_chain(&sample(), &fewer), Err(Rejection::SliceCount { expected: 3, found: 4 }));
    let mut shuffled = boundaries();
    shuffled.swap(0, 1);
    assert_eq!(check_chain(&sample(), &shuffled), Err(Rejection::SliceCount { expected: 4, found: 4 }));
    let mut b = sample();
    b.slices[1].output_commitments.push(commitment(2));
    assert_eq!(
        check_chain(&b, &boundaries()),
        Err(Rejection::BoundaryCount {
            slice: 1,
            expected_inputs: 1,
            found_inputs: 1,
            expected_outputs: 1,
            found_outputs: 2
        })
    );
}

// ---- Verdicts ----

#[test]
fn verdicts_report_coverage() {
    let full = Verdict::for_verified(&sample()).unwrap();
    assert_eq!(full.coverage, Coverage::Full);
    assert_eq!(full.proved_slices, vec![0, 1, 2, 3]);
    assert_eq!(full.clone().require_full(), Ok(full));
    let part = Verdict::for_verified(&partial()).unwrap();
    assert_eq!(part.coverage, Coverage::Partial { unproved: vec![1] });
    assert_eq!(part.proved_slices, vec![0, 2, 3]);
    let rejection = part.require_full().unwrap_err();
    assert_eq!(rejection, Rejection::UnprovedSlices { missing: vec![1] });
    assert_eq!(rejection.code(), "unproved_slices");
    let bad = ProofBundle { slices_total: u32::MAX, ..sample() };
    assert!(matches!(Verdict::for_verified(&bad), Err(Rejection::BadFormat(_))));
}

#[test]
fn rejection_codes_are_stable_and_distinct() {
    let d = Digest::of(b"x");
    let all = [
        Rejection::BadFormat(BundleError::BadMagic),
        Rejection::WrongModel { expected: d, found: d },
        Rejection::WrongNonce,
        Rejection::WrongAudience,
        Rejection::SliceCount { expected: 1, found: 2 },
        Rejection::BoundaryCount {
            slice: 0,
            expected_inputs: 1,
            found_inputs: 2,
            expected_outputs: 1,
            found_outputs: 1,
        },
        Rejection::BrokenChain { slice: 1, boundary: 2 },
        Rejection::WrongKey { slice: 0 },
        Rejection::InvalidProof { slice: 0 },
        Rejection::UnprovedSlices { missing: vec![1] },
        Rejection::WrongClaim { reason: "argmax differs".into() },
        Rejection::WrongParams,
    ];
    let codes: Vec<&str> = all.iter().map(Rejection::code).collect();
    assert_eq!(codes, Rejection::CODES);
    assert_eq!(
        codes,
        [
            "bad_format",
            "wrong_model",
            "wrong_nonce",
            "wrong_audience",
            "slice_count",
            "boundary_count",
            "broken_chain",
            "wrong_key",
            "invalid_proof",
            "unproved_slices",
            "wrong_claim",
            "wrong_params"
        ]
    );
    let docs = include_str!("../../docs/bundle-format.md");
    for code in codes {
        assert!(docs.contains(&format!("`{code}`")), "docs/bundle-format.md does not list {code}");
    }
}

#[test]
fn verify_report_json_has_the_documented_fields() {
    let argmax = ProofBundle { claim: Claim::Argmax { index: 3 }, ..sample() };
    let report = VerifyReport::from_result(&Verdict::for_verified(&argmax));
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        serde_json::json!({
            "accepted": true,
            "claim": {"kind": "argmax", "index": 3},
            "coverage": "full",
            "proved_slices": [0, 1, 2, 3],
            "error": null
        })
    );
    let age = ProofBundle { claim: Claim::AgeAtLeast { threshold_quarters: 72, holds: true }, ..partial() };
    let report = serde_json::to_value(VerifyReport::from_result(&Verdict::for_verified(&age))).unwrap();
    assert_eq!(report["claim"], serde_json::json!({"kind": "age_at_least", "threshold_quarters": 72, "holds": true}));
    assert_eq!(report["coverage"], "partial");
    assert_eq!(report["proved_slices"], serde_json::json!([0, 2, 3]));
    let output = serde_json::to_value(VerifyReport::from_result(&Verdict::for_verified(&sample()))).unwrap();
    assert_eq!(
        output["claim"],
        serde_json::json!({"kind": "output", "values": [-3, 0, 7, i64::MAX, i64::MIN, 300], "shape": [2, 3]})
    );

    let rejected = VerifyReport::from_result(&Err(Rejection::BrokenChain { slice: 2, boundary: 1 }));
    assert_eq!(
        serde_json::to_value(&rejected).unwrap(),
        serde_json::json!({
            "accepted": false, "claim": null, "coverage": null, "proved_slices": [], "error": "broken_chain"
        })
    );
}

#[test]
fn verdict_json_uses_hex_for_digests_and_commitments() {
    let verdict = Verdict::for_verified(&partial()).unwrap();
    let json = serde_json::to_value(&verdict).unwrap();
    assert_eq!(json["model"], partial().model.to_string());
    let hex: String = commitment(0).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(json["input_commitment"], hex);
    assert_eq!(json["coverage"], serde_json::json!({"kind": "partial", "unproved": [1]}));
}

// ---- Property tests ----

fn arb_commitment() -> impl Strategy<Value = [u8; 32]> {
    prop_oneof![
        any::<u64>().prop_map(|n| fr_to_bytes(Fr::from(n))),
        any::<[u8; 32]>().prop_map(|mut b| {
            b[31] &= 0x1f;
            b
        }),
    ]
}

fn arb_claim() -> impl Strategy<Value = Claim> {
    prop_oneof![
        prop::collection::vec(any::<i64>(), 0..8)
            .prop_map(|values| Claim::Output { shape: vec![1, values.len() as u32], values }),
        any::<u32>().prop_map(|index| Claim::Argmax { index }),
        (any::<u32>(), any::<bool>())
            .prop_map(|(threshold_quarters, holds)| Claim::AgeAtLeast { threshold_quarters, holds }),
    ]
}

fn arb_slice(index: u32) -> impl Strategy<Value = SliceProof> {
    let commitments = || prop::collection::vec(arb_commitment(), 0..4);
    (any::<[u8; 32]>(), commitments(), commitments(), prop::collection::vec(any::<u8>(), 0..200)).prop_map(
        move |(vk, input_commitments, output_commitments, proof)| SliceProof {
            index,
            vk_digest: Digest::from_bytes(vk),
            input_commitments,
            output_commitments,
            proof,
        },
    )
}

fn arb_bundle() -> impl Strategy<Value = ProofBundle> {
    (1u32..40)
        .prop_flat_map(|total| (Just(total), prop::collection::btree_set(0..total, 1..=(total as usize).min(6))))
        .prop_flat_map(|(total, indices)| {
            let slices: Vec<_> = indices.into_iter().map(arb_slice).collect();
            (
                Just(total),
                slices,
                any::<[u8; 32]>(),
                arb_claim(),
                prop::collection::vec(any::<u8>(), 1..=MAX_NONCE_BYTES),
                "\\PC{0,40}",
                arb_commitment(),
            )
        })
        .prop_map(|(slices_total, slices, model, claim, nonce, audience, input_commitment)| ProofBundle {
            model: Digest::from_bytes(model),
            slices_total,
            slices,
            claim,
            nonce,
            audience,
            input_commitment,
        })
}

/// Parses untrusted bytes; whatever is accepted must re-encode to exactly those bytes.
fn parse_is_canonical(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(bundle) = ProofBundle::from_bytes(bytes) {
        prop_assert_eq!(bundle.to_bytes(), bytes);
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_valid_bundles_round_trip(bundle in arb_bundle()) {
        prop_assert_eq!(bundle.validate(), Ok(()));
        prop_assert_eq!(reparse(&bundle), Ok(bundle));
    }

    #[test]
    fn random_byte_flips_never_panic(
        which in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
    ) {
        let bundle = if which { sample() } else { ProofBundle { claim: Claim::Argmax { index: 2 }, ..partial() } };
        let mut bytes = bundle.to_bytes();
        for (at, mask) in flips {
            let at = at.index(bytes.len());
            bytes[at] ^= mask;
        }
        parse_is_canonical(&bytes)?;
    }

    #[test]
    fn random_body_edits_under_a_valid_header_never_panic(
        at in any::<prop::sample::Index>(),
        cut in 0usize..40,
        insert in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let bytes = sample().to_bytes();
        let mut body = bytes[HEADER_LEN..].to_vec();
        let at = at.index(body.len());
        let end = (at + cut).min(body.len());
        body.splice(at..end, insert);
        parse_is_canonical(&framed(&body))?;
    }

    #[test]
    fn random_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..600)) {
        parse_is_canonical(&framed(&body))?;
    }
}
