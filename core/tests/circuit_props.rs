//! Property tests of the circuit chips under halo2's `MockProver`: random small convolutions, linear layers,
//! poolings and residual adds (each followed by a ReLU, so the fused ReLU slot is exercised), laid out as one
//! slice whose boundary tensors are committed. For every case the circuit must reproduce the integer
//! reference bit for bit (the layout refuses otherwise) and be satisfied; the same circuit against an altered
//! output commitment must not be.

use halo2_proofs::dev::MockProver;
use halo2_proofs::halo2curves::bn256::Fr;
use proptest::prelude::*;
use rand_core::{RngCore, SeedableRng};
use std::collections::HashMap;
use veil_core::ir::{Pool, ValueId};
use veil_core::prove::{slice_circuit, ClaimRequest, SliceInputs, SliceSpec, RANGE_BITS};
use veil_core::quant::{QNode, QOp, QValue, QuantConfig, QuantizedGraph, Requant};
use veil_core::tensor::Tensor;
use veil_verifier::circuit::Width;

/// Activation width: 8 bits keeps the lookup table, and so each mock circuit, small.
const BITS: u32 = 8;
const HALF: i64 = 1 << (BITS - 1);

/// A graph `inputs → op → ReLU` over values of `BITS` bits.
fn graph(inputs: &[(Vec<usize>, i32)], op: QOp, out_shape: Vec<usize>, out_frac: i32) -> QuantizedGraph {
    let value = |name: String, shape, frac| QValue { name, shape, frac, bits: BITS };
    let mut values: Vec<QValue> =
        inputs.iter().enumerate().map(|(i, (s, f))| value(format!("x{i}"), s.clone(), *f)).collect();
    let n = values.len();
    values.push(value("y".into(), out_shape.clone(), out_frac));
    values.push(value("r".into(), out_shape, out_frac));
    QuantizedGraph {
        config: QuantConfig::default(),
        values,
        nodes: vec![
            QNode { name: "op".into(), op, inputs: (0..n).map(ValueId).collect(), output: ValueId(n) },
            QNode { name: "relu".into(), op: QOp::Relu, inputs: vec![ValueId(n)], output: ValueId(n + 1) },
        ],
        inputs: (0..n).map(ValueId).collect(),
        outputs: vec![ValueId(n + 1)],
    }
}

/// Lays the whole graph out as one slice at each row width and checks it under `MockProver`, then with a wrong
/// output commitment.
fn check(graph: &QuantizedGraph, inputs: Vec<Tensor<i64>>) -> Result<(), TestCaseError> {
    for width in Width::ALL {
        for lanes in 1..=width.max_poseidon_lanes() {
            check_at(graph, &inputs, width, lanes)?;
        }
    }
    Ok(())
}

fn check_at(graph: &QuantizedGraph, inputs: &[Tensor<i64>], width: Width, lanes: usize) -> Result<(), TestCaseError> {
    let values = graph.run_all(inputs).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let spec = SliceSpec {
        nodes: 0..graph.nodes.len(),
        inputs: graph.inputs.clone(),
        outputs: graph.outputs.clone(),
        weights: 12,
        range_bits: RANGE_BITS[0],
        width,
        poseidon_lanes: lanes,
    };
    let blinds: HashMap<ValueId, Fr> =
        graph.inputs.iter().chain(&graph.outputs).enumerate().map(|(i, &id)| (id, Fr::from(11 + i as u64))).collect();
    let witness = SliceInputs { values: &values, blinds: &blinds, binding: Fr::from(5), claim: ClaimRequest::Output };
    // The narrow range width takes remainders of up to two 12-bit limbs; wider ones need the wide width.
    let circuit = match slice_circuit(graph, &spec, None, Some(&witness)) {
        Err(veil_core::prove::ProveError::Unsupported(_)) => {
            slice_circuit(graph, &SliceSpec { range_bits: RANGE_BITS[1], ..spec.clone() }, None, Some(&witness))
        }
        other => other,
    };
    let circuit = match circuit {
        Ok(c) => c,
        // A quotient beyond the clamp table's range is a documented completeness limit, not a failure.
        Err(veil_core::prove::ProveError::Saturation { .. }) => return Err(TestCaseError::reject("saturates")),
        Err(e) => return Err(TestCaseError::fail(format!("layout: {e}"))),
    };
    let instance = circuit.instance();
    let mock = MockProver::run(circuit.k(), &circuit, vec![instance.clone()])
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(
        mock.verify().is_ok(),
        "{width:?} rows unsatisfied: {:?}",
        mock.verify().err().map(|f| f.into_iter().take(3).collect::<Vec<_>>())
    );
    let mut wrong = instance;
    let last = wrong.len() - 1;
    wrong[last] += Fr::one();
    let mock = MockProver::run(circuit.k(), &circuit, vec![wrong]).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(mock.verify().is_err(), "{width:?} rows: an altered output commitment was accepted");
    Ok(())
}

/// A shift that brings `bound · max_multiplier` to about `2^(BITS + 1)`, so outputs use the range and sometimes
/// saturate, but quotients stay within the clamp table.
fn shift_for(bound: i128, max_multiplier: i64) -> u32 {
    let bits = 128 - (bound * max_multiplier as i128).max(1).leading_zeros();
    bits.saturating_sub(BITS + 1).max(1)
}

/// A uniform integer in `[lo, hi)`.
fn uniform(r: &mut rand_chacha::ChaCha20Rng, lo: i64, hi: i64) -> i64 {
    lo + (r.next_u64() % (hi - lo) as u64) as i64
}

fn values(n: usize) -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(-HALF..HALF, n)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_global_rejects: 400, ..ProptestConfig::default() })]

    #[test]
    fn convolution_then_relu(
        (cin, cout, h, w, kh, kw) in (1..=3usize, 1..=4usize, 3..=6usize, 3..=6usize, 1..=3usize, 1..=3usize),
        strides in prop::array::uniform2(1..=2usize),
        pads in prop::array::uniform4(0..=1usize),
        seed in any::<u64>(),
    ) {
        prop_assume!(h + pads[0] + pads[2] >= kh && w + pads[1] + pads[3] >= kw);
        let oh = (h + pads[0] + pads[2] - kh) / strides[0] + 1;
        let ow = (w + pads[1] + pads[3] - kw) / strides[1] + 1;
        let mut r = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let x: Vec<i64> = (0..cin * h * w).map(|_| uniform(&mut r, -HALF, HALF)).collect();
        let weight: Vec<i64> = (0..cout * cin * kh * kw).map(|_| uniform(&mut r, -HALF, HALF)).collect();
        let bias: Vec<i64> = (0..cout).map(|_| uniform(&mut r, -5000, 5000)).collect();
        let multipliers: Vec<i64> = (0..cout).map(|_| uniform(&mut r, 1, 65536)).collect();
        let bound = 5000 + (cin * kh * kw) as i128 * (HALF * HALF) as i128;
        let shift = shift_for(bound, *multipliers.iter().max().unwrap_or(&1));
        let op = QOp::Conv {
            weight: Tensor::new(vec![cout, cin, kh, kw], weight).expect("weight"),
            bias,
            strides,
            pads: [pads[0], pads[1], pads[2], pads[3]],
            dilations: [1, 1],
            group: 1,
            requant: Requant { multipliers, shift },
        };
        let g = graph(&[(vec![1, cin, h, w], 4)], op, vec![1, cout, oh, ow], 4);
        check(&g, vec![Tensor::new(vec![1, cin, h, w], x).expect("x")])?;
    }

    #[test]
    fn linear_then_relu(k in 1..=40usize, n in 1..=6usize, x in values(40), seed in any::<u64>()) {
        let mut r = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let weight: Vec<i64> = (0..k * n).map(|_| uniform(&mut r, -HALF, HALF)).collect();
        let bias: Vec<i64> = (0..n).map(|_| uniform(&mut r, -5000, 5000)).collect();
        let multipliers: Vec<i64> = (0..n).map(|_| uniform(&mut r, 1, 65536)).collect();
        let shift = shift_for(5000 + k as i128 * (HALF * HALF) as i128, *multipliers.iter().max().unwrap_or(&1));
        let op = QOp::Linear { weight: Tensor::new(vec![k, n], weight).expect("w"), bias, requant: Requant { multipliers, shift } };
        let g = graph(&[(vec![1, k], 4)], op, vec![1, n], 4);
        check(&g, vec![Tensor::new(vec![1, k], x[..k].to_vec()).expect("x")])?;
    }

    #[test]
    fn pooling_then_relu(
        (c, h, w) in (1..=3usize, 2..=6usize, 2..=6usize),
        kernel in prop::array::uniform2(1..=3usize),
        strides in prop::array::uniform2(1..=2usize),
        pad in 0..=1usize,
        max in any::<bool>(),
        count_include_pad in any::<bool>(),
        (fi, fo) in (0..=6i32, 0..=6i32),
        x in values(3 * 36),
    ) {
        prop_assume!(kernel[0] <= h + 2 * pad && kernel[1] <= w + 2 * pad && pad < kernel[0] && pad < kernel[1]);
        let oh = (h + 2 * pad - kernel[0]) / strides[0] + 1;
        let ow = (w + 2 * pad - kernel[1]) / strides[1] + 1;
        let pool = Pool { kernel, strides, pads: [pad; 4], ceil_mode: false, count_include_pad };
        let (op, fo) = if max { (QOp::MaxPool(pool), fi) } else { (QOp::AveragePool(pool), fo) };
        let g = graph(&[(vec![1, c, h, w], fi)], op, vec![1, c, oh, ow], fo);
        check(&g, vec![Tensor::new(vec![1, c, h, w], x[..c * h * w].to_vec()).expect("x")])?;
    }

    #[test]
    fn residual_add_then_relu(
        n in 1..=30usize,
        (fa, fb, fo) in (0..=6i32, 0..=6i32, 0..=6i32),
        sub in any::<bool>(),
        a in values(30),
        b in values(30),
    ) {
        let op = if sub { QOp::Sub } else { QOp::Add };
        let g = graph(&[(vec![1, n], fa), (vec![1, n], fb)], op, vec![1, n], fo);
        let t = |v: &[i64]| Tensor::new(vec![1, n], v[..n].to_vec()).expect("t");
        check(&g, vec![t(&a), t(&b)])?;
    }
}
