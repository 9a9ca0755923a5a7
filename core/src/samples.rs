//! samples (in progress).
