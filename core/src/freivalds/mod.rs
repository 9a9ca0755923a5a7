//! Freivalds-style checks of linear layers: the arithmetic Veil's circuits constrain so that a convolution
//! costs rows in proportion to `|X| + |W| + |Y|` instead of its multiply-accumulates.
//!
//! For a convolution with accumulators `Y[o, oy, ox] = b[o] + Σ W[o, c, ky, kx] · Xp[c, oy·sy + ky·dy,
//! ox·sx + kx·dx]` (`Xp` the zero-padded input), draw challenges `α, β, γ` *after* `X`, `W` and the full-width
//! accumulators `Y` are fixed, and check
//!
//! `Σ α^o β^oy γ^ox Y[o,oy,ox] = Σ_o α^o b[o]·B·G + Σ_{c,ky,kx} U[c,ky,kx] · Σ_o α^o W[o,c,ky,kx]`
//!
//! with `B = Σ β^oy`, `G = Σ γ^ox` and `U[c,ky,kx] = Σ β^oy γ^ox Xp[c, oy·sy + ky·dy, ox·sx + kx·dx]`. Each
//! `U` is a rectangle sum of the input plane weighted by `β^a γ^b` on the sub-grid of one stride residue, so
//! one pass of 2-D prefix sums over `Xp` yields every `U` with four reads: `O(|Xp|)` work, plus `O(|W|)` for
//! the weight term and `O(|Y|)` for the left side. If `Y` differs from the true accumulators anywhere, both
//! sides are distinct polynomials in `(α, β, γ)` of total degree below `O + OH + OW`, so a random point
//! satisfies the equation with probability at most `(O + OH + OW) / |F|` (Schwartz–Zippel). The argument needs
//! `Y` fixed before the challenges; requantized outputs are then tied to `Y` element-wise by range-checked
//! remainders, so no rounding slack is left to tune after the challenges are seen (see the tests).

mod field;
mod linear;

pub use field::{CheckField, Goldilocks, GOLDILOCKS_P};
pub use linear::{check_linear, check_requant};

use crate::tensor::Tensor;

/// Geometry of a (possibly grouped, strided, dilated, padded) 2-D convolution over one NCHW image.
#[derive(Clone, Debug)]
pub struct ConvGeometry {
    /// Strides `[h, w]`.
    pub strides: [usize; 2],
    /// Padding `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Dilations `[h, w]`.
    pub dilations: [usize; 2],
    /// Groups.
    pub group: usize,
}

/// The challenges of one check.
#[derive(Clone, Copy, Debug)]
pub struct Challenges<F> {
    /// Weights output channels.
    pub alpha: F,
    /// Weights output rows.
    pub beta: F,
    /// Weights output columns.
    pub gamma: F,
}

/// `[x^0, x^1, …, x^(n−1)]`.
fn powers<F: CheckField>(x: F, n: usize) -> Vec<F> {
    std::iter::successors(Some(F::ONE), |p| Some(*p * x)).take(n).collect()
}

/// Checks claimed convolution accumulators `acc` (`[1, O, OH, OW]`) against input `x` (`[1, C, H, W]`),
/// weights `[O, C/g, KH, KW]` and bias, at one point. True when the Freivalds equation holds.
pub fn check_conv<F: CheckField>(
    x: &Tensor<i64>,
    weight: &Tensor<i64>,
    bias: &[i64],
    acc: &Tensor<i64>,
    geometry: &ConvGeometry,
    challenges: Challenges<F>,
) -> bool {
    let [o_count, cin_g, kh, kw] = [weight.shape()[0], weight.shape()[1], weight.shape()[2], weight.shape()[3]];
    let [oh, ow] = [acc.shape()[2], acc.shape()[3]];
    let (ra, rb, rg) = (powers(challenges.alpha, o_count), powers(challenges.beta, oh), powers(challenges.gamma, ow));
    // Left side: Σ α^o β^oy γ^ox Y.
    let mut lhs = F::ZERO;
    for (i, &y) in acc.data().iter().enumerate() {
        let (o, rest) = (i / (oh * ow), i % (oh * ow));
        lhs = lhs + ra[o] * rb[rest / ow] * rg[rest % ow] * F::from_i64(y);
    }
    let (sum_b, sum_g) = (rb.iter().fold(F::ZERO, |a, &v| a + v), rg.iter().fold(F::ZERO, |a, &v| a + v));
    let mut rhs = bias.iter().zip(&ra).fold(F::ZERO, |a, (&b, &r)| a + r * F::from_i64(b)) * sum_b * sum_g;
    let windows = WindowSums::new(x, geometry, challenges.beta, challenges.gamma, [oh, ow]);
    let cout_g = o_count / geometry.group;
    for (o, &alpha_o) in ra.iter().enumerate() {
        let group = o / cout_g;
        for c in 0..cin_g {
            for ky in 0..kh {
                for kx in 0..kw {
                    let w = weight.data()[((o * cin_g + c) * kh + ky) * kw + kx];
                    if w != 0 {
                        rhs = rhs + alpha_o * F::from_i64(w) * windows.get(group * cin_g + c, [ky, kx]);
                    }
                }
            }
        }
    }
    lhs == rhs
}

/// The window sums `U[c, ky, kx]` of one input image from 2-D prefix sums of `β^a γ^b · Xp` on each stride
/// residue's sub-grid.
struct WindowSums<F> {
    geometry: ConvGeometry,
    out: [usize; 2],
    /// Per channel and residue `(ρy, ρx)`: prefix sums `P[a][b] = Σ_{a'<a, b'<b} β^a' γ^b' Z[a'][b']` where
    /// `Z[a][b] = Xp[a·sy + ρy][b·sx + ρx]`, as `(rows + 1) × (cols + 1)` row-major.
    prefix: Vec<Vec<F>>,
    dims: Vec<[usize; 2]>,
    channels: usize,
    inv_beta: F,
    inv_gamma: F,
}

impl<F: CheckField> WindowSums<F> {
    fn new(x: &Tensor<i64>, g: &ConvGeometry, beta: F, gamma: F, out: [usize; 2]) -> Self {
        let [channels, h, w] = [x.shape()[1], x.shape()[2], x.shape()[3]];
        let (hp, wp) = (h + g.pads[0] + g.pads[2], w + g.pads[1] + g.pads[3]);
        let [sy, sx] = g.strides;
        let mut prefix = Vec::with_capacity(channels * sy * sx);
        let mut dims = Vec::with_capacity(sy * sx);
        for c in 0..channels {
            for ry in 0..sy {
                for rx in 0..sx {
                    let rows = (hp + sy - 1 - ry) / sy;
                    let cols = (wp + sx - 1 - rx) / sx;
                    let (pb, pg) = (powers(beta, rows), powers(gamma, cols));
                    let mut p = vec![F::ZERO; (rows + 1) * (cols + 1)];
                    for a in 0..rows {
                        let mut row_sum = F::ZERO;
                        for b in 0..cols {
                            let (iy, ix) = (
                                (a * sy + ry) as isize - g.pads[0] as isize,
                                (b * sx + rx) as isize - g.pads[1] as isize,
                            );
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                let v = x.data()[(c * h + iy as usize) * w + ix as usize];
                                row_sum = row_sum + pb[a] * pg[b] * F::from_i64(v);
                            }
                            p[(a + 1) * (cols + 1) + b + 1] = p[a * (cols + 1) + b + 1] + row_sum;
                        }
                    }
                    prefix.push(p);
                    if c == 0 {
                        dims.push([rows, cols]);
                    }
                }
            }
        }
        Self { geometry: g.clone(), out, prefix, dims, channels, inv_beta: beta.invert(), inv_gamma: gamma.invert() }
    }

    /// `U[c, ky, kx] = Σ_{oy, ox} β^oy γ^ox Xp[c, oy·sy + ky·dy, ox·sx + kx·dx]`.
    fn get(&self, c: usize, k: [usize; 2]) -> F {
        let [sy, sx] = self.geometry.strides;
        let (offset_y, offset_x) = (k[0] * self.geometry.dilations[0], k[1] * self.geometry.dilations[1]);
        let (ry, rx, qy, qx) = (offset_y % sy, offset_x % sx, offset_y / sy, offset_x / sx);
        let residue = ry * sx + rx;
        let [rows, cols] = self.dims[residue];
        let p = &self.prefix[(c * sy * sx) + residue];
        debug_assert!(c < self.channels && qy + self.out[0] <= rows && qx + self.out[1] <= cols);
        let at = |a: usize, b: usize| p[a * (cols + 1) + b];
        let (a0, a1, b0, b1) = (qy, qy + self.out[0], qx, qx + self.out[1]);
        let rect = at(a1, b1) - at(a0, b1) - at(a1, b0) + at(a0, b0);
        rect * self.inv_beta.pow(qy as u64) * self.inv_gamma.pow(qx as u64)
    }
}
