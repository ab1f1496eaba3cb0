//! A synthetic job configuration generator, shared by the tests and the `load_5000` example.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

const CONTAINER: &str = "spec:
  containers:
  - image: golang:1.22
    command: [make, test]
    env: [{name: GOFLAGS, value: -mod=vendor}]
    resources: {requests: {cpu: 2, memory: 4Gi}}
";

/// A config.yaml with plank decoration defaults.
pub const CONFIG: &str = "plank:
  default_decoration_config_entries:
  - config:
      timeout: 2h
      grace_period: 15s
      utility_images: {clonerefs: c, initupload: i, entrypoint: e, sidecar: s}
      gcs_configuration: {bucket: b, path_strategy: explicit}
";

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().fold(String::new(), |mut out, l| {
        let _ = writeln!(out, "{pad}{l}");
        out
    })
}

/// Writes `n` jobs (presubmits, postsubmits and periodics in turn) over `files` job files,
/// with one preset per file.
pub fn generate(dir: &Path, n: usize, files: usize) {
    #[derive(Default)]
    struct File {
        pre: BTreeMap<String, String>,
        post: BTreeMap<String, String>,
        per: String,
    }
    let mut out: Vec<File> = (0..files).map(|_| File::default()).collect();
    for i in 0..n {
        let f = &mut out[i % files];
        let repo = format!("org{}/repo{}", i % 7, i % 40);
        match i % 3 {
            0 => {
                let job = format!(
                    "- name: pull-job-{i}\n  decorate: true\n  always_run: true\n  branches: [\"^main$\"]\n  labels: {{preset-go-{}: \"true\"}}\n{}",
                    i % files,
                    indent(CONTAINER, 2)
                );
                f.pre.entry(repo).or_default().push_str(&job);
            }
            1 => {
                let job = format!(
                    "- name: post-job-{i}\n  decorate: true\n  run_if_changed: \"^src/\"\n{}",
                    indent(CONTAINER, 2)
                );
                f.post.entry(repo).or_default().push_str(&job);
            }
            _ => {
                let _ = write!(
                    f.per,
                    "- name: periodic-job-{i}\n  cron: \"{} * * * *\"\n  decorate: true\n  extra_refs: [{{org: org, repo: repo, base_ref: main}}]\n{}",
                    i % 60,
                    indent(CONTAINER, 2)
                );
            }
        }
    }
    for (k, f) in out.iter().enumerate() {
        let mut doc = format!(
            "presets:\n- labels: {{preset-go-{k}: \"true\"}}\n  env: [{{name: EXTRA_{k}, value: x}}]\n"
        );
        for (key, jobs) in [("presubmits", &f.pre), ("postsubmits", &f.post)] {
            let _ = writeln!(doc, "{key}:");
            for (repo, list) in jobs {
                let _ = write!(doc, "  {repo}:\n{}", indent(list, 2));
            }
        }
        let _ = write!(doc, "periodics:\n{}", f.per);
        std::fs::write(dir.join(format!("jobs-{k}.yaml")), doc).expect("write job file");
    }
}
