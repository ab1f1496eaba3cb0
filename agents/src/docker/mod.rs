//! The `docker` agent: jobs as Docker Engine containers.
