//! The execution trace of a slice circuit, built in plain Rust before any halo2 call: every phase-1 value,
//! fixed value, selector, copy constraint and public input, plus the program that fills the phase-2 columns
//! once the challenges are known. Keygen and proving replay the same trace, so the layout can never depend
//! on the witness.

use super::ProveError;
use halo2_proofs::arithmetic::Field;
use halo2_proofs::halo2curves::bn256::Fr;
use std::collections::BTreeSet;
use veil_verifier::circuit::tables::{fr_i64, Family};
use veil_verifier::circuit::{lk_index, GateSet, SliceParams, F, H, HW, SLOT_TAG, TAGS};

/// A column of the slice circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Col {
    /// Lookup operand column (phase 1).
    Lk(usize),
    /// General phase-1 column.
    G(usize),
    /// Phase-2 column.
    H(usize),
}

/// One cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CellRef {
    pub col: Col,
    pub row: usize,
}

/// Which selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Sel {
    HornerZ,
    HornerZStart,
    HornerW,
    HornerWStart,
    HornerA,
    HornerAStart,
    Power,
    PowerStart,
    Dot,
    DotStart,
    Div,
    Div2,
    Div4,
    Bound,
    Sum,
    SumStart,
    Max,
    Pack,
    PackStart,
    /// An `arith` row of the claim.
    Claim,
    /// An `arith` row pinning `g0` to a constant.
    Constant,
}

impl Sel {
    /// The optional gate family the selector belongs to, if it is optional.
    fn family(self) -> Option<GateSet> {
        match self {
            Sel::Div => Some(GateSet::DIV),
            Sel::Div2 => Some(GateSet::DIV2),
            Sel::Div4 => Some(GateSet::DIV4),
            Sel::Bound => Some(GateSet::BOUND),
            Sel::Sum | Sel::SumStart => Some(GateSet::SUM),
            Sel::Max => Some(GateSet::MAX),
            _ => None,
        }
    }

    /// For a main-track chain's step selector, its start selector: the two share one gate and selector, told
    /// apart by the `carry` column (1 on a step), whose gate reads the previous row there; so they must never be
    /// on one row (nor a step on row 0). The weight track's chains have selectors of their own.
    fn chain_start(self) -> Option<Sel> {
        match self {
            Sel::HornerZ => Some(Sel::HornerZStart),
            Sel::HornerA => Some(Sel::HornerAStart),
            Sel::Power => Some(Sel::PowerStart),
            Sel::Dot => Some(Sel::DotStart),
            Sel::Sum => Some(Sel::SumStart),
            Sel::Pack => Some(Sel::PackStart),
            _ => None,
        }
    }

    /// Whether the selector continues a main-track chain from the row above (`carry = 1` on its row).
    pub(crate) fn continues_chain(self) -> bool {
        self.chain_start().is_some()
    }
}

/// A step of the phase-2 program, run in order once `z` and `α` are known.
#[derive(Clone, Debug)]
pub(crate) enum Phase2 {
    /// Horner chains `h[i] = h[i]·z² + g[2i]·z + g[2i+1]` over rows `start..start+len` in lanes `0..lanes`.
    HornerZ { start: usize, len: usize, lanes: usize },
    /// Weight-track Horner chains `hw = hw(prev)·α^W + Σ_j wt[j]·α^(W−1−j)`: `chains` chains of `rows` rows each,
    /// one after another from weight-track row `start`.
    HornerW { start: usize, rows: usize, chains: usize },
    /// `h1 = h1·α + h0`.
    HornerA { start: usize, len: usize },
    /// `h0 = z^(r−start+1)`.
    Power { start: usize, len: usize },
    /// Dot products `h2 += h0·h1` (and `h5 += h3·h4` when `lanes == 2`).
    Dot { start: usize, len: usize, lanes: usize },
    /// Copies the value of `src` into the phase-2 cell `dst` (the copy constraint is recorded separately).
    Copy { dst: CellRef, src: CellRef },
    /// A phase-2 cell set to a given value (tests forge phase-2 cells with it).
    #[cfg(test)]
    Set { dst: CellRef, value: Fr },
}

/// The trace of one slice circuit.
#[derive(Clone, Debug, Default)]
pub(crate) struct Trace {
    pub rows: usize,
    pub lk: Vec<Vec<Fr>>,
    pub g: Vec<Vec<Fr>>,
    pub h: Vec<Vec<Fr>>,
    /// The tag columns, one per pair of slots ([`SLOT_TAG`]).
    pub tag: Vec<Vec<Fr>>,
    /// Per row, a bit for each slot the layout gave a family: [`Trace::finish`] fills the idle slots under a
    /// tagged slot's tag column with its family's entry at 0 (they share one tag), then frees this.
    tagged: Vec<u8>,
    /// The first row where two slots of a pair were given different families (a layout error).
    tag_clash: Option<usize>,
    pub f: Vec<Vec<Fr>>,
    /// The constraint system's parameters (its number of weight columns).
    pub params: SliceParams,
    /// The weight track's fixed weight columns, [`Trace::weight_rows`] long until [`Trace::finish`].
    pub wt: Vec<Vec<Fr>>,
    /// Rows the weight track uses; it runs beside the other relations, from row 0.
    pub weight_rows: usize,
    /// The weight track's Horner chains as `(chains, values per chain)`: what it would take at another width.
    pub weight_chains: Vec<(usize, usize)>,
    /// Rows of every relation but the weight track, set by [`Trace::finish`].
    pub main_rows: usize,
    pub selectors: Vec<(Sel, usize)>,
    pub copies: Vec<(CellRef, CellRef)>,
    /// `(cell, instance row)`.
    pub public: Vec<(CellRef, usize)>,
    /// The public input values, by instance row.
    pub instance: Vec<Fr>,
    pub phase2: Vec<Phase2>,
    pub families: BTreeSet<Family>,
    /// Softmax exponential tables used by `Family::Exp`.
    pub exp_tables: Vec<Vec<i64>>,
    /// Poseidon hashes to lay out.
    pub hashes: Vec<HashJob>,
    /// Every division in layout order: its row and lane (`0..4` in a `div4` row, `0..2` in a `div2` row).
    pub div_lanes: Vec<(usize, usize)>,
    /// Width of the range-check limbs (`SliceSpec::range_bits`).
    pub range_bits: u32,
    zero: Option<CellRef>,
}

/// Poseidon hashes placed by the chip during synthesis: one per lane, side by side in the same rows.
#[derive(Clone, Debug)]
pub(crate) struct HashJob {
    pub row: usize,
    pub domain: u64,
    /// Each lane's inputs (all lanes equally many).
    pub lanes: Vec<Vec<CellRef>>,
    /// The instance row the first lane's output is exposed at, if it is exposed.
    pub instance_row: Option<usize>,
}

impl Trace {
    /// An empty trace for the constraint system of `params`.
    pub fn new(params: SliceParams) -> Self {
        Trace {
            lk: vec![Vec::new(); 2 * params.width().slots()],
            g: vec![Vec::new(); params.width().g_columns()],
            h: vec![Vec::new(); H],
            tag: vec![Vec::new(); TAGS],
            f: vec![Vec::new(); F],
            params,
            wt: vec![Vec::new(); params.weights()],
            range_bits: veil_verifier::circuit::tables::MAX_LIMB_BITS,
            ..Default::default()
        }
    }

    /// Appends `n` zero rows and returns the first.
    pub fn alloc(&mut self, n: usize) -> usize {
        let start = self.rows;
        self.rows += n;
        let rows = self.rows;
        for col in self.columns_mut() {
            col.resize(rows, Fr::zero());
        }
        start
    }

    /// Appends `n` rows to the weight track and returns the first.
    pub fn alloc_weights(&mut self, n: usize) -> usize {
        let start = self.weight_rows;
        self.weight_rows += n;
        for col in &mut self.wt {
            col.resize(self.weight_rows, Fr::zero());
        }
        start
    }

    /// Ends the layout: the constraint system keeps only the optional gates the trace enables (and the
    /// Poseidon lanes it was laid out with), the trace's rows become the longer of the two tracks, and a slot
    /// its row leaves idle while another slot under its tag column looks up a family gets that family's entry
    /// at `x = 0`:
    /// `(0, 0)` for every family but `Exp`, so gates that read idle slots see the zeros they always did. No
    /// gate's soundness rests on an idle slot: `docs/soundness.md` §2.1.
    pub fn finish(&mut self) -> Result<(), ProveError> {
        if let Some(row) = self.tag_clash {
            return Err(ProveError::Unsupported(format!("row {row}: two lookup families under one tag column")));
        }
        let slots = self.params.width().slots();
        if let Some(row) = self.tagged.iter().position(|&bits| u32::from(bits) >> slots != 0) {
            return Err(ProveError::Unsupported(format!("row {row}: a lookup slot past the row's {slots}")));
        }
        let enabled: std::collections::HashSet<(Sel, usize)> = self.selectors.iter().copied().collect();
        for &(sel, row) in &self.selectors {
            if let Some(start) = sel.chain_start() {
                if row == 0 || enabled.contains(&(start, row)) {
                    return Err(ProveError::Unsupported(format!("row {row}: a {sel:?} step on its chain's first row")));
                }
            }
        }
        let used = GateSet::of(self.selectors.iter().filter_map(|&(sel, _)| sel.family()));
        let second_lane = self.params.gates().intersection(GateSet::SECOND_LANE);
        self.params = self.params.with_gates(used.union(second_lane));
        self.main_rows = self.rows;
        if self.weight_rows > self.rows {
            self.alloc(self.weight_rows - self.rows);
        }
        for col in &mut self.wt {
            col.resize(self.rows, Fr::zero());
        }
        // `(tag, F(0))` of every family the trace looks up.
        let at_zero: Vec<(Fr, Fr)> = self
            .families
            .iter()
            .filter_map(|f| f.rows(&self.exp_tables).into_iter().find(|&(x, _)| x == 0).map(|(_, y)| (f, y)))
            .map(|(f, y)| (Fr::from(f.tag()), fr_i64(y)))
            .collect();
        for (row, &bits) in std::mem::take(&mut self.tagged).iter().enumerate() {
            for column in 0..TAGS {
                let slots = (0..self.params.width().slots()).filter(|&j| SLOT_TAG[j] == column);
                if !slots.clone().any(|j| bits >> j & 1 == 1) {
                    continue;
                }
                let tag = self.tag[column][row];
                let y = at_zero.iter().find(|(t, _)| *t == tag).map(|&(_, y)| y).ok_or_else(|| {
                    ProveError::Unsupported(format!("row {row}: a lookup family without an entry at 0"))
                })?;
                for idle in slots.filter(|&j| bits >> j & 1 == 0) {
                    self.lk[2 * idle][row] = Fr::zero();
                    if lk_index(2 * idle + 1).is_some() {
                        self.lk[2 * idle + 1][row] = y;
                    }
                }
            }
        }
        Ok(())
    }

    /// Sets a phase-1 cell.
    pub fn set(&mut self, cell: CellRef, value: Fr) {
        match cell.col {
            Col::Lk(i) => self.lk[i][cell.row] = value,
            Col::G(i) => self.g[i][cell.row] = value,
            Col::H(i) => self.h[i][cell.row] = value,
        }
    }

    /// Sets a phase-1 cell to an integer.
    pub fn set_i(&mut self, cell: CellRef, value: i64) {
        self.set(cell, fr_i64(value));
    }

    /// The value of a cell (phase-2 cells only after [`Trace::run_phase2`]).
    pub fn get(&self, cell: CellRef) -> Fr {
        match cell.col {
            Col::Lk(i) => self.lk[i][cell.row],
            Col::G(i) => self.g[i][cell.row],
            Col::H(i) => self.h[i][cell.row],
        }
    }

    /// Enables a selector.
    pub fn enable(&mut self, sel: Sel, row: usize) {
        self.selectors.push((sel, row));
    }

    /// Records `a == b`.
    pub fn copy(&mut self, a: CellRef, b: CellRef) {
        self.copies.push((a, b));
    }

    /// Sets `dst` to `src`'s value and constrains them equal (both phase 1).
    pub fn copy_in(&mut self, dst: CellRef, src: CellRef) {
        let v = self.get(src);
        self.set(dst, v);
        self.copy(dst, src);
    }

    /// Puts `src` into the phase-2 cell `dst`, equal by constraint.
    pub fn copy_h(&mut self, dst: CellRef, src: CellRef) {
        self.phase2.push(Phase2::Copy { dst, src });
        self.copy(dst, src);
    }

    /// Sets a lookup slot's tag at `row`; the slots under one tag column must look up one family.
    pub fn tag(&mut self, slot: usize, row: usize, family: Family) {
        self.families.insert(family);
        let (cell, value) = (&mut self.tag[SLOT_TAG[slot]][row], Fr::from(family.tag()));
        if !bool::from(cell.is_zero()) && *cell != value {
            self.tag_clash.get_or_insert(row);
        }
        *cell = value;
        if self.tagged.len() <= row {
            self.tagged.resize(row + 1, 0);
        }
        self.tagged[row] |= 1 << slot;
    }

    /// A new row of the `arith` gate, `f0·g0 + f1·g1·g2 + f2·g3 + f3·g4 + f4·x0 + f5 = 0` with `coeffs` as
    /// `f0..f5` (`x0` = slot 0's `x`), under `sel` ([`Sel::Claim`] or [`Sel::Constant`], which tell the row
    /// profile what the row serves); its cells are the caller's to fill.
    pub fn arith(&mut self, sel: Sel, coeffs: [Fr; F]) -> usize {
        let row = self.alloc(1);
        for (col, c) in self.f.iter_mut().zip(coeffs) {
            col[row] = c;
        }
        self.enable(sel, row);
        row
    }

    /// A cell pinned to zero by the `arith` gate (allocated once).
    pub fn zero(&mut self) -> CellRef {
        if let Some(z) = self.zero {
            return z;
        }
        let cell = self.pinned(0);
        self.zero = Some(cell);
        cell
    }

    /// A new cell pinned to a constant by the `arith` gate: `g0 + f5 = 0` with `f0 = 1` and `f5 = −value`.
    pub fn constant(&mut self, value: i64) -> CellRef {
        if value == 0 {
            return self.zero();
        }
        self.pinned(value)
    }

    fn pinned(&mut self, value: i64) -> CellRef {
        let row =
            self.arith(Sel::Constant, [Fr::one(), Fr::zero(), Fr::zero(), Fr::zero(), Fr::zero(), -fr_i64(value)]);
        let cell = CellRef { col: Col::G(0), row };
        self.set_i(cell, value);
        cell
    }

    /// Exposes `cell` as public input (appended to the instance column); returns its instance row.
    pub fn expose(&mut self, cell: CellRef) -> usize {
        let row = self.instance.len();
        let value = self.get(cell);
        self.instance.push(value);
        self.public.push((cell, row));
        row
    }

    /// Runs the phase-2 program with challenges `z` and `alpha`, filling the `h` columns.
    #[cfg(test)]
    pub fn run_phase2(&mut self, z: Fr, alpha: Fr) {
        self.h = self.phase2_columns(z, alpha);
    }

    /// The `h` columns after the phase-2 program at challenges `z` and `alpha`; the trace itself is left
    /// as it is (so a shared trace costs one extra copy of six columns, not of the whole trace).
    pub fn phase2_columns(&self, z: Fr, alpha: Fr) -> Vec<Vec<Fr>> {
        let mut hc = self.h.clone();
        self.phase2_into(&mut hc, z, alpha, None, None);
        hc
    }

    /// The phase-1 values the phase-2 program reads, in program order: each `horner_z` block's `g` cells
    /// (lane, row) and each copy's phase-1 source.
    pub(super) fn phase1_reads(&self) -> Vec<Fr> {
        let mut out = Vec::new();
        for step in &self.phase2 {
            match *step {
                Phase2::HornerZ { start, len, lanes } => {
                    for i in 0..lanes {
                        for r in start..start + len {
                            out.extend([self.g[2 * i][r], self.g[2 * i + 1][r]]);
                        }
                    }
                }
                Phase2::Copy { src, .. } if !matches!(src.col, Col::H(_)) => out.push(self.get(src)),
                _ => {}
            }
        }
        out
    }

    /// Runs the phase-2 program over `hc`, which starts as the trace's `h` columns. On a parked trace
    /// (`park.rs`) the `horner_w` rows read their weights from `weights` in program order (chain, row,
    /// column), and the phase-1 values come from `inputs` ([`Trace::phase1_reads`]); otherwise both come
    /// from the trace's columns.
    // Rows index several columns at once (`g`, `wt` and `h`), so index loops read best here.
    #[allow(clippy::needless_range_loop)]
    pub(super) fn phase2_into(
        &self,
        hc: &mut [Vec<Fr>],
        z: Fr,
        alpha: Fr,
        weights: Option<&[i64]>,
        inputs: Option<&[Fr]>,
    ) {
        let mut packed = weights.map(|w| w.iter());
        let mut inputs = inputs.map(|v| v.iter());
        let mut phase1 = |read: &dyn Fn() -> Fr| match inputs.as_mut() {
            Some(it) => it.next().copied().unwrap_or(Fr::zero()),
            None => read(),
        };
        let put = |hc: &mut [Vec<Fr>], cell: CellRef, v: Fr| match cell.col {
            Col::H(i) => hc[i][cell.row] = v,
            // The program only ever writes phase-2 cells (`copy_h`, the claim rows).
            Col::Lk(_) | Col::G(_) => debug_assert!(false, "phase-2 write to a phase-1 cell"),
        };
        for step in &self.phase2 {
            match *step {
                Phase2::HornerZ { start, len, lanes } => {
                    for i in 0..lanes {
                        let mut acc = Fr::zero();
                        for r in start..start + len {
                            let a = phase1(&|| self.g[2 * i][r]);
                            let b = phase1(&|| self.g[2 * i + 1][r]);
                            acc = acc * z * z + a * z + b;
                            hc[i][r] = acc;
                        }
                    }
                }
                Phase2::HornerW { start, rows, chains } => {
                    let width = self.params.weights();
                    let alpha_w = alpha.pow_vartime([width as u64]);
                    for c in 0..chains {
                        let mut acc = Fr::zero();
                        for r in start + c * rows..start + (c + 1) * rows {
                            let mut term = Fr::zero();
                            for j in 0..width {
                                let w = match packed.as_mut() {
                                    Some(it) => it.next().map_or(Fr::zero(), |&v| fr_i64(v)),
                                    None => self.wt[j][r],
                                };
                                term = term * alpha + w;
                            }
                            acc = acc * alpha_w + term;
                            hc[HW][r] = acc;
                        }
                    }
                }
                Phase2::HornerA { start, len } => {
                    let mut acc = Fr::zero();
                    for r in start..start + len {
                        acc = if r == start { hc[0][r] } else { acc * alpha + hc[0][r] };
                        hc[1][r] = acc;
                    }
                }
                Phase2::Power { start, len } => {
                    let mut acc = Fr::one();
                    for r in start..start + len {
                        acc *= z;
                        hc[0][r] = acc;
                    }
                }
                Phase2::Dot { start, len, lanes } => {
                    for b in [0, 3].into_iter().take(lanes) {
                        let mut acc = Fr::zero();
                        for r in start..start + len {
                            acc += hc[b][r] * hc[b + 1][r];
                            hc[b + 2][r] = acc;
                        }
                    }
                }
                Phase2::Copy { dst, src } => {
                    let v = match src.col {
                        Col::H(i) => hc[i][src.row],
                        _ => phase1(&|| self.get(src)),
                    };
                    put(hc, dst, v);
                }
                #[cfg(test)]
                Phase2::Set { dst, value } => put(hc, dst, value),
            }
        }
    }

    /// Every column that holds rows; logical lookup operands without a halo2 column (the `y` of the
    /// range-only slots) stay empty.
    fn columns_mut(&mut self) -> impl Iterator<Item = &mut Vec<Fr>> {
        let used_lk = self.lk.iter_mut().enumerate().filter(|(i, _)| lk_index(*i).is_some()).map(|(_, c)| c);
        used_lk.chain(&mut self.g).chain(&mut self.h).chain(&mut self.tag).chain(&mut self.f)
    }

    /// Frees the spare capacity the columns grew by while rows were appended.
    pub fn shrink_to_fit(&mut self) {
        for col in self.columns_mut() {
            col.shrink_to_fit();
        }
        for col in &mut self.wt {
            col.shrink_to_fit();
        }
        self.selectors.shrink_to_fit();
        self.copies.shrink_to_fit();
    }
}

/// Shorthand constructors.
pub(crate) fn lk(i: usize, row: usize) -> CellRef {
    CellRef { col: Col::Lk(i), row }
}
pub(crate) fn g(i: usize, row: usize) -> CellRef {
    CellRef { col: Col::G(i), row }
}
pub(crate) fn h(i: usize, row: usize) -> CellRef {
    CellRef { col: Col::H(i), row }
}
