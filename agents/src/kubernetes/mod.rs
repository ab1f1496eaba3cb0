//! The `kubernetes` agent: Prow's pod-utility decoration ([`decorate`]) and pods on build
//! clusters.

pub mod decorate;
