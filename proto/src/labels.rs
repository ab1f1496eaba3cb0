//! Prow's well-known labels and annotations, and how a ProwJob gets them (reference §1.13).

use std::collections::BTreeMap;

use crate::prowjob::ProwJobSpec;

/// `created-by-prow: "true"` on every ProwJob and workload.
pub const CREATED_BY_PROW: &str = "created-by-prow";
/// Job type label.
pub const TYPE: &str = "prow.k8s.io/type";
/// Job name label (truncated) and annotation (full).
pub const JOB: &str = "prow.k8s.io/job";
/// Context label (truncated) and annotation (full).
pub const CONTEXT: &str = "prow.k8s.io/context";
/// ProwJob name, on workloads.
pub const ID: &str = "prow.k8s.io/id";
/// Build id, on workloads.
pub const BUILD_ID: &str = "prow.k8s.io/build-id";
/// Refs org.
pub const REFS_ORG: &str = "prow.k8s.io/refs.org";
/// Refs repo.
pub const REFS_REPO: &str = "prow.k8s.io/refs.repo";
/// Refs base branch.
pub const REFS_BASE_REF: &str = "prow.k8s.io/refs.base_ref";
/// First pull number.
pub const REFS_PULL: &str = "prow.k8s.io/refs.pull";
/// Set by the trigger plugin on /retest.
pub const RETEST: &str = "prow.k8s.io/retest";
/// Presubmits created by the trigger plugin.
pub const IS_OPTIONAL: &str = "prow.k8s.io/is-optional";
/// Periodic retry counter.
pub const RE_RUN: &str = "prow.k8s.io/re-run";
/// Tide's jobs.
pub const CREATED_BY_TIDE: &str = "created-by-tide";
/// GitHub webhook delivery id.
pub const EVENT_GUID: &str = "event-GUID";
/// Gerrit revision (label).
pub const GERRIT_REVISION: &str = "prow.k8s.io/gerrit-revision";
/// Gerrit patchset (label).
pub const GERRIT_PATCHSET: &str = "prow.k8s.io/gerrit-patchset";
/// Gerrit vote label (label).
pub const GERRIT_REPORT_LABEL: &str = "prow.k8s.io/gerrit-report-label";
/// Gerrit change id (annotation).
pub const GERRIT_ID: &str = "prow.k8s.io/gerrit-id";
/// Gerrit instance (annotation).
pub const GERRIT_INSTANCE: &str = "prow.k8s.io/gerrit-instance";
/// Pub/Sub project.
pub const PUBSUB_PROJECT: &str = "prow.k8s.io/pubsub.project";
/// Pub/Sub topic.
pub const PUBSUB_TOPIC: &str = "prow.k8s.io/pubsub.topic";
/// Pub/Sub run id.
pub const PUBSUB_RUN_ID: &str = "prow.k8s.io/pubsub.runID";

/// Label keys a job may not set itself: decoration owns them.
pub const RESERVED: [&str; 3] = [TYPE, CREATED_BY_PROW, ID];

/// Kubernetes' label-value rule: ≤ 63 chars, alphanumeric at both ends, `-_.` inside.
pub fn is_valid_label_value(value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    if value.len() > 63 {
        return false;
    }
    let bytes = value.as_bytes();
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    alnum(bytes[0])
        && alnum(bytes[bytes.len() - 1])
        && bytes
            .iter()
            .all(|&b| alnum(b) || b == b'-' || b == b'_' || b == b'.')
}

/// Kubernetes' qualified-name rule for label and annotation keys: `[prefix/]name`.
pub fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let dns_ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !dns_ok {
            return false;
        }
    }
    !name.is_empty() && is_valid_label_value(name)
}

fn truncate_label(value: &str) -> String {
    let mut end = value.len().min(63);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].trim_end_matches(['.', '_', '-']).to_owned()
}

/// `LabelsAndAnnotationsForSpec`: Prow's automatic labels and annotations for a job, with
/// `extra_labels` / `extra_annotations` layered on top. Label values that are not valid
/// are replaced by their path basename when that is valid, else dropped.
pub fn labels_and_annotations_for_spec(
    spec: &ProwJobSpec,
    extra_labels: &BTreeMap<String, String>,
    extra_annotations: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut labels = BTreeMap::new();
    labels.insert(CREATED_BY_PROW.to_owned(), "true".to_owned());
    labels.insert(TYPE.to_owned(), spec.r#type.as_str().to_owned());
    labels.insert(JOB.to_owned(), truncate_label(&spec.job));
    labels.insert(CONTEXT.to_owned(), truncate_label(&spec.context));
    let mut annotations = BTreeMap::new();
    annotations.insert(JOB.to_owned(), spec.job.clone());
    annotations.insert(CONTEXT.to_owned(), spec.context.clone());

    if let Some(refs) = spec.main_refs() {
        labels.insert(REFS_ORG.to_owned(), refs.org.clone());
        labels.insert(REFS_REPO.to_owned(), refs.repo.clone());
        labels.insert(REFS_BASE_REF.to_owned(), refs.base_ref.clone());
        if let Some(pull) = refs.pulls.first() {
            labels.insert(REFS_PULL.to_owned(), pull.number.to_string());
        }
    }
    for (k, v) in extra_labels {
        labels.insert(k.clone(), v.clone());
    }
    for (k, v) in extra_annotations {
        annotations.insert(k.clone(), v.clone());
    }
    let labels = labels
        .into_iter()
        .filter_map(|(k, v)| {
            if is_valid_label_value(&v) {
                return Some((k, v));
            }
            let base = v.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            is_valid_label_value(base).then(|| (k, base.to_owned()))
        })
        .collect();
    (labels, annotations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prowjob::{ProwJobType, Pull, Refs};

    #[test]
    fn labels_follow_prow() {
        let spec = ProwJobSpec {
            r#type: ProwJobType::Presubmit,
            job: format!("{}-", "a".repeat(62)),
            context: "ctx".into(),
            refs: Some(Refs {
                org: "https://gerrit.example.com".into(),
                repo: "some/invalid/repo".into(),
                base_ref: "main".into(),
                pulls: vec![Pull {
                    number: 42,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut extra = BTreeMap::new();
        extra.insert("foo".to_owned(), "bar".to_owned());
        let (labels, annotations) =
            labels_and_annotations_for_spec(&spec, &extra, &BTreeMap::new());
        assert_eq!(labels[JOB], "a".repeat(62));
        assert_eq!(annotations[JOB], spec.job);
        assert_eq!(labels[REFS_ORG], "gerrit.example.com");
        assert_eq!(labels[REFS_REPO], "repo");
        assert_eq!(labels[REFS_PULL], "42");
        assert_eq!(labels["foo"], "bar");
        assert_eq!(labels[CREATED_BY_PROW], "true");
        assert_eq!(labels[TYPE], "presubmit");
    }

    #[test]
    fn qualified_names() {
        assert!(is_qualified_name("prow.k8s.io/job"));
        assert!(is_qualified_name("foo"));
        assert!(!is_qualified_name("Foo.Bar/x"));
        assert!(!is_qualified_name("bad key"));
        assert!(!is_qualified_name(""));
    }
}
