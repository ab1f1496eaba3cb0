//! Schema helpers, and checking a ProwJob document against the CRD schema bosun generates
//! from its own types (the same structural schema Kubernetes enforces for prow.k8s.io/v1).

use std::sync::OnceLock;

use kube::CustomResourceExt;
use serde_json::{Map, Value};

use crate::prowjob::ProwJob;

/// Schema for a free-form object (`x-kubernetes-preserve-unknown-fields`), used by the
/// Tekton fields.
pub fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// The openAPIV3Schema of the ProwJob CRD generated from the Rust types.
pub fn prowjob_openapi_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let crd = ProwJob::crd();
        let schema = crd
            .spec
            .versions
            .first()
            .and_then(|v| v.schema.as_ref())
            .and_then(|s| s.open_api_v3_schema.as_ref());
        let mut schema = serde_json::to_value(schema).unwrap_or(Value::Null);
        // Like Prow's CRD: the envelope fields are plain; metadata is checked by its type.
        if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            props.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
            props.insert("kind".into(), serde_json::json!({"type": "string"}));
            props.insert("metadata".into(), serde_json::json!({"type": "object"}));
        }
        schema
    })
}

/// One place where a document breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// JSON path such as `spec.pod_spec.containers[0].image`.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl std::fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Checks a document against a structural schema: types, required fields, enums, minimums
/// and unknown fields. Returns every violation found.
pub fn check_against_schema(doc: &Value, schema: &Value) -> Vec<SchemaViolation> {
    let mut out = Vec::new();
    walk(doc, schema, "", &mut out);
    out
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn walk(doc: &Value, schema: &Value, path: &str, out: &mut Vec<SchemaViolation>) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    let here = if path.is_empty() { "(document)" } else { path };
    if let Some(any_of) = schema.get("anyOf").and_then(Value::as_array)
        && !schema.contains_key("type")
        && !schema.contains_key("x-kubernetes-int-or-string")
        && !any_of.is_empty()
    {
        let mut best: Option<Vec<SchemaViolation>> = None;
        for alt in any_of {
            let mut errs = Vec::new();
            walk(doc, alt, path, &mut errs);
            if errs.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                best = Some(errs);
            }
        }
        out.extend(best.unwrap_or_default());
        return;
    }
    if doc.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
            return;
        }
        // Kubernetes treats an explicit null like an absent field for optional fields.
        return;
    }
    if schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true)
    {
        if !matches!(doc, Value::String(_)) && type_name(doc) != "integer" {
            out.push(SchemaViolation {
                path: here.to_owned(),
                message: format!("expected an integer or a string, found {}", type_name(doc)),
            });
        }
        return;
    }
    if let Some(want) = schema.get("type").and_then(Value::as_str) {
        let got = type_name(doc);
        let ok = want == got || (want == "number" && got == "integer");
        if !ok {
            out.push(SchemaViolation {
                path: here.to_owned(),
                message: format!("expected {want}, found {got}"),
            });
            return;
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(doc)
    {
        let allowed: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        out.push(SchemaViolation {
            path: here.to_owned(),
            message: format!(
                "unsupported value {doc}: expected one of {}",
                allowed.join(", ")
            ),
        });
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), doc.as_f64())
        && n < min
    {
        out.push(SchemaViolation {
            path: here.to_owned(),
            message: format!("must be at least {min}, found {n}"),
        });
    }
    match doc {
        Value::Object(map) => walk_object(map, schema, path, out),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

fn walk_object(
    map: &Map<String, Value>,
    schema: &Map<String, Value>,
    path: &str,
    out: &mut Vec<SchemaViolation>,
) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for field in required.iter().filter_map(Value::as_str) {
            if map.get(field).is_none_or(Value::is_null) {
                out.push(SchemaViolation {
                    path: child(path, field),
                    message: "required field is missing".to_owned(),
                });
            }
        }
    }
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    for (key, value) in map {
        let key_path = child(path, key);
        if let Some(prop) = properties.and_then(|p| p.get(key)) {
            walk(value, prop, &key_path, out);
        } else if let Some(add) = additional.filter(|a| a.is_object()) {
            walk(value, add, &key_path, out);
        } else if properties.is_some() && !preserve {
            out.push(SchemaViolation {
                path: key_path,
                message: "unknown field".to_owned(),
            });
        }
    }
}
