//! How a job maps onto table rows: indexed columns, stored JSON, page tokens.

use bosun_proto::ProwJob;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{RoundMode, Timestamp, TimestampRound, Unit};

use crate::{StoreError, StoredJob, WatchEventKind};

/// The columns of the `jobs` table that filters use.
pub(super) struct IndexColumns<'a> {
    pub job: &'a str,
    pub job_type: &'static str,
    pub state: &'static str,
    pub agent: &'a str,
    pub cluster: &'a str,
    pub org: Option<&'a str>,
    pub repo: Option<&'a str>,
    pub pull: Option<i64>,
    pub complete: bool,
}

impl<'a> IndexColumns<'a> {
    pub fn of(job: &'a ProwJob) -> Self {
        let refs = job.spec.refs.as_ref();
        IndexColumns {
            job: &job.spec.job,
            job_type: job.spec.r#type.as_str(),
            state: job.state().as_str(),
            agent: &job.spec.agent,
            cluster: job.spec.cluster_alias(),
            org: refs.map(|r| r.org.as_str()),
            repo: refs.map(|r| r.repo.as_str()),
            pull: refs.and_then(|r| r.pulls.first()).map(|p| p.number),
            complete: job.is_complete(),
        }
    }
}

/// The `events.kind` code of a watch event kind.
pub(super) fn kind_code(kind: WatchEventKind) -> i64 {
    match kind {
        WatchEventKind::Created => 1,
        WatchEventKind::Updated => 2,
        WatchEventKind::Deleted => 3,
    }
}

/// The watch event kind of an `events.kind` code.
pub(super) fn kind_from_code(code: i64) -> Option<WatchEventKind> {
    match code {
        1 => Some(WatchEventKind::Created),
        2 => Some(WatchEventKind::Updated),
        3 => Some(WatchEventKind::Deleted),
        _ => None,
    }
}

/// Parses a stored job body.
pub(super) fn decode(name: &str, revision: i64, body: &str) -> Result<StoredJob, StoreError> {
    let job: ProwJob = serde_json::from_str(body).map_err(StoreError::codec(name))?;
    Ok(StoredJob {
        job,
        revision: to_revision(revision),
    })
}

/// Revisions are stored as SQLite integers (i64) and are never negative.
pub(super) fn to_revision(stored: i64) -> u64 {
    u64::try_from(stored).unwrap_or(0)
}

/// Revisions handed to SQLite; a u64 revision beyond i64 would take 292 years at 1e9 writes/s.
pub(super) fn to_sql_revision(revision: u64) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

/// Kubernetes serialises `Time` with whole seconds; the store truncates every timestamp it
/// knows of the same way, so the job a write returns equals the job a later read returns.
pub(super) fn normalize_times(job: &mut ProwJob) {
    let meta = &mut job.metadata;
    for time in [&mut meta.creation_timestamp, &mut meta.deletion_timestamp] {
        truncate(time);
    }
    if let Some(fields) = meta.managed_fields.as_mut() {
        for field in fields {
            truncate(&mut field.time);
        }
    }
    if let Some(status) = job.status.as_mut() {
        for time in [
            &mut status.start_time,
            &mut status.pending_time,
            &mut status.completion_time,
        ] {
            truncate(time);
        }
    }
}

fn truncate(time: &mut Option<Time>) {
    if let Some(Time(ts)) = time
        && ts.subsec_nanosecond() != 0
        && let Ok(rounded) = ts.round(
            TimestampRound::new()
                .smallest(Unit::Second)
                .mode(RoundMode::Floor),
        )
    {
        *ts = rounded;
    }
}

/// Now, to the second.
pub(super) fn now() -> Time {
    let now = Timestamp::now();
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// A creation time stored as Unix seconds.
pub(super) fn time_from_seconds(seconds: i64) -> Option<Time> {
    Timestamp::from_second(seconds).ok().map(Time)
}

/// Page tokens: the creation sequence number of the last job on the page, as 16 hex digits.
pub(super) fn encode_page_token(seq: i64) -> String {
    format!("{seq:016x}")
}

/// The creation sequence number inside a page token.
pub(super) fn decode_page_token(token: &str) -> Result<i64, StoreError> {
    if token.len() == 16
        && token.bytes().all(|b| b.is_ascii_hexdigit())
        && let Ok(seq) = i64::from_str_radix(token, 16)
    {
        return Ok(seq);
    }
    Err(StoreError::Invalid(format!(
        "malformed page token {token:?}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip() {
        for seq in [0, 1, 255, 1 << 40, i64::MAX] {
            let token = encode_page_token(seq);
            assert_eq!(decode_page_token(&token).expect("valid token"), seq);
        }
        for bad in [
            "",
            "xyz",
            "0000000000000001a",
            "-000000000000001",
            "ffffffffffffffff",
        ] {
            assert!(decode_page_token(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn kind_codes_round_trip() {
        for kind in [
            WatchEventKind::Created,
            WatchEventKind::Updated,
            WatchEventKind::Deleted,
        ] {
            assert_eq!(kind_from_code(kind_code(kind)), Some(kind));
        }
        assert_eq!(kind_from_code(0), None);
    }

    #[test]
    fn timestamps_are_truncated_to_seconds() {
        let mut time = Some(Time(
            Timestamp::new(1_700_000_000, 999_999_999).expect("valid timestamp"),
        ));
        truncate(&mut time);
        assert_eq!(
            time,
            Some(Time(
                Timestamp::from_second(1_700_000_000).expect("valid timestamp")
            ))
        );
    }
}
