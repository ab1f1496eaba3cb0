//! Spec builders (reference §1.14), lookups and run semantics (§3.8).

use std::collections::BTreeMap;
use std::path::Path;

use bosun_gateway_config::{
    LazyChangedFiles, LoadedConfig, LookupError, batch_spec, load_from_memory, new_prowjob,
    periodic_spec, postsubmit_spec, presubmit_spec,
};
use bosun_proto::prowjob::{ProwJobState, ProwJobType, Pull, Refs};

const CONFIG: &str = r#"
plank:
  default_decoration_config_entries:
  - config:
      blobless_fetch: true
      sparse_checkout_files: [docs]
      utility_images: {clonerefs: c, initupload: i, entrypoint: e, sidecar: s}
      gcs_configuration: {bucket: b, path_strategy: explicit}
"#;

const JOBS: &str = r#"
presubmits:
  org/repo:
  - name: unit
    decorate: true
    path_alias: k8s.io/repo
    clone_uri: https://example.com/org/repo.git
    clone_depth: 5
    skip_submodules: true
    max_concurrency: 2
    labels: {team: infra}
    extra_refs: [{org: org, repo: tools, base_ref: main}]
    reporter_config:
      slack: {channel: ci, job_states_to_report: []}
    spec: {containers: [{image: x, command: [y]}]}
  - name: quiet
    skip_report: true
    run_if_changed: "^docs/"
    branches: ["^main$"]
    spec: {containers: [{image: x, command: [y]}]}
  - name: twice
    branches: [main]
    spec: {containers: [{image: x, command: [y]}]}
  https://gerrit.example.com/proj:
  - name: twice
    context: twice-gerrit
    spec: {containers: [{image: x, command: [y]}]}
postsubmits:
  org/repo:
  - name: post
    always_run: false
    skip_if_only_changed: "\\.md$"
    spec: {containers: [{image: x, command: [y]}]}
  - name: never
    always_run: false
    spec: {containers: [{image: x, command: [y]}]}
periodics:
- name: nightly
  cron: "0 3 * * *"
  reporter_config:
    slack: {channel: ci}
  spec: {containers: [{image: x, command: [y]}]}
"#;

fn cfg() -> LoadedConfig {
    load_from_memory(
        (Path::new("config.yaml"), CONFIG),
        &[(Path::new("jobs.yaml"), JOBS)],
    )
    .unwrap_or_else(|e| panic!("must load:\n{e}"))
}

fn pr_refs() -> Refs {
    Refs {
        org: "org".into(),
        repo: "repo".into(),
        base_ref: "main".into(),
        base_sha: "abc".into(),
        pulls: vec![Pull {
            number: 7,
            author: "me".into(),
            sha: "def".into(),
            ..Pull::default()
        }],
        ..Refs::default()
    }
}

#[test]
fn presubmit_spec_completes_refs() {
    let cfg = cfg();
    let job = cfg
        .find_presubmit("org/repo", "main", "unit")
        .expect("unit");
    let spec = presubmit_spec(job, pr_refs());
    assert_eq!(spec.r#type, ProwJobType::Presubmit);
    assert_eq!(spec.job, "unit");
    assert_eq!(spec.context, "unit");
    assert_eq!(spec.rerun_command, "/test unit");
    assert!(spec.report);
    assert_eq!(spec.agent, "kubernetes");
    assert_eq!(spec.cluster, "default");
    assert_eq!(spec.namespace, "default");
    assert_eq!(spec.max_concurrency, 2);
    let refs = spec.refs.as_ref().expect("refs");
    assert_eq!(refs.path_alias, "k8s.io/repo");
    assert_eq!(refs.clone_uri, "https://example.com/org/repo.git");
    assert_eq!(refs.clone_depth, 5);
    assert!(refs.skip_submodules);
    assert_eq!(refs.blobless_fetch, Some(true));
    assert_eq!(refs.sparse_checkout_files, vec!["docs".to_owned()]);
    assert_eq!(refs.pulls[0].number, 7);
    assert_eq!(spec.extra_refs[0].blobless_fetch, Some(true));
    assert!(
        spec.extra_refs[0].sparse_checkout_files.is_empty(),
        "primary refs only"
    );
    assert!(spec.decoration_config.is_some());
    assert_eq!(
        spec.prowjob_defaults.as_ref().map(|d| d.tenant_id.as_str()),
        Some("GlobalDefaultID")
    );

    let quiet = cfg
        .find_presubmit("org/repo", "main", "quiet")
        .expect("quiet");
    let spec = presubmit_spec(quiet, pr_refs());
    assert!(!spec.report);
    let refs = spec.refs.expect("refs");
    assert_eq!(
        refs.blobless_fetch, None,
        "undecorated: nothing from decoration"
    );
    assert_eq!(refs.clone_depth, 0);
}

#[test]
fn other_spec_builders() {
    let cfg = cfg();
    let unit = cfg
        .find_presubmit("org/repo", "main", "unit")
        .expect("unit");
    let batch = batch_spec(unit, pr_refs());
    assert_eq!(batch.r#type, ProwJobType::Batch);
    assert!(!batch.report);
    assert!(batch.rerun_command.is_empty());
    assert_eq!(batch.context, "unit");

    let post = cfg
        .find_postsubmit("org/repo", "main", "post")
        .expect("post");
    let spec = postsubmit_spec(
        post,
        Refs {
            pulls: vec![],
            ..pr_refs()
        },
    );
    assert_eq!(spec.r#type, ProwJobType::Postsubmit);
    assert!(spec.report);
    assert!(spec.rerun_command.is_empty());
    assert_eq!(spec.context, "post");

    let nightly = cfg.find_periodic("nightly").expect("nightly");
    let spec = periodic_spec(nightly);
    assert_eq!(spec.r#type, ProwJobType::Periodic);
    assert!(spec.report);
    assert!(spec.refs.is_none());
    assert!(spec.context.is_empty());
}

#[test]
fn new_prowjob_labels_annotations_and_report_default() {
    let cfg = cfg();
    let unit = cfg
        .find_presubmit("org/repo", "main", "unit")
        .expect("unit");
    let spec = presubmit_spec(unit, pr_refs());
    let mut extra = unit.labels.clone();
    extra.insert("prow.k8s.io/context".into(), "override".into());
    let mut ann = BTreeMap::new();
    ann.insert("note".to_owned(), "x".to_owned());
    let pj = new_prowjob(spec, &extra, &ann, false);
    let name = pj.metadata.name.clone().expect("name");
    assert!(uuid::Uuid::parse_str(&name).is_ok(), "{name}");
    assert!(pj.metadata.namespace.is_none());
    let labels = pj.metadata.labels.clone().expect("labels");
    assert_eq!(labels["created-by-prow"], "true");
    assert_eq!(labels["prow.k8s.io/type"], "presubmit");
    assert_eq!(labels["prow.k8s.io/job"], "unit");
    assert_eq!(labels["prow.k8s.io/context"], "override");
    assert_eq!(labels["prow.k8s.io/refs.org"], "org");
    assert_eq!(labels["prow.k8s.io/refs.pull"], "7");
    assert_eq!(labels["team"], "infra");
    let annotations = pj.metadata.annotations.clone().expect("annotations");
    assert_eq!(annotations["prow.k8s.io/job"], "unit");
    assert_eq!(annotations["note"], "x");
    let status = pj.status.clone().expect("status");
    assert_eq!(status.state, ProwJobState::Triggered);
    assert!(status.start_time.is_some());
    // job_states_to_report: [] → report false
    let slack = pj
        .spec
        .reporter_config
        .and_then(|r| r.slack)
        .expect("slack");
    assert_eq!(slack.report, Some(false));

    let nightly = cfg.find_periodic("nightly").expect("nightly");
    let pj = new_prowjob(
        periodic_spec(nightly),
        &nightly.labels,
        &nightly.annotations,
        true,
    );
    assert_eq!(
        pj.status.as_ref().map(|s| s.state),
        Some(ProwJobState::Scheduling)
    );
    let slack = pj
        .spec
        .reporter_config
        .and_then(|r| r.slack)
        .expect("slack");
    assert_eq!(slack.report, Some(true));
}

#[test]
fn lookups() {
    let cfg = cfg();
    assert!(matches!(
        cfg.find_presubmit("org/repo", "main", "nope"),
        Err(LookupError::NotFound { .. })
    ));
    // found under the https:// key without giving it, and vice versa
    assert_eq!(
        cfg.find_presubmit("gerrit.example.com/proj", "x", "twice")
            .map(|j| j.context.as_str()),
        Ok("twice-gerrit")
    );
    assert_eq!(
        cfg.find_presubmit("https://gerrit.example.com/proj", "x", "twice")
            .map(|j| j.context.as_str()),
        Ok("twice-gerrit")
    );
    assert!(cfg.find_presubmit("org/repo", "dev", "twice").is_err());
    assert!(cfg.find_periodic("nightly").is_ok());
    let err = cfg.find_periodic("weekly").expect_err("missing");
    assert_eq!(
        err.to_string(),
        "failed to find associated periodic job \"weekly\""
    );
    let names: Vec<&str> = cfg.all_job_names().into_iter().collect();
    assert_eq!(
        names,
        vec!["never", "nightly", "post", "quiet", "twice", "unit"]
    );

    // Two matching jobs → ambiguous.
    let jobs = "presubmits:\n  org/r:\n  - name: j\n    spec: {containers: [{image: x, command: [y]}]}\n  https://org/r:\n  - name: j\n    spec: {containers: [{image: x, command: [y]}]}\n";
    let two = load_from_memory((Path::new("c.yaml"), "{}"), &[(Path::new("j.yaml"), jobs)])
        .expect("loads");
    assert!(matches!(
        two.find_presubmit("org/r", "main", "j"),
        Err(LookupError::Ambiguous { .. })
    ));
}

#[test]
fn run_semantics() {
    let cfg = cfg();
    let quiet = cfg
        .find_presubmit("org/repo", "main", "quiet")
        .expect("quiet");
    let docs = vec!["docs/a.md".to_owned()];
    let code = vec!["main.go".to_owned()];
    assert_eq!(
        quiet.should_run("main", &mut docs.as_slice(), false, false),
        Ok(true)
    );
    assert_eq!(
        quiet.should_run("main", &mut code.as_slice(), false, false),
        Ok(false)
    );
    assert_eq!(
        quiet.should_run("main", &mut code.as_slice(), true, false),
        Ok(true)
    );
    assert_eq!(
        quiet.should_run("main-2", &mut docs.as_slice(), true, false),
        Ok(false),
        "anchored branch"
    );
    assert!(!quiet.needs_explicit_trigger());
    assert!(!quiet.context_required());

    let unit = cfg
        .find_presubmit("org/repo", "main", "unit")
        .expect("unit");
    let mut calls = 0;
    let mut lazy = LazyChangedFiles::new(|| -> Result<Vec<String>, String> {
        calls += 1;
        Ok(vec![])
    });
    assert_eq!(unit.should_run("main", &mut lazy, false, false), Ok(false));
    assert_eq!(unit.should_run("main", &mut lazy, false, true), Ok(true));
    drop(lazy);
    assert_eq!(calls, 0, "no change filter: files never fetched");
    assert!(unit.needs_explicit_trigger());

    let post = cfg
        .find_postsubmit("org/repo", "main", "post")
        .expect("post");
    let md = vec!["README.md".to_owned()];
    assert_eq!(post.should_run("main", &mut md.as_slice()), Ok(false));
    assert_eq!(post.should_run("main", &mut code.as_slice()), Ok(true));
    let never = cfg
        .find_postsubmit("org/repo", "main", "never")
        .expect("never");
    assert_eq!(never.should_run("main", &mut code.as_slice()), Ok(false));
}
