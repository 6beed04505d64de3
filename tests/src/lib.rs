//! End-to-end test support: a TestCluster of real processes on loopback.
#![forbid(unsafe_code)]
