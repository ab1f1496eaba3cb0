//! `deploy/crds/prowjob.yaml` is generated from the Rust ProwJob type; this test fails when
//! they drift. Regenerate with `BOSUN_UPDATE_GOLDEN=1 cargo test -p bosun-conformance --test deploy_crd`.

#[test]
fn deployed_crd_matches_the_rust_type() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds/prowjob.yaml");
    let generated = format!(
        "# Generated from bosun_proto::ProwJob; do not edit (see conformance/tests/deploy_crd.rs).\n{}",
        serde_yaml::to_string(&bosun_proto::prowjob::prowjob_crd()).expect("crd yaml")
    );
    if std::env::var_os("BOSUN_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &generated).expect("write crd");
    }
    let committed = std::fs::read_to_string(&path).expect("deploy/crds/prowjob.yaml exists");
    assert!(
        committed == generated,
        "deploy/crds/prowjob.yaml is stale; regenerate it"
    );
    // And it is a valid CRD for the same resource Prow defines.
    let crd: serde_json::Value = serde_yaml::from_str(&committed).expect("yaml");
    assert_eq!(crd["metadata"]["name"], "prowjobs.prow.k8s.io");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    // Like Prow's: no status subresource, status is written with the object.
    assert_eq!(
        crd["spec"]["versions"][0]["subresources"],
        serde_json::json!({})
    );
}
