//! The job model against Prow's own ProwJobs and its CRD schema.

use bosun_conformance::{read_yaml, shared_conformance_dir};
use bosun_proto::parse::{ProwJobParseError, parse_prowjob, prowjob_from_value};
use serde_json::{Value, json};

const TESTDATA: &str = "prow-data/test/integration/test/testdata";
const CRD: &str = "prow-data/config/prow/cluster/prowjob-crd/prowjob_customresourcedefinition.yaml";

fn upstream_schema() -> Value {
    let crd = read_yaml(CRD);
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema")
        .cloned()
        .expect("CRD has an openAPIV3Schema")
}

fn upstream_accepts(doc: &Value) -> bool {
    let validator = jsonschema::validator_for(&upstream_schema()).expect("CRD schema compiles");
    validator.is_valid(doc)
}

#[test]
fn prow_examples_round_trip_without_losing_a_field() {
    for name in [
        "valid_prowjob.yaml",
        "valid_bare_prowjob.yaml",
        "invalid_prowjob.yaml",
    ] {
        let path = shared_conformance_dir().join(TESTDATA).join(name);
        let text = std::fs::read_to_string(&path).expect("read testdata");
        let original: Value = serde_yaml::from_str(&text).expect("yaml");
        let job = parse_prowjob(&text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let written = serde_json::to_value(&job).expect("serialise");
        assert_eq!(written, original, "{name} changed in a round trip");
        // And once more through our own output.
        let again = prowjob_from_value(written.clone(), name).expect("reparse");
        assert_eq!(again, job);
        assert!(upstream_accepts(&original), "{name} is valid for the CRD");
    }
}

fn valid() -> Value {
    read_yaml(&format!("{TESTDATA}/valid_prowjob.yaml"))
}

fn mutate(f: impl FnOnce(&mut Value)) -> Value {
    let mut doc = valid();
    f(&mut doc);
    doc
}

fn expect_rejected(doc: Value, field: &str) {
    assert!(
        !upstream_accepts(&doc),
        "the upstream CRD schema should refuse this document (case {field})"
    );
    let err = prowjob_from_value(doc, "case").expect_err("bosun must refuse it too");
    let path = err.field_path().unwrap_or_default().to_owned();
    assert_eq!(path, field, "error should name {field}: {err}");
    assert!(err.to_string().contains(field), "{err}");
}

#[test]
fn schema_violations_are_refused_with_the_field_named() {
    expect_rejected(
        mutate(|d| drop(d["spec"].as_object_mut().map(|s| s.remove("job")))),
        "spec.job",
    );
    expect_rejected(
        mutate(|d| drop(d["spec"].as_object_mut().map(|s| s.remove("type")))),
        "spec.type",
    );
    expect_rejected(
        mutate(|d| d["spec"]["type"] = json!("nightly")),
        "spec.type",
    );
    expect_rejected(
        mutate(|d| d["status"] = json!({"state": "running"})),
        "status.state",
    );
    expect_rejected(mutate(|d| d["status"] = json!({})), "status.state");
    expect_rejected(
        mutate(|d| d["spec"]["max_concurrency"] = json!("one")),
        "spec.max_concurrency",
    );
    expect_rejected(
        mutate(|d| d["spec"]["max_concurrency"] = json!(-1)),
        "spec.max_concurrency",
    );
    expect_rejected(
        mutate(|d| d["spec"]["report"] = json!("yes")),
        "spec.report",
    );
    expect_rejected(
        mutate(|d| d["spec"]["refs"] = json!({"repo": "x"})),
        "spec.refs.org",
    );
    expect_rejected(
        mutate(|d| d["spec"]["extra_refs"][0]["pulls"] = json!([{"number": 1, "author": "a"}])),
        "spec.extra_refs[0].pulls[0].sha",
    );
    expect_rejected(
        mutate(|d| d["spec"]["pod_spec"]["containers"][0]["image"] = json!(5)),
        "spec.pod_spec.containers[0].image",
    );
    expect_rejected(
        mutate(|d| d["spec"]["decoration_config"]["timeout"] = json!(["2h"])),
        "spec.decoration_config.timeout",
    );
    expect_rejected(
        mutate(|d| d["status"] = json!({"state": "success"})),
        "status.completionTime",
    );
}

#[test]
fn unknown_fields_are_refused_by_name() {
    // Kubernetes would silently prune these; bosun tells the user instead.
    let doc = mutate(|d| d["spec"]["pod_spec"]["containers"][0]["imagee"] = json!("x"));
    let err = prowjob_from_value(doc, "job.yaml").expect_err("unknown field");
    assert_eq!(err.field_path(), Some("spec.pod_spec.containers[0].imagee"));
    let doc = mutate(|d| d["spec"]["jobb"] = json!("x"));
    let err = prowjob_from_value(doc, "job.yaml").expect_err("unknown field");
    assert_eq!(err.field_path(), Some("spec.jobb"));
}

#[test]
fn malformed_text_names_the_source() {
    let err = parse_prowjob("spec: [", "broken.yaml").expect_err("syntax");
    assert!(matches!(err, ProwJobParseError::Syntax { .. }));
    assert!(err.to_string().starts_with("broken.yaml:"), "{err}");
    let err = parse_prowjob("apiVersion: v1\nkind: Pod\n", "pod.yaml").expect_err("kind");
    assert!(err.to_string().contains("apiVersion"), "{err}");
}

#[test]
fn json_yaml_flow_and_broken_json_all_parse_the_same_way() {
    let json = r#"{"apiVersion":"prow.k8s.io/v1","kind":"ProwJob","spec":{"type":"periodic","job":"j","agent":"local"}}"#;
    let flow =
        "{apiVersion: prow.k8s.io/v1, kind: ProwJob, spec: {type: periodic, job: j, agent: local}}";
    let from_json = parse_prowjob(json, "a.json").expect("json");
    let from_flow = parse_prowjob(flow, "b.yaml").expect("a YAML flow mapping starts like JSON");
    assert_eq!(from_json, from_flow);
    // JSON with an unknown field is refused by name, as YAML is.
    let err = parse_prowjob(
        r#"{"spec":{"type":"periodic","job":"j","jobb":1}}"#,
        "c.json",
    )
    .expect_err("unknown field");
    assert_eq!(err.field_path(), Some("spec.jobb"));
    // Broken JSON gets the YAML parser's located syntax error.
    let err = parse_prowjob("{\"spec\": {\"job\": }", "d.json").expect_err("syntax");
    assert!(matches!(err, ProwJobParseError::Syntax { .. }), "{err}");
    assert!(err.to_string().starts_with("d.json:"), "{err}");
}

#[test]
fn generated_crd_matches_prow_field_for_field() {
    use kube::CustomResourceExt;
    let ours = serde_json::to_value(bosun_proto::ProwJob::crd()).expect("crd json");
    let theirs = read_yaml(CRD);
    assert_eq!(ours["spec"]["group"], theirs["spec"]["group"]);
    assert_eq!(
        ours["spec"]["names"]["kind"],
        theirs["spec"]["names"]["kind"]
    );
    assert_eq!(
        ours["spec"]["names"]["plural"],
        theirs["spec"]["names"]["plural"]
    );
    assert_eq!(ours["spec"]["scope"], theirs["spec"]["scope"]);
    let keys = |v: &Value, ptr: &str| -> Vec<String> {
        let mut k: Vec<String> = v
            .pointer(ptr)
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("{ptr} missing"))
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    let base = "/spec/versions/0/schema/openAPIV3Schema/properties";
    for ptr in [
        "/spec/properties",
        "/status/properties",
        "/spec/properties/refs/properties",
        "/spec/properties/refs/properties/pulls/items/properties",
        "/spec/properties/decoration_config/properties",
        "/spec/properties/decoration_config/properties/gcs_configuration/properties",
        "/spec/properties/decoration_config/properties/censoring_options/properties",
        "/spec/properties/decoration_config/properties/utility_images/properties",
        "/spec/properties/decoration_config/properties/resources/properties",
        "/spec/properties/reporter_config/properties/slack/properties",
        "/spec/properties/rerun_auth_config/properties",
        "/spec/properties/prowjob_defaults/properties",
    ] {
        let p = format!("{base}{ptr}");
        assert_eq!(keys(&ours, &p), keys(&theirs, &p), "fields under {ptr}");
    }
}
