//! The bundle byte format: a fixed header, then a postcard body, parsed as hostile input.
//!
//! Decoding goes through private wire types that borrow byte strings from the input and count (rather than
//! keep) sequence elements past their limit, so a length prefix is never trusted for an allocation and an
//! over-long field still yields a typed [`BundleError::TooLarge`] with its real length. The decoded bundle
//! is then validated and re-encoded: only the canonical encoding is accepted.

use super::{binding::fr_from_bytes, BundleError, Claim, ProofBundle, SliceProof};
use crate::Digest;
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// Magic bytes at the start of every bundle.
pub const MAGIC: &[u8; 8] = b"VEILPRF\0";
/// The bundle format version this build writes and reads.
pub const VERSION: u16 = 1;
/// Header length: magic, u16 LE version, u32 LE body length.
pub const HEADER_LEN: usize = 14;
/// Largest bundle, header included (4 MiB).
pub const MAX_BUNDLE_BYTES: usize = 4 << 20;
/// Most slices a model (and so a bundle) may have.
pub const MAX_SLICES: usize = 4096;
/// Largest proof of one slice, in bytes (1 MiB).
pub const MAX_PROOF_BYTES: usize = 1 << 20;
/// Most boundary commitments one slice may have on each side (inputs, outputs).
pub const MAX_BOUNDARY_COMMITMENTS: usize = 256;
/// Shortest nonce, in bytes.
pub const MIN_NONCE_BYTES: usize = 1;
/// Longest nonce, in bytes.
pub const MAX_NONCE_BYTES: usize = 256;
/// Longest audience, in bytes of UTF-8.
pub const MAX_AUDIENCE_BYTES: usize = 256;
/// Most integers an output claim may reveal.
pub const MAX_OUTPUT_VALUES: usize = 1 << 20;
/// Most dimensions an output claim's shape may have.
pub const MAX_SHAPE_RANK: usize = 16;

/// Largest allocation made ahead of decoding a sequence's elements, in bytes: beyond it, vectors grow only
/// as elements are actually decoded from the input.
const PREALLOC_BYTES: usize = 4096;

impl ProofBundle {
    /// Serializes to the bundle format: [`MAGIC`], [`VERSION`] (u16 LE), body length (u32 LE), postcard body.
    ///
    /// Writes any bundle, valid or not (a bundle that fails [`ProofBundle::validate`] is written as is and
    /// rejected by [`ProofBundle::from_bytes`]); a body too long for the u32 length field is written with
    /// length `u32::MAX`, which no reader accepts.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = self.encode_body();
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Parses and validates bundle bytes from an untrusted prover.
    ///
    /// Never panics; allocates at most a small constant plus a multiple of `bytes.len()`; accepts exactly the
    /// bytes [`ProofBundle::to_bytes`] writes for a bundle that passes [`ProofBundle::validate`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BundleError> {
        let body = split_header(bytes)?;
        let (wire, rest) =
            postcard::take_from_bytes::<WireBundle<'_>>(body).map_err(|e| BundleError::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(BundleError::TrailingBytes { extra: rest.len() });
        }
        let bundle = wire.into_bundle()?;
        bundle.validate()?;
        if bundle.encode_body() != body {
            return Err(BundleError::NonCanonical);
        }
        Ok(bundle)
    }

    /// Checks every limit and structural rule of the format: `slices_total` in `1..=MAX_SLICES`; at least
    /// one slice; slice indices strictly increasing and below `slices_total`; per-slice commitment counts and
    /// proof size; every commitment (and `input_commitment`) a canonical `Fr` encoding; an output claim's
    /// size and shape; nonce and audience lengths. It does not check proofs, keys or the chain.
    pub fn validate(&self) -> Result<(), BundleError> {
        check_at_most("slices_total", MAX_SLICES, self.slices_total as usize)?;
        if self.slices_total == 0 {
            return Err(invalid("slices_total", "a model has at least one slice"));
        }
        check_at_most("slices", MAX_SLICES, self.slices.len())?;
        if self.slices.is_empty() {
            return Err(invalid("slices", "a bundle proves at least one slice"));
        }
        let mut previous: Option<u32> = None;
        for slice in &self.slices {
            if previous.is_some_and(|p| slice.index <= p) {
                return Err(invalid(format!("slice {}", slice.index), "slice indices must strictly increase"));
            }
            if slice.index >= self.slices_total {
                return Err(invalid(format!("slice {}", slice.index), "index must be below slices_total"));
            }
            slice.validate()?;
            previous = Some(slice.index);
        }
        self.claim.validate()?;
        check_at_most("nonce bytes", MAX_NONCE_BYTES, self.nonce.len())?;
        if self.nonce.len() < MIN_NONCE_BYTES {
            return Err(invalid("nonce", "must not be empty"));
        }
        check_at_most("audience bytes", MAX_AUDIENCE_BYTES, self.audience.len())?;
        check_field_element("input_commitment", &self.input_commitment)
    }

    /// The postcard body (the derived `Serialize` form in a binary format).
    fn encode_body(&self) -> Vec<u8> {
        // Every sequence in the bundle has a known length and no field serializes fallibly, so postcard
        // cannot fail here.
        postcard::to_stdvec(self).expect("a proof bundle always serializes")
    }
}

impl SliceProof {
    fn validate(&self) -> Result<(), BundleError> {
        let index = self.index;
        for (side, commitments) in [("input", &self.input_commitments), ("output", &self.output_commitments)] {
            check_at_most(format!("slice {index} {side} commitments"), MAX_BOUNDARY_COMMITMENTS, commitments.len())?;
            for (position, commitment) in commitments.iter().enumerate() {
                check_field_element(format!("slice {index} {side} commitment {position}"), commitment)?;
            }
        }
        check_at_most(format!("slice {index} proof bytes"), MAX_PROOF_BYTES, self.proof.len())
    }
}

impl Claim {
    fn validate(&self) -> Result<(), BundleError> {
        let Claim::Output { values, shape } = self else { return Ok(()) };
        check_at_most("output claim values", MAX_OUTPUT_VALUES, values.len())?;
        check_at_most("output claim shape rank", MAX_SHAPE_RANK, shape.len())?;
        let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d as usize));
        if elements != Some(values.len()) {
            return Err(invalid("output claim", "the shape's element count must equal the number of values"));
        }
        Ok(())
    }
}

/// Checks the header and returns the body: the declared body length must be within the size limit and
/// match the input exactly.
fn split_header(bytes: &[u8]) -> Result<&[u8], BundleError> {
    let available = bytes.len();
    // A prefix of the magic is a truncated bundle; anything else is not a bundle at all.
    if bytes.iter().zip(MAGIC).any(|(a, b)| a != b) {
        return Err(BundleError::BadMagic);
    }
    let (header, body) =
        bytes.split_first_chunk::<HEADER_LEN>().ok_or(BundleError::Truncated { needed: HEADER_LEN, available })?;
    let found = u16::from_le_bytes([header[8], header[9]]);
    if found != VERSION {
        return Err(BundleError::UnsupportedVersion { found, supported: VERSION });
    }
    let body_len = u32::from_le_bytes([header[10], header[11], header[12], header[13]]) as usize;
    if body_len > MAX_BUNDLE_BYTES - HEADER_LEN {
        let actual = body_len.saturating_add(HEADER_LEN);
        return Err(BundleError::TooLarge { what: "bundle bytes".into(), limit: MAX_BUNDLE_BYTES, actual });
    }
    if body.len() < body_len {
        return Err(BundleError::Truncated { needed: HEADER_LEN + body_len, available });
    }
    if body.len() > body_len {
        return Err(BundleError::TrailingBytes { extra: body.len() - body_len });
    }
    Ok(body)
}

fn check_at_most(what: impl Into<String>, limit: usize, actual: usize) -> Result<(), BundleError> {
    if actual > limit {
        return Err(BundleError::TooLarge { what: what.into(), limit, actual });
    }
    Ok(())
}

fn check_field_element(what: impl Into<String>, bytes: &[u8; 32]) -> Result<(), BundleError> {
    fr_from_bytes(bytes).map(drop).map_err(|_| BundleError::NotAFieldElement { what: what.into() })
}

fn invalid(what: impl Into<String>, reason: &'static str) -> BundleError {
    BundleError::Invalid { what: what.into(), reason }
}

// ---- Serialization: raw bytes in binary formats (the body), hex in human-readable ones (JSON). ----

/// Lower-case hex of a byte string, written without an intermediate `String`.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A digest: 32 raw bytes in the body, [`Digest`]'s own hex form elsewhere.
pub(super) fn ser_digest<S: Serializer>(digest: &Digest, serializer: S) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        digest.serialize(serializer)
    } else {
        digest.as_bytes().serialize(serializer)
    }
}

/// A byte string: postcard `bytes` (varint length, raw bytes) in the body, hex elsewhere.
pub(super) fn ser_bytes<S: Serializer, B: AsRef<[u8]>>(bytes: &B, serializer: S) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        serializer.collect_str(&Hex(bytes.as_ref()))
    } else {
        serializer.serialize_bytes(bytes.as_ref())
    }
}

/// A commitment: 32 raw bytes in the body, hex elsewhere.
pub(crate) fn ser_commitment<S: Serializer>(commitment: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        serializer.collect_str(&Hex(commitment))
    } else {
        commitment.serialize(serializer)
    }
}

struct Commitment<'a>(&'a [u8; 32]);

impl Serialize for Commitment<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ser_commitment(self.0, serializer)
    }
}

/// A list of commitments: a sequence of [`ser_commitment`]s.
pub(super) fn ser_commitments<S: Serializer>(list: &[[u8; 32]], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(list.iter().map(Commitment))
}

/// [`Claim`] in the body: a postcard enum (variant index, then fields). [`WireClaim`] must mirror it.
#[derive(Serialize)]
enum ClaimBody<'a> {
    Output { values: &'a [i64], shape: &'a [u32] },
    Argmax { index: u32 },
    AgeAtLeast { threshold_quarters: u32, holds: bool },
}

/// [`Claim`] in human-readable formats: tagged by `kind`, like `veil_core::claim::ClaimSpec`.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ClaimText<'a> {
    Output { values: &'a [i64], shape: &'a [u32] },
    Argmax { index: u32 },
    AgeAtLeast { threshold_quarters: u32, holds: bool },
}

impl Serialize for Claim {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let human = serializer.is_human_readable();
        match *self {
            Claim::Output { ref values, ref shape } if human => {
                ClaimText::Output { values, shape }.serialize(serializer)
            }
            Claim::Output { ref values, ref shape } => ClaimBody::Output { values, shape }.serialize(serializer),
            Claim::Argmax { index } if human => ClaimText::Argmax { index }.serialize(serializer),
            Claim::Argmax { index } => ClaimBody::Argmax { index }.serialize(serializer),
            Claim::AgeAtLeast { threshold_quarters, holds } if human => {
                ClaimText::AgeAtLeast { threshold_quarters, holds }.serialize(serializer)
            }
            Claim::AgeAtLeast { threshold_quarters, holds } => {
                ClaimBody::AgeAtLeast { threshold_quarters, holds }.serialize(serializer)
            }
        }
    }
}

// ---- Decoding: wire types mirroring the `Serialize` forms above, field for field. ----

#[derive(Deserialize)]
struct WireBundle<'a> {
    model: [u8; 32],
    slices_total: u32,
    #[serde(borrow)]
    slices: Capped<WireSlice<'a>, MAX_SLICES>,
    claim: WireClaim,
    nonce: &'a [u8],
    audience: &'a str,
    input_commitment: [u8; 32],
}

#[derive(Deserialize)]
struct WireSlice<'a> {
    index: u32,
    vk_digest: [u8; 32],
    input_commitments: Capped<[u8; 32], MAX_BOUNDARY_COMMITMENTS>,
    output_commitments: Capped<[u8; 32], MAX_BOUNDARY_COMMITMENTS>,
    proof: &'a [u8],
}

#[derive(Deserialize)]
enum WireClaim {
    Output { values: Capped<i64, MAX_OUTPUT_VALUES>, shape: Capped<u32, MAX_SHAPE_RANK> },
    Argmax { index: u32 },
    AgeAtLeast { threshold_quarters: u32, holds: bool },
}

impl<'a> WireBundle<'a> {
    /// Converts to a bundle, reporting sequences that were over their limit. Other limits are checked by
    /// [`ProofBundle::validate`]; byte strings are borrowed until here, so copying them allocates no more
    /// than the body's length.
    fn into_bundle(self) -> Result<ProofBundle, BundleError> {
        let slices =
            self.slices.into_vec("slices")?.into_iter().map(WireSlice::into_slice).collect::<Result<Vec<_>, _>>()?;
        Ok(ProofBundle {
            model: Digest::from_bytes(self.model),
            slices_total: self.slices_total,
            slices,
            claim: self.claim.into_claim()?,
            nonce: self.nonce.to_vec(),
            audience: self.audience.to_owned(),
            input_commitment: self.input_commitment,
        })
    }
}

impl WireSlice<'_> {
    fn into_slice(self) -> Result<SliceProof, BundleError> {
        let index = self.index;
        Ok(SliceProof {
            index,
            vk_digest: Digest::from_bytes(self.vk_digest),
            input_commitments: self.input_commitments.into_vec(format!("slice {index} input commitments"))?,
            output_commitments: self.output_commitments.into_vec(format!("slice {index} output commitments"))?,
            proof: self.proof.to_vec(),
        })
    }
}

impl WireClaim {
    fn into_claim(self) -> Result<Claim, BundleError> {
        Ok(match self {
            WireClaim::Output { values, shape } => Claim::Output {
                values: values.into_vec("output claim values")?,
                shape: shape.into_vec("output claim shape rank")?,
            },
            WireClaim::Argmax { index } => Claim::Argmax { index },
            WireClaim::AgeAtLeast { threshold_quarters, holds } => Claim::AgeAtLeast { threshold_quarters, holds },
        })
    }
}

/// A decoded sequence that keeps at most `LIMIT` elements and counts the rest.
///
/// Postcard gives a sequence's claimed length up front; serde's `Vec` trusts it for up to 1 MiB of
/// preallocation. This preallocates at most [`PREALLOC_BYTES`], so memory follows the elements actually
/// decoded, and never holds more than `LIMIT` of them however many the input has.
struct Capped<T, const LIMIT: usize> {
    items: Vec<T>,
    len: usize,
}

impl<T, const LIMIT: usize> Capped<T, LIMIT> {
    fn into_vec(self, what: impl Into<String>) -> Result<Vec<T>, BundleError> {
        check_at_most(what, LIMIT, self.len)?;
        Ok(self.items)
    }
}

impl<'de, T: Deserialize<'de>, const LIMIT: usize> Deserialize<'de> for Capped<T, LIMIT> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(CappedVisitor::<T, LIMIT>(PhantomData))
    }
}

struct CappedVisitor<T, const LIMIT: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const LIMIT: usize> Visitor<'de> for CappedVisitor<T, LIMIT> {
    type Value = Capped<T, LIMIT>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let ahead = (PREALLOC_BYTES / size_of::<T>().max(1)).min(LIMIT);
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(ahead));
        let mut len = 0usize;
        // Elements past the limit are decoded (postcard cannot skip them) and dropped one at a time.
        while let Some(item) = seq.next_element::<T>()? {
            if items.len() < LIMIT {
                items.push(item);
            }
            len += 1;
        }
        Ok(Capped { items, len })
    }
}
