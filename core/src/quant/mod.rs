//! quantization (in progress)
