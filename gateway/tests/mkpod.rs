//! `bosun mkpod`: the real binary prints the Pod Prow would create for a ProwJob file.
//!
//! Besides a few direct checks, every `TestProwJobToPod_*` case of Prow's golden data
//! (`../shared/conformance/prow-decorate`, read in place) is run through the CLI and the printed
//! pod must be structurally equal to the golden file, after removing only Go's zero-value
//! noise (see the conformance README and `conformance/tests/decorate.rs`, which checks the
//! library the same way).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn bosun(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bosun");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("bosun finishes")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn printed_pod(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    serde_yaml::from_slice(&out.stdout).expect("mkpod prints YAML")
}

const JOB: &str = r#"
apiVersion: prow.k8s.io/v1
kind: ProwJob
metadata:
  name: pj-7
spec:
  type: postsubmit
  agent: kubernetes
  job: build
  refs: {org: acme, repo: widget, base_ref: main, base_sha: "1a2b"}
  pod_spec:
    containers:
    - name: build
      image: golang
      command: [make]
  decoration_config:
    timeout: 1h
    grace_period: 10s
    utility_images: {clonerefs: c, initupload: i, entrypoint: e, sidecar: s}
    gcs_configuration: {bucket: gs://logs, path_strategy: explicit}
    gcs_credentials_secret: gcs
"#;

fn write_job(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write job file");
    path
}

#[test]
fn prints_the_decorated_pod() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_job(dir.path(), "job.yaml", JOB);
    let out = bosun(
        &["mkpod", &file.display().to_string(), "--build-id", "99"],
        None,
    );
    let pod = printed_pod(&out);
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["metadata"]["name"], "pj-7");
    assert_eq!(pod["metadata"]["labels"]["prow.k8s.io/build-id"], "99");
    let spec = &pod["spec"];
    assert_eq!(spec["containers"][0]["name"], "test");
    assert_eq!(
        spec["containers"][0]["command"],
        json!(["/tools/entrypoint"])
    );
    assert_eq!(spec["containers"][1]["name"], "sidecar");
    let inits: Vec<&str> = spec["initContainers"]
        .as_array()
        .expect("init containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(inits, ["clonerefs", "initupload", "place-entrypoint"]);
    assert_eq!(spec["terminationGracePeriodSeconds"], 12);
    let build_id = spec["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "BUILD_ID")
        .map(|e| e["value"].clone());
    assert_eq!(build_id, Some(json!("99")));
}

#[test]
fn reads_stdin_and_supports_local_mode() {
    let out = bosun(&["mkpod", "-", "--output-dir", "/tmp/prow-out"], Some(JOB));
    let pod = printed_pod(&out);
    let volumes = pod["spec"]["volumes"].as_array().expect("volumes");
    assert!(
        volumes
            .iter()
            .any(|v| v["name"] == "output" && v["hostPath"]["path"] == "/tmp/prow-out"),
        "{volumes:?}"
    );
    // Local mode needs no blob-storage credentials.
    assert!(volumes.iter().all(|v| v["name"] != "gcs-credentials"));
}

#[test]
fn refuses_invalid_jobs_naming_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_job(
        dir.path(),
        "bad.yaml",
        &JOB.replace("type: postsubmit", "type: nightly"),
    );
    let out = bosun(&["mkpod", &file.display().to_string()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("spec.type"), "{}", stderr(&out));

    let file = write_job(
        dir.path(),
        "nopod.yaml",
        "apiVersion: prow.k8s.io/v1\nkind: ProwJob\nmetadata: {name: x}\n\
         spec: {type: periodic, job: j}\n",
    );
    let out = bosun(&["mkpod", &file.display().to_string()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("lacks a pod spec"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// Prow's TestProwJobToPod goldens through the CLI.

fn prow_decorate_dir() -> PathBuf {
    let shared = std::env::var_os("BOSUN_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    shared.join("conformance/prow-decorate")
}

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (is ../shared beside the clone?)",
            path.display()
        )
    });
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Removes only the Go zero-value noise the conformance README lists: null-valued keys
/// (`metadata.creationTimestamp: null`), the Pod's `status: {}`, a container's
/// `resources: {}` and an env var's `value: ""`.
fn normalise(mut pod: Value) -> Value {
    drop_nulls(&mut pod);
    if let Some(map) = pod.as_object_mut()
        && map.get("status") == Some(&json!({}))
    {
        map.remove("status");
    }
    for list in ["containers", "initContainers"] {
        let Some(Value::Array(containers)) = pod["spec"].get_mut(list) else {
            continue;
        };
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            if c.get("resources") == Some(&json!({})) {
                c.remove("resources");
            }
            if let Some(Value::Array(env)) = c.get_mut("env") {
                for var in env.iter_mut().filter_map(Value::as_object_mut) {
                    if var.get("value") == Some(&json!("")) {
                        var.remove("value");
                    }
                }
            }
        }
    }
    pod
}

/// The golden inputs mirror Go in-memory objects. `bosun mkpod` reads files with bosun's
/// strict, CRD-checked parser, so fill in only what the conformance README says is missing
/// for CRD validity: container `name` (a single container is renamed `test` anyway; the only
/// case with two containers names them) and `status.state` (not read by ProwJobToPod).
fn crd_valid_prowjob(prowjob: &Value) -> Value {
    let mut job = prowjob.clone();
    for c in job["spec"]["pod_spec"]["containers"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if let Some(c) = c.as_object_mut() {
            c.entry("name").or_insert_with(|| json!("test"));
        }
    }
    if let Some(status) = job["status"].as_object_mut() {
        status.entry("state").or_insert_with(|| json!("triggered"));
    }
    job
}

#[test]
fn every_prowjob_to_pod_golden_through_the_cli() {
    let dir = prow_decorate_dir();
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("TestProwJobToPod_"))
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 11, "{cases:?}");

    let tmp = tempfile::tempdir().expect("tempdir");
    for case in &cases {
        let input = read_yaml(&dir.join(case).join("input.yaml"));
        assert_eq!(input["call"]["function"], "ProwJobToPod", "{case}");
        let job = crd_valid_prowjob(&input["prowjob"]);
        let file = write_job(
            tmp.path(),
            &format!("{case}.yaml"),
            &serde_yaml::to_string(&job).expect("job as YAML"),
        );
        let mut args = vec!["mkpod".to_owned(), file.display().to_string()];
        if let Some(dir) = input["call"]["output_dir"]
            .as_str()
            .filter(|d| !d.is_empty())
        {
            args.extend(["--output-dir".to_owned(), dir.to_owned()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = bosun(&args, None);
        assert_eq!(out.status.code(), Some(0), "{case}: {}", stderr(&out));
        let mut ours = printed_pod(&out);
        // mkpod prints a complete manifest; Go's in-memory Pod has no TypeMeta.
        let map = ours.as_object_mut().expect("pod is a mapping");
        assert_eq!(map.remove("apiVersion"), Some(json!("v1")), "{case}");
        assert_eq!(map.remove("kind"), Some(json!("Pod")), "{case}");

        let expected = read_yaml(&dir.join(case).join("expected.yaml"));
        let (ours, expected) = (normalise(ours), normalise(expected));
        assert!(
            ours == expected,
            "{case}: bosun mkpod differs from expected.yaml\n--- ours:\n{}\n--- expected:\n{}",
            serde_yaml::to_string(&ours).unwrap_or_default(),
            serde_yaml::to_string(&expected).unwrap_or_default(),
        );
    }
}
