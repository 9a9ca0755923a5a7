//! SHA-256 content digests with a canonical lower-case hex form.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::str::FromStr;

/// A SHA-256 digest naming a model file, a compiled artifact or a key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestParseError {
    /// Not 64 characters long.
    #[error("a digest is 64 hex characters, got {0}")]
    Length(usize),
    /// A character that is not a hex digit.
    #[error("invalid hex character {character:?} at offset {offset}")]
    Character {
        /// The character.
        character: char,
        /// Its offset.
        offset: usize,
    },
}

impl Digest {
    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Wraps raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;

    /// Parses 64 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            return Err(DigestParseError::Length(s.chars().count()));
        }
        let mut out = [0u8; 32];
        for (offset, character) in s.char_indices() {
            let nibble = character.to_digit(16).ok_or(DigestParseError::Character { character, offset })? as u8;
            out[offset / 2] |= if offset % 2 == 0 { nibble << 4 } else { nibble };
        }
        Ok(Self(out))
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_known_vector_and_round_trips() {
        let d = Digest::of(b"abc");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(d.to_string(), hex);
        assert_eq!(hex.parse::<Digest>(), Ok(d));
        assert_eq!(hex.to_uppercase().parse::<Digest>(), Ok(d));
    }

    #[test]
    fn malformed_digests_are_typed_errors() {
        assert_eq!("abc".parse::<Digest>(), Err(DigestParseError::Length(3)));
        let bad = format!("{}g", "0".repeat(63));
        assert_eq!(bad.parse::<Digest>(), Err(DigestParseError::Character { character: 'g', offset: 63 }));
        let multibyte = format!("{}é", "0".repeat(62));
        assert!(multibyte.parse::<Digest>().is_err());
    }
}
