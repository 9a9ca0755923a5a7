//! KZG structured reference strings from a powers-of-tau ceremony.
//!
//! A KZG proof is sound only if nobody knows the secret `τ` behind the reference string `[τ^i]G1`, `[τ]G2`.
//! Ceremonies produce such strings with many independent contributors (one honest contributor suffices). The
//! widely used ones for BN254 (the Perpetual Powers of Tau, and the Hermez files cut from it) are published in
//! snarkjs's `.ptau` format, which this module reads:
//!
//! ```text
//! "ptau"  u32 version (1)  u32 number of sections
//! per section: u32 type, u64 byte length, the bytes
//!   1 header: u32 n8 (32), the base field modulus q (n8 bytes, little-endian), u32 power, u32 ceremony power
//!   2 τ^i·G1 for i < 2^(power+1) − 1: affine (x, y), each coordinate n8 bytes little-endian Montgomery form
//!   3 τ^i·G2 for i < 2^power: affine (x, y), each an Fq2 element (c0, c1)
//!   4.. α·τ^i·G1, β·τ^i·G1, β·G2, contributions, Lagrange forms (not read here)
//! ```
//!
//! [`kzg_from_ptau`] takes the first `2^k` powers in G1 and `[τ]G2`, and refuses a file that is not such a
//! string: a wrong curve, too few powers, a point off the curve or outside the prime-order group, first powers
//! that are not the standard generators, or powers that are not powers of one `τ` (checked with one pairing
//! equation over a random combination of all of them; see [`SrsError::Inconsistent`]). It reads only the
//! sections it needs, so a ceremony file of any size serves any `k` up to its power.

use crate::backend::Params;
use halo2_proofs::arithmetic::{best_multiexp, g_to_lagrange};
use halo2_proofs::halo2curves::bn256::{pairing, Bn256, Fq, Fr, G1Affine, G2Affine, G1, G2};
use halo2_proofs::halo2curves::ff::{Field, FromUniformBytes, PrimeField};
use halo2_proofs::halo2curves::group::prime::PrimeCurveAffine;
use halo2_proofs::halo2curves::group::{Curve, Group};
use halo2_proofs::halo2curves::serde::SerdeObject;
use halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_proofs::SerdeFormat;
use sha2::{Digest as _, Sha256};
use std::io::{Read, Seek, SeekFrom};

/// Bytes of a base-field element in the file.
const N8: usize = 32;
/// Bytes of an affine G1 point in the file.
const G1_BYTES: usize = 2 * N8;
/// Bytes of an affine G2 point in the file.
const G2_BYTES: usize = 4 * N8;
/// Section types read here.
const HEADER: u32 = 1;
const TAU_G1: u32 = 2;
const TAU_G2: u32 = 3;
/// More sections than any ceremony file has: a bound on what a hostile header can make us scan.
const MAX_SECTIONS: u32 = 64;
/// The largest power a file may claim (BN254's scalar field has `2^28` roots of unity).
const MAX_POWER: u32 = 28;

/// Why a ceremony file cannot serve as a KZG reference string.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SrsError {
    /// Reading failed (I/O), or the file ended inside a section.
    #[error("reading the ceremony file: {0}")]
    Io(#[from] std::io::Error),
    /// The file does not start with `ptau`.
    #[error("not a powers-of-tau file (it does not start with \"ptau\")")]
    NotPtau,
    /// A format version other than 1.
    #[error("powers-of-tau format version {0} is not supported (only 1)")]
    UnsupportedVersion(u32),
    /// The section table is malformed: a section missing, repeated, of the wrong length or past the end.
    #[error("malformed powers-of-tau file: {0}")]
    Malformed(String),
    /// The file is for another curve than BN254.
    #[error("the ceremony is not over BN254 (its base field differs)")]
    WrongCurve,
    /// The file holds fewer powers than the circuit size needs.
    #[error("the ceremony has powers up to 2^{have}; circuits of 2^{need} rows need a file of power {need} or more")]
    TooSmall {
        /// The file's power.
        have: u32,
        /// The circuit size asked for.
        need: u32,
    },
    /// A point does not decode to a curve point of the prime-order group.
    #[error("{section} point {index} is not a valid point of the group")]
    BadPoint {
        /// `tauG1` or `tauG2`.
        section: &'static str,
        /// Its index in the section.
        index: usize,
    },
    /// The first power in G1 or G2 is not the standard generator.
    #[error("{0}[0] is not the standard generator")]
    NotGenerator(&'static str),
    /// The powers are not `[τ^i]G1` for the `τ` of `[τ]G2`: `e(Σ ρ^i·P_{i+1}, G2) ≠ e(Σ ρ^i·P_i, [τ]G2)` for a
    /// `ρ` drawn by hashing every point read (a file built to pass this without being consistent would have to
    /// predict the hash).
    #[error("the G1 powers are not successive powers of the G2 secret: not a valid reference string")]
    Inconsistent,
}

/// Where a section lies in the file.
#[derive(Clone, Copy, Debug)]
struct Section {
    offset: u64,
    len: u64,
}

/// The header and the sections read from a ceremony file.
#[derive(Debug)]
pub struct PtauInfo {
    /// The file holds `τ^i·G1` for `i < 2^(power+1) − 1` and `τ^i·G2` for `i < 2^power`.
    pub power: u32,
    /// The power of the ceremony the file was cut from.
    pub ceremony_power: u32,
    tau_g1: Section,
    tau_g2: Section,
}

fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// BN254's base field modulus, little-endian.
fn bn254_modulus_le() -> Vec<u8> {
    // `Fq::MODULUS` is a big-endian hex string with a 0x prefix.
    let hex = Fq::MODULUS.trim_start_matches("0x");
    let be: Vec<u8> = (0..hex.len()).step_by(2).filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect();
    be.into_iter().rev().collect()
}

/// Reads a ceremony file's header and section table (nothing else).
pub fn read_ptau_info<R: Read + Seek>(r: &mut R) -> Result<PtauInfo, SrsError> {
    let file_len = r.seek(SeekFrom::End(0))?;
    r.seek(SeekFrom::Start(0))?;
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).map_err(|_| SrsError::NotPtau)?;
    if &magic != b"ptau" {
        return Err(SrsError::NotPtau);
    }
    let version = read_u32(r)?;
    if version != 1 {
        return Err(SrsError::UnsupportedVersion(version));
    }
    let count = read_u32(r)?;
    if count > MAX_SECTIONS {
        return Err(SrsError::Malformed(format!("{count} sections")));
    }
    let mut sections = std::collections::BTreeMap::new();
    for _ in 0..count {
        let kind = read_u32(r)?;
        let len = read_u64(r)?;
        let offset = r.stream_position()?;
        let end = offset.checked_add(len).filter(|&e| e <= file_len);
        let Some(end) = end else {
            return Err(SrsError::Malformed(format!("section {kind} runs past the end of the file")));
        };
        if sections.insert(kind, Section { offset, len }).is_some() {
            return Err(SrsError::Malformed(format!("section {kind} appears twice")));
        }
        r.seek(SeekFrom::Start(end))?;
    }
    let section = |kind: u32, name: &str| {
        sections.get(&kind).copied().ok_or_else(|| SrsError::Malformed(format!("no {name} section")))
    };
    let header = section(HEADER, "header")?;
    // n8, then q in n8 bytes, power and ceremony power: 44 bytes for a 32-byte field.
    if header.len < 4 {
        return Err(SrsError::Malformed(format!("a header of {} bytes", header.len)));
    }
    r.seek(SeekFrom::Start(header.offset))?;
    if read_u32(r)? as usize != N8 {
        return Err(SrsError::WrongCurve);
    }
    if header.len != (4 + N8 + 8) as u64 {
        return Err(SrsError::Malformed(format!("a header of {} bytes", header.len)));
    }
    let mut h = [0u8; 4 + N8 + 8];
    r.seek(SeekFrom::Start(header.offset))?;
    r.read_exact(&mut h)?;
    if h[4..4 + N8] != bn254_modulus_le()[..] {
        return Err(SrsError::WrongCurve);
    }
    let power = read_u32(&mut &h[4 + N8..8 + N8])?;
    let ceremony_power = read_u32(&mut &h[8 + N8..])?;
    if power == 0 || power > MAX_POWER {
        return Err(SrsError::Malformed(format!("power {power}")));
    }
    let (tau_g1, tau_g2) = (section(TAU_G1, "tauG1")?, section(TAU_G2, "tauG2")?);
    let g1_len = ((1u64 << (power + 1)) - 1) * G1_BYTES as u64;
    let g2_len = (1u64 << power) * G2_BYTES as u64;
    if tau_g1.len != g1_len || tau_g2.len != g2_len {
        return Err(SrsError::Malformed(format!(
            "power {power} needs tauG1 of {g1_len} and tauG2 of {g2_len} bytes, found {} and {}",
            tau_g1.len, tau_g2.len
        )));
    }
    Ok(PtauInfo { power, ceremony_power, tau_g1, tau_g2 })
}

/// A G2 point of BN254's prime-order subgroup: `[r − 1]P + P` is the identity exactly for such points.
fn in_g2_subgroup(p: &G2Affine) -> bool {
    let q: G2 = (*p).into();
    bool::from((q * (-Fr::ONE) + q).is_identity())
}

/// Reads `2^k` powers in G1 and `[1]G2`, `[τ]G2` from a ceremony file and checks them (see the module
/// documentation).
fn read_powers<R: Read + Seek>(
    r: &mut R,
    info: &PtauInfo,
    k: u32,
) -> Result<(Vec<G1Affine>, G2Affine, G2Affine), SrsError> {
    let n = 1usize << k;
    let mut g1_bytes = vec![0u8; n * G1_BYTES];
    r.seek(SeekFrom::Start(info.tau_g1.offset))?;
    r.read_exact(&mut g1_bytes)?;
    let mut g2_bytes = vec![0u8; 2 * G2_BYTES];
    r.seek(SeekFrom::Start(info.tau_g2.offset))?;
    r.read_exact(&mut g2_bytes)?;
    let g = g1_bytes
        .chunks_exact(G1_BYTES)
        .enumerate()
        .map(|(index, b)| G1Affine::from_raw_bytes(b).ok_or(SrsError::BadPoint { section: "tauG1", index }))
        .collect::<Result<Vec<_>, _>>()?;
    let [g2, s_g2] = [0, 1].map(|i| G2Affine::from_raw_bytes(&g2_bytes[i * G2_BYTES..(i + 1) * G2_BYTES]));
    let g2 = g2.ok_or(SrsError::BadPoint { section: "tauG2", index: 0 })?;
    let s_g2 = s_g2.filter(in_g2_subgroup).ok_or(SrsError::BadPoint { section: "tauG2", index: 1 })?;
    if g[0] != G1Affine::generator() {
        return Err(SrsError::NotGenerator("tauG1"));
    }
    if g2 != G2Affine::generator() {
        return Err(SrsError::NotGenerator("tauG2"));
    }
    if bool::from(s_g2.is_identity()) {
        return Err(SrsError::BadPoint { section: "tauG2", index: 1 });
    }
    // ρ from a hash of everything read: the file is fixed before ρ is known.
    let mut h = Sha256::new();
    h.update(b"veil ptau consistency");
    h.update(&g1_bytes);
    h.update(&g2_bytes);
    let rho = Fr::from_uniform_bytes(&{
        let d = h.finalize();
        let mut wide = [0u8; 64];
        wide[..32].copy_from_slice(&d);
        wide
    });
    check_consistent(&g, s_g2, rho)?;
    Ok((g, g2, s_g2))
}

/// `e(Σ ρ^i·g[i+1], G2) = e(Σ ρ^i·g[i], [τ]G2)`: every `g[i+1] = τ·g[i]` except with probability about
/// `n / r` over `ρ` (the difference is a non-zero polynomial in `ρ` of degree below `n`).
fn check_consistent(g: &[G1Affine], s_g2: G2Affine, rho: Fr) -> Result<(), SrsError> {
    if g.len() < 2 {
        return Ok(());
    }
    let m = g.len() - 1;
    let mut powers = Vec::with_capacity(m);
    let mut p = Fr::ONE;
    for _ in 0..m {
        powers.push(p);
        p *= rho;
    }
    let shifted = best_multiexp(&powers, &g[1..]).to_affine();
    let base = best_multiexp(&powers, &g[..m]).to_affine();
    if pairing(&shifted, &G2Affine::generator()) == pairing(&base, &s_g2) {
        Ok(())
    } else {
        Err(SrsError::Inconsistent)
    }
}

/// KZG parameters for `2^k` rows from a powers-of-tau ceremony file (snarkjs `.ptau`), checked as the module
/// documentation says. Deriving the Lagrange basis is an FFT over curve points (seconds to minutes for large
/// `k`): cache the result ([`Params::to_bytes`]).
pub fn kzg_from_ptau<R: Read + Seek>(mut r: R, k: u32) -> Result<Params, SrsError> {
    let info = read_ptau_info(&mut r)?;
    if k == 0 || k > info.power {
        return Err(SrsError::TooSmall { have: info.power, need: k });
    }
    let (g, g2, s_g2) = read_powers(&mut r, &info, k)?;
    let g_lagrange = g_to_lagrange(g.iter().map(|p| p.to_curve()).collect::<Vec<G1>>(), k);
    // halo2 builds `ParamsKZG` from parts only through an existing value; its raw byte layout is public.
    let mut bytes = Vec::with_capacity(4 + 2 * g.len() * G1_BYTES + 2 * G2_BYTES);
    bytes.extend_from_slice(&k.to_le_bytes());
    for p in g.iter().chain(&g_lagrange) {
        bytes.extend_from_slice(&p.to_raw_bytes());
    }
    bytes.extend_from_slice(&g2.to_raw_bytes());
    bytes.extend_from_slice(&s_g2.to_raw_bytes());
    let params = ParamsKZG::<Bn256>::read_custom(&mut &bytes[..], SerdeFormat::RawBytes)?;
    Ok(Params::Kzg(params))
}

/// A short identifier of a ceremony's secret: the SHA-256 of `[τ]G1` and `[τ]G2` as the file stores them.
/// Every size cut from one ceremony shares it, so caches can file derived parameters under it. It names the
/// file's contents, not its path; it does not check them ([`kzg_from_ptau`] does).
pub fn ptau_id<R: Read + Seek>(mut r: R) -> Result<String, SrsError> {
    let info = read_ptau_info(&mut r)?;
    let mut b = vec![0u8; G1_BYTES + G2_BYTES];
    r.seek(SeekFrom::Start(info.tau_g1.offset + G1_BYTES as u64))?;
    r.read_exact(&mut b[..G1_BYTES])?;
    r.seek(SeekFrom::Start(info.tau_g2.offset + G2_BYTES as u64))?;
    r.read_exact(&mut b[G1_BYTES..])?;
    let d = Sha256::digest(&b);
    Ok(d[..8].iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_modulus_is_bn254s_base_field() {
        let le = bn254_modulus_le();
        assert_eq!(le.len(), 32);
        // q = 0x30644e72…d87cfd47
        assert_eq!(le[0], 0x47);
        assert_eq!(le[31], 0x30);
    }
}
