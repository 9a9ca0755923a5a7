//! Which optional gate families a slice's constraint system carries.
//!
//! halo2 evaluates every gate on every row of the quotient's domain, whether or not a selector is on there, so
//! a gate no row uses still costs each proof its share of the quotient (about 23 ms a constraint for a
//! `k = 16` proof on a 2-core machine). A slice's constraint system therefore has only the families its layout
//! uses: the trace records them ([`GateSet::of`]) and the verifying artifact carries them, so a verifier
//! rebuilds exactly the prover's constraint system. Gates every slice uses (Horner chains, dot products,
//! packing, Poseidon's first lane, the lookup argument) are not optional.

use serde::{Deserialize, Serialize};

/// A set of optional gate families, as bits. Deserializing refuses bits that name no family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct GateSet(u8);

impl TryFrom<u8> for GateSet {
    type Error = String;

    fn try_from(bits: u8) -> Result<Self, String> {
        GateSet::from_bits(bits).ok_or_else(|| format!("gate set {bits:#04x} names an unknown gate family"))
    }
}

impl From<GateSet> for u8 {
    fn from(set: GateSet) -> u8 {
        set.0
    }
}

impl GateSet {
    /// `div`: one rounded division with a remainder of up to three limbs.
    pub const DIV: GateSet = GateSet(1);
    /// `div2`: two rounded divisions a row.
    pub const DIV2: GateSet = GateSet(1 << 1);
    /// `div4`: four rounded divisions a row (wide rows only).
    pub const DIV4: GateSet = GateSet(1 << 2);
    /// `bound`: the remainder bound of a divisor that is not a power of two.
    pub const BOUND: GateSet = GateSet(1 << 3);
    /// `sum` and `sum_start`: running sums.
    pub const SUM: GateSet = GateSet(1 << 4);
    /// `max`: pairwise maxima.
    pub const MAX: GateSet = GateSet(1 << 5);
    /// Poseidon's second lane (wide rows only): boundary commitments hash their two halves side by side.
    pub const SECOND_LANE: GateSet = GateSet(1 << 6);
    /// Every optional family.
    pub const ALL: GateSet = GateSet((1 << 7) - 1);
    /// No optional family.
    pub const NONE: GateSet = GateSet(0);

    /// The set from its bits; `None` if a bit names no family.
    pub fn from_bits(bits: u8) -> Option<GateSet> {
        (bits & !Self::ALL.0 == 0).then_some(GateSet(bits))
    }

    /// The set's bits.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether every family of `other` is in the set.
    pub fn contains(self, other: GateSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// The families of both sets.
    pub fn union(self, other: GateSet) -> GateSet {
        GateSet(self.0 | other.0)
    }

    /// The families in both sets.
    pub fn intersection(self, other: GateSet) -> GateSet {
        GateSet(self.0 & other.0)
    }

    /// The families of the set that are not in `other`.
    pub fn without(self, other: GateSet) -> GateSet {
        GateSet(self.0 & !other.0)
    }

    /// The union of `sets`.
    pub fn of(sets: impl IntoIterator<Item = GateSet>) -> GateSet {
        sets.into_iter().fold(GateSet::NONE, GateSet::union)
    }
}

/// Every optional family.
impl Default for GateSet {
    fn default() -> Self {
        GateSet::ALL
    }
}

#[cfg(test)]
mod tests {
    use super::GateSet;

    #[test]
    fn bits_round_trip_and_unknown_bits_are_refused() {
        for bits in 0..=GateSet::ALL.bits() {
            assert_eq!(GateSet::from_bits(bits).map(GateSet::bits), Some(bits));
        }
        assert_eq!(GateSet::from_bits(GateSet::ALL.bits() + 1), None);
        assert_eq!(GateSet::from_bits(0x80), None);
    }

    #[test]
    fn decoding_refuses_unknown_bits() {
        let known = postcard::to_allocvec(&GateSet::ALL).unwrap_or_default();
        assert_eq!(postcard::from_bytes::<GateSet>(&known).ok(), Some(GateSet::ALL));
        for bits in [GateSet::ALL.bits() + 1, 0x80, 0xff] {
            assert!(postcard::from_bytes::<GateSet>(&[bits]).is_err(), "{bits:#04x}");
        }
    }

    #[test]
    fn set_operations() {
        let s = GateSet::of([GateSet::DIV, GateSet::MAX]);
        assert!(s.contains(GateSet::DIV) && s.contains(GateSet::MAX) && !s.contains(GateSet::SUM));
        assert_eq!(s.without(GateSet::MAX), GateSet::DIV);
        assert!(GateSet::ALL.contains(s) && !s.contains(GateSet::ALL));
    }
}
