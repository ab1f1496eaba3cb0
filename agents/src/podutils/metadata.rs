//! `started.json` and `finished.json` (testgrid metadata, reference agents §2.7).

use std::collections::BTreeMap;

use bosun_proto::{ProwJob, Refs};
use serde::{Deserialize, Serialize};

use super::clonerefs::Record;

/// `started.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Started {
    /// Epoch seconds.
    pub timestamp: i64,
    /// Node name (usually absent).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// First PR number.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pull: String,
    /// `org/repo` → `Refs.String()`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub repos: BTreeMap<String, String>,
    /// Final SHA of the main refs, else their revision.
    #[serde(
        rename = "repo-commit",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub repo_commit: String,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Deprecated twin of `repo-commit`.
    #[serde(
        rename = "repo-version",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub repo_version: String,
}

/// `finished.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    /// Epoch seconds.
    pub timestamp: i64,
    /// Always emitted.
    pub passed: bool,
    /// `SUCCESS`, `FAILURE` or `ABORTED`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub result: String,
    /// Merged `metadata.json` of the test containers.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// pulls[0].sha, else base_sha, else base_ref.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
}

/// The refs that identify the job's version: `refs`, else the first non-auxiliary extra ref.
pub fn main_refs<'a>(refs: Option<&'a Refs>, extra_refs: &'a [Refs]) -> Option<&'a Refs> {
    refs.or_else(|| extra_refs.iter().find(|r| !r.auxiliary))
}

/// `GetRevisionFromRefs`: pulls[0].sha, else base_sha, else base_ref.
pub fn revision_from_refs(refs: &Refs) -> String {
    if let Some(p) = refs.pulls.first() {
        return p.sha.clone();
    }
    if !refs.base_sha.is_empty() {
        return refs.base_sha.clone();
    }
    refs.base_ref.clone()
}

/// The final SHA of `main` in the clone records, if it was cloned.
pub fn main_ref_sha(records: &[Record], main: &Refs) -> Option<String> {
    records
        .iter()
        .find(|r| r.refs.org == main.org && r.refs.repo == main.repo && !r.final_sha.is_empty())
        .map(|r| r.final_sha.clone())
}

/// Builds `started.json` for a job (initupload's `specToStarted`).
pub fn started_for(
    refs: Option<&Refs>,
    extra_refs: &[Refs],
    records: &[Record],
    timestamp: i64,
) -> Started {
    let mut started = Started {
        timestamp,
        ..Default::default()
    };
    if let Some(main) = main_refs(refs, extra_refs) {
        let v = main_ref_sha(records, main).unwrap_or_else(|| revision_from_refs(main));
        started.repo_commit = v.clone();
        started.repo_version = v;
    }
    if let Some(p) = refs.and_then(|r| r.pulls.first()) {
        started.pull = p.number.to_string();
    }
    for r in refs.into_iter().chain(extra_refs.iter()) {
        started.repos.insert(r.org_repo(), r.to_refs_string());
    }
    started
}

/// [`started_for`] a ProwJob.
pub fn started_for_job(job: &ProwJob, records: &[Record], timestamp: i64) -> Started {
    started_for(
        job.spec.refs.as_ref(),
        &job.spec.extra_refs,
        records,
        timestamp,
    )
}

/// `finished.json`'s `passed` and `result` for a job's final state.
pub fn passed_and_result(state: bosun_proto::ProwJobState) -> (bool, &'static str) {
    match state {
        bosun_proto::ProwJobState::Success => (true, "SUCCESS"),
        bosun_proto::ProwJobState::Aborted => (false, "ABORTED"),
        _ => (false, "FAILURE"),
    }
}

/// Builds `finished.json`.
pub fn finished_for(
    refs: Option<&Refs>,
    extra_refs: &[Refs],
    passed: bool,
    result: &str,
    metadata: serde_json::Map<String, serde_json::Value>,
    timestamp: i64,
) -> Finished {
    Finished {
        timestamp,
        passed,
        result: result.to_owned(),
        metadata,
        revision: main_refs(refs, extra_refs)
            .map(revision_from_refs)
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_proto::Pull;

    #[test]
    fn started_uses_clone_sha_and_repos() {
        let refs = Refs {
            org: "o".into(),
            repo: "r".into(),
            base_ref: "main".into(),
            base_sha: "abc".into(),
            pulls: vec![Pull {
                number: 7,
                sha: "def".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let s = started_for(Some(&refs), &[], &[], 10);
        let v = serde_json::to_value(&s).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"timestamp":10,"pull":"7","repos":{"o/r":"main:abc,7:def"},"repo-commit":"def","repo-version":"def"})
        );
        let rec = Record {
            refs: refs.clone(),
            final_sha: "fff".into(),
            ..Default::default()
        };
        let s = started_for(Some(&refs), &[], &[Record::default(), rec], 10);
        assert_eq!(s.repo_commit, "fff");
    }

    #[test]
    fn finished_always_has_passed() {
        let f = finished_for(None, &[], false, "FAILURE", Default::default(), 5);
        let v = serde_json::to_value(&f).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"timestamp":5,"passed":false,"result":"FAILURE"})
        );
    }
}
