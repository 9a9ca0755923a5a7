//! The crate-level error: one variant per stage, each wrapping that stage's typed error.

use std::path::PathBuf;

/// Any error of the Veil core pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// ONNX import failed.
    #[cfg(feature = "onnx")]
    #[error(transparent)]
    Import(#[from] crate::onnx::ImportError),
    /// The model manifest is missing or invalid.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// An image could not be read or preprocessed.
    #[cfg(feature = "images")]
    #[error(transparent)]
    Image(#[from] crate::preprocess::ImageError),
    /// The sample list is invalid.
    #[error(transparent)]
    Samples(#[from] crate::samples::SamplesError),
    /// The float evaluator failed.
    #[cfg(feature = "float")]
    #[error(transparent)]
    Float(#[from] crate::float::FloatError),
    /// Quantization failed.
    #[error(transparent)]
    Quantize(#[from] crate::quant::QuantizeError),
    /// The integer reference rejected its input.
    #[error(transparent)]
    Reference(#[from] crate::quant::ReferenceError),
    /// A quantized-model artifact is invalid.
    #[error(transparent)]
    Artifact(#[from] crate::quant::ArtifactError),
    /// A calibration file is missing or invalid.
    #[error("calibration {path}: {detail}")]
    Calibration {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The model's output does not fit its manifest.
    #[error("model output has shape {actual:?}, the manifest says {expected:?}")]
    OutputShape {
        /// Shape from the manifest.
        expected: Vec<usize>,
        /// Shape the graph produces.
        actual: Vec<usize>,
    },
}
