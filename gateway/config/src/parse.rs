//! YAML documents to typed values, remembering every key the types did not know (for strict
//! loading) and reporting errors with line, column and field path.

use std::fmt::Write as _;

use serde::de::DeserializeOwned;

use crate::error::Location;

/// One step of a path inside a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// `a.b[0]["x.y"]`.
pub(crate) fn fmt_path(segs: &[Seg]) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
            Seg::Key(k) => {
                let plain = !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if plain {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                } else {
                    let _ = write!(out, "[{k:?}]");
                }
            }
        }
    }
    out
}

/// A typed document and the paths of the keys it ignored.
pub(crate) struct Parsed<T> {
    pub(crate) value: T,
    pub(crate) ignored: Vec<Vec<Seg>>,
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub(crate) message: String,
    pub(crate) location: Option<Location>,
    pub(crate) path: Vec<Seg>,
}

fn ignored_segments(path: &serde_ignored::Path<'_>, out: &mut Vec<Seg>) {
    match path {
        serde_ignored::Path::Root => {}
        serde_ignored::Path::Seq { parent, index } => {
            ignored_segments(parent, out);
            out.push(Seg::Index(*index));
        }
        serde_ignored::Path::Map { parent, key } => {
            ignored_segments(parent, out);
            out.push(Seg::Key(key.clone()));
        }
        serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => ignored_segments(parent, out),
    }
}

fn track_segments(path: &serde_path_to_error::Path) -> Vec<Seg> {
    path.iter()
        .filter_map(|s| match s {
            serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
            serde_path_to_error::Segment::Unknown => None,
        })
        .collect()
}

fn is_blank_document(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

/// serde_yaml's own rendering of a path (`a.b[0].c`), which it puts before its messages.
fn yaml_path(segs: &[Seg]) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                if out.is_empty() {
                    out.push('.');
                }
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

fn strip_yaml_location(message: String) -> String {
    // serde_yaml appends " at line N column M"; the location is reported separately.
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_owned(),
        _ => message,
    }
}

fn deserialize_with<'de, D, T>(de: D) -> Result<Parsed<T>, ParseError>
where
    D: serde::Deserializer<'de, Error = serde_yaml::Error>,
    T: DeserializeOwned,
{
    let mut ignored = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let result = {
        let mut on_ignored = |path: serde_ignored::Path<'_>| {
            let mut segs = Vec::new();
            ignored_segments(&path, &mut segs);
            ignored.push(segs);
        };
        let tracked = serde_path_to_error::Deserializer::new(de, &mut track);
        let de = serde_ignored::Deserializer::new(tracked, &mut on_ignored);
        T::deserialize(de)
    };
    match result {
        Ok(value) => Ok(Parsed { value, ignored }),
        Err(e) => {
            let path = track_segments(&track.path());
            let mut message = strip_yaml_location(e.to_string());
            let prefix = format!("{}: ", yaml_path(&path));
            if let Some(rest) = message.strip_prefix(&prefix) {
                message = rest.to_owned();
            }
            Err(ParseError {
                location: e.location().map(|l| Location {
                    line: l.line(),
                    column: l.column(),
                }),
                message,
                path,
            })
        }
    }
}

/// Reads one YAML document into `T`. YAML merge keys (`<<`) are honoured as go-yaml does.
pub(crate) fn parse_yaml<T: DeserializeOwned + Default>(
    text: &str,
) -> Result<Parsed<T>, ParseError> {
    if is_blank_document(text) {
        return Ok(Parsed {
            value: T::default(),
            ignored: Vec::new(),
        });
    }
    if text.contains("<<") {
        // Only the untyped tree knows how to apply merge keys; locations are lost for type
        // errors on this path, the field path remains.
        let mut value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| ParseError {
            location: e.location().map(|l| Location {
                line: l.line(),
                column: l.column(),
            }),
            message: strip_yaml_location(e.to_string()),
            path: Vec::new(),
        })?;
        value.apply_merge().map_err(|e| ParseError {
            location: None,
            message: e.to_string(),
            path: Vec::new(),
        })?;
        return deserialize_with(value);
    }
    deserialize_with(serde_yaml::Deserializer::from_str(text))
}

/// The job name at `path` (`presubmits.<repo>[i]`, `postsubmits.<repo>[i]`, `periodics[i]`)
/// in a document that failed to deserialize, found by reading it untyped.
pub(crate) fn job_name_at(text: &str, path: &[Seg]) -> Option<(String, usize)> {
    let value: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    let (job, consumed) = match path {
        [Seg::Key(kind), Seg::Key(repo), Seg::Index(i), ..]
            if kind == "presubmits" || kind == "postsubmits" =>
        {
            (value.get(kind)?.get(repo)?.get(*i)?, 3)
        }
        [Seg::Key(kind), Seg::Index(i), ..] if kind == "periodics" => {
            (value.get(kind)?.get(*i)?, 2)
        }
        _ => return None,
    };
    Some((job.get("name")?.as_str()?.to_owned(), consumed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobConfigDoc;

    #[test]
    fn records_unknown_fields_with_paths() {
        let text = "presubmits:\n  org/repo:\n  - name: a\n    spec:\n      containers:\n      - image: x\n        imagee: y\n    bogus: 1\n";
        let parsed = parse_yaml::<JobConfigDoc>(text).expect("parses");
        let paths: Vec<String> = parsed.ignored.iter().map(|p| fmt_path(p)).collect();
        assert_eq!(
            paths,
            vec![
                "presubmits[\"org/repo\"][0].spec.containers[0].imagee".to_owned(),
                "presubmits[\"org/repo\"][0].bogus".to_owned()
            ]
        );
    }

    #[test]
    fn type_errors_carry_location_and_path() {
        let text = "periodics:\n- name: p\n  max_concurrency: lots\n";
        let err = parse_yaml::<JobConfigDoc>(text).err().expect("fails");
        assert_eq!(fmt_path(&err.path), "periodics[0].max_concurrency");
        assert_eq!(err.location.map(|l| l.line), Some(3));
        assert_eq!(job_name_at(text, &err.path), Some(("p".to_owned(), 2)));
    }

    #[test]
    fn merge_keys_and_blank_documents() {
        let text = "base: &b\n  cron: '@daily'\nperiodics:\n- <<: *b\n  name: p\n";
        let parsed = parse_yaml::<JobConfigDoc>(text).expect("parses");
        assert_eq!(parsed.value.periodics[0].cron, "@daily");
        assert!(parse_yaml::<JobConfigDoc>("# nothing\n").is_ok());
    }
}
