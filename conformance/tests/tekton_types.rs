//! bosun's typed Tekton bindings (`bosun_agents::tekton::types`) against the upstream
//! PipelineRun CRD (`../shared/conformance/tekton-data`, read in place): every field bosun
//! models exists in the CRD's v1 schema, every v1 spec field the CRD declares is modelled (the
//! spec refuses unknown fields, so a missing one would refuse valid runs), and the runs bosun
//! builds pass the CRD's schema.

use bosun_agents::tekton::pipelinerun::prowjob_to_pipelinerun;
use bosun_agents::tekton::types::PipelineRun;
use bosun_conformance::tekton::{pipelinerun_v1_schema, validate_pipelinerun_v1};
use kube::CustomResourceExt;
use serde_json::{Value, json};

/// `properties` of a schema node, looking through `items` of arrays.
fn properties(node: &Value) -> Option<&serde_json::Map<String, Value>> {
    let node = node.get("items").unwrap_or(node);
    node.get("properties").and_then(Value::as_object)
}

fn preserves_unknown(node: &Value) -> bool {
    let node = node.get("items").unwrap_or(node);
    node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
}

/// Paths in `ours` that `theirs` lacks (where `theirs` does not preserve unknown fields).
fn missing_upstream(ours: &Value, theirs: &Value, path: &str, out: &mut Vec<String>) {
    if preserves_unknown(theirs) {
        return;
    }
    let Some(our_props) = properties(ours) else {
        return;
    };
    let their_props = properties(theirs);
    for (name, our) in our_props {
        let here = format!("{path}.{name}");
        match their_props.and_then(|p| p.get(name)) {
            Some(their) => missing_upstream(our, their, &here, out),
            None => out.push(here),
        }
    }
}

/// Paths in `theirs` that `ours` lacks (where `ours` does not preserve unknown fields).
fn missing_ours(ours: &Value, theirs: &Value, path: &str, out: &mut Vec<String>) {
    if preserves_unknown(ours) || preserves_unknown(theirs) {
        return;
    }
    let Some(their_props) = properties(theirs) else {
        return;
    };
    let our_props = properties(ours);
    for (name, their) in their_props {
        let here = format!("{path}.{name}");
        match our_props.and_then(|p| p.get(name)) {
            Some(our) => missing_ours(our, their, &here, out),
            None => out.push(here),
        }
    }
}

fn our_v1_schema() -> Value {
    let crd = serde_json::to_value(PipelineRun::crd()).expect("crd json");
    crd.pointer("/spec/versions/0/schema/openAPIV3Schema")
        .cloned()
        .expect("generated schema")
}

/// Fields of Kubernetes' own volume types (k8s-openapi, Kubernetes 1.35) that are newer than
/// the Kubernetes API Tekton vendors: the workspace bindings use k8s-openapi's types, and the
/// API server prunes these if a job sets them. Anything else bosun models must be upstream's.
const KUBERNETES_NEWER_THAN_TEKTON: &[&str] = &[
    "spec.workspaces.configMap.defaultUser",
    "spec.workspaces.configMap.items.user",
    "spec.workspaces.emptyDir.mode",
    "spec.workspaces.projected.defaultUser",
    "spec.workspaces.projected.sources.clusterTrustBundle.user",
    "spec.workspaces.projected.sources.configMap.items.user",
    "spec.workspaces.projected.sources.downwardAPI.items.user",
    "spec.workspaces.projected.sources.podCertificate.user",
    "spec.workspaces.projected.sources.secret.items.user",
    "spec.workspaces.projected.sources.serviceAccountToken.user",
    "spec.workspaces.secret.defaultUser",
    "spec.workspaces.secret.items.user",
];

#[test]
fn modelled_fields_exist_in_the_upstream_v1_schema() {
    let ours = our_v1_schema();
    let theirs = pipelinerun_v1_schema();
    let mut extra = Vec::new();
    for part in ["spec", "status"] {
        missing_upstream(
            &ours["properties"][part],
            &theirs["properties"][part],
            part,
            &mut extra,
        );
    }
    extra.retain(|p| !KUBERNETES_NEWER_THAN_TEKTON.contains(&p.as_str()));
    assert!(
        extra.is_empty(),
        "fields bosun models that the upstream v1 CRD does not have: {extra:#?}"
    );
}

#[test]
fn every_upstream_v1_spec_field_is_modelled() {
    let ours = our_v1_schema();
    let theirs = pipelinerun_v1_schema();
    let mut missing = Vec::new();
    missing_ours(
        &ours["properties"]["spec"],
        &theirs["properties"]["spec"],
        "spec",
        &mut missing,
    );
    assert!(
        missing.is_empty(),
        "upstream v1 spec fields bosun's typed spec lacks (it refuses unknown fields): {missing:#?}"
    );
    let crd = PipelineRun::crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("pipelineruns.tekton.dev")
    );
}

#[test]
fn pipelineruns_bosun_builds_pass_the_upstream_schema() {
    let job: bosun_proto::ProwJob = serde_json::from_value(json!({
        "apiVersion": "prow.k8s.io/v1", "kind": "ProwJob",
        "metadata": {"name": "5c7b2c1e-0000-4000-8000-000000000001"},
        "spec": {
            "type": "presubmit", "job": "pull-widget-unit", "agent": "tekton-pipeline",
            "cluster": "build", "namespace": "test-pods", "context": "unit",
            "refs": {"org": "acme", "repo": "widget", "base_ref": "main", "base_sha": "abc",
                     "pulls": [{"number": 7, "author": "al", "sha": "def", "title": "Fix"}]},
            "extra_refs": [{"org": "acme", "repo": "tools", "base_ref": "main"}],
            "tekton_pipeline_run_spec": {"v1beta1": {
                "pipelineSpec": {
                    "params": [{"name": "PULL_NUMBER", "type": "string"}],
                    "workspaces": [{"name": "src"}],
                    "tasks": [
                        {"taskRef": {"name": "PROW_IMPLICIT_GIT_REF"}, "workspaces": [{"name": "output", "workspace": "src"}]},
                        {"name": "tools", "taskRef": {"name": "PROW_EXTRA_GIT_REF_0"}},
                        {"name": "unit", "taskRef": {"name": "go-test"}, "runAfter": ["prow-implicit-git-ref"],
                         "params": [{"name": "pkgs", "value": ["./..."]}]}
                    ]
                },
                "params": [{"name": "mode", "value": "fast"}],
                "timeouts": {"pipeline": "1h0m0s"},
                "taskRunTemplate": {"serviceAccountName": "ci", "podTemplate": {"nodeSelector": {"pool": "ci"}}},
                "workspaces": [{"name": "src", "emptyDir": {}}]
            }}
        },
        "status": {"state": "pending", "build_id": "1234"}
    }))
    .expect("job");
    let run = prowjob_to_pipelinerun(&job, "default").expect("pipelinerun");
    let value = serde_json::to_value(&run).expect("json");
    if let Err(errors) = validate_pipelinerun_v1(&value) {
        panic!("the PipelineRun fails the upstream v1 schema: {errors:#?}\n{value:#}");
    }
    assert_eq!(value["apiVersion"], "tekton.dev/v1");
    assert_eq!(value["kind"], "PipelineRun");
    // The schema itself refuses what Tekton would (so the check above can fail).
    let mut broken = value.clone();
    broken["spec"]["params"][0] = json!({"name": "no-value"});
    assert!(validate_pipelinerun_v1(&broken).is_err());
}
