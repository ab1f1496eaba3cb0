//! `bosun-gateway`: the `bosun` binary's library. Config loading and validation
//! (`bosun-gateway-config`), the store (`bosun-gateway-store`), the [`dispatcher`], the gRPC
//! ([`grpc`]) and HTTP ([`http`]) servers and the [`cli`].

pub mod build_id;
pub mod check_config;
pub mod cli;
pub mod dispatcher;
pub mod grpc;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod serve;
pub mod supervisor;
pub mod trigger;
pub mod triggers;
