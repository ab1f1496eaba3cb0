//! Reading job config trees from disk (reference §3.1) and a 5,000-job configuration.

use std::io::Write as _;
use std::path::Path;

use bosun_gateway_config::load;

mod support;

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

fn periodic(name: &str) -> String {
    format!(
        "periodics:\n- name: {name}\n  interval: 1h\n  spec: {{containers: [{{image: x, command: [y]}}]}}\n"
    )
}

#[test]
fn walks_the_tree_like_prow() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    write(&root.join("config.yaml"), &periodic("in-config"));
    write(&root.join("VERSION"), "abc123");
    let jobs = root.join("jobs");
    write(&jobs.join("a.yaml"), &periodic("a"));
    write(&jobs.join("nested/deeper/b.yml"), &periodic("b"));
    write(&jobs.join("notes.txt"), "not: yaml: at all: [");
    write(&jobs.join("..data/c.yaml"), &periodic("hidden-by-dotdot"));
    write(&jobs.join("..d.yaml"), &periodic("hidden-file"));
    write(&jobs.join(".prowignore"), "ignored/\n*.skip.yaml\n");
    write(&jobs.join("ignored/d.yaml"), &periodic("ignored-dir"));
    write(&jobs.join("e.skip.yaml"), &periodic("ignored-glob"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(periodic("zipped").as_bytes()).expect("gzip");
    std::fs::write(jobs.join("z.yaml"), gz.finish().expect("gzip")).expect("write gz");

    let cfg =
        load(&root.join("config.yaml"), Some(&jobs)).unwrap_or_else(|e| panic!("must load:\n{e}"));
    let names: Vec<&str> = cfg.all_job_names().into_iter().collect();
    assert_eq!(names, vec!["a", "b", "in-config", "zipped"]);
    assert_eq!(cfg.prow().config_version_sha, "abc123");
    let b = cfg.find_periodic("b").expect("b");
    assert!(
        b.source_path.ends_with("nested/deeper/b.yml"),
        "{}",
        b.source_path.display()
    );

    // A single file works as the job config path too.
    let single = load(&root.join("config.yaml"), Some(&jobs.join("a.yaml"))).expect("single file");
    assert_eq!(single.periodics().len(), 2);
}

#[test]
fn basenames_must_be_unique() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    write(&root.join("config.yaml"), "{}");
    write(&root.join("jobs/x/jobs.yaml"), &periodic("one"));
    write(&root.join("jobs/y/jobs.yaml"), &periodic("two"));
    let err = load(&root.join("config.yaml"), Some(&root.join("jobs"))).expect_err("dup basename");
    let first = root.join("jobs/x/jobs.yaml");
    let second = root.join("jobs/y/jobs.yaml");
    let want = format!(
        "{}: duplicated basename is not allowed: jobs.yaml (also {})",
        second.display(),
        first.display()
    );
    assert!(err.mentions(&want), "expected {want:?} in:\n{err}");
}

#[test]
fn missing_files_are_problems() {
    let tmp = tempfile::tempdir().expect("tmp");
    let err = load(
        &tmp.path().join("nope.yaml"),
        Some(&tmp.path().join("jobs")),
    )
    .expect_err("missing");
    assert_eq!(err.problems.len(), 2, "{err}");
    let err = load(tmp.path(), None).expect_err("dir");
    assert!(err.mentions("config path cannot be a directory"), "{err}");
}

#[test]
fn five_thousand_jobs_load() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    write(&root.join("config.yaml"), support::CONFIG);
    std::fs::create_dir_all(root.join("jobs")).expect("mkdir");
    support::generate(&root.join("jobs"), 5000, 50);
    let cfg = load(&root.join("config.yaml"), Some(&root.join("jobs")))
        .unwrap_or_else(|e| panic!("must load:\n{e}"));
    assert_eq!(cfg.jobs().job_count(), 5000);
    assert_eq!(cfg.all_job_names().len(), 5000);
    let p = cfg
        .find_presubmit("org0/repo0", "main", "pull-job-0")
        .expect("pull-job-0");
    let env = p.spec.as_ref().expect("spec").containers[0]
        .env
        .clone()
        .unwrap_or_default();
    assert_eq!(
        env.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        vec!["GOFLAGS", "EXTRA_0"]
    );
}
