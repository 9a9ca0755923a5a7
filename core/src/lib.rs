//! Veil core: ONNX import, the IR, fixed-point quantization with its integer reference evaluator, the float
//! evaluator and image preprocessing.
//!
//! The pipeline, one type per stage: [`onnx::load_onnx`] → [`ir::Graph`] →
//! [`quant::quantize`] → [`quant::QuantizedGraph`], whose [`quant::QuantizedGraph::run`] is the integer
//! reference that circuits must reproduce bit for bit.
#![deny(missing_docs, unsafe_code)]

pub mod claim;
pub mod compiled;
pub mod error;
#[cfg(feature = "float")]
pub mod float;
pub mod freivalds;
pub mod ir;
pub mod manifest;
pub mod model;
#[cfg(feature = "onnx")]
pub mod onnx;
#[cfg(feature = "images")]
pub mod preprocess;
pub mod prove;
pub mod quant;
pub mod report;
pub mod samples;
pub mod slice;
pub mod tensor;

pub use error::Error;
pub use model::{Model, Verdict};
pub use veil_verifier::Digest;
