//! Defaulting (reference §3.6, §1.6): decoration merge, entry matching, presets.

use std::path::Path;
use std::time::Duration;

use bosun_gateway_config::{
    ConfigErrors, LoadedConfig, apply_decoration_default, load_from_memory,
};
use bosun_proto::duration::ProwDuration;
use bosun_proto::prowjob::{DecorationConfig, GcsConfiguration, UtilityImages};

fn load(config: &str, jobs: &str) -> Result<LoadedConfig, ConfigErrors> {
    load_from_memory(
        (Path::new("config.yaml"), config),
        &[(Path::new("jobs.yaml"), jobs)],
    )
}

#[track_caller]
fn ok(config: &str, jobs: &str) -> LoadedConfig {
    load(config, jobs).unwrap_or_else(|e| panic!("must load:\n{e}"))
}

fn dc(yaml: &str) -> DecorationConfig {
    serde_yaml::from_str(yaml).expect("decoration config")
}

#[test]
fn decoration_apply_default_table() {
    // (job, default, expected); "~" means None.
    let cases = [
        ("~", "~", "~"),
        ("timeout: 1h", "~", "timeout: 1h"),
        ("~", "timeout: 1h", "timeout: 1h"),
        (
            "timeout: 1h",
            "timeout: 2h\ngrace_period: 10s",
            "timeout: 1h\ngrace_period: 10s",
        ),
        (
            "utility_images: {clonerefs: mine}",
            "utility_images: {clonerefs: c, initupload: i, entrypoint: e, sidecar: s}",
            "utility_images: {clonerefs: mine, initupload: i, entrypoint: e, sidecar: s}",
        ),
        (
            "gcs_configuration: {bucket: job, mediaTypes: {log: text/a, txt: text/b}}",
            "gcs_configuration: {bucket: def, path_strategy: explicit, mediaTypes: {log: text/def}}",
            // the default's media types win for the same extension (Prow quirk)
            "gcs_configuration: {bucket: job, path_strategy: explicit, mediaTypes: {log: text/def, txt: text/b}}",
        ),
        (
            "ssh_key_secrets: []",
            "ssh_key_secrets: [a]",
            "ssh_key_secrets: [a]",
        ),
        (
            "ssh_key_secrets: [b]",
            "ssh_key_secrets: [a]",
            "ssh_key_secrets: [b]",
        ),
        (
            "skip_cloning: false",
            "skip_cloning: true",
            "skip_cloning: false",
        ),
        (
            "censoring_options: {censoring_concurrency: 1}",
            "censoring_options: {censoring_concurrency: 2, censoring_buffer_size: 3}",
            "censoring_options: {censoring_concurrency: 1, censoring_buffer_size: 3}",
        ),
        (
            "resources: {clonerefs: {requests: {cpu: 1}}}",
            "resources: {sidecar: {requests: {cpu: 2}}}",
            "resources: {clonerefs: {requests: {cpu: 1}}, sidecar: {requests: {cpu: 2}}}",
        ),
        (
            "pod_pending_timeout: 1m",
            "pod_pending_timeout: 2m\nrun_as_user: 1",
            "pod_pending_timeout: 1m\nrun_as_user: 1",
        ),
    ];
    for (job, def, want) in cases {
        let parse = |s: &str| (s != "~").then(|| dc(s));
        let got = apply_decoration_default(parse(job).as_ref(), parse(def).as_ref());
        assert_eq!(got, parse(want), "job {job:?} default {def:?}");
    }
}

const BASE_JOB: &str = "    spec: {containers: [{image: x, command: [y]}]}\n";

#[test]
fn default_entries_merge_in_order_and_match_repo_and_cluster() {
    let config = r#"
plank:
  default_decoration_config_entries:
  - config:
      timeout: 1h
      grace_period: 1s
      utility_images: {clonerefs: c, initupload: i, entrypoint: e, sidecar: s}
      gcs_configuration: {bucket: star, path_strategy: explicit}
  - repo: org
    config: {timeout: 2h}
  - repo: org/repo
    config: {grace_period: 2s}
  - cluster: build2
    config:
      gcs_configuration: {bucket: build2-bucket}
  - repo: other
    config: {timeout: 9h}
"#;
    let jobs = format!(
        "decorate_all_jobs: true\npresubmits:\n  org/repo:\n  - name: a\n{BASE_JOB}  - name: b\n    cluster: build2\n{BASE_JOB}  org/x:\n  - name: c\n{BASE_JOB}  - name: d\n    decorate: false\n{BASE_JOB}"
    );
    let cfg = ok(config, &jobs);
    let get = |repo: &str, name: &str| {
        cfg.find_presubmit(repo, "main", name)
            .expect("job")
            .decoration_config
            .clone()
    };
    let a = get("org/repo", "a").expect("a decorated");
    assert_eq!(a.timeout, Some(ProwDuration(Duration::from_secs(7200))));
    assert_eq!(a.grace_period, Some(ProwDuration(Duration::from_secs(2))));
    assert_eq!(
        a.gcs_configuration.as_ref().map(|g| g.bucket.as_str()),
        Some("star")
    );
    let b = get("org/repo", "b").expect("b decorated");
    assert_eq!(
        b.gcs_configuration.as_ref().map(|g| g.bucket.as_str()),
        Some("build2-bucket")
    );
    let c = get("org/x", "c").expect("c decorated");
    assert_eq!(c.timeout, Some(ProwDuration(Duration::from_secs(7200))));
    assert_eq!(c.grace_period, Some(ProwDuration(Duration::from_secs(1))));
    assert_eq!(get("org/x", "d"), None);
    assert_eq!(
        cfg.find_presubmit("org/x", "main", "d")
            .expect("d")
            .decorate,
        Some(false)
    );
}

#[test]
fn legacy_map_is_converted_star_orgs_repos() {
    let config = r#"
plank:
  default_decoration_configs:
    org/repo: {timeout: 3h}
    org: {timeout: 2h, grace_period: 5s}
    '*':
      timeout: 1h
      grace_period: 1s
      utility_images: {clonerefs: c, initupload: i, entrypoint: e, sidecar: s}
      gcs_configuration: {bucket: b, path_strategy: explicit}
"#;
    let jobs = format!("postsubmits:\n  org/repo:\n  - name: a\n    decorate: true\n{BASE_JOB}");
    let cfg = ok(config, &jobs);
    let keys: Vec<&str> = cfg
        .prow()
        .plank
        .default_decoration_config_entries
        .iter()
        .map(|e| e.org_repo.as_str())
        .collect();
    assert_eq!(keys, vec!["*", "org", "org/repo"]);
    let dc = cfg
        .find_postsubmit("org/repo", "main", "a")
        .expect("job")
        .decoration_config
        .clone()
        .expect("decorated");
    assert_eq!(
        dc.timeout,
        Some(ProwDuration(Duration::from_secs(3 * 3600)))
    );
    assert_eq!(dc.grace_period, Some(ProwDuration(Duration::from_secs(5))));
}

#[test]
fn periodics_match_entries_by_first_extra_ref_and_gerrit_keys_by_host() {
    let config = r#"
plank:
  default_decoration_config_entries:
  - config:
      utility_images: {clonerefs: c, initupload: i, entrypoint: e, sidecar: s}
      gcs_configuration: {bucket: b, path_strategy: explicit}
  - repo: org
    config: {timeout: 2h}
  - repo: gerrit.example.com/proj
    config: {timeout: 3h}
prowjob_default_entries:
- repo: org
  config: {tenant_id: org-tenant}
- repo: org/repo
  cluster: build
  config: {resultstore_config: {project_id: p}}
"#;
    let jobs = format!(
        "periodics:\n- name: p\n  interval: 1h\n  decorate: true\n  cluster: build\n  extra_refs: [{{org: org, repo: repo}}]\n  spec: {{containers: [{{image: x, command: [y]}}]}}\n- name: q\n  interval: 1h\n  decorate: true\n  spec: {{containers: [{{image: x, command: [y]}}]}}\npresubmits:\n  https://gerrit.example.com/proj:\n  - name: g\n    decorate: true\n{BASE_JOB}"
    );
    let cfg = ok(config, &jobs);
    let p = cfg.find_periodic("p").expect("p");
    assert_eq!(
        p.decoration_config.as_ref().and_then(|d| d.timeout),
        Some(ProwDuration(Duration::from_secs(7200)))
    );
    let defaults = p.prowjob_defaults.clone().expect("defaults");
    assert_eq!(defaults.tenant_id, "org-tenant");
    assert_eq!(
        defaults.resultstore_config.map(|r| r.project_id),
        Some("p".to_owned())
    );
    let q = cfg.find_periodic("q").expect("q");
    assert_eq!(q.decoration_config.as_ref().and_then(|d| d.timeout), None);
    assert_eq!(
        q.prowjob_defaults.as_ref().map(|d| d.tenant_id.as_str()),
        Some("GlobalDefaultID")
    );
    let g = cfg
        .find_presubmit("gerrit.example.com/proj", "main", "g")
        .expect("lookup without https://");
    assert_eq!(
        g.decoration_config.as_ref().and_then(|d| d.timeout),
        Some(ProwDuration(Duration::from_secs(3 * 3600)))
    );
}

#[test]
fn decoration_config_without_decorate_is_kept() {
    let jobs = "periodics:\n- name: p\n  interval: 1h\n  decorate: false\n  decoration_config:\n    timeout: 1h\n    utility_images: {clonerefs: c, initupload: i, entrypoint: e, sidecar: s}\n    gcs_configuration: {bucket: b, path_strategy: explicit}\n  spec: {containers: [{image: x, command: [y]}]}\n";
    let cfg = ok("{}", jobs);
    let p = cfg.find_periodic("p").expect("p");
    assert_eq!(p.decorate, Some(false));
    let dc = p.decoration_config.as_ref().expect("kept");
    assert_eq!(
        dc.utility_images,
        Some(UtilityImages {
            clonerefs: "c".into(),
            initupload: "i".into(),
            entrypoint: "e".into(),
            sidecar: "s".into(),
        })
    );
    assert_eq!(
        dc.gcs_configuration
            .as_ref()
            .map(|g: &GcsConfiguration| g.bucket.as_str()),
        Some("b")
    );
}

const PRESETS: &str = r#"presets:
- labels: {preset-a: "true"}
  env: [{name: A, value: "1"}]
  volumes: [{name: va, emptyDir: {}}]
  volumeMounts: [{name: va, mountPath: /a}]
  tolerations: [{key: k, operator: Exists}]
- env: [{name: ALL, value: "1"}]
"#;

#[test]
fn presets_apply_by_label() {
    let jobs = format!(
        "{PRESETS}periodics:\n- name: with\n  interval: 1h\n  labels: {{preset-a: \"true\"}}\n  spec: {{containers: [{{image: x, command: [y]}}]}}\n- name: without\n  interval: 1h\n  spec: {{containers: [{{image: x, command: [y]}}]}}\n"
    );
    let cfg = ok("{}", &jobs);
    let env_names = |name: &str| -> Vec<String> {
        let spec = cfg
            .find_periodic(name)
            .expect("job")
            .spec
            .clone()
            .expect("spec");
        spec.containers[0]
            .env
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    assert_eq!(env_names("with"), vec!["A", "ALL"]);
    assert_eq!(env_names("without"), vec!["ALL"]);
    let spec = cfg
        .find_periodic("with")
        .expect("job")
        .spec
        .clone()
        .expect("spec");
    assert_eq!(spec.volumes.as_ref().map(Vec::len), Some(1));
    assert_eq!(
        spec.containers[0].volume_mounts.as_ref().map(Vec::len),
        Some(1)
    );
    assert_eq!(spec.tolerations.as_ref().map(Vec::len), Some(1));
}

#[test]
fn preset_collisions_are_errors() {
    let job = |extra: &str| {
        format!(
            "{PRESETS}periodics:\n- name: clash\n  interval: 1h\n  labels: {{preset-a: \"true\"}}\n  spec:\n{extra}    containers: [{{image: x, command: [y]{}}}]\n",
            if extra.contains("ENV") {
                ", env: [{name: A, value: x}]"
            } else if extra.contains("MOUNT") {
                ", volumeMounts: [{name: va, mountPath: /x}]"
            } else {
                ""
            }
        )
    };
    let cases = [
        ("    # ENV\n", "env var duplicated in pod spec: A"),
        (
            "    volumes: [{name: va, emptyDir: {}}]\n",
            "volume duplicated in pod spec: va",
        ),
        (
            "    # MOUNT\n    volumes: [{name: other, emptyDir: {}}]\n",
            "volume mount duplicated in pod spec: va",
        ),
        (
            "    tolerations: [{key: k, operator: Exists}]\n",
            "toleration duplicated in pod spec",
        ),
    ];
    for (extra, needle) in cases {
        let err = load("{}", &job(extra)).expect_err("collision must fail");
        let want = format!(
            "jobs.yaml: job \"clash\": spec: failed to merge presets for podspec: {needle}"
        );
        assert!(err.mentions(&want), "expected {want:?} in:\n{err}");
    }
    let dup = "presets:\n- labels: {x: y}\n- labels: {x: y, z: w}\n";
    let err = load("{}", dup).expect_err("duplicate pair");
    assert!(
        err.mentions("jobs.yaml: presets[1].labels: duplicated preset 'label:value' pair: x:y"),
        "{err}"
    );
}

#[test]
fn presubmit_trigger_defaults_and_brancher() {
    let jobs = format!(
        "presubmits:\n  org/repo:\n  - name: a\n    branches: [main]\n{BASE_JOB}  - name: b\n    trigger: \"(?m)^/run b$\"\n    rerun_command: \"/run b\"\n    skip_branches: [\"^release-\"]\n    context: ci/b\n{BASE_JOB}"
    );
    let cfg = ok("{}", &jobs);
    let a = cfg.find_presubmit("org/repo", "main", "a").expect("a");
    assert!(a.could_run("main"));
    assert!(a.could_run("main-x"), "branch regexes are unanchored");
    assert!(!a.could_run("dev"));
    assert!(cfg.find_presubmit("org/repo", "dev", "a").is_err());
    let b = cfg.find_presubmit("org/repo", "main", "b").expect("b");
    assert_eq!(b.context, "ci/b");
    assert!(b.trigger_matches("/run b"));
    assert!(!b.trigger_matches("/test b"));
    assert!(!b.could_run("release-1.0"));
    assert!(cfg.prow().pod_namespace == "default" && b.namespace() == "default");
}
