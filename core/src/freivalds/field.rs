//! The field interface the Freivalds checks are written against, and the Goldilocks field
//! (p = 2^64 − 2^32 + 1) used to test them natively. The circuits run the same arithmetic over BN254's
//! scalar field, which will implement [`CheckField`] as well.

use std::ops::{Add, Mul, Sub};

/// A prime field, as far as the checks need one.
pub trait CheckField:
    Copy + PartialEq + std::fmt::Debug + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self>
{
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
    /// The field element of a signed integer.
    fn from_i64(v: i64) -> Self;
    /// The multiplicative inverse (of a non-zero element).
    fn invert(self) -> Self;

    /// `self^e`.
    fn pow(self, mut e: u64) -> Self {
        let (mut base, mut acc) = (self, Self::ONE);
        while e > 0 {
            if e & 1 == 1 {
                acc = acc * base;
            }
            base = base * base;
            e >>= 1;
        }
        acc
    }
}

/// An element of the Goldilocks field `p = 2^64 − 2^32 + 1`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Goldilocks(u64);

/// The Goldilocks modulus.
pub const GOLDILOCKS_P: u64 = 0xffff_ffff_0000_0001;

impl Goldilocks {
    /// The element `v mod p`.
    pub fn new(v: u64) -> Self {
        Self(v % GOLDILOCKS_P)
    }
}

impl Add for Goldilocks {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self(((self.0 as u128 + o.0 as u128) % GOLDILOCKS_P as u128) as u64)
    }
}

impl Sub for Goldilocks {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self(((self.0 as u128 + GOLDILOCKS_P as u128 - o.0 as u128) % GOLDILOCKS_P as u128) as u64)
    }
}

impl Mul for Goldilocks {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        Self(((self.0 as u128 * o.0 as u128) % GOLDILOCKS_P as u128) as u64)
    }
}

impl CheckField for Goldilocks {
    const ZERO: Self = Self(0);
    const ONE: Self = Self(1);

    fn from_i64(v: i64) -> Self {
        let m = (v as i128).rem_euclid(GOLDILOCKS_P as i128);
        Self(m as u64)
    }

    fn invert(self) -> Self {
        self.pow(GOLDILOCKS_P - 2)
    }
}
