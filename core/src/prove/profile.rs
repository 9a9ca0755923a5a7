//! Where a slice circuit's rows go, by the relation each row serves. Proving time and memory grow with
//! `2^k`, so this is the profile to read before changing a layout: which relations to make cheaper, and how far
//! a slice is from fitting a smaller `k`.

use super::trace::{Sel, Trace};
use veil_verifier::poseidon::PoseidonChip;

/// Rows of a slice circuit by relation. Each row is counted once, under the first relation found on it; every
/// row of a chain (a Horner chain, a running sum, packing) has its chain's selector, and a gate that reads the
/// next row (the remainder bound) claims that row too. The weight track runs beside these relations: its rows are
/// counted apart, in [`RowProfile::weights`], and the rows past the other relations' end count as `other`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RowProfile {
    /// Requantization: division rows (up to four divisions a row; a fused ReLU rides on each), plus the bound
    /// row of a divisor that is not a power of two.
    pub requantization: usize,
    /// Horner rows evaluating phase-1 tensors at `z`: layer inputs `X(z)` and accumulators `P(z)`.
    pub tensor_polynomials: usize,
    /// Rows of the weight track: Horner rows over the fixed weights, one per weight column a row, beside the other relations
    /// (not part of the sum that makes `total`).
    pub weights: usize,
    /// The rest of the Freivalds checks: powers of `z`, combinations over channels, dot products.
    pub freivalds_glue: usize,
    /// Pairwise maxima (max pooling).
    pub maxima: usize,
    /// Running sums (pooling windows, additions).
    pub sums: usize,
    /// Packing boundary tensors into field elements before hashing.
    pub packing: usize,
    /// Poseidon permutations of the boundary commitments.
    pub poseidon: usize,
    /// The claim and verdict rows of a last slice.
    pub claim: usize,
    /// Rows that no relation above is on (constants, the blinding value's row).
    pub other: usize,
    /// Rows used in all.
    pub total: usize,
}

/// A relation's bucket in [`RowProfile`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Requantization,
    TensorPolynomials,
    FreivaldsGlue,
    Maxima,
    Sums,
    Packing,
    Poseidon,
    Claim,
}

/// The bucket of a selector, and whether its gate also constrains the next row; `None` for the weight track,
/// which is counted apart, and for constants, which count as other rows.
fn bucket(sel: Sel) -> Option<(Bucket, bool)> {
    use Bucket::*;
    Some(match sel {
        Sel::Div | Sel::Div2 | Sel::Div4 => (Requantization, false),
        Sel::Bound => (Requantization, true),
        Sel::HornerZ => (TensorPolynomials, false),
        Sel::HornerZStart => (TensorPolynomials, false),
        Sel::HornerW | Sel::HornerWStart | Sel::Constant => return None,
        Sel::HornerA | Sel::Power | Sel::Dot => (FreivaldsGlue, false),
        Sel::HornerAStart | Sel::PowerStart | Sel::DotStart => (FreivaldsGlue, false),
        Sel::Max => (Maxima, false),
        Sel::Sum => (Sums, false),
        Sel::SumStart => (Sums, false),
        Sel::Pack => (Packing, false),
        Sel::PackStart => (Packing, false),
        Sel::Claim => (Claim, false),
    })
}

impl RowProfile {
    /// The profile of a laid-out trace.
    pub(crate) fn of(trace: &Trace) -> Self {
        let mut owner: Vec<Option<Bucket>> = vec![None; trace.rows];
        let mut own = |row: usize, b: Bucket| {
            if let Some(slot @ None) = owner.get_mut(row) {
                *slot = Some(b);
            }
        };
        for &(sel, row) in &trace.selectors {
            let Some((b, next)) = bucket(sel) else { continue };
            own(row, b);
            if next {
                own(row + 1, b);
            }
        }
        for job in &trace.hashes {
            for row in job.row..job.row + PoseidonChip::rows_for(job.lanes.first().map_or(0, Vec::len)) {
                own(row, Bucket::Poseidon);
            }
        }
        let mut p = RowProfile { total: trace.rows, weights: trace.weight_rows, ..Default::default() };
        for b in owner {
            let count = match b {
                None => &mut p.other,
                Some(Bucket::Requantization) => &mut p.requantization,
                Some(Bucket::TensorPolynomials) => &mut p.tensor_polynomials,
                Some(Bucket::FreivaldsGlue) => &mut p.freivalds_glue,
                Some(Bucket::Maxima) => &mut p.maxima,
                Some(Bucket::Sums) => &mut p.sums,
                Some(Bucket::Packing) => &mut p.packing,
                Some(Bucket::Poseidon) => &mut p.poseidon,
                Some(Bucket::Claim) => &mut p.claim,
            };
            *count += 1;
        }
        p
    }

    /// `(name, rows)` for each relation of the main track, in a fixed order (for tables); they sum to
    /// `total`. The weight track's rows are [`RowProfile::weights`].
    pub fn entries(&self) -> [(&'static str, usize); 9] {
        [
            ("requant", self.requantization),
            ("X/P(z)", self.tensor_polynomials),
            ("glue", self.freivalds_glue),
            ("max", self.maxima),
            ("sums", self.sums),
            ("packing", self.packing),
            ("poseidon", self.poseidon),
            ("claim", self.claim),
            ("other", self.other),
        ]
    }
}
