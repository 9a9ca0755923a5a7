//! Negative tests of the division rows: a wrong quotient, a remainder out of range or a wrong fused ReLU in
//! any lane of a `div4` row (a `div2` row in narrow rows) is rejected, each by the relation that guards it. Also the constant cells: one
//! moved off the value its key fixes is rejected by the `constant` gate.

use super::forgery::{conv_relu_slice, conv_relu_slice_at, failures, is_gate, small};
use super::trace::{Sel, Trace};
use halo2_proofs::dev::VerifyFailure;
use halo2_proofs::halo2curves::bn256::Fr;
use veil_verifier::circuit::tables::fr_i128;
use veil_verifier::circuit::{Width, DIV_LANES, MAX_WEIGHTS};

/// The logical `lk` operands of a `div4` (or `div2`) lane: (quotient, output, remainder).
fn lane_operands(lane: usize) -> (usize, usize, usize) {
    let (q, r) = DIV_LANES[lane];
    (2 * q, 2 * q + 1, 2 * r)
}

/// A failure of the logUp argument: a tuple outside the table leaves its running sum non-zero at the end.
fn is_lookup(f: &VerifyFailure) -> bool {
    is_gate(f, "lookup_last")
}

/// The shared division rows of `width` (`div4` rows wide, `div2` rows narrow) and their gate's name.
fn shared_rows(t: &Trace, width: Width) -> (&'static str, Vec<usize>) {
    let (sel, name) = if width == Width::Wide { (Sel::Div4, "div4") } else { (Sel::Div2, "div2") };
    (name, t.selectors.iter().filter(|(s, _)| *s == sel).map(|&(_, r)| r).collect())
}

/// The first shared division row of `width`, its gate's name and its divisor (shared by its lanes).
fn first_shared_row(t: &Trace, width: Width) -> (&'static str, usize, i128) {
    let (name, rows) = shared_rows(t, width);
    let row = *rows.first().expect("a shared division row");
    (name, row, small(t.f[3][row]))
}

#[test]
fn a_quotient_off_by_one_with_its_remainder_moved_out_of_range_is_rejected_in_every_lane() {
    for width in Width::ALL {
        let (_, _, honest) = conv_relu_slice_at(MAX_WEIGHTS, width);
        let k = honest.k();
        let (_, row, divisor) = first_shared_row(&honest.trace, width);
        for lane in 0..width.division_lanes() {
            let (q_op, _, r_op) = lane_operands(lane);
            for step in [1i128, -1] {
                // q ± 1 with r ∓ D keeps the division relation; the remainder leaves [0, D).
                let mut t = (*honest.trace).clone();
                t.lk[q_op][row] = fr_i128(small(t.lk[q_op][row]) + step);
                t.lk[r_op][row] = fr_i128(small(t.lk[r_op][row]) - step * divisor);
                let fails = failures(t, k);
                assert!(!fails.is_empty(), "{width:?} lane {lane}, step {step}: accepted");
                assert!(
                    fails.iter().all(is_lookup),
                    "{width:?} lane {lane}, step {step}: only a lookup fails: {fails:?}"
                );
            }
        }
    }
}

#[test]
fn a_remainder_changed_alone_breaks_its_lane_of_the_division_gate() {
    for width in Width::ALL {
        let (_, _, honest) = conv_relu_slice_at(MAX_WEIGHTS, width);
        let k = honest.k();
        let (gate, row, _) = first_shared_row(&honest.trace, width);
        for lane in 0..width.division_lanes() {
            let (_, _, r_op) = lane_operands(lane);
            let mut t = (*honest.trace).clone();
            let r = small(t.lk[r_op][row]);
            // Stay inside the range table so only the gate can object.
            t.lk[r_op][row] = fr_i128(if r > 0 { r - 1 } else { r + 1 });
            let fails = failures(t, k);
            assert!(!fails.is_empty(), "{width:?} lane {lane}: accepted");
            assert!(fails.iter().all(|f| is_gate(f, gate)), "{width:?} lane {lane}: only {gate} fails: {fails:?}");
        }
    }
}

#[test]
fn a_fused_relu_output_other_than_the_table_s_is_rejected_in_every_lane() {
    for width in Width::ALL {
        let (_, _, honest) = conv_relu_slice_at(MAX_WEIGHTS, width);
        let k = honest.k();
        let t0 = &honest.trace;
        let (_, rows) = shared_rows(t0, width);
        for lane in 0..width.division_lanes() {
            let (q_op, y_op, _) = lane_operands(lane);
            // A row whose lane saw a negative quotient: the fused ReLU output is 0.
            let row = *rows.iter().find(|&&r| small(t0.lk[q_op][r]) < 0).expect("a negative pre-activation");
            assert_eq!(t0.lk[y_op][row], Fr::zero(), "{width:?} lane {lane}: the honest output is the ReLU's 0");
            let mut t = (*honest.trace).clone();
            // Claim the clamped pre-activation itself, as if no ReLU had been applied.
            t.lk[y_op][row] = t.lk[q_op][row];
            let fails = failures(t, k);
            assert!(fails.iter().any(is_lookup), "{width:?} lane {lane}: the ClampRelu lookup rejects: {fails:?}");
        }
    }
}

#[test]
fn a_constant_cell_off_its_fixed_value_is_rejected_by_the_arith_gate() {
    let (_, _, honest) = conv_relu_slice();
    let k = honest.k();
    let rows: Vec<usize> =
        honest.trace.selectors.iter().filter(|(s, _)| *s == Sel::Constant).map(|&(_, r)| r).collect();
    assert!(rows.len() >= 2, "the slice pins the zero and the one of its power chain: {rows:?}");
    for row in rows {
        let mut t = (*honest.trace).clone();
        t.g[0][row] += Fr::one();
        let fails = failures(t, k);
        assert!(fails.iter().any(|f| is_gate(f, "arith")), "row {row}: the arith gate rejects: {fails:?}");
    }
}

/// Slots share tag columns: an idle slot beside a used one under the same tag gets the family's entry at 0 (a
/// table row, the zeros the gates that read idle slots expect), and two families under one tag are refused.
#[test]
fn an_idle_slot_takes_its_partner_s_family_at_zero_and_a_pair_holds_one_family() {
    use veil_verifier::circuit::tables::Family;
    let relu = Family::Relu { bits: 4 };
    let mut t = Trace::new(veil_verifier::circuit::SliceParams::default());
    let row = t.alloc(1);
    t.tag(0, row, relu);
    t.lk[0][row] = Fr::from(3);
    t.lk[1][row] = Fr::from(3);
    t.lk[7][row] = Fr::from(5);
    t.finish().expect("one family per pair");
    assert_eq!(t.tag[0][row], Fr::from(relu.tag()), "slot 3 is looked up under slot 0's family");
    for idle in [3, 4, 7] {
        let (x, y) = (t.lk[2 * idle][row], t.lk[2 * idle + 1][row]);
        assert_eq!((x, y), (Fr::zero(), Fr::zero()), "idle slot {idle} holds (0, ReLU(0))");
    }
    assert_eq!((t.lk[0][row], t.lk[1][row]), (Fr::from(3), Fr::from(3)), "the used slot is untouched");

    let mut clash = Trace::new(veil_verifier::circuit::SliceParams::default());
    let row = clash.alloc(1);
    clash.tag(1, row, Family::Range { bits: 12 });
    clash.tag(2, row, Family::Range { bits: 15 });
    assert!(clash.finish().is_err(), "two range widths under one tag column");
}
