//! The integer rounding rules of Veil's fixed-point semantics. Every rescaling in the reference goes
//! through these functions, so a circuit has exactly these relations to constrain.

/// `⌊(x + 2^(s−1)) / 2^s⌋`: division by `2^s` rounding half up (toward +∞). Identity for `s = 0`.
///
/// In a circuit: `x + 2^(s−1) = y·2^s + r` with `0 ≤ r < 2^s`.
pub fn round_shift(x: i128, s: u32) -> i128 {
    if s == 0 {
        x
    } else {
        (x + (1i128 << (s - 1))) >> s
    }
}

/// `⌊(2n + d) / (2d)⌋` for `d > 0`: `n / d` rounded half up.
///
/// In a circuit: `2n + d = y·2d + r` with `0 ≤ r < 2d`.
pub fn round_div(n: i128, d: i128) -> i128 {
    debug_assert!(d > 0, "round_div needs a positive divisor");
    (2 * n + d).div_euclid(2 * d)
}

/// Moves `x` from `from` fractional bits to `to`: an exact left shift, or [`round_shift`].
pub fn rescale(x: i128, from: i32, to: i32) -> i128 {
    if to >= from {
        x << (to - from) as u32
    } else {
        round_shift(x, (from - to) as u32)
    }
}

/// Saturates `x` to the signed range of `bits` bits, `[−2^(bits−1), 2^(bits−1) − 1]`.
pub fn clamp_bits(x: i128, bits: u32) -> i64 {
    let limit = 1i128 << (bits - 1);
    x.clamp(-limit, limit - 1) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_shift_rounds_half_up() {
        assert_eq!(round_shift(5, 1), 3); // 2.5 → 3
        assert_eq!(round_shift(-5, 1), -2); // −2.5 → −2
        assert_eq!(round_shift(-6, 2), -1); // −1.5 → −1
        assert_eq!(round_shift(7, 0), 7);
    }

    #[test]
    fn round_div_rounds_half_up() {
        assert_eq!(round_div(7, 2), 4); // 3.5 → 4
        assert_eq!(round_div(-7, 2), -3); // −3.5 → −3
        assert_eq!(round_div(10, 4), 3); // 2.5 → 3
        assert_eq!(round_div(9, 4), 2); // 2.25 → 2
    }

    #[test]
    fn rescale_and_clamp() {
        assert_eq!(rescale(3, 2, 4), 12);
        assert_eq!(rescale(13, 4, 2), 3); // 3.25 → 3
        assert_eq!(clamp_bits(200, 8), 127);
        assert_eq!(clamp_bits(-200, 8), -128);
    }
}
