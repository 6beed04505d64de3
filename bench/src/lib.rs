//! Anteroom bench.
#![forbid(unsafe_code)]
