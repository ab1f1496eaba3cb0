//! `bosun-conformance`: the black-box suite. `SPEC.md` states what every agent and reporter
//! MUST do; the tests under `tests/` check bosun against Prow's own data, read in place from
//! `../shared/conformance` (never copied into this repository).

pub mod kube_api;
pub mod tekton;
pub mod test_servers;

use std::path::PathBuf;

/// The shared conformance data directory (`../shared/conformance` beside the clone).
/// `BOSUN_SHARED_DIR` overrides the location of `shared/`.
pub fn shared_conformance_dir() -> PathBuf {
    let shared = std::env::var_os("BOSUN_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    shared.join("conformance")
}

/// Reads a YAML file from the shared conformance data into JSON.
pub fn read_yaml(relative: &str) -> serde_json::Value {
    let path = shared_conformance_dir().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (is ../shared beside the clone?)",
            path.display()
        )
    });
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}
