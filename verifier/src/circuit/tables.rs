//! The lookup table every slice circuit carries: rows `(tag, x, y)` grouped into families by `tag`.
//!
//! A lookup slot is a fixed `tag` column and two advice columns `(x, y)`; every usable row of every slot must
//! be a table row. Rows that use no lookup leave all three at zero, and `(0, 0, 0)` is always in the table.
//! Because lookup inputs carry no selector, the lookup argument's gates have degree at most 5 with their
//! selectors (`logup.rs`), the circuit's maximum.

use halo2_proofs::halo2curves::bn256::Fr;

/// The widest range-check limb: a remainder of `b` bits is split into `⌈b / MAX_LIMB_BITS⌉` limbs of equal
/// width, so its tables stay within `2^MAX_LIMB_BITS` rows.
pub const MAX_LIMB_BITS: u32 = 15;

/// A family of table rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Family {
    /// `x ∈ [0, 2^bits)`, `y = 0` (`bits ≤ MAX_LIMB_BITS`; `bits = 0` admits only zero).
    Range {
        /// Width.
        bits: u32,
    },
    /// `x ∈ [−2^(wide−1), 2^(wide−1))`, `y = clamp(x)` to `bits` signed bits: saturation after a division.
    Clamp {
        /// Output width.
        bits: u32,
        /// Input width (`> bits`); a quotient outside it cannot be proved.
        wide: u32,
    },
    /// `x ∈ [−2^(wide−1), 2^(wide−1))`, `y = max(clamp(x), 0)`: saturation after a division fused with the
    /// ReLU that reads it.
    ClampRelu {
        /// Output width of the clamp.
        bits: u32,
        /// Input width (`> bits`).
        wide: u32,
    },
    /// `x ∈ [−2^(bits−1), 2^(bits−1))`, `y = max(x, 0)`.
    Relu {
        /// Input width.
        bits: u32,
    },
    /// `x ∈ [0, 2^bits)`, `y = exp[x]` (0 past the end of `exp`): softmax's exponential of `max − z`.
    Exp {
        /// Domain width.
        bits: u32,
        /// Index into the circuit's exp tables.
        table: u32,
    },
}

impl Family {
    /// The tag value in the fixed `tag` column.
    pub fn tag(&self) -> u64 {
        match *self {
            Family::Range { bits } => 1 + bits as u64,
            Family::Clamp { bits, wide } => 1000 + 100 * wide as u64 + bits as u64,
            Family::Relu { bits } => 200 + bits as u64,
            Family::ClampRelu { bits, wide } => 5000 + 100 * wide as u64 + bits as u64,
            Family::Exp { bits, table } => 10_000 + 100 * table as u64 + bits as u64,
        }
    }

    /// Every `(x, y)` pair of the family, as integers.
    pub fn rows(&self, exp_tables: &[Vec<i64>]) -> Vec<(i64, i64)> {
        let signed = |bits: u32| -(1i64 << (bits - 1))..(1i64 << (bits - 1));
        match *self {
            Family::Range { bits } => (0..1i64 << bits).map(|x| (x, 0)).collect(),
            Family::Clamp { bits, wide } => {
                let limit = 1i64 << (bits - 1);
                signed(wide).map(|x| (x, x.clamp(-limit, limit - 1))).collect()
            }
            Family::ClampRelu { bits, wide } => {
                let limit = 1i64 << (bits - 1);
                signed(wide).map(|x| (x, x.clamp(-limit, limit - 1).max(0))).collect()
            }
            Family::Relu { bits } => signed(bits).map(|x| (x, x.max(0))).collect(),
            Family::Exp { bits, table } => {
                let exp = exp_tables.get(table as usize).map(Vec::as_slice).unwrap_or(&[]);
                (0..1i64 << bits).map(|x| (x, exp.get(x as usize).copied().unwrap_or(0))).collect()
            }
        }
    }
}

/// A signed integer as a field element.
pub fn fr_i64(v: i64) -> Fr {
    if v >= 0 {
        Fr::from(v as u64)
    } else {
        -Fr::from(v.unsigned_abs())
    }
}

/// A signed 128-bit integer as a field element.
pub fn fr_i128(v: i128) -> Fr {
    let lo =
        |m: u128| Fr::from((m & u64::MAX as u128) as u64) + Fr::from((m >> 64) as u64) * Fr::from(1u64 << 32).square();
    if v >= 0 {
        lo(v as u128)
    } else {
        -lo(v.unsigned_abs())
    }
}
