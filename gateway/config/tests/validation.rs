//! One failing case per validation rule of reference §3.7 (and the component checks of
//! §3.9–§3.11): each proves the message names the file, the job and, where there is one, the
//! field.

use std::path::Path;

use bosun_gateway_config::{ConfigErrors, LoadedConfig, load_from_memory};

const CONFIG: &str = r#"
pod_namespace: pods
plank:
  job_queue_capacities:
    q: 1
  default_decoration_config_entries:
  - config:
      timeout: 2h
      grace_period: 15s
      utility_images: {clonerefs: c, initupload: i, entrypoint: e, sidecar: s}
      gcs_configuration: {bucket: b, path_strategy: explicit}
"#;

fn load_jobs_with(config: &str, jobs: &str) -> Result<LoadedConfig, ConfigErrors> {
    load_from_memory(
        (Path::new("config.yaml"), config),
        &[(Path::new("jobs/jobs.yaml"), jobs)],
    )
}

fn load_jobs(jobs: &str) -> Result<LoadedConfig, ConfigErrors> {
    load_jobs_with(CONFIG, jobs)
}

#[track_caller]
fn expect(result: Result<LoadedConfig, ConfigErrors>, needle: &str) {
    match result {
        Ok(_) => panic!("expected a problem containing {needle:?}, but the config loaded"),
        Err(e) => assert!(e.mentions(needle), "expected {needle:?} in:\n{e}"),
    }
}

#[track_caller]
fn expect_ok(result: Result<LoadedConfig, ConfigErrors>) -> LoadedConfig {
    match result {
        Ok(c) => c,
        Err(e) => panic!("expected the config to load:\n{e}"),
    }
}

/// A presubmit with the given extra YAML lines (indented by the caller under the job).
fn presubmit(name: &str, extra: &str) -> String {
    format!(
        "presubmits:\n  org/repo:\n  - name: {name}\n    spec:\n      containers:\n      - image: alpine\n        command: [\"true\"]\n{extra}"
    )
}

fn periodic(name: &str, extra: &str) -> String {
    format!(
        "periodics:\n- name: {name}\n  spec:\n    containers:\n    - image: alpine\n      command: [\"true\"]\n{extra}"
    )
}

#[test]
fn valid_baseline_loads() {
    let cfg = expect_ok(load_jobs(&presubmit("ok", "")));
    assert_eq!(cfg.jobs().job_count(), 1);
    expect_ok(load_jobs(&periodic("ok", "  interval: 1h\n")));
}

#[test]
fn job_rules() {
    // (job yaml, needle)
    let cases: Vec<(String, &str)> = vec![
        // names
        (presubmit("bad/name", ""), r#"jobs/jobs.yaml: job "bad/name": name: must match regex "^[A-Za-z0-9-._]+$""#),
        (
            presubmit("folder/job/", "    agent: jenkins\n"),
            r#"job "folder/job/": name: must match regex"#,
        ),
        // max_concurrency
        (presubmit("mc", "    max_concurrency: -1\n"), r#"jobs/jobs.yaml: job "mc": max_concurrency: -1 must be a non-negative number"#),
        // agent rules
        (presubmit("spec-jenkins", "    agent: jenkins\n    decorate: false\n"), r#"job "spec-jenkins": agent: job specs require agent: kubernetes (found "jenkins")"#),
        (
            "periodics:\n- name: nospec\n  interval: 1h\n".to_owned(),
            r#"job "nospec": agent: kubernetes jobs require a spec"#,
        ),
        (
            "periodics:\n- name: prs\n  interval: 1h\n  agent: jenkins\n  decorate: false\n  pipeline_run_spec: {}\n".to_owned(),
            r#"job "prs": agent: job pipeline_run_spec require agent: tekton-pipeline (found "jenkins")"#,
        ),
        (
            "periodics:\n- name: tk\n  interval: 1h\n  agent: tekton-pipeline\n  decorate: false\n".to_owned(),
            r#"job "tk": agent: agent: tekton-pipeline jobs require a pipeline_run_spec"#,
        ),
        (
            "periodics:\n- name: dj\n  interval: 1h\n  agent: jenkins\n  decorate: true\n".to_owned(),
            r#"job "dj": agent: decoration requires agent: kubernetes (found "jenkins")"#,
        ),
        (
            "periodics:\n- name: ev\n  interval: 1h\n  agent: jenkins\n  decorate: false\n  error_on_eviction: true\n".to_owned(),
            r#"job "ev": agent: error_on_eviction only applies to agent: kubernetes (found "jenkins")"#,
        ),
        (
            presubmit("ns", "    namespace: elsewhere\n"),
            r#"job "ns": agent: namespace customization requires agent: tekton-pipeline (found "kubernetes")"#,
        ),
        // pod spec
        (
            "periodics:\n- name: nocontainers\n  interval: 1h\n  spec:\n    containers: []\n".to_owned(),
            r#"job "nocontainers": spec.containers: pod spec must specify at least 1 container, found: 0"#,
        ),
        (
            presubmit("init", "      initContainers:\n      - name: setup\n        image: alpine\n"),
            r#"job "init": spec.initContainers[0]: pod spec may only use init containers that are restartable sidecars"#,
        ),
        (
            "periodics:\n- name: two\n  interval: 1h\n  decorate: false\n  spec:\n    containers:\n    - {name: a, image: x}\n    - {name: b, image: x}\n".to_owned(),
            r#"job "two": spec.containers: pod utility decoration must be enabled to use multiple containers: 2"#,
        ),
        (
            "periodics:\n- name: names\n  interval: 1h\n  decorate: true\n  spec:\n    containers:\n    - {image: x, command: [a]}\n    - {name: sidecar, image: x, command: [a]}\n    - {name: sidecar, image: x, command: [a]}\n".to_owned(),
            r#"job "names": spec.containers[0].name: container does not have name"#,
        ),
        (
            "periodics:\n- name: names2\n  interval: 1h\n  decorate: true\n  spec:\n    containers:\n    - {name: a, image: x, command: [a]}\n    - {name: a, image: x, command: [a]}\n".to_owned(),
            r#"job "names2": spec.containers[1].name: container named "a" is defined more than once"#,
        ),
        (
            "periodics:\n- name: names3\n  interval: 1h\n  decorate: true\n  spec:\n    containers:\n    - {name: a, image: x, command: [a]}\n    - {name: place-entrypoint, image: x, command: [a]}\n".to_owned(),
            r#"job "names3": spec.containers[1].name: container name place-entrypoint is a reserved for decoration"#,
        ),
        (
            presubmit("dupenv", "        env:\n        - {name: A, value: x}\n        - {name: A, value: y}\n"),
            r#"job "dupenv": spec.containers[0].env[1]: env var named "A" is defined more than once"#,
        ),
        (
            presubmit("resenv", "        env:\n        - {name: PULL_NUMBER, value: x}\n"),
            r#"job "resenv": spec.containers[0].env[0]: env PULL_NUMBER is reserved"#,
        ),
        (
            presubmit("dupvol", "      volumes:\n      - {name: v, emptyDir: {}}\n      - {name: v, emptyDir: {}}\n"),
            r#"job "dupvol": spec.volumes[1]: volume named "v" is defined more than once"#,
        ),
        (
            presubmit("resvol", "      volumes:\n      - {name: gcs-credentials, emptyDir: {}}\n"),
            r#"job "resvol": spec.volumes[0]: volume gcs-credentials is a reserved for decoration"#,
        ),
        (
            presubmit("undef", "        volumeMounts:\n        - {name: nope, mountPath: /x}\n"),
            r#"job "undef": spec.containers[0].volumeMounts[0]: volumeMount named "nope" is undefined"#,
        ),
        (
            presubmit("resmount", "        volumeMounts:\n        - {name: logs, mountPath: /x}\n"),
            r#"job "resmount": spec.containers[0].volumeMounts[0]: volumeMount name logs is reserved for decoration"#,
        ),
        (
            presubmit("respath", "        volumeMounts:\n        - {name: v, mountPath: /home/prow/go}\n      volumes:\n      - {name: v, emptyDir: {}}\n"),
            r#"job "respath": spec.containers[0].volumeMounts[0]: mount v at /home/prow/go conflicts with decoration mount"#,
        ),
        // decoration
        (
            "periodics:\n- name: nocmd\n  interval: 1h\n  decorate: true\n  spec:\n    containers:\n    - image: alpine\n".to_owned(),
            r#"job "nocmd": spec.containers[0]: decorated job containers must specify command and/or args"#,
        ),
        (
            periodic("noimages", "  interval: 1h\n  decoration_config:\n    utility_images: {clonerefs: ''}\n"),
            r#"job "noimages": decoration_config: invalid decoration config: the following utility images are not specified: ["clonerefs", "initupload", "entrypoint", "sidecar"]"#,
        ),
        (
            periodic("strategy", "  interval: 1h\n  decorate: true\n  decoration_config:\n    gcs_configuration: {path_strategy: weird}\n"),
            r#"job "strategy": decoration_config: invalid decoration config: gcs configuration is invalid: gcs_path_strategy must be one of"#,
        ),
        (
            periodic("legacy", "  interval: 1h\n  decorate: true\n  decoration_config:\n    gcs_configuration: {path_strategy: legacy}\n"),
            r#"job "legacy": decoration_config: invalid decoration config: gcs configuration is invalid: default org and repo must be provided for GCS strategy "legacy""#,
        ),
        (
            periodic("oauthssh", "  interval: 1h\n  decorate: true\n  decoration_config:\n    oauth_token_secret: {name: o, key: k}\n    ssh_key_secrets: [s]\n"),
            r#"job "oauthssh": decoration_config: invalid decoration config: both oauth token and ssh key secrets are specified"#,
        ),
        // labels, annotations, queues
        (
            presubmit("reslabel", "    labels:\n      created-by-prow: \"true\"\n"),
            r#"job "reslabel": labels["created-by-prow"]: label created-by-prow is reserved for decoration"#,
        ),
        (
            presubmit("badkey", "    labels:\n      \"bad key\": x\n"),
            r#"job "badkey": labels["bad key"]: invalid label bad key"#,
        ),
        (
            presubmit("badvalue", "    labels:\n      ok: \"-bad-\"\n"),
            r#"job "badvalue": labels["ok"]: label ok has invalid value -bad-"#,
        ),
        (
            presubmit("badann", "    annotations:\n      \"Bad/Key\": x\n"),
            r#"job "badann": annotations["Bad/Key"]: invalid annotation key "Bad/Key""#,
        ),
        (
            presubmit("queue", "    job_queue_name: nope\n"),
            r#"job "queue": job_queue_name: invalid job queue name nope"#,
        ),
        // rerun auth, clone uris, refs
        (
            presubmit("rerun", "    rerun_auth_config:\n      allow_anyone: true\n      github_users: [me]\n"),
            r#"job "rerun": rerun_auth_config: allow anyone is set to true and permitted users or groups are specified"#,
        ),
        (
            presubmit("clone", "    clone_uri: \"http://[::1/x\"\n"),
            r#"job "clone": clone_uri: couldn't parse uri from clone_uri: missing ']' in host"#,
        ),
        (
            presubmit("oauth", "    clone_uri: \"git@github.com:org/repo.git\"\n    decoration_config:\n      oauth_token_secret: {name: o, key: k}\n"),
            r#"job "oauth": clone_uri: scheme must be http or https when OAuth secret is specified"#,
        ),
        (
            presubmit("extraclone", "    extra_refs:\n    - {org: o, repo: r, base_ref: main, clone_uri: \"http://h/%zz\"}\n"),
            r#"job "extraclone": extra_refs[0].clone_uri: couldn't parse uri"#,
        ),
        (
            presubmit("selfref", "    extra_refs:\n    - {org: org, repo: repo, base_ref: main}\n"),
            r#"job "selfref": extra_refs: the following refs specified more than once: org/repo"#,
        ),
        (
            periodic("dupref", "  interval: 1h\n  extra_refs:\n  - {org: a, repo: b}\n  - {org: a, repo: b}\n"),
            r#"job "dupref": extra_refs: the following refs specified more than once: a/b"#,
        ),
        // presubmit triggering
        (
            presubmit("arric", "    always_run: true\n    run_if_changed: foo\n"),
            r#"job "arric": always_run: job is set to always run but also declares run_if_changed targets"#,
        ),
        (
            presubmit("arsioc", "    always_run: true\n    skip_if_only_changed: foo\n"),
            r#"job "arsioc": always_run: job is set to always run but also declares skip_if_only_changed targets"#,
        ),
        (
            presubmit("both", "    run_if_changed: a\n    skip_if_only_changed: b\n"),
            r#"job "both": run_if_changed: job declares run_if_changed and skip_if_only_changed, which are mutually exclusive"#,
        ),
        (
            presubmit("trig", "    trigger: \"/go\"\n"),
            r#"job "trig": trigger: either both of trigger and rerun_command must be set, or neither"#,
        ),
        (
            presubmit("rerun2", "    trigger: \"^/go$\"\n    rerun_command: \"/stop\"\n"),
            r#"job "rerun2": rerun_command: rerun command "/stop" does not match trigger "^/go$""#,
        ),
        (
            presubmit("badtrig", "    trigger: \"(\"\n    rerun_command: \"(\"\n"),
            r#"job "badtrig": trigger: could not compile trigger regex"#,
        ),
        (
            presubmit("badbranch", "    branches: [\"(\"]\n"),
            r#"job "badbranch": branches: could not compile positive branch regex"#,
        ),
        (
            presubmit("badskip", "    skip_branches: [\"[\"]\n"),
            r#"job "badskip": skip_branches: could not compile negative branch regex"#,
        ),
        (
            presubmit("badchange", "    run_if_changed: \"(\"\n"),
            r#"job "badchange": run_if_changed: could not compile run_if_changed regex"#,
        ),
        // postsubmit triggering
        (
            "postsubmits:\n  org/repo:\n  - name: post\n    always_run: true\n    run_if_changed: x\n    spec:\n      containers:\n      - {image: a, command: [b]}\n".to_owned(),
            r#"job "post": always_run: job is set to always run but also declares run_if_changed targets"#,
        ),
        (
            "postsubmits:\n  org/repo:\n  - name: post2\n    run_if_changed: x\n    skip_if_only_changed: y\n    spec:\n      containers:\n      - {image: a, command: [b]}\n".to_owned(),
            r#"job "post2": run_if_changed: job declares run_if_changed and skip_if_only_changed"#,
        ),
        // reporting
        (
            presubmit("gerritlabel", "    skip_report: true\n    labels:\n      prow.k8s.io/gerrit-report-label: Verified\n"),
            r#"job "gerritlabel": labels["prow.k8s.io/gerrit-report-label"]: gerrit report label prow.k8s.io/gerrit-report-label set to non-empty string"#,
        ),
        (
            presubmit("\"\"", ""),
            r#"job "": context: job is set to report but has no context configured"#,
        ),
        // periodics
        (periodic("excl", "  cron: \"@daily\"\n  interval: 1h\n"), r#"job "excl": cron: cron, interval, and minimum_interval are mutually exclusive"#),
        (periodic("none", ""), r#"job "none": cron: at least one of cron, interval, or minimum_interval must be set"#),
        (periodic("badcron", "  cron: \"61 * * * *\"\n"), r#"job "badcron": cron: invalid cron string 61 * * * *"#),
        (periodic("badint", "  interval: soon\n"), r#"job "badint": interval: cannot parse duration"#),
        (periodic("badmin", "  minimum_interval: 5\n"), r#"job "badmin": minimum_interval: cannot parse duration"#),
        (periodic("badretry", "  interval: 1h\n  retry: {attempts: 3}\n"), r#"job "badretry": retry.interval: cannot parse retry duration"#),
        // tekton
        (
            "periodics:\n- name: tekton-implicit\n  interval: 1h\n  agent: tekton-pipeline\n  decorate: false\n  namespace: pipelines\n  pipeline_run_spec:\n    pipelineSpec:\n      tasks:\n      - {name: t, taskRef: {name: PROW_IMPLICIT_GIT_REF}}\n".to_owned(),
            r#"job "tekton-implicit": pipeline_run_spec: periodic jobs do not have an implicit git ref to replace PROW_IMPLICIT_GIT_REF"#,
        ),
        (
            "periodics:\n- name: tekton-zero\n  interval: 1h\n  agent: tekton-pipeline\n  decorate: false\n  extra_refs: [{org: a, repo: b}]\n  tekton_pipeline_run_spec:\n    v1beta1:\n      pipelineSpec:\n        tasks:\n        - {name: t, taskRef: {name: PROW_EXTRA_GIT_REF_00}}\n".to_owned(),
            r#"job "tekton-zero": pipeline_run_spec: task "t": leading zeros are not allowed"#,
        ),
        (
            "periodics:\n- name: tekton-unused\n  interval: 1h\n  agent: tekton-pipeline\n  decorate: false\n  extra_refs: [{org: a, repo: b}]\n  pipeline_run_spec:\n    pipelineSpec:\n      tasks: []\n".to_owned(),
            r#"job "tekton-unused": pipeline_run_spec: extra_refs[0] is not used; some task must reference PROW_EXTRA_GIT_REF_0"#,
        ),
        (
            "periodics:\n- name: tekton-count\n  interval: 1h\n  agent: tekton-pipeline\n  decorate: false\n  pipeline_run_spec:\n    pipelineSpec:\n      tasks:\n      - {name: t, taskRef: {name: PROW_EXTRA_GIT_REF_1}}\n".to_owned(),
            r#"job "tekton-count": pipeline_run_spec: 0 extra_refs are specified, but the following PROW_EXTRA_GIT_REF_* indexes are used: 1"#,
        ),
        // strict parsing
        (
            presubmit("typo", "    always_runn: true\n"),
            r#"jobs/jobs.yaml: job "typo": always_runn: unknown field"#,
        ),
        (
            presubmit("deep", "        imagee: x\n"),
            r#"jobs/jobs.yaml: job "deep": spec.containers[0].imagee: unknown field"#,
        ),
        (
            "presets:\n- labels: {a: b}\n  envv: []\n".to_owned(),
            "jobs/jobs.yaml: presets[0].envv: unknown field",
        ),
        ("bogus: 1\n".to_owned(), "jobs/jobs.yaml: bogus: unknown field"),
        // type errors name the job, the field and the line
        (
            presubmit("typed", "    max_concurrency: lots\n"),
            r#"jobs/jobs.yaml:8:22: job "typed": max_concurrency: invalid type: string "lots", expected i64"#,
        ),
        ("\tpresubmits: x\n".to_owned(), "jobs/jobs.yaml:1:1: "),
    ];
    for (jobs, needle) in cases {
        expect(load_jobs(&jobs), needle);
    }
}

#[test]
fn duplicates_and_contexts() {
    let dup = "presubmits:\n  org/repo:\n  - name: a\n    spec: {containers: [{image: x, command: [y]}]}\n  - name: a\n    spec: {containers: [{image: x, command: [y]}]}\n";
    expect(
        load_jobs(dup),
        r#"jobs/jobs.yaml: job "a": duplicated presubmit job"#,
    );
    // Same name on disjoint branches is fine.
    let disjoint = "presubmits:\n  org/repo:\n  - name: a\n    branches: [main]\n    spec: {containers: [{image: x, command: [y]}]}\n  - name: a\n    branches: [release]\n    context: a2\n    spec: {containers: [{image: x, command: [y]}]}\n";
    expect_ok(load_jobs(disjoint));
    // Same name in other repos is fine.
    let other_repo = "presubmits:\n  org/repo:\n  - name: a\n    spec: {containers: [{image: x, command: [y]}]}\n  org/other:\n  - name: a\n    spec: {containers: [{image: x, command: [y]}]}\n";
    expect_ok(load_jobs(other_repo));
    let post = "postsubmits:\n  org/repo:\n  - name: a\n    spec: {containers: [{image: x, command: [y]}]}\n  - name: a\n    branches: [main]\n    spec: {containers: [{image: x, command: [y]}]}\n";
    expect(load_jobs(post), r#"job "a": duplicated postsubmit job"#);
    let context = "presubmits:\n  org/repo:\n  - name: a\n    context: ci\n    spec: {containers: [{image: x, command: [y]}]}\n  - name: b\n    context: ci\n    spec: {containers: [{image: x, command: [y]}]}\n";
    expect(
        load_jobs(context),
        r#"job "b": context: jobs a and b report to the same GitHub context "ci""#,
    );
    // Periodic names are unique across files.
    let result = load_from_memory(
        (Path::new("config.yaml"), CONFIG),
        &[
            (Path::new("jobs/a.yaml"), &periodic("p", "  interval: 1h\n")),
            (Path::new("jobs/b.yaml"), &periodic("p", "  interval: 2h\n")),
        ],
    );
    expect(
        result,
        r#"jobs/b.yaml: job "p": duplicated periodic job (also defined in jobs/a.yaml)"#,
    );
}

#[test]
fn unknown_agent_is_a_warning() {
    let jobs = "periodics:\n- name: ext\n  interval: 1h\n  agent: my-executor\n  decorate: false\n";
    let cfg = expect_ok(load_jobs(jobs));
    assert_eq!(cfg.warnings().len(), 1);
    let w = cfg.warnings()[0].to_string();
    assert!(
        w.contains(r#"jobs/jobs.yaml: job "ext": agent: agent "my-executor" is unknown"#),
        "{w}"
    );
}

#[test]
fn every_problem_is_reported() {
    let a = format!(
        "{}  - name: second\n    max_concurrency: -2\n    spec: {{containers: []}}\n",
        presubmit("first", "    always_run: true\n    run_if_changed: x\n")
    );
    let b = "periodics:\n- name: p1\n  bogus_field: 1\n  interval: 1h\n  spec: {containers: [{image: x, command: [y]}]}\n- name: p2\n  spec: {containers: [{image: x, command: [y]}]}\n";
    let c = "\tpresubmits: x\n";
    let config =
        format!("{CONFIG}  max_concurrency: -5\nplank_typo: 1\nsinker:\n  resync_periodd: 1h\n");
    let err = load_from_memory(
        (Path::new("config.yaml"), &config),
        &[
            (Path::new("jobs/a.yaml"), &a),
            (Path::new("jobs/b.yaml"), b),
            (Path::new("jobs/c.yaml"), c),
        ],
    )
    .expect_err("must fail");
    for needle in [
        r#"jobs/a.yaml: job "first": always_run: job is set to always run"#,
        r#"jobs/a.yaml: job "second": max_concurrency: -2 must be a non-negative number"#,
        r#"jobs/a.yaml: job "second": spec.containers: pod spec must specify at least 1 container"#,
        r#"jobs/b.yaml: job "p1": bogus_field: unknown field"#,
        r#"jobs/b.yaml: job "p2": cron: at least one of cron, interval, or minimum_interval must be set"#,
        "jobs/c.yaml:1:1: ",
        "config.yaml: plank.max_concurrency: controller has invalid max_concurrency (-5)",
        "config.yaml: sinker.resync_periodd: unknown field",
    ] {
        assert!(err.mentions(needle), "expected {needle:?} in:\n{err}");
    }
    // Unknown top-level Prow keys are fine.
    assert!(!err.mentions("plank_typo"), "{err}");
    assert_eq!(err.problems.len(), 8, "{err}");
}

#[test]
fn component_rules() {
    let job = periodic("ok", "  interval: 1h\n");
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{CONFIG}  default_decoration_configs:\n    '*': {{timeout: 1h}}\n"),
            "config.yaml: plank.default_decoration_configs: plank.default_decoration_configs and plank.default_decoration_config_entries are mutually exclusive",
        ),
        (
            format!("{CONFIG}  max_goroutines: -1\n"),
            "config.yaml: plank.max_goroutines: controller has invalid max_goroutines (-1)",
        ),
        (
            format!("{CONFIG}  report_template: x\n  report_templates: {{'*': y}}\n"),
            "plank.report_template: both report_template and report_templates are specified",
        ),
        (
            format!("{CONFIG}  job_url_template: \"{{{{.Spec.Job\"\n"),
            "plank.job_url_template: parsing template: unclosed action",
        ),
        (
            format!("{CONFIG}  job_url_prefix_config:\n    '*': \"http://[x\"\n"),
            r#"plank.job_url_prefix_config["*"]: invalid value"#,
        ),
        (
            format!("{CONFIG}github_reporter:\n  job_types_to_report: [periodic]\n"),
            "github_reporter.job_types_to_report: invalid job_types_to_report: periodic",
        ),
        (
            format!("{CONFIG}slack_reporter_configs:\n  '*': {{host: h}}\n"),
            r#"slack_reporter_configs["*"].channel: failed to validate slackreporter config: channel must be set"#,
        ),
        (
            format!("{CONFIG}pubsub_subscriptions: {{p: [s]}}\npubsub_triggers: []\n"),
            "pubsub_subscriptions: pubsub_subscriptions and pubsub_triggers are mutually exclusive",
        ),
        (
            format!("{CONFIG}log_level: chatty\n"),
            "log_level: not a valid logrus level",
        ),
        (
            format!(
                "{CONFIG}deck:\n  rerun_auth_configs: {{'*': {{allow_anyone: true}}}}\n  default_rerun_auth_configs: [{{repo: x}}]\n"
            ),
            "deck.rerun_auth_configs: deck.rerun_auth_configs and deck.default_rerun_auth_configs are mutually exclusive",
        ),
        (
            format!(
                "{CONFIG}deck:\n  rerun_auth_configs: {{'*': {{allow_anyone: true, github_orgs: [o]}}}}\n"
            ),
            "deck.default_rerun_auth_configs[0]: allow anyone is set to true",
        ),
        (
            format!("{CONFIG}gerrit:\n  allowed_presubmit_trigger_re: \"(\"\n"),
            "gerrit.allowed_presubmit_trigger_re: failed to compile regex",
        ),
        (
            format!(
                "{CONFIG}gangway:\n  allowed_api_clients:\n  - allowed_jobs_filters: [{{tenant_id: t}}]\n"
            ),
            "gangway.allowed_api_clients[0]: allowed api client did not have a cloud vendor set",
        ),
        (
            format!(
                "{CONFIG}gangway:\n  allowed_api_clients:\n  - gcp: {{endpoint_api_consumer_type: USER, endpoint_api_consumer_number: \"1\"}}\n    allowed_jobs_filters: [{{tenant_id: t}}]\n"
            ),
            r#"gangway.allowed_api_clients[0].gcp.endpoint_api_consumer_type: unsupported GCP API consumer type: "USER""#,
        ),
        (
            format!(
                "{CONFIG}gangway:\n  allowed_api_clients:\n  - gcp: {{endpoint_api_consumer_type: PROJECT, endpoint_api_consumer_number: \"12a\"}}\n    allowed_jobs_filters: [{{tenant_id: t}}]\n"
            ),
            r#"gangway.allowed_api_clients[0].gcp.endpoint_api_consumer_number: invalid endpoint_api_consumer_number: "12a""#,
        ),
        (
            format!(
                "{CONFIG}gangway:\n  allowed_api_clients:\n  - gcp: {{endpoint_api_consumer_type: PROJECT, endpoint_api_consumer_number: \"1\"}}\n    allowed_jobs_filters: [{{tenant_id: t}}]\n  - gcp: {{endpoint_api_consumer_type: PROJECT, endpoint_api_consumer_number: \"1\"}}\n    allowed_jobs_filters: [{{tenant_id: t}}]\n"
            ),
            r#"gangway.allowed_api_clients[1]: allowed api client "gcp-PROJECT-1" declared multiple times"#,
        ),
        (
            format!(
                "{CONFIG}gangway:\n  allowed_api_clients:\n  - gcp: {{endpoint_api_consumer_type: PROJECT, endpoint_api_consumer_number: \"1\"}}\n"
            ),
            "gangway.allowed_api_clients[0].allowed_jobs_filters: allowed_jobs_filters field cannot be empty",
        ),
        (
            format!(
                "{CONFIG}gangway:\n  allowed_api_clients:\n  - gcp: {{endpoint_api_consumer_type: PROJECT, endpoint_api_consumer_number: \"1\"}}\n    allowed_jobs_filters: [{{}}]\n"
            ),
            "gangway.allowed_api_clients[0].allowed_jobs_filters[0].tenant_id: allowed_jobs_filters entry has an empty tenant_id",
        ),
        (
            format!("{CONFIG}gangway:\n  allowed_api_client: []\n"),
            "config.yaml: gangway.allowed_api_client: unknown field",
        ),
        (format!("{CONFIG}bosun:\n  nope: 1\n"), "config.yaml"),
    ];
    for (config, needle) in cases {
        expect(load_jobs_with(&config, &job), needle);
    }
    // Unmodelled deck keys and unknown top-level keys are accepted.
    let lenient = format!(
        "{CONFIG}deck:\n  spyglass: {{size_limit: 1}}\ntide:\n  queries: []\nbranch-protection: {{}}\nbosun: {{}}\n"
    );
    expect_ok(load_jobs_with(&lenient, &job));
}
