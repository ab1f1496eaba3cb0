//! Small helpers shared by the pod utilities and the local agent.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Writes `data` to `path` atomically: a temp file next to it, then a rename.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let tmp_name = format!(".{file_name}.tmp-{}", std::process::id());
    let tmp = match dir {
        Some(d) => d.join(tmp_name),
        None => Path::new(&tmp_name).to_path_buf(),
    };
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Serialises durations as Go `time.Duration` JSON: integer nanoseconds.
pub(crate) mod go_nanos {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let n = i64::deserialize(d)?;
        if n < 0 {
            return Err(serde::de::Error::custom(
                "negative durations are not allowed",
            ));
        }
        Ok(Duration::from_nanos(n.unsigned_abs()))
    }
}

/// Go-style rendering (`2h0m0s`, `15s`, `1.5s`).
pub(crate) fn fmt_duration(d: Duration) -> String {
    bosun_proto::duration::format_go_duration(d)
}

/// A JSON log line in the shape Prow's utilities write (`{"component":…,"level":…,"msg":…}`).
pub(crate) fn log_line(component: &str, level: &str, msg: &str) -> String {
    let line = serde_json::json!({
        "component": component,
        "level": level,
        "msg": msg,
        "severity": level,
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    format!("{line}\n")
}

/// Seconds since the epoch.
pub(crate) fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Reads a marker file: the decimal exit code written by the entrypoint.
pub(crate) fn read_marker(path: &Path) -> std::io::Result<Option<i32>> {
    match std::fs::read_to_string(path) {
        Ok(s) => s.trim().parse::<i32>().map(Some).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("marker {} holds {:?}: {e}", path.display(), s.trim()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
