//! The slice circuit's constraint system: columns, custom gates and the lookup table.
//!
//! Every slice of every model uses this same constraint system; a slice differs only in its size `k`, its number
//! of weight columns, row width and optional gates ([`SliceParams`]), its fixed columns (weights, constants, tags, selectors, table) and its
//! witness. That is why a verifier can rebuild any slice's verifying key from bytes and the slice's
//! [`SliceParams`] (carried in the verifying artifact) without knowing the model.
//! The prover's row layout lives in `veil-core`; `docs/soundness.md` argues why each gate is sound.
//!
//! Columns: 12 phase-1 lookup operands `lk` in 8 slots, two halves of four: `(tag, x, y)` for slots 0, 3, 4
//! and 7, `(tag, x)` for slots 1, 2, 5 and 6 (range limbs; see [`SLOT_X`], [`SLOT_Y`]), slots 0, 3, 4, 7 under
//! one fixed tag column and the limb slots under the other ([`SLOT_TAG`]); 12 phase-1 advice `g`; 7 phase-2
//! advice `h` (they hold values that depend on the challenges `z` and `α`, drawn after phase 1); 6 fixed `f`,
//! the fixed `carry` (a main-track chain's first row from its later ones, see [`Selectors`]), 1 to 24 fixed
//! weights `wt`; one instance column. A slice has only the optional gates its layout uses ([`GateSet`]). Every slot's tuple is checked against a `(tag, x, y)` table
//! by the logUp argument of [`logup`] (one phase-1 multiplicity column, four phase-2 columns). Gates have
//! degree at most 5.

mod gate_set;
mod gates;
pub mod logup;
mod shape;
pub mod tables;

pub use gate_set::GateSet;
pub use shape::SliceShape;

use crate::poseidon::chip::Lane;
use crate::poseidon::{PoseidonChip, PoseidonConfig};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{
    Advice, Challenge, Column, ConstraintSystem, FirstPhase, Fixed, Instance, SecondPhase, Selector,
};

/// Lookup slots per row.
pub const SLOTS: usize = 8;
/// Lookup operand columns.
pub const LK: usize = 12;
/// The `lk` column holding slot `j`'s `x` operand.
pub const SLOT_X: [usize; SLOTS] = [0, 2, 3, 4, 6, 8, 9, 10];
/// The `lk` column holding slot `j`'s `y` operand; slots 1, 2, 5 and 6 look up `(tag, x)` only.
pub const SLOT_Y: [Option<usize>; SLOTS] = [Some(1), None, None, Some(5), Some(7), None, None, Some(11)];
/// Slots whose `y` operand takes part in copy constraints (a division's or a maximum's output; `x` operands
/// are computed in their row, and the limb slots hold range limbs only).
pub const COPY_SLOTS: [usize; 2] = [0, 3];
/// Slots of the second half whose `y` operand takes part in copy constraints: the outputs of a `div4` row's
/// lanes 2 and 3.
pub const OUT_SLOTS: [usize; 2] = [4, 7];
/// The quotient and remainder slots of each lane of a `div4` row (the first two are those of a `div2` row).
pub const DIV_LANES: [(usize, usize); 4] = [(0, 1), (3, 2), (4, 5), (7, 6)];
/// Fixed tag columns: slots 0, 3, 4 and 7 share one (the lanes of a row look up one family), the limb slots
/// the other (range limbs of one width).
pub const TAGS: usize = 2;
/// The tag column of slot `j`.
pub const SLOT_TAG: [usize; SLOTS] = [0, 1, 1, 0, 0, 1, 1, 0];

/// The `lk` column of logical operand `i` (`2j` = slot `j`'s `x`, `2j + 1` its `y`), if the slot has it.
pub fn lk_index(i: usize) -> Option<usize> {
    let j = i / 2;
    if j >= SLOTS {
        None
    } else if i.is_multiple_of(2) {
        Some(SLOT_X[j])
    } else {
        SLOT_Y[j]
    }
}
/// Phase-1 general advice columns.
pub const G: usize = 12;
/// The `g` columns of one Poseidon lane: lane `l` keeps its state in `g[6l..6l + 3]` (the output in `g[6l + 1]`)
/// and its witnesses in `g[6l + 3..6l + 6]`. A narrow row has one lane, a wide row two.
pub const POSEIDON_LANE_COLUMNS: usize = 6;
/// Lanes of a `horner_z` row: lane `i` folds `g[2i]` and `g[2i + 1]` into `h[i]`.
pub const HORNER_LANES: usize = 6;
/// Phase-2 advice columns: six general ones and the weight accumulator [`HW`].
pub const H: usize = 7;
/// The phase-2 column of the weight track: `horner_w` chains accumulate there, beside the other relations.
pub const HW: usize = 6;
/// General fixed columns.
pub const F: usize = 6;
/// The most fixed weight columns a slice may have: a `horner_w` row evaluates that many weights at `α`. The
/// weight track runs beside every other relation, so a slice's rows are the larger of its weights' rows and
/// everything else's; a slice takes the fewest columns that keep its `k` ([`SliceParams`]).
pub const MAX_WEIGHTS: usize = 24;

/// How wide a slice's rows are. A wide row holds eight lookup slots (up to four requantizations) and twelve
/// general columns (six Horner lanes); a narrow row the first half of each: four slots, two requantizations,
/// six general columns and three Horner lanes. A narrow row costs about two thirds of a wide one (22 advice
/// and 18 equality columns against 36 and 26), so a slice whose size is set by its weights rather than its
/// rows proves faster narrow; a row-bound slice fits a smaller `k` wide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum Width {
    /// Four lookup slots, six general columns.
    Narrow,
    /// Eight lookup slots, twelve general columns.
    #[default]
    Wide,
}

impl Width {
    /// Both widths, narrow first.
    pub const ALL: [Width; 2] = [Width::Narrow, Width::Wide];

    /// Lookup slots a row.
    pub fn slots(self) -> usize {
        match self {
            Width::Narrow => SLOTS / 2,
            Width::Wide => SLOTS,
        }
    }

    /// Lookup operand (`lk`) columns: slots `0..slots()` use `lk[0..lk_columns()]`.
    pub fn lk_columns(self) -> usize {
        match self {
            Width::Narrow => LK / 2,
            Width::Wide => LK,
        }
    }

    /// General phase-1 (`g`) columns.
    pub fn g_columns(self) -> usize {
        match self {
            Width::Narrow => G / 2,
            Width::Wide => G,
        }
    }

    /// Lanes of a `horner_z` row.
    pub fn horner_lanes(self) -> usize {
        self.g_columns() / 2
    }

    /// The slots whose `y` operand is copyable ([`COPY_SLOTS`], then [`OUT_SLOTS`] in wide rows): the lanes of a
    /// `max` row (one pairwise maximum each) and of a `pack` row (one packed element each).
    pub fn y_slots(self) -> &'static [usize] {
        const WIDE: [usize; 4] = [COPY_SLOTS[0], COPY_SLOTS[1], OUT_SLOTS[0], OUT_SLOTS[1]];
        match self {
            Width::Narrow => &COPY_SLOTS,
            Width::Wide => &WIDE,
        }
    }

    /// The most Poseidon lanes a row holds: one per [`POSEIDON_LANE_COLUMNS`] `g` columns (one narrow, two
    /// wide). A wide slice has the second only with [`GateSet::SECOND_LANE`] ([`SliceParams::poseidon_lanes`]).
    pub fn max_poseidon_lanes(self) -> usize {
        self.g_columns() / POSEIDON_LANE_COLUMNS
    }

    /// The most requantizations one row holds: four in a `div4` row (wide only), else two in a `div2` row.
    pub fn division_lanes(self) -> usize {
        match self {
            Width::Narrow => 2,
            Width::Wide => DIV_LANES.len(),
        }
    }
}

/// What differs between slices' constraint systems: the number of weight columns, the row [`Width`] and which
/// optional gates a slice has ([`GateSet`]). Fewer columns are fewer polynomials in every proof; a slice whose weights are few next to its
/// other rows needs only one or two weight columns, and a slice bound by its weights needs no wide rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SliceParams {
    weights: usize,
    width: Width,
    gates: GateSet,
}

impl SliceParams {
    /// Wide rows with `weights` weight columns; `None` unless `1 ≤ weights ≤` [`MAX_WEIGHTS`].
    pub fn new(weights: usize) -> Option<Self> {
        (1..=MAX_WEIGHTS).contains(&weights).then_some(SliceParams { weights, width: Width::Wide, gates: GateSet::ALL })
    }

    /// The same row width with `weights` weight columns (clamped to `1..=`[`MAX_WEIGHTS`]).
    pub fn with_weights(self, weights: usize) -> Self {
        SliceParams { weights: weights.clamp(1, MAX_WEIGHTS), ..self }
    }

    /// The same weight columns with rows of `width`.
    pub fn with_width(self, width: Width) -> Self {
        SliceParams { width, ..self }
    }

    /// The same with only the optional gates of `gates`.
    pub fn with_gates(self, gates: GateSet) -> Self {
        SliceParams { gates, ..self }
    }

    /// The optional gates the constraint system has.
    pub fn gates(&self) -> GateSet {
        self.gates
    }

    /// Poseidon lanes a row holds: two in wide rows with [`GateSet::SECOND_LANE`], else one.
    pub fn poseidon_lanes(&self) -> usize {
        if self.gates.contains(GateSet::SECOND_LANE) {
            self.width.max_poseidon_lanes()
        } else {
            1
        }
    }

    /// The number of weight columns: the weights a `horner_w` row evaluates.
    pub fn weights(&self) -> usize {
        self.weights
    }

    /// The row width.
    pub fn width(&self) -> Width {
        self.width
    }
}

/// [`MAX_WEIGHTS`] weight columns, wide rows, every optional gate.
impl Default for SliceParams {
    fn default() -> Self {
        SliceParams { weights: MAX_WEIGHTS, width: Width::Wide, gates: GateSet::ALL }
    }
}

/// The selectors of the custom gates (see `gates.rs` for each relation). A selector exists only with its gate:
/// halo2 gives a selector that no gate reads a fixed column of its own. The optional ones exist when the
/// slice's [`GateSet`] has their family. The chains of the main track (Horner chains, powers, dot products,
/// running sums, packing) have one selector on each of their rows; the fixed column
/// [`SliceConfig::carry`] tells a chain's first row (0) from the rows that continue the one above (1), and the
/// relation of a first row is the step's without the previous row's term.
#[derive(Clone, Copy, Debug)]
pub struct Selectors {
    /// `h[i] = carry·h[i](prev)·z² + g[2i]·z + g[2i+1]` in six lanes (Horner over phase-1 values, two a row).
    pub horner_z: Selector,
    /// `hw = hw(prev)·α^W + Σ_j wt[j]·α^(W−1−j)` on a weight chain's later rows (Horner over fixed weights,
    /// `W` = [`SliceParams::weights`] per row, in the weight track's column [`HW`]).
    pub horner_w: Selector,
    /// `hw = Σ_j wt[j]·α^(W−1−j)`: a weight chain's first row (the weight track runs beside the main track's
    /// chains, so it keeps a start selector of its own).
    pub horner_w_start: Selector,
    /// `h[1] = carry·h[1](prev)·α + h[0]` (Horner over phase-2 values).
    pub horner_a: Selector,
    /// `h[0] = z·(carry·h[0](prev) + 1 − carry)` (powers of `z`).
    pub power: Selector,
    /// `h[2] = carry·h[2](prev) + h[0]·h[1]` and `h[5] = carry·h[5](prev) + h[3]·h[4]` (two dot products).
    pub dot: Selector,
    /// `g0·f0 + (g1 + … + g11)·f1 + f2 = x0·f3 + r`, `r = x1 + f5·x2 + f4·x3` (a rounded division; the limbs
    /// `x1..x3` are range-checked).
    pub div: Option<Selector>,
    /// Two rounded divisions with the same coefficients in one row, each with a one-limb remainder and up to
    /// six numerator cells: `g0·f0 + (g1 + … + g5)·f1 + f2 = x0·f3 + x1` and
    /// `g6·f0 + (g7 + … + g11)·f1 + f2 = x3·f3 + x2` (`x_j` = slot `j`'s `x`).
    pub div2: Option<Selector>,
    /// Four rounded divisions with the same coefficients in one row, each with a one-limb remainder and up to
    /// two numerator cells: `g[3l]·f0 + g[3l+1]·f1 + f2 = x_q·f3 + x_r` for lane `l` with `(q, r)` =
    /// [`DIV_LANES`]`[l]`.
    pub div4: Option<Selector>,
    /// `r(next) = r + f2(next)`: the remainder's upper bound for a divisor that is not a power of two.
    pub bound: Option<Selector>,
    /// `g[2l+1] = carry·g[2l+1](prev) + g[2l]` in three lanes (running sums).
    pub sum: Option<Selector>,
    /// `x0 = g0 − g1`, `g2 = g1 + y0` and `x3 = g3 − g4`, `g5 = g4 + y3` (maxima through ReLU lookups in slots 0, 3),
    /// and in wide rows the same in `g6..g12` with slots 4 and 7: one lane per [`Width::y_slots`].
    pub max: Option<Selector>,
    /// `g[l] = carry·g[l](prev)·f4 + y_l + f5` with `y_l` from slot [`Width::y_slots`]`[l]`: two lanes (slots
    /// 0, 3), four in wide rows (and 4, 7) (packing values into field elements).
    pub pack: Selector,
    /// `f0·g0 + f1·g1·g2 + f2·g3 + f3·g4 + f4·x0 + f5 = 0` (`x0` = slot 0's `x`), one equation a row with its
    /// coefficients in the key: constants (`g0 = −f5`) and the claim rows of a model's last slice.
    pub arith: Selector,
}

/// Columns, selectors and challenges of a slice circuit.
#[derive(Clone, Debug)]
pub struct SliceConfig {
    /// Lookup operands (phase 1): [`Width::lk_columns`] of them.
    pub lk: Vec<Column<Advice>>,
    /// Lookup family tags, one per pair of slots ([`SLOT_TAG`]).
    pub tag: [Column<Fixed>; TAGS],
    /// General phase-1 advice: [`Width::g_columns`] of them.
    pub g: Vec<Column<Advice>>,
    /// Phase-2 advice.
    pub h: [Column<Advice>; H],
    /// General fixed columns.
    pub f: [Column<Fixed>; F],
    /// 1 on a main-track chain's rows that continue the row above, 0 on its first row (see [`Selectors`]).
    pub carry: Column<Fixed>,
    /// Weights of the weight track's `horner_w` rows ([`SliceParams::weights`] columns).
    pub wt: Vec<Column<Fixed>>,
    /// Public inputs.
    pub instance: Column<Instance>,
    /// The lookup argument (table, multiplicities, logUp helpers; see [`logup`]).
    pub logup: logup::LogupConfig,
    /// The evaluation point of tensor polynomials.
    pub z: Challenge,
    /// The combination challenge across output channels and weights.
    pub alpha: Challenge,
    /// Gate selectors.
    pub s: Selectors,
    /// The row width.
    pub width: Width,
    /// The Poseidon chip: [`SliceParams::poseidon_lanes`] lanes of [`POSEIDON_LANE_COLUMNS`] `g` columns each
    /// (state, then witnesses), round constants in `f`.
    pub poseidon: PoseidonConfig,
}

/// Creates every column, gate and lookup of the slice circuit with `params`' weight columns and width.
pub fn configure(meta: &mut ConstraintSystem<Fr>, params: SliceParams) -> SliceConfig {
    meta.set_minimum_degree(5);
    let width = params.width();
    let lk: Vec<_> = (0..width.lk_columns()).map(|_| meta.advice_column_in(FirstPhase)).collect();
    let g: Vec<_> = (0..width.g_columns()).map(|_| meta.advice_column_in(FirstPhase)).collect();
    let z = meta.challenge_usable_after(FirstPhase);
    let alpha = meta.challenge_usable_after(FirstPhase);
    let h = [(); H].map(|_| meta.advice_column_in(SecondPhase));
    let tag = [(); TAGS].map(|_| meta.fixed_column());
    let f = [(); F].map(|_| meta.fixed_column());
    let carry = meta.fixed_column();
    let wt = (0..params.weights).map(|_| meta.fixed_column()).collect();
    let instance = meta.instance_column();
    meta.enable_equality(instance);
    for i in width.y_slots().iter().filter_map(|&j| SLOT_Y[j]) {
        meta.enable_equality(lk[i]);
    }
    for &c in g.iter().chain(&h) {
        meta.enable_equality(c);
    }
    let mult = meta.advice_column_in(FirstPhase);
    let phase2: Vec<_> = (0..logup::phase2_columns(width)).map(|_| meta.advice_column_in(SecondPhase)).collect();
    let challenges = (meta.challenge_usable_after(FirstPhase), meta.challenge_usable_after(FirstPhase));
    let logup = logup::configure(meta, tag, &lk, mult, &phase2, challenges);
    let s = gates::selectors(meta, params);
    let lanes: Vec<Lane> = g
        .chunks_exact(POSEIDON_LANE_COLUMNS)
        .take(params.poseidon_lanes())
        .map(|c| ([c[0], c[1], c[2]], [c[3], c[4], c[5]]))
        .collect();
    let poseidon = PoseidonChip::configure_lanes(meta, &lanes, [f[0], f[1], f[2]], [f[3], f[4], f[5]]);
    let config = SliceConfig { lk, tag, g, h, f, carry, wt, instance, logup, z, alpha, s, width, poseidon };
    gates::create(meta, &config);
    config
}
