//! A small dense, row-major tensor used by the IR, the integer reference and the importers.
//!
//! Veil keeps its own tensor type (rather than candle's) on the translate-time and integer paths so that
//! the integer reference evaluator and the compiled artifacts carry no float runtime and build everywhere.

use serde::{Deserialize, Serialize};

/// A dense tensor: a shape and its elements in row-major order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tensor<T> {
    shape: Vec<usize>,
    data: Vec<T>,
}

/// The element count of a shape did not match the data supplied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shape {shape:?} holds {expected} elements but {actual} were given")]
pub struct ShapeMismatch {
    /// The requested shape.
    pub shape: Vec<usize>,
    /// Elements the shape holds.
    pub expected: usize,
    /// Elements supplied.
    pub actual: usize,
}

impl<T> Tensor<T> {
    /// Builds a tensor, checking that `data` has exactly as many elements as `shape` describes.
    pub fn new(shape: Vec<usize>, data: Vec<T>) -> Result<Self, ShapeMismatch> {
        let expected = element_count(&shape);
        if expected != data.len() {
            return Err(ShapeMismatch { shape, expected, actual: data.len() });
        }
        Ok(Self { shape, data })
    }

    /// A rank-0 tensor holding one value.
    pub fn scalar(value: T) -> Self {
        Self { shape: Vec::new(), data: vec![value] }
    }

    /// The dimensions, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// Mutable access to the elements in row-major order.
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Consumes the tensor, returning its elements.
    pub fn into_data(self) -> Vec<T> {
        self.data
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Applies `f` to every element.
    pub fn map<U>(&self, f: impl FnMut(&T) -> U) -> Tensor<U> {
        Tensor { shape: self.shape.clone(), data: self.data.iter().map(f).collect() }
    }

    /// The same elements viewed with another shape of equal element count.
    pub fn reshape(self, shape: Vec<usize>) -> Result<Self, ShapeMismatch> {
        Self::new(shape, self.data)
    }
}

impl<T: Clone> Tensor<T> {
    /// A tensor of `shape` with every element equal to `value`.
    pub fn full(shape: Vec<usize>, value: T) -> Self {
        let n = element_count(&shape);
        Self { shape, data: vec![value; n] }
    }
}

/// The number of elements a shape holds (1 for a scalar).
pub fn element_count(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

/// The shape two shapes broadcast to under numpy rules, or `None` when they are incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for (i, slot) in out.iter_mut().enumerate() {
        let da = dim_from_right(a, rank - 1 - i);
        let db = dim_from_right(b, rank - 1 - i);
        *slot = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

fn dim_from_right(shape: &[usize], from_right: usize) -> usize {
    if from_right < shape.len() {
        shape[shape.len() - 1 - from_right]
    } else {
        1
    }
}

/// For every element of `out_shape`, the flat index of the element of a tensor of shape `src_shape`
/// that numpy broadcasting maps to it. `src_shape` must broadcast to `out_shape`.
pub fn broadcast_index_map(src_shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let rank = out_shape.len();
    let src_strides = strides(src_shape);
    // Stride of each output axis in the source: zero where the source is broadcast along it.
    let eff: Vec<usize> = (0..rank)
        .map(|axis| {
            let from_right = rank - 1 - axis;
            if from_right >= src_shape.len() {
                return 0;
            }
            let src_axis = src_shape.len() - 1 - from_right;
            if src_shape[src_axis] == 1 {
                0
            } else {
                src_strides[src_axis]
            }
        })
        .collect();
    let total = element_count(out_shape);
    let mut map = Vec::with_capacity(total);
    let mut index = vec![0usize; rank];
    for _ in 0..total {
        map.push(index.iter().zip(&eff).map(|(i, s)| i * s).sum());
        for axis in (0..rank).rev() {
            index[axis] += 1;
            if index[axis] < out_shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    map
}

/// Permutes the axes of a tensor (`out.shape[i] = in.shape[perm[i]]`). `perm` must be a permutation.
pub fn transpose<T: Clone>(tensor: &Tensor<T>, perm: &[usize]) -> Tensor<T> {
    let in_shape = tensor.shape();
    let in_strides = strides(in_shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| in_shape[p]).collect();
    let moved: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let total = tensor.len();
    let mut data = Vec::with_capacity(total);
    let mut index = vec![0usize; out_shape.len()];
    for _ in 0..total {
        let src: usize = index.iter().zip(&moved).map(|(i, s)| i * s).sum();
        data.push(tensor.data()[src].clone());
        for axis in (0..out_shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < out_shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    Tensor { shape: out_shape, data }
}

/// Concatenates tensors of equal rank along `axis`; all other dimensions must agree (checked by the caller).
pub fn concat<T: Clone>(parts: &[&Tensor<T>], axis: usize) -> Tensor<T> {
    let mut out_shape = parts[0].shape().to_vec();
    out_shape[axis] = parts.iter().map(|p| p.shape()[axis]).sum();
    let outer: usize = out_shape[..axis].iter().product();
    let mut data = Vec::with_capacity(element_count(&out_shape));
    for o in 0..outer {
        for part in parts {
            let chunk: usize = part.shape()[axis..].iter().product();
            data.extend_from_slice(&part.data()[o * chunk..(o + 1) * chunk]);
        }
    }
    Tensor { shape: out_shape, data }
}

/// Pads a tensor with `value`: `pads[i] = (before, after)` elements on axis `i`.
pub fn pad<T: Clone>(tensor: &Tensor<T>, pads: &[(usize, usize)], value: T) -> Tensor<T> {
    let in_shape = tensor.shape();
    let out_shape: Vec<usize> = in_shape.iter().zip(pads).map(|(d, (b, a))| d + b + a).collect();
    let mut out = Tensor::full(out_shape.clone(), value);
    let out_strides = strides(&out_shape);
    let rank = in_shape.len();
    let mut index = vec![0usize; rank];
    for v in tensor.data() {
        let dst: usize = (0..rank).map(|a| (index[a] + pads[a].0) * out_strides[a]).sum();
        out.data[dst] = v.clone();
        for axis in (0..rank).rev() {
            index[axis] += 1;
            if index[axis] < in_shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_numpy_rules() {
        assert_eq!(broadcast_shapes(&[1, 4, 3, 3], &[4, 1, 1]), Some(vec![1, 4, 3, 3]));
        assert_eq!(broadcast_shapes(&[2, 3], &[4, 3]), None);
        assert_eq!(broadcast_index_map(&[2, 1], &[2, 3]), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_index_map(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn transpose_pad_concat_move_elements() {
        let t = Tensor::new(vec![2, 3], (0..6).collect::<Vec<i32>>()).unwrap();
        assert_eq!(transpose(&t, &[1, 0]).data(), &[0, 3, 1, 4, 2, 5]);
        let p = pad(&t, &[(0, 1), (1, 0)], -1);
        assert_eq!(p.shape(), &[3, 4]);
        assert_eq!(p.data(), &[-1, 0, 1, 2, -1, 3, 4, 5, -1, -1, -1, -1]);
        let c = concat(&[&t, &t], 1);
        assert_eq!(c.data(), &[0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5]);
    }
}
