//! KZG reference strings from a powers-of-tau ceremony file: a real snarkjs file (`tests/data/srs`) is read
//! into parameters, and every way a file can be wrong is refused with its typed error, never a panic.

use halo2_proofs::halo2curves::bn256::{Fq2, G1Affine, G2Affine};
use halo2_proofs::halo2curves::ff::Field;
use halo2_proofs::halo2curves::serde::SerdeObject;
use halo2_proofs::halo2curves::CurveAffine;
use halo2_proofs::poly::commitment::{Params as _, ParamsProver};
use std::io::Cursor;
use veil_verifier::backend::Params;
use veil_verifier::srs::{kzg_from_ptau, ptau_id, read_ptau_info, SrsError};

/// Made by snarkjs 0.7.6 (`powersoftau new bn128 13`, then one `contribute`); see its README.
fn ptau() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/srs/test-pot13.ptau");
    std::fs::read(path).expect("test ceremony file")
}

/// Byte offsets in the snarkjs layout: magic, version, section count (12 bytes), then sections of a 12-byte
/// head each. Section 1 (header) holds n8, q, power, ceremony power: 44 bytes.
const HEADER_DATA: usize = 12 + 12;
const TAU_G1: usize = HEADER_DATA + 44 + 12;
fn tau_g2(power: u32) -> usize {
    TAU_G1 + ((1usize << (power + 1)) - 1) * 64 + 12
}

fn kzg(bytes: &[u8], k: u32) -> Result<Params, SrsError> {
    kzg_from_ptau(Cursor::new(bytes), k)
}

#[test]
fn a_snarkjs_ceremony_file_gives_parameters_on_the_standard_generators() {
    let bytes = ptau();
    let info = read_ptau_info(&mut Cursor::new(&bytes)).expect("header");
    assert_eq!((info.power, info.ceremony_power), (13, 13));
    let Params::Kzg(p) = kzg(&bytes, 8).expect("k = 8") else { panic!("not KZG") };
    assert_eq!(p.k(), 8);
    assert_eq!(p.get_g().len(), 256);
    assert_eq!(p.get_g()[0], G1Affine::generator());
    assert_eq!(p.g2(), G2Affine::generator());
    // [τ]G1 is the file's second point, read as it stores it (little-endian Montgomery coordinates).
    let second = G1Affine::from_raw_bytes(&bytes[TAU_G1 + 64..TAU_G1 + 128]).expect("point");
    assert_eq!(p.get_g()[1], second);
}

#[test]
fn every_size_cut_from_one_file_is_a_prefix_of_the_largest() {
    let bytes = ptau();
    let big = kzg(&bytes, 10).expect("k = 10");
    let small = kzg(&bytes, 7).expect("k = 7");
    assert_eq!(big.downsized(7).expect("downsize").to_bytes(), small.to_bytes());
    assert_eq!(ptau_id(Cursor::new(&bytes)).expect("id").len(), 16);
}

#[test]
fn files_that_are_not_ceremony_files_of_this_curve_are_refused() {
    let good = ptau();
    let mut magic = good.clone();
    magic[0] = b'x';
    assert!(matches!(kzg(&magic, 4), Err(SrsError::NotPtau)));
    assert!(matches!(kzg(b"pt", 4), Err(SrsError::NotPtau)));
    let mut version = good.clone();
    version[4] = 2;
    assert!(matches!(kzg(&version, 4), Err(SrsError::UnsupportedVersion(2))));
    // Another base field (the modulus starts at the header data's fifth byte).
    let mut curve = good.clone();
    curve[HEADER_DATA + 4] ^= 1;
    assert!(matches!(kzg(&curve, 4), Err(SrsError::WrongCurve)));
    // 48-byte base field elements (BLS12-381's ceremonies).
    let mut n8 = good.clone();
    n8[HEADER_DATA] = 48;
    assert!(matches!(kzg(&n8, 4), Err(SrsError::WrongCurve)));
    assert!(matches!(kzg(&good, 14), Err(SrsError::TooSmall { have: 13, need: 14 })));
    assert!(matches!(kzg(&good, 0), Err(SrsError::TooSmall { have: 13, need: 0 })));
}

#[test]
fn truncated_or_restructured_files_are_malformed_and_never_panic() {
    let good = ptau();
    let cut = &good[..TAU_G1 + 1000];
    assert!(matches!(kzg(cut, 4), Err(SrsError::Malformed(m)) if m.contains("past the end")), "{:?}", kzg(cut, 4));
    // The section count claims one more section than there is.
    let mut count = good.clone();
    count[8] += 1;
    assert!(kzg(&count, 4).is_err());
    // Section 2's type rewritten to 1: the header appears twice.
    let mut twice = good.clone();
    twice[TAU_G1 - 12] = 1;
    assert!(matches!(kzg(&twice, 4), Err(SrsError::Malformed(m)) if m.contains("twice")));
    // Every prefix of the head of the file is refused without panicking.
    for len in (0..TAU_G1 + 200).step_by(7) {
        assert!(kzg(&good[..len], 4).is_err(), "prefix of {len} bytes accepted");
    }
}

fn g1_at(i: usize) -> std::ops::Range<usize> {
    TAU_G1 + 64 * i..TAU_G1 + 64 * (i + 1)
}

fn g2_at(i: usize) -> std::ops::Range<usize> {
    tau_g2(13) + 128 * i..tau_g2(13) + 128 * (i + 1)
}

#[test]
fn points_off_the_curve_or_out_of_the_group_are_refused() {
    let good = ptau();
    let mut off = good.clone();
    off[g1_at(5).start + 3] ^= 0x10;
    assert!(matches!(kzg(&off, 4), Err(SrsError::BadPoint { section: "tauG1", index: 5 })));
    // A point of the G2 curve outside its prime-order subgroup, in place of [τ]G2.
    let mut x = Fq2::ONE;
    let point = loop {
        let rhs = x.square() * x + G2Affine::b();
        if let Some(y) = Option::<Fq2>::from(rhs.sqrt()) {
            break Option::<G2Affine>::from(G2Affine::from_xy(x, y)).expect("on the curve");
        }
        x += Fq2::ONE;
    };
    let mut twist = good.clone();
    twist[g2_at(1)].copy_from_slice(&point.to_raw_bytes());
    assert!(matches!(kzg(&twist, 4), Err(SrsError::BadPoint { section: "tauG2", index: 1 })));
}

#[test]
fn powers_that_are_not_powers_of_one_secret_are_refused() {
    let good = ptau();
    // tauG1[5] replaced by tauG1[6]: every point is valid, the sequence is not τ^i·G1.
    let mut g1 = good.clone();
    g1.copy_within(g1_at(6), g1_at(5).start);
    assert!(matches!(kzg(&g1, 4), Err(SrsError::Inconsistent)));
    // Past the 2^k points read, the same change does not matter: those powers are not used.
    assert!(kzg(&g1, 2).is_ok());
    // [τ²]G2 in place of [τ]G2.
    let mut g2 = good.clone();
    g2.copy_within(g2_at(2), g2_at(1).start);
    assert!(matches!(kzg(&g2, 4), Err(SrsError::Inconsistent)));
    // A first power that is not the generator (the sequence shifted by one).
    let mut first = good.clone();
    first.copy_within(g1_at(1), g1_at(0).start);
    assert!(matches!(kzg(&first, 4), Err(SrsError::NotGenerator("tauG1"))));
}
