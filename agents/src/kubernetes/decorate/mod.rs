//! ProwJob → decorated Pod, as Prow's `pkg/pod-utils/decorate` does.
