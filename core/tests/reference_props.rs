//! Property tests: the integer reference's convolution and linear layers against a naive, independently
//! written integer implementation on random small problems.

use proptest::prelude::*;
use veil_core::ir::ValueId;
use veil_core::quant::{QNode, QOp, QValue, QuantConfig, QuantizedGraph, Requant};
use veil_core::tensor::Tensor;

const BITS: u32 = 12;

/// `⌊(x + 2^(s−1)) / 2^s⌋` written with Euclidean division, independent of the crate's helper.
fn naive_round_shift(x: i128, s: u32) -> i128 {
    if s == 0 {
        x
    } else {
        (x + (1i128 << (s - 1))).div_euclid(1i128 << s)
    }
}

fn naive_clamp(x: i128) -> i64 {
    x.clamp(-(1 << (BITS - 1)), (1 << (BITS - 1)) - 1) as i64
}

fn single_node_graph(op: QOp, in_shape: Vec<usize>, out_shape: Vec<usize>) -> QuantizedGraph {
    let value = |name: &str, shape| QValue { name: name.into(), shape, frac: 4, bits: BITS };
    QuantizedGraph {
        config: QuantConfig::default(),
        values: vec![value("x", in_shape), value("y", out_shape)],
        nodes: vec![QNode { name: "layer".into(), op, inputs: vec![ValueId(0)], output: ValueId(1) }],
        inputs: vec![ValueId(0)],
        outputs: vec![ValueId(1)],
    }
}

#[derive(Debug, Clone)]
struct ConvProblem {
    n: usize,
    groups: usize,
    cin_g: usize,
    cout_g: usize,
    h: usize,
    w: usize,
    k: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    pads: [usize; 4],
    x: Vec<i64>,
    weight: Vec<i64>,
    bias: Vec<i64>,
    multipliers: Vec<i64>,
    shift: u32,
}

fn conv_problem() -> impl Strategy<Value = ConvProblem> {
    (
        1..=2usize,
        1..=3usize,
        1..=3usize,
        1..=3usize,
        3..=7usize,
        3..=7usize,
        1..=3usize,
        1..=3usize,
        1..=2usize,
        1..=2usize,
    )
        .prop_flat_map(|(n, groups, cin_g, cout_g, h, w, kh, kw, sh, sw)| {
            let cin = groups * cin_g;
            let cout = groups * cout_g;
            (
                Just((n, groups, cin_g, cout_g, h, w, [kh, kw], [sh, sw])),
                prop::array::uniform2(1..=2usize),
                prop::array::uniform4(0..=2usize),
                prop::collection::vec(-2048i64..2048, n * cin * h * w),
                prop::collection::vec(-2048i64..2048, cout * cin_g * kh * kw),
                prop::collection::vec(-100_000i64..100_000, cout),
                prop::collection::vec(1i64..65536, cout),
                0u32..24,
            )
        })
        .prop_filter("window fits", |((_, _, _, _, h, w, k, _), d, p, ..)| {
            h + p[0] + p[2] > d[0] * (k[0] - 1) && w + p[1] + p[3] > d[1] * (k[1] - 1)
        })
        .prop_map(
            |((n, groups, cin_g, cout_g, h, w, k, stride), dilation, pads, x, weight, bias, multipliers, shift)| {
                ConvProblem {
                    n,
                    groups,
                    cin_g,
                    cout_g,
                    h,
                    w,
                    k,
                    stride,
                    dilation,
                    pads,
                    x,
                    weight,
                    bias,
                    multipliers,
                    shift,
                }
            },
        )
}

/// Direct definition: one output element at a time, padding read as zero.
fn naive_conv(p: &ConvProblem, oh: usize, ow: usize) -> Vec<i64> {
    let (cin, cout) = (p.groups * p.cin_g, p.groups * p.cout_g);
    let mut out = Vec::new();
    for b in 0..p.n {
        for oc in 0..cout {
            let g = oc / p.cout_g;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = p.bias[oc] as i128;
                    for icg in 0..p.cin_g {
                        for ky in 0..p.k[0] {
                            for kx in 0..p.k[1] {
                                let iy = (oy * p.stride[0] + ky * p.dilation[0]) as i64 - p.pads[0] as i64;
                                let ix = (ox * p.stride[1] + kx * p.dilation[1]) as i64 - p.pads[1] as i64;
                                if iy < 0 || ix < 0 || iy >= p.h as i64 || ix >= p.w as i64 {
                                    continue;
                                }
                                let ic = g * p.cin_g + icg;
                                let xv = p.x[((b * cin + ic) * p.h + iy as usize) * p.w + ix as usize];
                                let wv = p.weight[((oc * p.cin_g + icg) * p.k[0] + ky) * p.k[1] + kx];
                                acc += (xv * wv) as i128;
                            }
                        }
                    }
                    out.push(naive_clamp(naive_round_shift(acc * p.multipliers[oc] as i128, p.shift)));
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn conv_matches_naive_integer_convolution(p in conv_problem()) {
        let (cin, cout) = (p.groups * p.cin_g, p.groups * p.cout_g);
        let span = |axis: usize| p.dilation[axis] * (p.k[axis] - 1) + 1;
        let oh = (p.h + p.pads[0] + p.pads[2] - span(0)) / p.stride[0] + 1;
        let ow = (p.w + p.pads[1] + p.pads[3] - span(1)) / p.stride[1] + 1;
        let op = QOp::Conv {
            weight: Tensor::new(vec![cout, p.cin_g, p.k[0], p.k[1]], p.weight.clone()).unwrap(),
            bias: p.bias.clone(),
            strides: p.stride,
            pads: p.pads,
            dilations: p.dilation,
            group: p.groups,
            requant: Requant { multipliers: p.multipliers.clone(), shift: p.shift },
        };
        let graph = single_node_graph(op, vec![p.n, cin, p.h, p.w], vec![p.n, cout, oh, ow]);
        graph.validate().unwrap();
        let x = Tensor::new(vec![p.n, cin, p.h, p.w], p.x.clone()).unwrap();
        let got = graph.run(&[x]).unwrap();
        let expected = naive_conv(&p, oh, ow);
        prop_assert_eq!(got[0].data(), expected.as_slice());
    }

    #[test]
    fn linear_matches_naive_integer_matrix_product(
        (rows, k, n, x, w, bias, mult, shift) in (1..=4usize, 1..=12usize, 1..=6usize).prop_flat_map(|(rows, k, n)| (
            Just(rows), Just(k), Just(n),
            prop::collection::vec(-2048i64..2048, rows * k),
            prop::collection::vec(-2048i64..2048, k * n),
            prop::collection::vec(-1_000_000i64..1_000_000, n),
            prop::collection::vec(1i64..65536, n),
            0u32..30,
        ))
    ) {
        let op = QOp::Linear {
            weight: Tensor::new(vec![k, n], w.clone()).unwrap(),
            bias: bias.clone(),
            requant: Requant { multipliers: mult.clone(), shift },
        };
        let graph = single_node_graph(op, vec![rows, k], vec![rows, n]);
        graph.validate().unwrap();
        let got = graph.run(&[Tensor::new(vec![rows, k], x.clone()).unwrap()]).unwrap();
        let mut expected = Vec::new();
        for r in 0..rows {
            for j in 0..n {
                let acc: i128 = bias[j] as i128 + (0..k).map(|t| (x[r * k + t] * w[t * n + j]) as i128).sum::<i128>();
                expected.push(naive_clamp(naive_round_shift(acc * mult[j] as i128, shift)));
            }
        }
        prop_assert_eq!(got[0].data(), expected.as_slice());
    }
}
