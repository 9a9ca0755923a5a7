//! Static shape inference for IR operators.

use super::ops::{Op, Pool};
use crate::tensor::broadcast_shapes;

/// The output shape of `op` applied to inputs of `inputs` shapes, or a description of why they do not fit.
pub fn infer_output_shape(op: &Op, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
    let arity = match op {
        Op::MatMul | Op::Add | Op::Sub | Op::Mul => 2,
        Op::Concat { .. } => inputs.len().max(1),
        _ => 1,
    };
    if inputs.len() != arity {
        return Err(format!("{} takes {arity} dynamic input(s), got {}", op.kind(), inputs.len()));
    }
    let x = inputs[0];
    match op {
        Op::Conv(conv) => {
            let w = conv.weight.shape();
            expect_rank(x, 4, "Conv input")?;
            if w.len() != 4 || conv.group == 0 || x[1] != w[1] * conv.group || w[0] % conv.group != 0 {
                return Err(format!("Conv weight {w:?} with group {} does not fit input {x:?}", conv.group));
            }
            let window = Pool {
                kernel: [w[2], w[3]],
                strides: conv.strides,
                pads: conv.pads,
                ceil_mode: false,
                count_include_pad: true,
            };
            let (h, wd) = window_output(x, &window, conv.dilations)?;
            Ok(vec![x[0], w[0], h, wd])
        }
        Op::Linear(linear) => {
            let w = linear.weight.shape();
            if x.is_empty() || w.len() != 2 || x[x.len() - 1] != w[0] {
                return Err(format!("Linear weight {w:?} does not fit input {x:?}"));
            }
            let mut out = x.to_vec();
            *out.last_mut().expect("non-empty") = w[1];
            Ok(out)
        }
        Op::MatMul => {
            let (a, b) = (x, inputs[1]);
            if a.len() < 2
                || a.len() != b.len()
                || a[..a.len() - 2] != b[..b.len() - 2]
                || a[a.len() - 1] != b[b.len() - 2]
            {
                return Err(format!("MatMul operands {a:?} and {b:?} do not fit"));
            }
            let mut out = a.to_vec();
            *out.last_mut().expect("rank >= 2") = b[b.len() - 1];
            Ok(out)
        }
        Op::Add | Op::Sub | Op::Mul => {
            broadcast_shapes(x, inputs[1]).ok_or_else(|| format!("shapes {x:?} and {:?} do not broadcast", inputs[1]))
        }
        Op::Affine(affine) => {
            for constant in affine.scale.iter().chain(&affine.offset) {
                if broadcast_shapes(x, constant.shape()).as_deref() != Some(x) {
                    return Err(format!("constant {:?} does not broadcast to {x:?}", constant.shape()));
                }
            }
            Ok(x.to_vec())
        }
        Op::Relu | Op::LeakyRelu { .. } | Op::Clip { .. } | Op::Sigmoid | Op::Tanh => Ok(x.to_vec()),
        Op::Softmax { axis } => {
            if *axis >= x.len() {
                return Err(format!("Softmax axis {axis} out of range for {x:?}"));
            }
            Ok(x.to_vec())
        }
        Op::Pad(pad) => {
            if pad.pads.len() != x.len() {
                return Err(format!("Pad gives {} axes for rank-{} input", pad.pads.len(), x.len()));
            }
            x.iter()
                .zip(&pad.pads)
                .map(|(d, (b, a))| {
                    d.checked_add(*b).and_then(|v| v.checked_add(*a)).ok_or("padding overflows".to_string())
                })
                .collect()
        }
        Op::MaxPool(pool) | Op::AveragePool(pool) => {
            expect_rank(x, 4, "pooling input")?;
            let (h, w) = window_output(x, pool, [1, 1])?;
            Ok(vec![x[0], x[1], h, w])
        }
        Op::GlobalAveragePool => {
            expect_rank(x, 4, "GlobalAveragePool input")?;
            Ok(vec![x[0], x[1], 1, 1])
        }
        Op::Reshape { shape } => {
            if shape.iter().product::<usize>() != x.iter().product::<usize>() {
                return Err(format!("cannot reshape {x:?} to {shape:?}"));
            }
            Ok(shape.clone())
        }
        Op::Transpose { perm } => {
            let mut seen = vec![false; x.len()];
            if perm.len() != x.len() || perm.iter().any(|&p| p >= x.len() || std::mem::replace(&mut seen[p], true)) {
                return Err(format!("perm {perm:?} is not a permutation of rank {}", x.len()));
            }
            Ok(perm.iter().map(|&p| x[p]).collect())
        }
        Op::Concat { axis } => {
            if *axis >= x.len() {
                return Err(format!("Concat axis {axis} out of range for {x:?}"));
            }
            let mut out = x.to_vec();
            out[*axis] = 0;
            for s in inputs {
                let same_elsewhere =
                    s.len() == x.len() && s.iter().zip(x).enumerate().all(|(i, (a, b))| i == *axis || a == b);
                if !same_elsewhere {
                    return Err(format!("Concat inputs {x:?} and {s:?} differ off axis {axis}"));
                }
                out[*axis] += s[*axis];
            }
            Ok(out)
        }
    }
}

fn expect_rank(shape: &[usize], rank: usize, what: &str) -> Result<(), String> {
    if shape.len() == rank {
        Ok(())
    } else {
        Err(format!("{what} must have rank {rank}, got {shape:?}"))
    }
}

/// Output height and width of a sliding window over an NCHW input.
pub(crate) fn window_output(x: &[usize], pool: &Pool, dilations: [usize; 2]) -> Result<(usize, usize), String> {
    let mut out = [0usize; 2];
    for axis in 0..2 {
        let too_large = || format!("window {:?} with pads {:?} is too large", pool.kernel, pool.pads);
        let padded = x[2 + axis]
            .checked_add(pool.pads[axis])
            .and_then(|v| v.checked_add(pool.pads[axis + 2]))
            .ok_or_else(too_large)?;
        let span = dilations[axis]
            .checked_mul(pool.kernel[axis].max(1) - 1)
            .and_then(|v| v.checked_add(1))
            .ok_or_else(too_large)?;
        if pool.strides[axis] == 0 || pool.kernel[axis] == 0 || padded < span {
            return Err(format!("window {:?} (stride {:?}) does not fit input {x:?}", pool.kernel, pool.strides));
        }
        let steps = padded - span;
        let stride = pool.strides[axis];
        out[axis] = if pool.ceil_mode { steps.div_ceil(stride) + 1 } else { steps / stride + 1 };
        // ONNX: with ceil_mode the last window must start inside the input or left padding.
        if pool.ceil_mode && (out[axis] - 1) * stride >= x[2 + axis] + pool.pads[axis] {
            out[axis] -= 1;
        }
    }
    Ok((out[0], out[1]))
}
