//! The claim, computed in the last slice from the logits: the revealed output, the argmax, or the age
//! predicate `Σ_i exp[m − z_i]·(4·age_i − T) ≥ 0` (quarter years; `m` the largest logit), which reveals one bit.
//!
//! One circuit serves every claim kind: the public kind `σ` (0 output, 1 argmax, 2 age) selects, through
//! one-hot bits, which value is revealed; the others stay private (the output values are multiplied by the
//! output bit, so they are public zeros for the other kinds).

use super::division::limbs;
use super::ops::Cells;
use super::trace::{g, h, lk, Phase2, Sel, Trace};
use super::ProveError;
use crate::ir::ValueId;
use halo2_proofs::halo2curves::bn256::Fr;
use veil_verifier::circuit::tables::{fr_i128, fr_i64, Family};

/// What the claim rows need from the compiled model.
#[derive(Clone, Debug)]
pub(crate) struct ClaimSetup {
    /// The logits value.
    pub logits: ValueId,
    /// The softmax exponential table (empty when the model ends without a softmax).
    pub exp_table: Vec<i64>,
    /// Each logit's age in quarter years (zeros for a model that does not estimate age).
    pub age_quarters: Vec<i64>,
    /// Signed bits of the logits: `m − z` lies in `[0, 2^bits)`, the exp table's domain.
    pub bits: u32,
}

/// The claim asked for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClaimWitness {
    /// 0 output, 1 argmax, 2 age.
    pub kind: u8,
    /// The age threshold in quarter years (0 for the other kinds).
    pub threshold_quarters: i64,
}

/// Lays out the claim rows and exposes `[σ, T, v, o_0, …]` as public inputs.
pub(crate) fn claim_rows(
    t: &mut Trace,
    setup: &ClaimSetup,
    logits: &Cells,
    claim: Option<&ClaimWitness>,
) -> Result<(), ProveError> {
    let n = logits.len();
    if n == 0 || setup.age_quarters.len() != n {
        return Err(ProveError::Unsupported(format!("claim over {n} logits with {} ages", setup.age_quarters.len())));
    }
    let claim = claim.copied().unwrap_or(ClaimWitness { kind: 0, threshold_quarters: 0 });
    t.exp_tables.push(setup.exp_table.clone());
    let exp = Family::Exp { bits: setup.bits, table: t.exp_tables.len() as u32 - 1 };
    let z = &logits.values;
    let m = z.iter().copied().max().unwrap_or(0);
    let first = z.iter().position(|&v| v == m).unwrap_or(0);
    let e = [claim.kind == 0, claim.kind == 1, claim.kind == 2].map(i64::from);
    let m_row = t.alloc(1);
    t.set_i(g(0, m_row), m);
    let start = t.alloc(n);
    let (mut p, mut k, mut acc, mut sum) = (0i64, 0i64, 0i128, 0i128);
    // The claim-kind row comes after the age row; its e0 cell is known now.
    let age_row = t.alloc(2);
    let kind_row = age_row + 1;
    for (i, &zi) in z.iter().enumerate() {
        let r = start + i;
        t.enable(if i == 0 { Sel::ClaimStart } else { Sel::Claim }, r);
        t.copy_in(g(0, r), logits.cells[i]);
        t.copy_in(g(1, r), g(0, m_row));
        let d = m - zi;
        let ei = usize::try_from(d).ok().and_then(|d| setup.exp_table.get(d)).copied().unwrap_or(0);
        t.set_i(lk(0, r), d);
        t.set_i(lk(1, r), ei);
        t.tag(0, r, exp);
        let b = i64::from(i == first);
        p += b;
        k += b * i as i64;
        acc += ei as i128 * setup.age_quarters[i] as i128;
        sum += ei as i128;
        t.set_i(g(2, r), b);
        let inv = if p == 0 { fr_i64(d).invert().unwrap_or(Fr::zero()) } else { Fr::zero() };
        t.set(g(3, r), inv);
        t.set_i(g(4, r), p);
        t.set_i(g(5, r), k);
        t.f[0][r] = Fr::from(i as u64);
        t.f[1][r] = fr_i64(setup.age_quarters[i]);
        t.phase2.push(Phase2::Set { dst: h(0, r), value: fr_i128(acc) });
        t.phase2.push(Phase2::Set { dst: h(1, r), value: fr_i128(sum) });
        t.phase2.push(Phase2::Set { dst: h(2, r), value: fr_i64(e[0] * zi) });
        t.copy_h(h(3, r), g(0, kind_row));
    }
    let last = start + n - 1;
    let one = t.constant(1);
    t.copy(g(4, last), one);
    // Age row.
    t.enable(Sel::VerdictAge, age_row);
    t.copy(g(0, age_row), h(0, last));
    t.copy(g(1, age_row), h(1, last));
    let threshold = claim.threshold_quarters as i128;
    let d = acc - threshold * sum;
    let holds = i64::from(d >= 0);
    t.set(g(0, age_row), fr_i128(acc));
    t.set(g(1, age_row), fr_i128(sum));
    t.set(g(2, age_row), fr_i128(threshold));
    t.set_i(g(3, age_row), holds);
    let v = if d >= 0 { d } else { -d - 1 };
    if v >= 1 << 36 {
        return Err(ProveError::Saturation { what: "age score".into(), value: d, bits: 36 });
    }
    limbs(t, age_row, v, 36);
    // Kind row.
    t.enable(Sel::VerdictKind, kind_row);
    t.set_i(g(0, kind_row), e[0]);
    t.set_i(g(1, kind_row), e[1]);
    t.set_i(g(3, kind_row), claim.kind as i64);
    t.copy_in(g(4, kind_row), g(5, last));
    let revealed = e[1] * first as i64 + e[2] * holds;
    t.set_i(g(5, kind_row), revealed);
    t.expose(g(3, kind_row));
    t.expose(g(2, age_row));
    t.expose(g(5, kind_row));
    for (i, &zi) in z.iter().enumerate() {
        let row = t.instance.len();
        t.instance.push(fr_i64(e[0] * zi));
        t.public.push((h(2, start + i), row));
    }
    Ok(())
}
