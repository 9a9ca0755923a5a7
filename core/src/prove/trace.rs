//! The execution trace of a slice circuit, built in plain Rust before any halo2 call: every phase-1 value,
//! fixed value, selector, copy constraint and public input, plus the program that fills the phase-2 columns
//! once the challenges are known. Keygen and proving replay the same trace, so the layout can never depend
//! on the witness.

use halo2_proofs::halo2curves::bn256::Fr;
use std::collections::BTreeSet;
use veil_verifier::circuit::tables::{fr_i64, Family};
use veil_verifier::circuit::{lk_index, F, FW, G, H, SLOTS};

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    Bound,
    Sum,
    SumStart,
    Max,
    Pack,
    PackStart,
    Claim,
    ClaimStart,
    VerdictAge,
    VerdictKind,
}

/// A step of the phase-2 program, run in order once `z` and `α` are known.
#[derive(Clone, Debug)]
pub(crate) enum Phase2 {
    /// Horner chains `h[i] = h[i]·z + g[i]` over rows `start..start+len` in lanes `0..lanes`.
    HornerZ { start: usize, len: usize, lanes: usize },
    /// Horner chains `h[i] = h[i]·α² + f[i]·α + fw[i]` (two fixed values per row).
    HornerW { start: usize, len: usize, lanes: usize },
    /// `h1 = h1·α + h0`.
    HornerA { start: usize, len: usize },
    /// `h0 = z^(r−start+1)`.
    Power { start: usize, len: usize },
    /// Dot products `h2 += h0·h1` (and `h5 += h3·h4` when `lanes == 2`).
    Dot { start: usize, len: usize, lanes: usize },
    /// Copies the value of `src` into the phase-2 cell `dst` (the copy constraint is recorded separately).
    Copy { dst: CellRef, src: CellRef },
    /// A phase-2 cell whose value needs no challenge.
    Set { dst: CellRef, value: Fr },
}

/// The trace of one slice circuit.
#[derive(Clone, Debug, Default)]
pub(crate) struct Trace {
    pub rows: usize,
    pub lk: Vec<Vec<Fr>>,
    pub g: Vec<Vec<Fr>>,
    pub h: Vec<Vec<Fr>>,
    pub tag: Vec<Vec<Fr>>,
    pub f: Vec<Vec<Fr>>,
    /// Second weight columns of `horner_w` rows.
    pub fw: Vec<Vec<Fr>>,
    pub selectors: Vec<(Sel, usize)>,
    pub copies: Vec<(CellRef, CellRef)>,
    pub constants: Vec<(CellRef, Fr)>,
    /// `(cell, instance row)`.
    pub public: Vec<(CellRef, usize)>,
    /// The public input values, by instance row.
    pub instance: Vec<Fr>,
    pub phase2: Vec<Phase2>,
    pub families: BTreeSet<Family>,
    /// Softmax exponential tables used by `Family::Exp`.
    pub exp_tables: Vec<Vec<i64>>,
    /// Poseidon hashes to lay out: `(first row, domain, inputs, output cell)`.
    pub hashes: Vec<HashJob>,
    /// Every division in layout order: its row and lane (0, or 1 for the second lane of a `div2` row).
    pub div_lanes: Vec<(usize, usize)>,
    zero: Option<CellRef>,
}

/// A Poseidon hash placed by the chip during synthesis.
#[derive(Clone, Debug)]
pub(crate) struct HashJob {
    pub row: usize,
    pub domain: u64,
    pub inputs: Vec<CellRef>,
    /// The instance row its output is exposed at.
    pub instance_row: usize,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Trace {
            lk: vec![Vec::new(); 2 * SLOTS],
            g: vec![Vec::new(); G],
            h: vec![Vec::new(); H],
            tag: vec![Vec::new(); SLOTS],
            f: vec![Vec::new(); F],
            fw: vec![Vec::new(); FW],
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

    /// Sets a lookup slot's tag at `row`.
    pub fn tag(&mut self, slot: usize, row: usize, family: Family) {
        self.families.insert(family);
        self.tag[slot][row] = Fr::from(family.tag());
    }

    /// A cell constrained to zero (allocated once).
    pub fn zero(&mut self) -> CellRef {
        if let Some(z) = self.zero {
            return z;
        }
        let row = self.alloc(1);
        let cell = CellRef { col: Col::G(0), row };
        self.constants.push((cell, Fr::zero()));
        self.zero = Some(cell);
        cell
    }

    /// A new cell constrained to a constant.
    pub fn constant(&mut self, value: i64) -> CellRef {
        if value == 0 {
            return self.zero();
        }
        let row = self.alloc(1);
        let cell = CellRef { col: Col::G(0), row };
        self.set_i(cell, value);
        self.constants.push((cell, fr_i64(value)));
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
        self.phase2_into(&mut hc, z, alpha, None);
        hc
    }

    /// Runs the phase-2 program over `hc`, which starts as the trace's `h` columns. The `horner_w` rows read
    /// their weights from `weights` in program order (block, lane, row) when given (a parked trace,
    /// `park.rs`), else from the fixed columns.
    // Rows index several columns at once (`g`, `f`, `fw` and `h`), so index loops read best here.
    #[allow(clippy::needless_range_loop)]
    pub(super) fn phase2_into(&self, hc: &mut [Vec<Fr>], z: Fr, alpha: Fr, weights: Option<&[[i64; 2]]>) {
        let mut packed = weights.map(|w| w.iter());
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
                            acc = if r == start { self.g[i][r] } else { acc * z + self.g[i][r] };
                            hc[i][r] = acc;
                        }
                    }
                }
                Phase2::HornerW { start, len, lanes } => {
                    let alpha2 = alpha.square();
                    for i in 0..lanes {
                        let mut acc = Fr::zero();
                        for r in start..start + len {
                            let [f, fw] = match packed.as_mut() {
                                Some(it) => it.next().map_or([Fr::zero(); 2], |&[a, b]| [fr_i64(a), fr_i64(b)]),
                                None => [self.f[i][r], self.fw[i][r]],
                            };
                            let pair = f * alpha + fw;
                            acc = if r == start { pair } else { acc * alpha2 + pair };
                            hc[i][r] = acc;
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
                        _ => self.get(src),
                    };
                    put(hc, dst, v);
                }
                Phase2::Set { dst, value } => put(hc, dst, value),
            }
        }
    }

    /// Every column that holds rows; logical lookup operands without a halo2 column (the `y` of the
    /// range-only slots) stay empty.
    fn columns_mut(&mut self) -> impl Iterator<Item = &mut Vec<Fr>> {
        let used_lk = self.lk.iter_mut().enumerate().filter(|(i, _)| lk_index(*i).is_some()).map(|(_, c)| c);
        used_lk.chain(&mut self.g).chain(&mut self.h).chain(&mut self.tag).chain(&mut self.f).chain(&mut self.fw)
    }

    /// Frees the spare capacity the columns grew by while rows were appended.
    pub fn shrink_to_fit(&mut self) {
        for col in self.columns_mut() {
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
