//! The gRPC API, `bosun.v1.JobGateway`, generated from `bosun/v1/gateway.proto`.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("bosun.v1");

/// Encoded file descriptor set, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("bosun_descriptor");
