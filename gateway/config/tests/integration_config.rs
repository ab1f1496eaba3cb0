//! The upstream integration-test Prow config (`../shared/conformance/prow-data/...`) loads
//! cleanly and is defaulted as Prow defaults it.

use std::path::PathBuf;
use std::time::Duration;

use bosun_gateway_config::{DEFAULT_TENANT_ID, LoadedConfig, load};

fn prow_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/prow-data/test/integration/config/prow")
}

fn loaded() -> LoadedConfig {
    let dir = prow_dir();
    match load(&dir.join("config.yaml"), Some(&dir.join("jobs"))) {
        Ok(c) => c,
        Err(e) => panic!("integration config must load: {e}"),
    }
}

#[test]
fn loads_without_problems() {
    let cfg = loaded();
    assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
    assert_eq!(cfg.jobs().presubmits.len(), 3);
    assert_eq!(cfg.jobs().postsubmits["org1/repo1"].len(), 2);
    assert_eq!(cfg.periodics().len(), 2);
    let names = cfg.all_job_names();
    assert!(names.contains("sleep-periodic"));
    assert!(names.contains("sleep-postsubmit"));
    assert!(names.contains("trigger-mainconfig-periodic-via-gangway1"));
}

#[test]
fn prow_config_defaults() {
    let cfg = loaded();
    let prow = cfg.prow();
    assert_eq!(prow.pod_namespace, "test-pods");
    assert_eq!(prow.prowjob_namespace, "default");
    assert_eq!(prow.log_level, "debug");
    assert_eq!(prow.sinker.resync_period(), Duration::from_secs(5));
    assert_eq!(
        prow.sinker.terminated_pod_ttl(),
        Duration::from_secs(30 * 60)
    );
    assert_eq!(prow.horologium.tick_interval(), Duration::from_secs(1));
    assert_eq!(prow.plank.pod_pending_timeout(), Duration::from_secs(600));
    assert_eq!(
        prow.plank.pod_running_timeout(),
        Duration::from_secs(48 * 3600)
    );
    assert_eq!(
        prow.plank.pod_unscheduled_timeout(),
        Duration::from_secs(300)
    );
    assert_eq!(prow.plank.max_revivals(), 3);
    assert_eq!(prow.plank.max_goroutines, 20);
    assert_eq!(prow.default_job_timeout(), Duration::from_secs(24 * 3600));
    assert_eq!(prow.github.link_url, "https://github.com");
    let triggers = prow.pubsub_triggers();
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0].project, "project1");
    assert_eq!(triggers[0].topics, vec!["subscription1".to_owned()]);
    assert_eq!(triggers[0].allowed_clusters, vec!["*".to_owned()]);
    assert_eq!(triggers[0].max_outstanding_messages, 10);
    assert_eq!(prow.gangway.allowed_api_clients.len(), 1);
    assert_eq!(prow.deck.default_rerun_auth_configs.len(), 1);
    assert_eq!(
        prow.in_repo_config.allowed_clusters["*"],
        vec!["default".to_owned()]
    );
    assert!(cfg.in_repo_config_enabled("org1/repo1"));
    assert!(!cfg.in_repo_config_enabled("org1/other"));
    assert!(cfg.in_repo_config_allows_cluster("default", "org1/repo1"));
}

#[test]
fn periodic_gets_plank_decoration_defaults() {
    let cfg = loaded();
    let p = cfg.find_periodic("sleep-periodic").expect("periodic");
    assert_eq!(p.agent, "kubernetes");
    assert_eq!(p.cluster, "default");
    assert_eq!(p.namespace(), "test-pods");
    assert_eq!(p.decorate, Some(true));
    let dc = p.decoration_config.as_ref().expect("decorated");
    assert_eq!(dc.timeout.map(|t| t.get()), Some(Duration::from_secs(7200)));
    assert_eq!(
        dc.grace_period.map(|t| t.get()),
        Some(Duration::from_secs(15))
    );
    let images = dc.utility_images.as_ref().expect("images");
    assert_eq!(
        images.clonerefs,
        "localhost:5001/clonerefs-ssl-disabled:latest"
    );
    assert_eq!(images.sidecar, "localhost:5001/sidecar:latest");
    let gcs = dc.gcs_configuration.as_ref().expect("gcs");
    assert_eq!(gcs.bucket, "bucket-foo");
    assert_eq!(gcs.path_strategy, "legacy");
    assert!(p.cron_schedule().is_some());
    assert_eq!(
        p.source_path.file_name().and_then(|n| n.to_str()),
        Some("periodics.yaml")
    );
}

#[test]
fn prowjob_default_tenants() {
    let cfg = loaded();
    let p = cfg.find_periodic("sleep-periodic").expect("periodic");
    let tenant =
        |d: &Option<bosun_proto::prowjob::ProwJobDefault>| d.as_ref().map(|d| d.tenant_id.clone());
    assert_eq!(
        tenant(&p.prowjob_defaults),
        Some("well-behaved-tenant-for-gangway".to_owned())
    );
    let post = cfg
        .find_postsubmit("org1/repo1", "main", "trigger-postsubmit-via-pubsub1")
        .expect("postsubmit");
    assert_eq!(
        tenant(&post.prowjob_defaults),
        Some(DEFAULT_TENANT_ID.to_owned())
    );
    assert_eq!(
        cfg.prowjob_default("testRepo", "default").tenant_id,
        "tester"
    );
    assert_eq!(
        cfg.prowjob_default(
            "https://fakegitserver.default/repo/some/org/gangway-test-repo-1",
            "x"
        )
        .tenant_id,
        "well-behaved-tenant-for-gangway"
    );
    assert_eq!(
        cfg.prowjob_default("other/repo", "default").tenant_id,
        DEFAULT_TENANT_ID
    );
}

#[test]
fn presubmit_defaults() {
    let cfg = loaded();
    let ps = cfg
        .find_presubmit(
            "http://fakegerritserver/gerrit-test-infra-0",
            "master",
            "hello-world-presubmit",
        )
        .expect("presubmit");
    assert_eq!(ps.context, "hello-world-presubmit");
    assert_eq!(ps.rerun_command, "/test hello-world-presubmit");
    assert_eq!(
        ps.trigger,
        r"(?m)^/test( | .* )hello-world-presubmit,?($|\s.*)"
    );
    assert!(ps.trigger_matches("/test hello-world-presubmit"));
    assert!(ps.trigger_matches("lgtm\n/test all hello-world-presubmit"));
    assert!(!ps.trigger_matches("/test hello-world-presubmit-2"));
    assert_eq!(ps.decorate, Some(false));
    assert!(ps.decoration_config.is_none());
    assert_eq!(ps.namespace(), "test-pods");
    // The same name in another repo is another job.
    let other = cfg
        .find_presubmit(
            "http://fakegerritserver/gerrit-test-infra-1",
            "master",
            "hello-world-presubmit",
        )
        .expect("presubmit");
    assert_ne!(std::ptr::from_ref(ps), std::ptr::from_ref(other));
    // Jobs carrying a preset's label get its env; these jobs' labels match no preset.
    let env = ps.spec.as_ref().expect("spec").containers[0]
        .env
        .clone()
        .unwrap_or_default();
    assert!(env.iter().all(|e| e.name != "FOO_FILE"));
}

#[test]
fn preset_from_the_integration_presets_file_applies_by_label() {
    let dir = prow_dir();
    let read =
        |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let config = read(dir.join("config.yaml"));
    let names = [
        "periodics.yaml",
        "postsubmits.yaml",
        "presets.yaml",
        "presubmits.yaml",
    ];
    let texts: Vec<(PathBuf, String)> = names
        .iter()
        .map(|n| (dir.join("jobs").join(n), read(dir.join("jobs").join(n))))
        .collect();
    let extra = "periodics:\n- name: uses-foo\n  interval: 1h\n  labels: {preset-foo: \"true\"}\n  spec: {containers: [{image: x, command: [y]}]}\n";
    let mut files: Vec<(&std::path::Path, &str)> = texts
        .iter()
        .map(|(p, t)| (p.as_path(), t.as_str()))
        .collect();
    files.push((std::path::Path::new("extra.yaml"), extra));
    let cfg = bosun_gateway_config::load_from_memory((&dir.join("config.yaml"), &config), &files)
        .unwrap_or_else(|e| panic!("must load:\n{e}"));
    let job = cfg.find_periodic("uses-foo").expect("job");
    let env = job.spec.as_ref().expect("spec").containers[0]
        .env
        .clone()
        .unwrap_or_default();
    assert_eq!(env.len(), 1);
    assert_eq!(env[0].name, "FOO_FILE");
    assert_eq!(env[0].value.as_deref(), Some("/etc/foo"));
    // Jobs without the label are untouched.
    let other = cfg.find_periodic("sleep-periodic").expect("job");
    assert!(
        other.spec.as_ref().expect("spec").containers[0]
            .env
            .is_none()
    );
}

#[test]
fn loaded_config_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LoadedConfig>();
}
