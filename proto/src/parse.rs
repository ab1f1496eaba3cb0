//! Reading ProwJobs from YAML or JSON with errors that name the offending field.

use serde_json::Value;

use crate::prowjob::ProwJob;
use crate::schema::{SchemaViolation, check_against_schema, prowjob_openapi_schema};

/// Why a ProwJob document was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProwJobParseError {
    /// Not YAML or JSON at all.
    #[error("{source_name}: not valid YAML/JSON: {message}")]
    Syntax {
        /// File name or "request".
        source_name: String,
        /// Parser message with line and column.
        message: String,
    },
    /// The document breaks the ProwJob schema.
    #[error("{source_name}: invalid ProwJob: {}", join(.violations))]
    Schema {
        /// File name or "request".
        source_name: String,
        /// Every violation found.
        violations: Vec<SchemaViolation>,
    },
    /// The document has the wrong apiVersion or kind.
    #[error("{source_name}: {field}: expected {expected:?}, found {found:?}")]
    Kind {
        /// File name or "request".
        source_name: String,
        /// `apiVersion` or `kind`.
        field: &'static str,
        /// What bosun accepts.
        expected: &'static str,
        /// What the document said.
        found: String,
    },
}

fn join(v: &[SchemaViolation]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ProwJobParseError {
    /// The JSON path of the first offending field, if the error is about one.
    pub fn field_path(&self) -> Option<&str> {
        match self {
            ProwJobParseError::Schema { violations, .. } => {
                violations.first().map(|v| v.path.as_str())
            }
            ProwJobParseError::Kind { field, .. } => Some(field),
            ProwJobParseError::Syntax { .. } => None,
        }
    }
}

/// Parses a ProwJob from YAML or JSON text (JSON is YAML). `source_name` is used in errors.
pub fn parse_prowjob(text: &str, source_name: &str) -> Result<ProwJob, ProwJobParseError> {
    // JSON (what API clients send) takes the fast parser; anything else, including YAML flow
    // mappings that merely start like JSON, goes through the YAML parser, whose error names
    // the line and column.
    let json = text
        .trim_start()
        .starts_with('{')
        .then(|| serde_json::from_str::<Value>(text).ok())
        .flatten();
    let value = match json {
        Some(value) => value,
        None => serde_yaml::from_str(text).map_err(|e| ProwJobParseError::Syntax {
            source_name: source_name.to_owned(),
            message: e.to_string(),
        })?,
    };
    prowjob_from_value(value, source_name)
}

/// Validates a JSON value against the ProwJob schema and converts it.
pub fn prowjob_from_value(
    mut value: Value,
    source_name: &str,
) -> Result<ProwJob, ProwJobParseError> {
    let Some(obj) = value.as_object_mut() else {
        return Err(ProwJobParseError::Schema {
            source_name: source_name.to_owned(),
            violations: vec![SchemaViolation {
                path: "(document)".into(),
                message: "expected a ProwJob object".into(),
            }],
        });
    };
    for (field, expected) in [("apiVersion", "prow.k8s.io/v1"), ("kind", "ProwJob")] {
        match obj.get(field) {
            None => {
                obj.insert(field.to_owned(), Value::String(expected.to_owned()));
            }
            Some(Value::String(s)) if s == expected => {}
            Some(other) => {
                return Err(ProwJobParseError::Kind {
                    source_name: source_name.to_owned(),
                    field,
                    expected,
                    found: other
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| other.to_string()),
                });
            }
        }
    }
    obj.entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    let mut violations = check_against_schema(&value, prowjob_openapi_schema());
    if violations.is_empty() {
        let job_empty = value
            .pointer("/spec/job")
            .and_then(Value::as_str)
            .is_some_and(str::is_empty);
        if job_empty {
            violations.push(SchemaViolation {
                path: "spec.job".into(),
                message: "must not be empty".into(),
            });
        }
        // The CRD's status rule: a finished state needs a completion time.
        let state = value.pointer("/status/state").and_then(Value::as_str);
        let completed = value
            .pointer("/status/completionTime")
            .is_some_and(|v| !v.is_null());
        if matches!(state, Some("success" | "failure" | "error")) && !completed {
            violations.push(SchemaViolation {
                path: "status.completionTime".into(),
                message: format!(
                    "required when status.state is {}",
                    state.unwrap_or_default()
                ),
            });
        }
    }
    if !violations.is_empty() {
        return Err(ProwJobParseError::Schema {
            source_name: source_name.to_owned(),
            violations,
        });
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ProwJobParseError::Schema {
            source_name: source_name.to_owned(),
            violations: vec![SchemaViolation {
                path: if path == "." {
                    "(document)".into()
                } else {
                    path
                },
                message: e.into_inner().to_string(),
            }],
        }
    })
}

/// Serialises a ProwJob as Prow does (JSON).
pub fn to_json(job: &ProwJob) -> String {
    serde_json::to_string(job).unwrap_or_default()
}

/// Serialises a ProwJob as YAML.
pub fn to_yaml(job: &ProwJob) -> String {
    serde_yaml::to_string(job).unwrap_or_default()
}
