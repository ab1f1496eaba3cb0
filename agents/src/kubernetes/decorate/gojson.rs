//! Go `encoding/json` output, byte for byte.
//!
//! The option blobs Prow puts into env vars (`JOB_SPEC`, `*_OPTIONS`) are opaque strings to
//! Kubernetes and to Prow's tests, so they must match what `json.Marshal` writes:
//! - keys in Go struct-field order with Go's `omitempty` rules. The option structs in
//!   [`super::options`] and bosun's ProwJob types declare their fields in that order, so
//!   serde's derive gets it right. k8s-openapi types serialise their fields alphabetically,
//!   which Go does not, so `decoration_config` (which holds `ResourceRequirements`, `Affinity`
//!   and `Toleration`s) is re-ordered through a [`Shape`] table;
//! - Go's HTML-safe escaping of `<`, `>`, `&`, U+2028 and U+2029 (see [`encode`]).

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

/// `json.Marshal(v)`: compact JSON with Go's HTML-safe string escaping.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string(value).map(escape_html)
}

/// Go escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings; serde_json does not. None of
/// them can appear outside a string literal in JSON, so replacing them everywhere is safe.
fn escape_html(json: String) -> String {
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// How Go lays out one JSON value: a struct (keys in field order), a list or map of shaped
/// values, or a leaf written as-is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    /// Written as serde_json writes it (strings, numbers, string maps, …).
    Leaf,
    /// A Go struct: fields in declaration order.
    Struct(&'static [Field]),
    /// A Go slice.
    List(&'static Shape),
    /// A Go map with shaped values (keys sorted, as Go sorts them).
    Map(&'static Shape),
}

/// One Go struct field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    name: &'static str,
    shape: Shape,
    /// Go `omitempty` on a non-pointer field: also skip `""`, `0`, `false`, `[]` and `{}`.
    /// Absent and null values are always skipped (pointer fields, `Option`s).
    omit_zero: bool,
}

const fn f(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        omit_zero: false,
    }
}

const fn z(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        omit_zero: true,
    }
}

use Shape::{Leaf, List, Map, Struct};

// k8s.io/api/core/v1 and apimachinery meta/v1, in Go field order.
const RESOURCE_CLAIM: Shape = Struct(&[f("name", Leaf), z("request", Leaf)]);
const RESOURCE_REQUIREMENTS: Shape = Struct(&[
    z("limits", Leaf),
    z("requests", Leaf),
    z("claims", List(&RESOURCE_CLAIM)),
]);
const NODE_SELECTOR_REQUIREMENT: Shape =
    Struct(&[f("key", Leaf), f("operator", Leaf), z("values", Leaf)]);
const NODE_SELECTOR_TERM: Shape = Struct(&[
    z("matchExpressions", List(&NODE_SELECTOR_REQUIREMENT)),
    z("matchFields", List(&NODE_SELECTOR_REQUIREMENT)),
]);
const NODE_SELECTOR: Shape = Struct(&[f("nodeSelectorTerms", List(&NODE_SELECTOR_TERM))]);
const PREFERRED_SCHEDULING_TERM: Shape =
    Struct(&[f("weight", Leaf), f("preference", NODE_SELECTOR_TERM)]);
const NODE_AFFINITY: Shape = Struct(&[
    f(
        "requiredDuringSchedulingIgnoredDuringExecution",
        NODE_SELECTOR,
    ),
    z(
        "preferredDuringSchedulingIgnoredDuringExecution",
        List(&PREFERRED_SCHEDULING_TERM),
    ),
]);
const LABEL_SELECTOR_REQUIREMENT: Shape =
    Struct(&[f("key", Leaf), f("operator", Leaf), z("values", Leaf)]);
const LABEL_SELECTOR: Shape = Struct(&[
    z("matchLabels", Leaf),
    z("matchExpressions", List(&LABEL_SELECTOR_REQUIREMENT)),
]);
const POD_AFFINITY_TERM: Shape = Struct(&[
    f("labelSelector", LABEL_SELECTOR),
    z("namespaces", Leaf),
    f("topologyKey", Leaf),
    f("namespaceSelector", LABEL_SELECTOR),
    z("matchLabelKeys", Leaf),
    z("mismatchLabelKeys", Leaf),
]);
const WEIGHTED_POD_AFFINITY_TERM: Shape =
    Struct(&[f("weight", Leaf), f("podAffinityTerm", POD_AFFINITY_TERM)]);
const POD_AFFINITY: Shape = Struct(&[
    z(
        "requiredDuringSchedulingIgnoredDuringExecution",
        List(&POD_AFFINITY_TERM),
    ),
    z(
        "preferredDuringSchedulingIgnoredDuringExecution",
        List(&WEIGHTED_POD_AFFINITY_TERM),
    ),
]);
const AFFINITY: Shape = Struct(&[
    f("nodeAffinity", NODE_AFFINITY),
    f("podAffinity", POD_AFFINITY),
    f("podAntiAffinity", POD_AFFINITY),
]);
const TOLERATION: Shape = Struct(&[
    z("key", Leaf),
    z("operator", Leaf),
    z("value", Leaf),
    z("effect", Leaf),
    f("tolerationSeconds", Leaf),
]);

// prow.k8s.io/v1 (pkg/apis/prowjobs/v1/types.go), in Go field order. bosun's serde derive
// already applies Go's omitempty rules to these, so a present value is always written.
const UTILITY_IMAGES: Shape = Struct(&[
    f("clonerefs", Leaf),
    f("initupload", Leaf),
    f("entrypoint", Leaf),
    f("sidecar", Leaf),
]);
const RESOURCES: Shape = Struct(&[
    f("clonerefs", RESOURCE_REQUIREMENTS),
    f("initupload", RESOURCE_REQUIREMENTS),
    f("place_entrypoint", RESOURCE_REQUIREMENTS),
    f("sidecar", RESOURCE_REQUIREMENTS),
]);
const GCS_CONFIGURATION: Shape = Struct(&[
    f("bucket", Leaf),
    f("path_prefix", Leaf),
    f("path_strategy", Leaf),
    f("default_org", Leaf),
    f("default_repo", Leaf),
    f("mediaTypes", Map(&Leaf)),
    f("job_url_prefix", Leaf),
    f("local_output_dir", Leaf),
    f("compress_file_types", Leaf),
]);
const SECRET_NAME_KEY: Shape = Struct(&[f("name", Leaf), f("key", Leaf)]);
const CENSORING_OPTIONS: Shape = Struct(&[
    f("censoring_concurrency", Leaf),
    f("censoring_buffer_size", Leaf),
    f("include_directories", Leaf),
    f("exclude_directories", Leaf),
    f("minimum_secret_length", Leaf),
]);
const SCHEDULING_OPTIONS: Shape =
    Struct(&[f("affinity", AFFINITY), f("tolerations", List(&TOLERATION))]);

/// `prowapi.DecorationConfig`.
pub(crate) const DECORATION_CONFIG: Shape = Struct(&[
    f("timeout", Leaf),
    f("grace_period", Leaf),
    f("utility_images", UTILITY_IMAGES),
    f("resources", RESOURCES),
    f("gcs_configuration", GCS_CONFIGURATION),
    f("gcs_credentials_secret", Leaf),
    f("s3_credentials_secret", Leaf),
    f("default_service_account_name", Leaf),
    f("ssh_key_secrets", Leaf),
    f("ssh_host_fingerprints", Leaf),
    f("blobless_fetch", Leaf),
    f("sparse_checkout_files", Leaf),
    f("skip_cloning", Leaf),
    f("cookiefile_secret", Leaf),
    f("oauth_token_secret", SECRET_NAME_KEY),
    f("github_api_endpoints", Leaf),
    // A Go string with omitempty; bosun holds it as an Option.
    z("github_app_id", Leaf),
    f("github_app_private_key_secret", SECRET_NAME_KEY),
    f("censor_secrets", Leaf),
    f("censoring_options", CENSORING_OPTIONS),
    f("upload_ignores_interrupts", Leaf),
    f("set_limit_equals_memory_request", Leaf),
    f("default_memory_request", Leaf),
    f("scheduling_options", SCHEDULING_OPTIONS),
    f("pod_pending_timeout", Leaf),
    f("pod_running_timeout", Leaf),
    f("pod_unscheduled_timeout", Leaf),
    f("run_as_user", Leaf),
    f("run_as_group", Leaf),
    f("fs_group", Leaf),
]);

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// A JSON value written in Go's layout for its [`Shape`]. Keys the shape does not know (a
/// field newer than this table) are written after the known ones, sorted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shaped<'a>(pub &'a Value, pub &'static Shape);

impl Serialize for Shaped<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match (self.1, self.0) {
            (Struct(fields), Value::Object(map)) => {
                let mut out = serializer.serialize_map(None)?;
                for field in *fields {
                    let Some(value) = map.get(field.name) else {
                        continue;
                    };
                    if value.is_null() || (field.omit_zero && is_zero(value)) {
                        continue;
                    }
                    out.serialize_entry(field.name, &Shaped(value, &field.shape))?;
                }
                for (key, value) in map {
                    if !value.is_null() && !fields.iter().any(|f| f.name == key) {
                        out.serialize_entry(key, value)?;
                    }
                }
                out.end()
            }
            (List(inner), Value::Array(items)) => {
                serializer.collect_seq(items.iter().map(|v| Shaped(v, inner)))
            }
            (Map(inner), Value::Object(map)) => {
                serializer.collect_map(map.iter().map(|(k, v)| (k, Shaped(v, inner))))
            }
            (_, value) => value.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bosun_proto::prowjob::{
        CensoringOptions, DecorationConfig, GcsConfiguration, OauthTokenSecret, UtilityImages,
    };

    #[test]
    fn html_characters_are_escaped_like_go() {
        let json = encode(&serde_json::json!({"a": "<b>&\u{2028}"})).expect("encodes");
        assert_eq!(json, r#"{"a":"\u003cb\u003e\u0026\u2028"}"#);
    }

    #[test]
    fn shape_table_matches_the_derive_order() {
        // Without k8s types in it, serde's derive writes DecorationConfig in Go order; the
        // shape table must agree with it field for field.
        let dc = DecorationConfig {
            timeout: Some(std::time::Duration::from_secs(7200).into()),
            grace_period: Some(std::time::Duration::from_secs(15).into()),
            utility_images: Some(UtilityImages {
                clonerefs: "c".into(),
                initupload: "i".into(),
                entrypoint: "e".into(),
                sidecar: "s".into(),
            }),
            gcs_configuration: Some(GcsConfiguration {
                bucket: "b".into(),
                path_prefix: "p".into(),
                path_strategy: "explicit".into(),
                default_org: "o".into(),
                default_repo: "r".into(),
                media_types: [("log".to_owned(), "text/plain".to_owned())].into(),
                job_url_prefix: "u".into(),
                local_output_dir: "l".into(),
                compress_file_types: vec!["txt".into()],
            }),
            gcs_credentials_secret: Some("g".into()),
            s3_credentials_secret: Some("s3".into()),
            default_service_account_name: Some("sa".into()),
            ssh_key_secrets: vec!["k".into()],
            ssh_host_fingerprints: vec!["fp".into()],
            blobless_fetch: Some(true),
            sparse_checkout_files: vec!["x".into()],
            skip_cloning: Some(false),
            cookiefile_secret: Some("cookie".into()),
            oauth_token_secret: Some(OauthTokenSecret {
                name: "n".into(),
                key: "k".into(),
            }),
            github_api_endpoints: vec!["https://api".into()],
            github_app_id: Some("7".into()),
            censor_secrets: Some(true),
            censoring_options: Some(CensoringOptions {
                censoring_concurrency: Some(1),
                censoring_buffer_size: Some(2),
                include_directories: vec!["i".into()],
                exclude_directories: vec!["e".into()],
                minimum_secret_length: Some(3),
            }),
            upload_ignores_interrupts: Some(true),
            set_limit_equals_memory_request: Some(true),
            pod_pending_timeout: Some(std::time::Duration::from_secs(60).into()),
            pod_running_timeout: Some(std::time::Duration::from_secs(60).into()),
            pod_unscheduled_timeout: Some(std::time::Duration::from_secs(60).into()),
            run_as_user: Some(1),
            run_as_group: Some(2),
            fs_group: Some(3),
            ..Default::default()
        };
        let derived = serde_json::to_string(&dc).expect("encodes");
        let value = serde_json::to_value(&dc).expect("encodes");
        let shaped = encode(&Shaped(&value, &DECORATION_CONFIG)).expect("encodes");
        assert_eq!(shaped, derived);
    }

    #[test]
    fn k8s_types_follow_go_field_order() {
        let value = serde_json::json!({
            "tolerations": [{"effect": "NoSchedule", "key": "k", "operator": "Exists", "value": ""}],
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"preference": {"matchExpressions": [
                    {"key": "a", "operator": "In", "values": ["b"]}]}, "weight": 10}]}},
        });
        let shaped = encode(&Shaped(&value, &SCHEDULING_OPTIONS)).expect("encodes");
        assert_eq!(
            shaped,
            r#"{"affinity":{"nodeAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":10,"preference":{"matchExpressions":[{"key":"a","operator":"In","values":["b"]}]}}]}},"tolerations":[{"key":"k","operator":"Exists","effect":"NoSchedule"}]}"#
        );
    }
}
