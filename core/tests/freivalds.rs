//! The Freivalds convolution check: accepts the integer reference's accumulators for every geometry,
//! rejects tampered ones, and shows why the challenges must be drawn after the accumulators are fixed.

use anyhow::{Context, Result};
use proptest::prelude::*;
use std::path::Path;
use veil_core::freivalds::{check_conv, check_linear, check_requant, Challenges, CheckField, ConvGeometry, Goldilocks};
use veil_core::quant::{conv_accumulators, QOp, Requant};
use veil_core::tensor::Tensor;
use veil_core::Model;

fn challenges(seed: [u64; 3]) -> Challenges<Goldilocks> {
    // Challenges are non-zero (β and γ are inverted); 0 and 1 are excluded as degenerate.
    let pick = |v: u64| Goldilocks::new(v.max(2));
    Challenges { alpha: pick(seed[0]), beta: pick(seed[1]), gamma: pick(seed[2]) }
}

#[derive(Debug, Clone)]
struct Problem {
    x: Tensor<i64>,
    op: QOp,
    out_shape: Vec<usize>,
    geometry: ConvGeometry,
}

fn problem() -> impl Strategy<Value = Problem> {
    (
        1..=2usize,
        1..=3usize,
        1..=3usize,
        3..=9usize,
        3..=9usize,
        1..=3usize,
        1..=3usize,
        1..=3usize,
        1..=3usize,
        1..=2usize,
        1..=2usize,
    )
        .prop_flat_map(|(groups, cin_g, cout_g, h, w, kh, kw, sy, sx, dy, dx)| {
            (
                Just((groups, cin_g, cout_g, h, w, [kh, kw], [sy, sx], [dy, dx])),
                prop::array::uniform4(0..=2usize),
                prop::collection::vec(-2048i64..2048, groups * cin_g * h * w),
                prop::collection::vec(-2048i64..2048, groups * cout_g * cin_g * kh * kw),
                prop::collection::vec(-100_000i64..100_000, groups * cout_g),
            )
        })
        .prop_filter("window fits", |((_, _, _, h, w, k, _, d), p, ..)| {
            h + p[0] + p[2] > d[0] * (k[0] - 1) && w + p[1] + p[3] > d[1] * (k[1] - 1)
        })
        .prop_map(|((groups, cin_g, cout_g, h, w, k, strides, dilations), pads, x, weight, bias)| {
            let (cin, cout) = (groups * cin_g, groups * cout_g);
            let out = |axis: usize, len: usize| {
                (len + pads[axis] + pads[axis + 2] - dilations[axis] * (k[axis] - 1) - 1) / strides[axis] + 1
            };
            let out_shape = vec![1, cout, out(0, h), out(1, w)];
            let op = QOp::Conv {
                weight: Tensor::new(vec![cout, cin_g, k[0], k[1]], weight).expect("sizes"),
                bias,
                strides,
                pads,
                dilations,
                group: groups,
                requant: Requant { multipliers: vec![1], shift: 0 },
            };
            let geometry = ConvGeometry { strides, pads, dilations, group: groups };
            Problem { x: Tensor::new(vec![1, cin, h, w], x).expect("sizes"), op, out_shape, geometry }
        })
}

fn parts(op: &QOp) -> (&Tensor<i64>, &[i64]) {
    match op {
        QOp::Conv { weight, bias, .. } => (weight, bias),
        _ => unreachable!("conv problems only"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn linear_check_accepts_honest_and_rejects_tampered_accumulators(
        (rows, k, n, x, w, bias) in (1..=4usize, 1..=16usize, 1..=8usize).prop_flat_map(|(rows, k, n)| (
            Just(rows), Just(k), Just(n),
            prop::collection::vec(-2048i64..2048, rows * k),
            prop::collection::vec(-2048i64..2048, k * n),
            prop::collection::vec(-100_000i64..100_000, n),
        )),
        seed in prop::array::uniform3(any::<u64>()),
        at in any::<prop::sample::Index>(),
    ) {
        let acc: Vec<i64> = (0..rows * n)
            .map(|i| bias[i % n] + (0..k).map(|t| x[(i / n) * k + t] * w[t * n + i % n]).sum::<i64>())
            .collect();
        let (x, w) = (Tensor::new(vec![rows, k], x).unwrap(), Tensor::new(vec![k, n], w).unwrap());
        let mut acc = Tensor::new(vec![rows, n], acc).unwrap();
        let r = challenges(seed);
        prop_assert!(check_linear(&x, &w, &bias, &acc, r.alpha, r.beta));
        let i = at.index(acc.len());
        acc.data_mut()[i] -= 1;
        prop_assert!(!check_linear(&x, &w, &bias, &acc, r.alpha, r.beta));
    }

    #[test]
    fn honest_accumulators_pass_and_tampered_ones_fail(p in problem(), seed in prop::array::uniform3(any::<u64>()), at in any::<prop::sample::Index>(), delta in prop_oneof![Just(1i64), Just(-1), 2..1000i64]) {
        let acc = conv_accumulators(&p.x, &p.op, &p.out_shape).expect("a conv");
        let (weight, bias) = parts(&p.op);
        let r = challenges(seed);
        prop_assert!(check_conv(&p.x, weight, bias, &acc, &p.geometry, r));
        let mut bad = acc.clone();
        let i = at.index(bad.len());
        bad.data_mut()[i] += delta;
        prop_assert!(!check_conv(&p.x, weight, bias, &bad, &p.geometry, r), "tampered accumulator {i} passed");
    }
}

/// A prover that knew the challenges could move two accumulators so that their weighted changes cancel at
/// that point; the same witness fails at fresh challenges. This is why accumulators are committed before
/// the challenges are drawn (in-circuit: first-phase advice, challenge usable after it).
#[test]
fn cancelling_tampering_passes_only_at_the_challenges_it_was_built_for() {
    let x = Tensor::new(vec![1, 1, 4, 4], (0..16).map(|v| v * 7 - 50).collect()).unwrap();
    let weight = Tensor::new(vec![2, 1, 3, 3], (0..18).map(|v| 9 - v).collect()).unwrap();
    let op = QOp::Conv {
        weight: weight.clone(),
        bias: vec![5, -5],
        strides: [1, 1],
        pads: [1, 1, 1, 1],
        dilations: [1, 1],
        group: 1,
        requant: Requant { multipliers: vec![1], shift: 0 },
    };
    let geometry = ConvGeometry { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 };
    let acc = conv_accumulators(&x, &op, &[1, 2, 4, 4]).unwrap();
    let known = challenges([3, 5, 7]);
    // Y[0,0,0] has weight α⁰β⁰γ⁰ = 1 and Y[0,0,1] weight γ: adding γ to the first and subtracting 1 from the
    // second leaves the left side unchanged at this point.
    let gamma = 7i64;
    let mut forged = acc.clone();
    forged.data_mut()[0] += gamma;
    forged.data_mut()[1] -= 1;
    assert!(check_conv(&x, &weight, &[5, -5], &forged, &geometry, known), "the forgery fits the known point");
    assert!(!check_conv(&x, &weight, &[5, -5], &forged, &geometry, challenges([11, 13, 17])));
    assert_ne!(forged, acc);
    assert_eq!(Goldilocks::from_i64(gamma), known.gamma);
}

/// Every convolution of the shipped age model passes the check on its real integer witness.
#[test]
fn age_model_convolutions_pass_on_the_real_witness() -> Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/age-v1.onnx");
    let model = Model::load_onnx(&path)?;
    let graph = model.quantize_default()?;
    let input = Tensor::new(graph.value(graph.inputs[0]).shape.clone(), vec![0.1f32; 3 * 64 * 64])?;
    let witness = graph.run_all(&[graph.quantize_input(0, &input)?])?;
    let mut checked = 0;
    for node in &graph.nodes {
        let QOp::Conv { weight, bias, strides, pads, dilations, group, .. } = &node.op else { continue };
        let x = witness[node.inputs[0].0].as_ref().context("witness")?;
        let acc = conv_accumulators(x, &node.op, &graph.value(node.output).shape).context("conv")?;
        let geometry = ConvGeometry { strides: *strides, pads: *pads, dilations: *dilations, group: *group };
        assert!(check_conv(x, weight, bias, &acc, &geometry, challenges([12345, 678910, 1112131415])), "{}", node.name);
        // The requantized outputs follow from the accumulators element by element; a changed output does not.
        let QOp::Conv { requant, .. } = &node.op else { unreachable!() };
        let out = witness[node.output.0].as_ref().context("witness")?;
        let shape = &graph.value(node.output).shape;
        let plane = shape[2] * shape[3];
        let channel = |i: usize| (i / plane) % shape[1];
        let bits = graph.value(node.output).bits;
        assert_eq!(check_requant(acc.data(), requant, out.data(), bits, channel), Ok(()), "{}", node.name);
        let mut forged = out.data().to_vec();
        forged[plane] += 1;
        assert_eq!(check_requant(acc.data(), requant, &forged, bits, channel), Err(plane), "{}", node.name);
        checked += 1;
    }
    assert_eq!(checked, 11);
    Ok(())
}
