//! The float evaluator (in progress).
