//! bosun-conformance
