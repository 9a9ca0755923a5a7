//! The custom gates. Each is named so `MockProver` failures point at the relation that broke.

use super::{GateSet, Selectors, SliceConfig, SliceParams, Width, DIV_LANES, HW, SLOT_X, SLOT_Y};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Advice, Column, ConstraintSystem, Expression, Fixed, VirtualCells};
use halo2_proofs::poly::Rotation;

/// Allocates the selectors. halo2 compresses simple selectors greedily in allocation order, so the weight
/// track's two (on every row of the track, never on the same row) come first: they then share one column.
/// Other orders cost gender-v1 or age-v1 a thirteenth selector column. The optional families' selectors exist
/// with their family ([`GateSet`]; `div4` in wide rows only).
pub(super) fn selectors(meta: &mut ConstraintSystem<Fr>, params: SliceParams) -> Selectors {
    let gates = params.gates();
    let wide = params.width() == Width::Wide;
    let optional = |meta: &mut ConstraintSystem<Fr>, on: bool| on.then(|| meta.selector());
    Selectors {
        horner_w: meta.selector(),
        horner_w_start: meta.selector(),
        horner_z: meta.selector(),
        horner_a: meta.selector(),
        power: meta.selector(),
        dot: meta.selector(),
        div: optional(meta, gates.contains(GateSet::DIV)),
        div2: optional(meta, gates.contains(GateSet::DIV2)),
        div4: optional(meta, wide && gates.contains(GateSet::DIV4)),
        bound: optional(meta, gates.contains(GateSet::BOUND)),
        sum: optional(meta, gates.contains(GateSet::SUM)),
        max: optional(meta, gates.contains(GateSet::MAX)),
        pack: meta.selector(),
        arith: meta.selector(),
    }
}

/// A remainder in limbs (the `x` operands of slots 1, 2 and 3), `x1 + base·x2 + base2·x3`, with `base = f5`
/// and `base2 = f4` fixed per row (`base2 = 0` when slot 3 holds a fused ReLU rather than a third limb).
fn remainder(
    m: &mut VirtualCells<'_, Fr>,
    lk: &[Column<Advice>],
    f: [Column<Fixed>; super::F],
    rot: Rotation,
) -> Expression<Fr> {
    m.query_advice(lk[SLOT_X[1]], rot)
        + m.query_advice(lk[SLOT_X[2]], rot) * m.query_fixed(f[5], rot)
        + m.query_advice(lk[SLOT_X[3]], rot) * m.query_fixed(f[4], rot)
}

/// Slot `j`'s `y` operand column (slots 0 and 3 have one).
fn slot_y(lk: &[Column<Advice>], j: usize) -> Column<Advice> {
    lk[SLOT_Y[j].unwrap_or(SLOT_X[j])]
}

fn constant(v: u64) -> Expression<Fr> {
    Expression::Constant(Fr::from(v))
}

/// Creates every custom gate on `c`'s columns.
pub(super) fn create(meta: &mut ConstraintSystem<Fr>, c: &SliceConfig) {
    let (s, h, f) = (c.s, c.h, c.f);
    let (lk, g) = (&c.lk[..], &c.g[..]);
    let (zc, ac) = (c.z, c.alpha);
    let lanes = c.width.y_slots();
    // Every chain below (a Horner chain, a power chain, a dot product, a running sum, packing)
    // has its selector on each of its rows and one gate, on the row it constrains: `E − carry·P = 0`, where
    // `P` reads the previous row and the fixed column `carry` is 0 on a chain's first row and 1 on the others
    // (halo2 adds no selectors, so a start and a step selector cannot share a gate; a column of its own costs
    // less than a second gate). `E = 0` is then the start's relation and `E = P` the step's.
    let carry = c.carry;
    // Two values a row in each lane: `h = h(prev)·z² + a·z + b` with `(a, b) = (g[2i], g[2i + 1])`.
    meta.create_gate("horner_z", |m| {
        let q = m.query_selector(s.horner_z);
        let z = m.query_challenge(zc);
        let carry = m.query_fixed(carry, Rotation::cur());
        (0..c.width.horner_lanes())
            .map(|i| {
                let cur = m.query_advice(h[i], Rotation::cur());
                let prev = m.query_advice(h[i], Rotation::prev());
                let (a, b) = (m.query_advice(g[2 * i], Rotation::cur()), m.query_advice(g[2 * i + 1], Rotation::cur()));
                q.clone() * (cur - a * z.clone() - b - carry.clone() * prev * z.clone() * z.clone())
            })
            .collect::<Vec<_>>()
    });
    // The weight track: one chain of `W` weights a row in `h[HW]`, `Σ_j w_j·α^(W−1−j)` in Horner form, beside
    // the main track's chains (so with start and step selectors of its own rather than `carry`). Written
    // against the previous row, so `horner_w` is off on a chain's first row and the two weight selectors never
    // meet: selector compression then gives them one fixed column.
    let wt = c.wt.clone();
    let weights_at = |m: &mut VirtualCells<'_, Fr>, rot: Rotation, a: &Expression<Fr>| {
        let first = m.query_fixed(wt[0], rot);
        wt[1..].iter().fold(first, |acc, col| acc * a.clone() + m.query_fixed(*col, rot))
    };
    meta.create_gate("horner_w", |m| {
        let q = m.query_selector(s.horner_w);
        let a = m.query_challenge(ac);
        let cur = m.query_advice(h[HW], Rotation::cur());
        let prev = m.query_advice(h[HW], Rotation::prev());
        let shift = (0..wt.len()).fold(prev, |e, _| e * a.clone());
        let term = weights_at(m, Rotation::cur(), &a);
        vec![q * (cur - shift - term)]
    });
    meta.create_gate("horner_w_start", |m| {
        let q = m.query_selector(s.horner_w_start);
        let a = m.query_challenge(ac);
        let term = weights_at(m, Rotation::cur(), &a);
        vec![q * (m.query_advice(h[HW], Rotation::cur()) - term)]
    });
    // `h1 = h1(prev)·α + h0`, starting from `h1 = h0`.
    meta.create_gate("horner_a", |m| {
        let q = m.query_selector(s.horner_a);
        let a = m.query_challenge(ac);
        let carry = m.query_fixed(carry, Rotation::cur());
        let cur = m.query_advice(h[1], Rotation::cur());
        let prev = m.query_advice(h[1], Rotation::prev());
        vec![q * (cur - m.query_advice(h[0], Rotation::cur()) - carry * prev * a)]
    });
    // `h0 = h0(prev)·z`, starting from `h0 = z`: `h0 = z·(carry·h0(prev) + 1 − carry)`.
    meta.create_gate("power", |m| {
        let q = m.query_selector(s.power);
        let z = m.query_challenge(zc);
        let carry = m.query_fixed(carry, Rotation::cur());
        let cur = m.query_advice(h[0], Rotation::cur());
        let prev = m.query_advice(h[0], Rotation::prev());
        vec![q * (cur - z * (carry.clone() * prev + constant(1) - carry))]
    });
    // Two dot products: `acc = acc(prev) + x·y`, starting from `acc = x·y`.
    meta.create_gate("dot", |m| {
        let q = m.query_selector(s.dot);
        let carry = m.query_fixed(carry, Rotation::cur());
        [0, 3]
            .map(|b| {
                let acc = m.query_advice(h[b + 2], Rotation::cur());
                let prev = m.query_advice(h[b + 2], Rotation::prev());
                let x = m.query_advice(h[b], Rotation::cur());
                let y = m.query_advice(h[b + 1], Rotation::cur());
                q.clone() * (acc - x * y - carry.clone() * prev)
            })
            .to_vec()
    });
    let remainder = |m: &mut VirtualCells<'_, Fr>, rot: Rotation| remainder(m, lk, f, rot);
    if let Some(sel) = s.div {
        meta.create_gate("div", |m| {
            let q = m.query_selector(sel);
            let cur = Rotation::cur();
            let shared = (2..g.len()).fold(m.query_advice(g[1], cur), |acc, i| acc + m.query_advice(g[i], cur));
            let num = m.query_advice(g[0], cur) * m.query_fixed(f[0], cur)
                + shared * m.query_fixed(f[1], cur)
                + m.query_fixed(f[2], cur);
            let quotient = m.query_advice(lk[0], cur) * m.query_fixed(f[3], cur);
            vec![q * (num - quotient - remainder(m, cur))]
        });
    }
    // One division lane of a shared row: `g[first]·f0 + (Σ g[shared])·f1 + f2 = x_q·f3 + x_r`.
    let lane =
        |m: &mut VirtualCells<'_, Fr>, first: usize, shared: std::ops::Range<usize>, (qs, rs): (usize, usize)| {
            let cur = Rotation::cur();
            let mut cells = shared.map(|i| m.query_advice(g[i], cur));
            let sum = cells.next().map(|c0| cells.fold(c0, |a, c| a + c));
            let num = m.query_advice(g[first], cur) * m.query_fixed(f[0], cur)
                + sum.map_or(constant(0), |sum| sum * m.query_fixed(f[1], cur))
                + m.query_fixed(f[2], cur);
            let quotient = m.query_advice(lk[SLOT_X[qs]], cur) * m.query_fixed(f[3], cur);
            num - quotient - m.query_advice(lk[SLOT_X[rs]], cur)
        };
    // Lane 0 reads the first half of `g` (g0..g5 wide, g0..g2 narrow), lane 1 the second; quotients in slots
    // 0 and 3, remainders in slots 1 and 2.
    let half = g.len() / 2;
    if let Some(sel) = s.div2 {
        meta.create_gate("div2", |m| {
            let q = m.query_selector(sel);
            (0..2)
                .map(|l| q.clone() * lane(m, l * half, l * half + 1..(l + 1) * half, DIV_LANES[l]))
                .collect::<Vec<_>>()
        });
    }
    // Lane l reads g[3l] and g[3l+1]; its slots exist in wide rows only.
    if let Some(div4) = s.div4 {
        meta.create_gate("div4", |m| {
            let q = m.query_selector(div4);
            (0..DIV_LANES.len())
                .map(|l| q.clone() * lane(m, 3 * l, 3 * l + 1..3 * l + 2, DIV_LANES[l]))
                .collect::<Vec<_>>()
        });
    }
    if let Some(sel) = s.bound {
        meta.create_gate("bound", |m| {
            let q = m.query_selector(sel);
            let gap = m.query_fixed(f[2], Rotation::next());
            vec![q * (remainder(m, Rotation::next()) - remainder(m, Rotation::cur()) - gap)]
        });
    }
    // Running sums in three lanes: `g[2l+1] = g[2l+1](prev) + g[2l]`, starting from `g[2l+1] = g[2l]`.
    if let Some(sel) = s.sum {
        meta.create_gate("sum", |m| {
            let q = m.query_selector(sel);
            let carry = m.query_fixed(carry, Rotation::cur());
            (0..g.len() / 2)
                .map(|l| {
                    let cur = m.query_advice(g[2 * l + 1], Rotation::cur());
                    let prev = m.query_advice(g[2 * l + 1], Rotation::prev());
                    q.clone() * (cur - m.query_advice(g[2 * l], Rotation::cur()) - carry.clone() * prev)
                })
                .collect::<Vec<_>>()
        });
    }
    if let Some(sel) = s.max {
        meta.create_gate("max", |m| {
            let q = m.query_selector(sel);
            let cur = Rotation::cur();
            lanes
                .iter()
                .copied()
                .enumerate()
                .flat_map(|(l, j)| {
                    let (a, b, out) = (
                        m.query_advice(g[3 * l], cur),
                        m.query_advice(g[3 * l + 1], cur),
                        m.query_advice(g[3 * l + 2], cur),
                    );
                    let (d, e) = (m.query_advice(lk[SLOT_X[j]], cur), m.query_advice(slot_y(lk, j), cur));
                    [q.clone() * (d - (a - b.clone())), q.clone() * (out - b - e)]
                })
                .collect::<Vec<_>>()
        });
    }
    // Packing reads each lane's `y`: a `Clamp` lookup makes it a `bits`-bit signed value whatever its `x`.
    // `g[l] = g[l](prev)·f4 + y_l + f5`, starting from `g[l] = y_l + f5`.
    meta.create_gate("pack", |m| {
        let q = m.query_selector(s.pack);
        let carry = m.query_fixed(carry, Rotation::cur());
        let (base, offset) = (m.query_fixed(f[4], Rotation::cur()), m.query_fixed(f[5], Rotation::cur()));
        lanes
            .iter()
            .copied()
            .enumerate()
            .map(|(l, j)| {
                let cur = m.query_advice(g[l], Rotation::cur());
                let prev = m.query_advice(g[l], Rotation::prev());
                let v = m.query_advice(slot_y(lk, j), Rotation::cur());
                q.clone() * (cur - v - offset.clone() - carry.clone() * prev * base.clone())
            })
            .collect::<Vec<_>>()
    });
    // One equation a row with its coefficients in the key, for the relations that hold on few rows (constants,
    // the claim): halo2 evaluates every constraint on every row, so a gate of their own would cost each proof
    // its constraints over the whole domain. Constants live in the key's fixed columns this way (`g0 = −f5`
    // with `f0 = 1`) rather than in a `constants` column with copy constraints, which would cost a fixed
    // column and a permutation column for a handful of cells.
    meta.create_gate("arith", |m| {
        let q = m.query_selector(s.arith);
        let cur = Rotation::cur();
        let [f0, f1, f2, f3, f4, f5] = f.map(|col| m.query_fixed(col, cur));
        let [g0, g1, g2, g3, g4] = [0, 1, 2, 3, 4].map(|i| m.query_advice(g[i], cur));
        let x0 = m.query_advice(lk[SLOT_X[0]], cur);
        vec![q * (f0 * g0 + f1 * g1 * g2 + f2 * g3 + f3 * g4 + f4 * x0 + f5)]
    });
}
