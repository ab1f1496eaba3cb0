//! Prow's bucket layout for logs and artifacts (reference api §1.7, agents §2.7).

use crate::prowjob::{GcsConfiguration, ProwJobSpec, ProwJobType};

/// Where a job's files go, relative to the bucket root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPaths {
    /// `[prefix/]logs/<job>/<build>` or the pr-logs equivalent.
    pub job_dir: String,
    /// Files holding the latest build id.
    pub latest_build_files: Vec<String>,
    /// `pr-logs/directory/<job>/<build>.txt` for presubmits.
    pub alias: Option<String>,
}

fn repo_segment(config: &GcsConfiguration, org: &str, repo: &str) -> String {
    let org = org
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let repo_flat = repo.replace('/', "_");
    let full = format!("{org}_{repo_flat}");
    match config.path_strategy.as_str() {
        "explicit" => full,
        "single" => {
            if org == config.default_org && repo == config.default_repo {
                String::new()
            } else {
                full
            }
        }
        _ => {
            // legacy
            if org == config.default_org {
                if repo == config.default_repo {
                    String::new()
                } else {
                    repo_flat
                }
            } else {
                full
            }
        }
    }
}

fn join(prefix: &str, rest: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        rest.to_owned()
    } else {
        format!("{prefix}/{rest}")
    }
}

/// The storage paths of one run.
pub fn paths_for_job(spec: &ProwJobSpec, build_id: &str, config: &GcsConfiguration) -> JobPaths {
    let job = &spec.job;
    let prefix = config.path_prefix.as_str();
    match spec.r#type {
        ProwJobType::Periodic | ProwJobType::Postsubmit => JobPaths {
            job_dir: join(prefix, &format!("logs/{job}/{build_id}")),
            latest_build_files: vec![join(prefix, &format!("logs/{job}/latest-build.txt"))],
            alias: None,
        },
        ProwJobType::Batch => JobPaths {
            job_dir: join(prefix, &format!("pr-logs/pull/batch/{job}/{build_id}")),
            latest_build_files: vec![join(
                prefix,
                &format!("pr-logs/directory/{job}/latest-build.txt"),
            )],
            alias: None,
        },
        ProwJobType::Presubmit => {
            let (org, repo, pull) = spec
                .refs
                .as_ref()
                .map(|r| {
                    (
                        r.org.as_str(),
                        r.repo.as_str(),
                        r.pulls.first().map(|p| p.number).unwrap_or(0),
                    )
                })
                .unwrap_or(("", "", 0));
            let seg = repo_segment(config, org, repo);
            let pull_dir = if seg.is_empty() {
                format!("pr-logs/pull/{pull}/{job}")
            } else {
                format!("pr-logs/pull/{seg}/{pull}/{job}")
            };
            JobPaths {
                job_dir: join(prefix, &format!("{pull_dir}/{build_id}")),
                latest_build_files: vec![
                    join(prefix, &format!("pr-logs/directory/{job}/latest-build.txt")),
                    join(prefix, &format!("{pull_dir}/latest-build.txt")),
                ],
                alias: Some(join(
                    prefix,
                    &format!("pr-logs/directory/{job}/{build_id}.txt"),
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prowjob::{Pull, Refs};

    fn cfg(strategy: &str) -> GcsConfiguration {
        GcsConfiguration {
            bucket: "gs://b".into(),
            path_strategy: strategy.into(),
            default_org: "kubernetes".into(),
            default_repo: "kubernetes".into(),
            ..Default::default()
        }
    }

    fn presubmit(org: &str, repo: &str) -> ProwJobSpec {
        ProwJobSpec {
            r#type: ProwJobType::Presubmit,
            job: "unit".into(),
            refs: Some(Refs {
                org: org.into(),
                repo: repo.into(),
                pulls: vec![Pull {
                    number: 9,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn presubmit_paths_by_strategy() {
        let p = paths_for_job(&presubmit("kubernetes", "kubernetes"), "1", &cfg("legacy"));
        assert_eq!(p.job_dir, "pr-logs/pull/9/unit/1");
        let p = paths_for_job(&presubmit("kubernetes", "test-infra"), "1", &cfg("legacy"));
        assert_eq!(p.job_dir, "pr-logs/pull/test-infra/9/unit/1");
        let p = paths_for_job(&presubmit("kubernetes", "test-infra"), "1", &cfg("single"));
        assert_eq!(p.job_dir, "pr-logs/pull/kubernetes_test-infra/9/unit/1");
        let p = paths_for_job(
            &presubmit("kubernetes", "kubernetes"),
            "1",
            &cfg("explicit"),
        );
        assert_eq!(p.job_dir, "pr-logs/pull/kubernetes_kubernetes/9/unit/1");
        assert_eq!(p.alias.as_deref(), Some("pr-logs/directory/unit/1.txt"));
        let p = paths_for_job(&presubmit("https://host", "a/b"), "1", &cfg("explicit"));
        assert_eq!(p.job_dir, "pr-logs/pull/host_a_b/9/unit/1");
    }

    #[test]
    fn periodic_paths() {
        let spec = ProwJobSpec {
            r#type: ProwJobType::Periodic,
            job: "nightly".into(),
            ..Default::default()
        };
        let mut c = cfg("explicit");
        c.path_prefix = "pfx".into();
        let p = paths_for_job(&spec, "77", &c);
        assert_eq!(p.job_dir, "pfx/logs/nightly/77");
        assert_eq!(
            p.latest_build_files,
            vec!["pfx/logs/nightly/latest-build.txt".to_owned()]
        );
    }
}
