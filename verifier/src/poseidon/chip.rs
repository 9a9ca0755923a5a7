//! In-circuit Poseidon sponge: the same function as [`native::hash`], with gates of degree at most 4
//! (selector included).
//!
//! # Layout
//!
//! One row per full round, one row per two partial rounds. Columns: `state[0..3]` hold the state entering the
//! row, `aux[0..3]` hold witnesses, `rc[0..3]` and `rc2[0..3]` (fixed) hold round constants. With
//! `x_j = s_j + rc_j`, a full-round row constrains `aux_j = x_j^2` (degree 2) and the next row's state to
//! `MDS · (aux_j^2 · x_j)` (degree 3), so x^5 never needs a degree-5 term. A partial round only sends lane 0
//! through the S-box: a double partial-round row holds round A's square in `aux0`, the lane 0 of the state
//! between the rounds in `aux1` (`u = MDS · (aux0^2 · x_0, x_1, x_2)`, degree 3), and round B's square of
//! `u_0 + rc2_0` in `aux2`; the next row's state is round B applied to `u` with constants `rc2` (degree 3).
//! The odd last partial round has a row of its own, on the full-round gate with the flag `rc2[0] = 1`: there
//! lanes 1 and 2 witness `aux = 1`, so `aux^2 · x = x` skips their S-boxes.
//!
//! For `n` inputs, with `p = max(1, ceil(n / 2))` permutations, `hash` uses `38 p + 1` rows from `offset`:
//!
//! ```text
//! offset              first absorb: the next state is [domain, 0, 0] plus inputs 0, 1 in aux[1..3]
//!                     (rc2[0] = 1 discards this row's state; domain in rc[0])
//! offset + 1 ..= 37   the rounds of permutation 0 (4 full, 28 double partial, 1 partial, 4 full)
//! offset + 38         output of permutation 0; absorb inputs 2, 3 (if p > 1)
//! ...                 (38 rows per further permutation)
//! offset + 38 p       output of the last permutation; the hash is its state[1]
//! ```
//!
//! **Lanes.** [`PoseidonChip::configure_lanes`] gives every gate a copy of its constraints per lane (each lane
//! its own `state` and `aux` columns), under the same selectors and over the same fixed columns, so a row runs
//! one round of up to that many permutations side by side: [`PoseidonChip::hash_lanes`] hashes equally many
//! inputs per lane under one domain in the rows one hash takes.
//!
//! An absorb row constrains the next row's state to `[s0, s1 + aux1, s2 + aux2]` (the first one to
//! `[domain, aux1, aux2]`). Input cells are
//! copy-constrained into `aux[1]`/`aux[2]`; a padding lane has `rc[lane] = 1` on the absorb row, and the gate
//! then forces `aux[lane] = 0`. Every state transition is thus fixed by the verifying key and the inputs.

use halo2_proofs::{
    circuit::{Cell, Chip, Region, Value},
    halo2curves::bn256::Fr,
    halo2curves::ff::Field,
    plonk::{Advice, Column, ConstraintSystem, Error, Expression, Fixed, Selector, VirtualCells},
    poly::Rotation,
};

use super::native::{self, sbox, FULL_ROUNDS, PARTIAL_ROUNDS, RATE, WIDTH};

/// Rows per permutation: its full rounds, its partial rounds two per row, plus the row holding its output
/// (which is also the next absorb row).
const ROWS_PER_PERMUTATION: usize = FULL_ROUNDS + PARTIAL_ROUNDS.div_ceil(2) + 1;
/// Round indices of the partial rounds (the full rounds are split around them).
const PARTIAL: std::ops::Range<usize> = FULL_ROUNDS / 2..FULL_ROUNDS / 2 + PARTIAL_ROUNDS;

/// The advice columns of one lane: the state entering a row and the row's witnesses.
pub type Lane = ([Column<Advice>; WIDTH], [Column<Advice>; WIDTH]);

/// An assigned cell with its value: a hash input, or a lane's output.
pub type Assigned = (Cell, Value<Fr>);

/// Columns and selectors of the Poseidon gates.
#[derive(Clone, Debug)]
pub struct PoseidonConfig {
    lanes: Vec<Lane>,
    rc: [Column<Fixed>; WIDTH],
    rc2: [Column<Fixed>; WIDTH],
    q_absorb: Selector,
    q_full: Selector,
    q_partial2: Selector,
}

impl PoseidonConfig {
    /// Permutations run side by side in one row (each in its own lane, with shared round constants).
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }
}

/// Assigns the Poseidon sponge into a caller-owned region; see the [module documentation](self) for the layout.
#[derive(Clone, Debug)]
pub struct PoseidonChip {
    config: PoseidonConfig,
}

impl Chip<Fr> for PoseidonChip {
    type Config = PoseidonConfig;
    type Loaded = ();

    fn config(&self) -> &PoseidonConfig {
        &self.config
    }

    fn loaded(&self) -> &() {
        &()
    }
}

/// Queries the three columns at the current row.
fn cur_advice(m: &mut VirtualCells<'_, Fr>, cols: [Column<Advice>; WIDTH]) -> [Expression<Fr>; WIDTH] {
    cols.map(|c| m.query_advice(c, Rotation::cur()))
}

/// The linear combination `Σ_j v_j · row_j`.
fn mix(v: &[Expression<Fr>; WIDTH], row: &[Fr; WIDTH]) -> Expression<Fr> {
    (0..WIDTH).map(|j| v[j].clone() * row[j]).reduce(|a, b| a + b).unwrap_or(Expression::Constant(Fr::ZERO))
}

impl PoseidonChip {
    /// Creates three gates (`poseidon absorb`, `poseidon full round`, `poseidon double partial round`, each of
    /// degree at most 4 with its selector) on the given columns, and three simple selectors.
    ///
    /// The advice columns must be in the phase in which [`PoseidonChip::hash`] assigns them (the first phase in
    /// Veil's circuits). Side effect: enables equality on `aux[1]`, `aux[2]` (inputs are copied there) and
    /// `state[1]` (the output cell lives there); enabling it again elsewhere is harmless. The chip owns all twelve
    /// columns in the rows a hash uses, so the caller must not place anything else in those rows of these columns.
    pub fn configure(
        meta: &mut ConstraintSystem<Fr>,
        state: [Column<Advice>; WIDTH],
        aux: [Column<Advice>; WIDTH],
        rc: [Column<Fixed>; WIDTH],
        rc2: [Column<Fixed>; WIDTH],
    ) -> PoseidonConfig {
        Self::configure_lanes(meta, &[(state, aux)], rc, rc2)
    }

    /// The same gates over one or more lanes: each gate constrains every lane in the rows its selector is on, with
    /// the round constants, the domain and the padding flags of the shared fixed columns. So lanes run
    /// permutations of the same schedule side by side: hashes of equally many inputs under one domain
    /// ([`PoseidonChip::hash_lanes`]); a lane with nothing to hash runs a permutation of zeros.
    pub fn configure_lanes(
        meta: &mut ConstraintSystem<Fr>,
        lanes: &[Lane],
        rc: [Column<Fixed>; WIDTH],
        rc2: [Column<Fixed>; WIDTH],
    ) -> PoseidonConfig {
        for (state, aux) in lanes {
            meta.enable_equality(state[1]);
            meta.enable_equality(aux[1]);
            meta.enable_equality(aux[2]);
        }
        let q_absorb = meta.selector();
        let q_full = meta.selector();
        let q_partial2 = meta.selector();
        let mds = native::constants().mds;

        // The first absorb row of a hash starts the sponge: `first = 1` there (in `rc2[0]`) discards the row's
        // state for `[domain, 0, 0]`, with the domain in `rc[0]` (0 on every later absorb row).
        meta.create_gate("poseidon absorb", |m| {
            let q = m.query_selector(q_absorb);
            let domain = m.query_fixed(rc[0], Rotation::cur());
            let pad1 = m.query_fixed(rc[1], Rotation::cur());
            let pad2 = m.query_fixed(rc[2], Rotation::cur());
            let kept = Expression::Constant(Fr::ONE) - m.query_fixed(rc2[0], Rotation::cur());
            let mut out = Vec::with_capacity(5 * lanes.len());
            for &(state, aux) in lanes {
                let [s0, s1, s2] = cur_advice(m, state);
                let [_, a1, a2] = cur_advice(m, aux);
                let [n0, n1, n2] = state.map(|c| m.query_advice(c, Rotation::next()));
                out.push(("capacity kept", q.clone() * (n0 - kept.clone() * s0 - domain.clone())));
                out.push(("rate[0] += input", q.clone() * (n1 - kept.clone() * s1 - a1.clone())));
                out.push(("rate[1] += input", q.clone() * (n2 - kept.clone() * s2 - a2.clone())));
                out.push(("padding lane 1 is zero", q.clone() * pad1.clone() * a1));
                out.push(("padding lane 2 is zero", q.clone() * pad2.clone() * a2));
            }
            out
        });

        // A full round, or with `partial = 1` (in `rc2[0]`) the odd partial round: lanes 1 and 2 then witness
        // `aux = 1` instead of `x^2`, so that `aux^2 · x = x` passes them through the S-box unchanged.
        meta.create_gate("poseidon full round", |m| {
            let q = m.query_selector(q_full);
            let c = rc.map(|col| m.query_fixed(col, Rotation::cur()));
            let partial = m.query_fixed(rc2[0], Rotation::cur());
            let mut out = Vec::with_capacity(2 * WIDTH * lanes.len());
            for &(state, aux) in lanes {
                let s = cur_advice(m, state);
                let y = cur_advice(m, aux);
                let next = state.map(|col| m.query_advice(col, Rotation::next()));
                let x: [Expression<Fr>; 3] = [0, 1, 2].map(|j| s[j].clone() + c[j].clone());
                // x_j^5 = (x_j^2)^2 · x_j with x_j^2 witnessed in aux_j.
                let x5: [Expression<Fr>; 3] = [0, 1, 2].map(|j| y[j].clone() * y[j].clone() * x[j].clone());
                for j in 0..WIDTH {
                    let square = x[j].clone() * x[j].clone();
                    let expected = if j == 0 {
                        square
                    } else {
                        square.clone() + partial.clone() * (Expression::Constant(Fr::ONE) - square)
                    };
                    out.push(("square", q.clone() * (y[j].clone() - expected)));
                }
                for (i, row) in mds.iter().enumerate() {
                    out.push(("mds", q.clone() * (next[i].clone() - mix(&x5, row))));
                }
            }
            out
        });

        meta.create_gate("poseidon double partial round", |m| {
            let q = m.query_selector(q_partial2);
            let c = rc.map(|col| m.query_fixed(col, Rotation::cur()));
            let d = rc2.map(|col| m.query_fixed(col, Rotation::cur()));
            let mut out = Vec::with_capacity((3 + WIDTH) * lanes.len());
            for &(state, aux) in lanes {
                let s = cur_advice(m, state);
                let [sq_a, u0, sq_b] = cur_advice(m, aux);
                let next = state.map(|col| m.query_advice(col, Rotation::next()));
                let x: [Expression<Fr>; 3] = [0, 1, 2].map(|j| s[j].clone() + c[j].clone());
                let sboxed_a = [sq_a.clone() * sq_a.clone() * x[0].clone(), x[1].clone(), x[2].clone()];
                let u = mds.map(|row| mix(&sboxed_a, &row));
                let xb = [u0.clone() + d[0].clone(), u[1].clone() + d[1].clone(), u[2].clone() + d[2].clone()];
                let sboxed_b = [sq_b.clone() * sq_b.clone() * xb[0].clone(), xb[1].clone(), xb[2].clone()];
                out.push(("square a", q.clone() * (sq_a - x[0].clone() * x[0].clone())));
                out.push(("between rounds", q.clone() * (u0 - u[0].clone())));
                out.push(("square b", q.clone() * (sq_b - xb[0].clone() * xb[0].clone())));
                for (i, row) in mds.iter().enumerate() {
                    out.push(("mds", q.clone() * (next[i].clone() - mix(&sboxed_b, row))));
                }
            }
            out
        });

        PoseidonConfig { lanes: lanes.to_vec(), rc, rc2, q_absorb, q_full, q_partial2 }
    }

    /// Wraps a configuration.
    pub fn construct(config: PoseidonConfig) -> Self {
        Self { config }
    }

    /// Rows [`PoseidonChip::hash`] uses for `n` inputs: `38 · max(1, ceil(n / 2)) + 1`.
    pub fn rows_for(n: usize) -> usize {
        permutations(n).saturating_mul(ROWS_PER_PERMUTATION).saturating_add(1)
    }

    /// Hashes `inputs` (cells already assigned elsewhere in `region`, with their values) under `domain`,
    /// using rows `offset .. offset + rows_for(inputs.len())` in the first lane (any other lane hashes zeros).
    ///
    /// Copies the inputs in with equality constraints, starts the sponge at `[domain, 0, 0]` through the
    /// fixed columns `rc[0]` and `rc2[0]`, and returns the output cell (in `state[1]`) with its value and the number of rows
    /// used. The caller must make sure those rows exist below the circuit's blinding rows.
    pub fn hash(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        domain: u64,
        inputs: &[(Cell, Value<Fr>)],
    ) -> Result<(Cell, Value<Fr>, usize), Error> {
        let (outs, rows) = self.hash_lanes(region, offset, domain, &[inputs])?;
        let (cell, value) = outs.into_iter().next().ok_or(Error::Synthesis)?;
        Ok((cell, value, rows))
    }

    /// Hashes one input list per lane side by side, all under `domain` and in the same rows
    /// `offset .. offset + rows_for(n)`: lane `i` hashes `lanes[i]`, and every list must hold the same number `n`
    /// of inputs (the lanes share the padding flags), else [`Error::Synthesis`]. Lanes past `lanes.len()` hash
    /// `n` zeros that nothing reads. Returns each given lane's output cell and value, and the rows used.
    pub fn hash_lanes(
        &self,
        region: &mut Region<'_, Fr>,
        offset: usize,
        domain: u64,
        lanes: &[&[Assigned]],
    ) -> Result<(Vec<Assigned>, usize), Error> {
        let cfg = &self.config;
        let n = lanes.first().map_or(0, |l| l.len());
        if lanes.is_empty() || lanes.len() > cfg.lanes.len() || lanes.iter().any(|l| l.len() != n) {
            return Err(Error::Synthesis);
        }
        let constants = native::constants();
        let zero = Value::known(Fr::ZERO);
        let mut states = vec![Value::known([Fr::from(domain), Fr::ZERO, Fr::ZERO]); cfg.lanes.len()];
        let mut row = offset;

        for p in 0..permutations(n) {
            // Absorb row (for p > 0 it also holds the previous permutation's output); the first one starts the
            // sponge at `[domain, 0, 0]`.
            cfg.q_absorb.enable(region, row)?;
            let first = if p == 0 { Fr::ONE } else { Fr::ZERO };
            region.assign_fixed(cfg.rc[0], row, first * Fr::from(domain));
            region.assign_fixed(cfg.rc2[0], row, first);
            let padding = [RATE * p, RATE * p + 1].map(|i| i >= n);
            for (lane, flag) in padding.iter().enumerate() {
                region.assign_fixed(cfg.rc[lane + 1], row, if *flag { Fr::ONE } else { Fr::ZERO });
            }
            for (l, ((state_cols, aux), state)) in cfg.lanes.iter().zip(states.iter_mut()).enumerate() {
                self.assign_state(region, *state_cols, row, *state);
                region.assign_advice(aux[0], row, zero);
                let mut absorbed = [zero; RATE];
                for (k, absorbed) in absorbed.iter_mut().enumerate() {
                    let input = lanes.get(l).and_then(|inputs| inputs.get(RATE * p + k));
                    match input {
                        Some((cell, value)) => {
                            let copy = region.assign_advice(aux[k + 1], row, *value);
                            region.constrain_equal(copy.cell(), *cell);
                            *absorbed = *value;
                        }
                        None => {
                            region.assign_advice(aux[k + 1], row, zero);
                        }
                    }
                }
                let [a, b] = absorbed;
                *state = state.zip(a.zip(b)).map(|([s0, s1, s2], (a, b))| [s0, s1 + a, s2 + b]);
            }
            row += 1;

            let rounds = &constants.round_constants;
            let mut r = 0;
            while r < rounds.len() {
                let full = !PARTIAL.contains(&r);
                let double = !full && PARTIAL.contains(&(r + 1));
                for (col, c) in cfg.rc.iter().zip(&rounds[r]) {
                    region.assign_fixed(*col, row, *c);
                }
                if double {
                    for (col, c) in cfg.rc2.iter().zip(&rounds[r + 1]) {
                        region.assign_fixed(*col, row, *c);
                    }
                    cfg.q_partial2.enable(region, row)?;
                } else {
                    // The odd partial round runs on the full-round gate, flagged in `rc2[0]`.
                    region.assign_fixed(cfg.rc2[0], row, if full { Fr::ZERO } else { Fr::ONE });
                    cfg.q_full.enable(region, row)?;
                }
                for ((state_cols, aux_cols), state) in cfg.lanes.iter().zip(states.iter_mut()) {
                    self.assign_state(region, *state_cols, row, *state);
                    let (next, aux) = if double {
                        let a = state.map(|s| round(&s, &rounds[r], &constants.mds, false));
                        let b = a.map(|(u, _)| round(&u, &rounds[r + 1], &constants.mds, false));
                        let aux = a.zip(b).map(|((u, sq_a), (_, sq_b))| [sq_a[0], u[0], sq_b[0]]);
                        (b.map(|(next, _)| next), aux)
                    } else {
                        let step = state.map(|s| round(&s, &rounds[r], &constants.mds, full));
                        (step.map(|(next, _)| next), step.map(|(_, sq)| sq))
                    };
                    for (j, col) in aux_cols.iter().enumerate() {
                        region.assign_advice(*col, row, aux.map(|v| v[j]));
                    }
                    *state = next;
                }
                r += if double { 2 } else { 1 };
                row += 1;
            }
        }
        let mut outs = Vec::with_capacity(lanes.len());
        for ((state_cols, _), state) in cfg.lanes.iter().zip(&states).take(lanes.len()) {
            let out = self.assign_state(region, *state_cols, row, *state);
            outs.push((out, state.map(|s| s[1])));
        }
        for ((state_cols, _), state) in cfg.lanes.iter().zip(&states).skip(lanes.len()) {
            self.assign_state(region, *state_cols, row, *state);
        }
        Ok((outs, row + 1 - offset))
    }

    /// Assigns a state row in one lane and returns the `state[1]` cell.
    fn assign_state(
        &self,
        region: &mut Region<'_, Fr>,
        [c0, c1, c2]: [Column<Advice>; WIDTH],
        row: usize,
        state: Value<[Fr; WIDTH]>,
    ) -> Cell {
        region.assign_advice(c0, row, state.map(|s| s[0]));
        let out = region.assign_advice(c1, row, state.map(|s| s[1])).cell();
        region.assign_advice(c2, row, state.map(|s| s[2]));
        out
    }
}

/// Permutations for `n` inputs (an empty input still takes one).
fn permutations(n: usize) -> usize {
    n.div_ceil(RATE).max(1)
}

/// One round on a witness: the next state and the `aux` witnesses of a `poseidon full round` row: the squares
/// `x_j^2`, or for a partial round `x_0^2` and ones (a double partial-round row reads only the first).
fn round(s: &[Fr; WIDTH], rc: &[Fr; WIDTH], mds: &[[Fr; WIDTH]; WIDTH], full: bool) -> ([Fr; WIDTH], [Fr; WIDTH]) {
    let x = [0, 1, 2].map(|j| s[j] + rc[j]);
    let sq = [0, 1, 2].map(|j| if full || j == 0 { x[j].square() } else { Fr::ONE });
    let sboxed = [0, 1, 2].map(|j| if full || j == 0 { sbox(x[j]) } else { x[j] });
    let next = mds.map(|row| row.iter().zip(&sboxed).fold(Fr::ZERO, |acc, (m, v)| acc + *m * v));
    (next, sq)
}
