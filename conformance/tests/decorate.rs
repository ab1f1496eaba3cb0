//! Prow's pod-utility decoration against Prow's own golden files
//! (`../shared/conformance/prow-decorate/<case>/{input.yaml,expected.yaml}`, read in place).
//!
//! Every case is compared structurally, as the conformance README recommends: both sides are
//! parsed into JSON trees, only Go's zero-value noise is normalised away (null-valued keys such
//! as `metadata.creationTimestamp: null`, the Pod's `status: {}`, a container's
//! `resources: {}`, an env var's `value: ""`), and the trees must then be equal (maps
//! unordered, lists ordered). Env values holding JSON are strings in the tree, so they must
//! match byte for byte.
//!
//! `TestDecorate_*` and `TestSidecar_*` are byte-for-byte upstream; they are also checked that
//! way here: our output rendered the way `sigs.k8s.io/yaml.Marshal` renders a Go value must
//! equal the golden file's bytes.
//!
//! The inputs mirror Go in-memory objects and are not always CRD-valid (no container names,
//! no `status.state`, no `spec.type`/`spec.job` in the TestDecorate cases). They are read with
//! a lenient test-side loader ([`lenient_prowjob`]) that fills Go's zero values; bosun's
//! strict ProwJob parser is not used here.

use std::collections::BTreeMap;

use bosun_agents::kubernetes::decorate::options::{GcsUploadOptions, WrapperOptions};
use bosun_agents::kubernetes::decorate::{SidecarArgs, decorate, prowjob_to_pod_local, sidecar};
use bosun_conformance::{read_yaml, shared_conformance_dir};
use bosun_proto::ProwJob;
use bosun_proto::prowjob::DecorationConfig;
use k8s_openapi::api::core::v1::{PodSpec, VolumeMount};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Lenient loading of the Go-shaped inputs.

/// Fills `name: ""` into containers without one (Go's zero value; the CRD requires it).
fn fill_container_names(pod_spec: &mut Value) {
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = pod_spec.get_mut(list) {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                c.entry("name").or_insert_with(|| json!(""));
            }
        }
    }
}

/// Reads the case's `prowjob` the way Go holds it in memory: fields the Go test leaves unset
/// get zero-ish values so bosun's types accept them. `spec.type` has no zero value in bosun's
/// model: the TestDecorate cases leave it unset, and `decorate()` never reads it (their
/// JOB_SPEC comes from `raw_env`), so `periodic` stands in. `status.state` defaults to
/// `triggered`; neither function reads it.
fn lenient_prowjob(value: &Value) -> ProwJob {
    let mut value = value.clone();
    let root = value.as_object_mut().expect("prowjob is a mapping");
    root.entry("metadata").or_insert_with(|| json!({}));
    let spec = root
        .entry("spec")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("spec is a mapping");
    spec.entry("type").or_insert_with(|| json!("periodic"));
    spec.entry("job").or_insert_with(|| json!(""));
    if let Some(pod_spec) = spec.get_mut("pod_spec") {
        fill_container_names(pod_spec);
    }
    let status = root
        .entry("status")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("status is a mapping");
    status.entry("state").or_insert_with(|| json!("triggered"));
    serde_json::from_value(value).expect("prowjob deserialises leniently")
}

fn lenient_pod_spec(value: &Value) -> PodSpec {
    let mut value = value.clone();
    fill_container_names(&mut value);
    serde_json::from_value(value).expect("pod_spec deserialises")
}

/// Deserialises `call.<key>` (absent reads as null).
macro_rules! from_call {
    ($call:expr, $key:literal) => {
        serde_json::from_value($call.get($key).cloned().unwrap_or(Value::Null))
            .unwrap_or_else(|e| panic!("call.{}: {e}", $key))
    };
}

// ---------------------------------------------------------------------------------------------
// Normalisation of Go's zero-value noise, and structural comparison.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Root {
    Pod,
    PodSpec,
    Container,
}

fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

fn normalise_container(container: &mut Value) {
    let Some(c) = container.as_object_mut() else {
        return;
    };
    if c.get("resources") == Some(&json!({})) {
        c.remove("resources");
    }
    if let Some(Value::Array(env)) = c.get_mut("env") {
        for var in env.iter_mut().filter_map(Value::as_object_mut) {
            if var.get("value") == Some(&json!("")) {
                var.remove("value");
            }
        }
    }
}

fn normalise_pod_spec(spec: &mut Value) {
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            containers.iter_mut().for_each(normalise_container);
        }
    }
}

/// Removes only the zero-value noise the conformance README lists.
fn normalise(mut v: Value, root: Root) -> Value {
    drop_nulls(&mut v);
    match root {
        Root::Pod => {
            if let Some(map) = v.as_object_mut()
                && map.get("status") == Some(&json!({}))
            {
                map.remove("status");
            }
            if let Some(spec) = v.get_mut("spec") {
                normalise_pod_spec(spec);
            }
        }
        Root::PodSpec => normalise_pod_spec(&mut v),
        Root::Container => normalise_container(&mut v),
    }
    v
}

/// The first place two trees differ, as a path.
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(a), Some(b)) => first_difference(&format!("{path}.{k}"), a, b),
                (a, b) => Some(format!("{path}.{k}: {a:?} vs {b:?}")),
            })
        }
        (Value::Array(x), Value::Array(y)) => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (a, b))| first_difference(&format!("{path}[{i}]"), a, b))
            .or_else(|| {
                (x.len() != y.len()).then(|| format!("{path}: {} items vs {}", x.len(), y.len()))
            }),
        (a, b) if a == b => None,
        (a, b) => Some(format!("{path}: {a} vs {b}")),
    }
}

fn assert_same(case: &str, actual: &Value, expected: &Value) {
    if actual != expected {
        let diff = first_difference("", actual, expected).unwrap_or_default();
        panic!(
            "{case}: output differs from expected.yaml at {diff}\n--- ours:\n{}\n--- expected:\n{}",
            serde_yaml::to_string(actual).unwrap_or_default(),
            serde_yaml::to_string(expected).unwrap_or_default(),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering like sigs.k8s.io/yaml.Marshal (encoding/json, then go-yaml v2), for the strict
// byte-for-byte mode.

/// Go serialises non-pointer struct fields even when empty: a container's `resources: {}`.
fn add_go_zero_structs(container: &mut Value) {
    if let Some(c) = container.as_object_mut() {
        c.entry("resources").or_insert_with(|| json!({}));
    }
}

/// go-yaml v2's map-key order (`keyList.Less`): runs of digits compare as numbers and
/// non-letters sort before letters.
fn go_yaml_key_less(a: &str, b: &str) -> bool {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

fn is_go_int(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (digits, radix) = if let Some(r) = s.strip_prefix("0x").or(s.strip_prefix("0X")) {
        (r, 16)
    } else if let Some(r) = s.strip_prefix("0o").or(s.strip_prefix("0O")) {
        (r, 8)
    } else if let Some(r) = s.strip_prefix("0b").or(s.strip_prefix("0B")) {
        (r, 2)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    !digits.is_empty() && digits.chars().all(|c| c == '_' || c.is_digit(radix))
}

/// go-yaml's float pattern `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

fn is_timestamp_like(s: &str) -> bool {
    let date = s.split(['T', 't', ' ']).next().unwrap_or("");
    let parts: Vec<&str> = date.split('-').collect();
    parts.len() == 3
        && parts[0].len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_base60_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, _frac) = s.split_once('.').unwrap_or((s, ""));
    let mut groups = int.split(':');
    let head = groups.next().unwrap_or("");
    let rest: Vec<&str> = groups.collect();
    !rest.is_empty()
        && head.starts_with(|c: char| c.is_ascii_digit())
        && head.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        && rest
            .iter()
            .all(|g| (1..=2).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether go-yaml v2 would read the plain scalar as something other than a string; such
/// strings are written double-quoted.
fn resolves_to_non_string(s: &str) -> bool {
    const SPECIAL: [&str; 40] = [
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N",
        "no", "No", "NO", "off", "Off", "OFF", "true", "True", "TRUE", "false", "False", "FALSE",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF", "<<",
    ];
    if SPECIAL.contains(&s) {
        return true;
    }
    match s.as_bytes().first() {
        Some(b'0'..=b'9' | b'+' | b'-') => {
            let plain = s.replace('_', "");
            is_timestamp_like(s) || is_go_int(&plain) || is_yaml_float(&plain)
        }
        Some(b'.') => s.parse::<f64>().is_ok(),
        _ => false,
    }
}

/// libyaml's scalar analysis, reduced to what block context needs: (plain allowed, single
/// quotes allowed).
fn analyse_scalar(s: &str) -> (bool, bool) {
    if s.is_empty() {
        return (false, true);
    }
    let chars: Vec<char> = s.chars().collect();
    let printable = |c: char| {
        matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}')
            || (('\u{e000}'..='\u{fffd}').contains(&c) && c != '\u{feff}')
            || c >= '\u{10000}'
    };
    let blank = |c: Option<&char>| matches!(c, None | Some(' ' | '\t' | '\n' | '\r'));
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let mut special = false;
    let mut line_breaks = false;
    let mut preceded_by_whitespace = true;
    let (mut leading_space, mut trailing_space) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let (mut space_break, mut break_space) = (false, false);
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = blank(chars.get(i + 1));
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) || (c == '-' && followed_by_whitespace) {
                block_indicators = true;
            }
            if "?:".contains(c) && followed_by_whitespace {
                block_indicators = true;
            }
        } else if (c == ':' && followed_by_whitespace) || (c == '#' && preceded_by_whitespace) {
            block_indicators = true;
        }
        if !printable(c) {
            special = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= i + 1 == chars.len();
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if c == '\n' || c == '\r' {
            line_breaks = true;
            leading_space |= i == 0;
            trailing_space |= i + 1 == chars.len();
            space_break |= previous_space;
            previous_break = true;
            previous_space = false;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = blank(Some(&c));
    }
    let mut plain = !(leading_space || trailing_space || line_breaks || block_indicators);
    let mut single = true;
    if break_space {
        plain = false;
        single = false;
    }
    if space_break || special {
        plain = false;
        single = false;
    }
    (plain, single)
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes a scalar string as go-yaml v2 does (no line folding: none of these goldens has a
/// long scalar with spaces in it).
fn yaml_scalar(s: &str) -> String {
    if s.contains('\n') || resolves_to_non_string(s) || is_base60_float(s) {
        return double_quoted(s);
    }
    match analyse_scalar(s) {
        (true, _) => s.to_owned(),
        (false, true) => format!("'{}'", s.replace('\'', "''")),
        (false, false) => double_quoted(s),
    }
}

fn yaml_leaf(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("null".to_owned()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(yaml_scalar(s)),
        Value::Array(a) if a.is_empty() => Some("[]".to_owned()),
        Value::Object(o) if o.is_empty() => Some("{}".to_owned()),
        _ => None,
    }
}

fn sorted_entries(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|(a, _), (b, _)| {
        if go_yaml_key_less(a, b) {
            std::cmp::Ordering::Less
        } else if go_yaml_key_less(b, a) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    entries
}

/// Emits a non-empty mapping whose first line is already indented (`first_prefix` written).
fn emit_map(out: &mut String, map: &Map<String, Value>, indent: usize, mut first: bool) {
    for (key, value) in sorted_entries(map) {
        if !first {
            out.push_str(&" ".repeat(indent));
        }
        first = false;
        out.push_str(&yaml_scalar(key));
        out.push(':');
        match (yaml_leaf(value), value) {
            (Some(leaf), _) => {
                out.push(' ');
                out.push_str(&leaf);
                out.push('\n');
            }
            (None, Value::Object(inner)) => {
                out.push('\n');
                emit_map(out, inner, indent + 2, false);
            }
            (None, Value::Array(items)) => {
                out.push('\n');
                // go-yaml writes sequences inside mappings without extra indentation.
                emit_list(out, items, indent, false);
            }
            (None, _) => {}
        }
    }
}

fn emit_list(out: &mut String, items: &[Value], indent: usize, mut first: bool) {
    for item in items {
        if !first {
            out.push_str(&" ".repeat(indent));
        }
        first = false;
        out.push('-');
        match (yaml_leaf(item), item) {
            (Some(leaf), _) => {
                out.push(' ');
                out.push_str(&leaf);
                out.push('\n');
            }
            (None, Value::Object(inner)) => {
                out.push(' ');
                emit_map(out, inner, indent + 2, true);
            }
            (None, Value::Array(inner)) => {
                out.push(' ');
                emit_list(out, inner, indent + 2, true);
            }
            (None, _) => {}
        }
    }
}

/// `sigs.k8s.io/yaml.Marshal` of a JSON tree.
fn go_yaml(v: &Value) -> String {
    let mut out = String::new();
    match (yaml_leaf(v), v) {
        (Some(leaf), _) => {
            out.push_str(&leaf);
            out.push('\n');
        }
        (None, Value::Object(map)) => emit_map(&mut out, map, 0, true),
        (None, Value::Array(items)) => emit_list(&mut out, items, 0, true),
        (None, _) => {}
    }
    out
}

fn expected_text(case: &str) -> String {
    let path = shared_conformance_dir()
        .join("prow-decorate")
        .join(case)
        .join("expected.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn assert_bytes(case: &str, ours: &str) {
    let expected = expected_text(case);
    if ours != expected {
        let line = ours
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "(length)".to_owned(), |i| format!("line {}", i + 1));
        panic!("{case}: sigs.k8s.io/yaml rendering differs at {line}\n--- ours:\n{ours}");
    }
}

// ---------------------------------------------------------------------------------------------
// The three producing functions.

fn case_input(case: &str) -> (Value, Value) {
    let input = read_yaml(&format!("prow-decorate/{case}/input.yaml"));
    let expected = read_yaml(&format!("prow-decorate/{case}/expected.yaml"));
    (input, expected)
}

fn check_prowjob_to_pod(case: &str) {
    let (input, expected) = case_input(case);
    let call = &input["call"];
    assert_eq!(call["function"], "ProwJobToPod", "{case}");
    let job = lenient_prowjob(&input["prowjob"]);
    let output_dir = call["output_dir"].as_str().unwrap_or("");
    let pod = prowjob_to_pod_local(&job, output_dir).expect("ProwJobToPod");
    let mut ours = serde_json::to_value(&pod).expect("pod serialises");
    // k8s-openapi always writes a Pod's TypeMeta; Go's in-memory Pod (and so the golden
    // file) has none. Check it, then drop it.
    let map = ours.as_object_mut().expect("pod is a mapping");
    assert_eq!(map.remove("apiVersion"), Some(json!("v1")), "{case}");
    assert_eq!(map.remove("kind"), Some(json!("Pod")), "{case}");
    assert_same(
        case,
        &normalise(ours, Root::Pod),
        &normalise(expected, Root::Pod),
    );
}

fn check_decorate(case: &str) {
    let (input, expected) = case_input(case);
    let call = &input["call"];
    assert_eq!(call["function"], "decorate", "{case}");
    let job = lenient_prowjob(&input["prowjob"]);
    let mut spec = lenient_pod_spec(&call["pod_spec"]);
    let raw_env: BTreeMap<String, String> = from_call!(call, "raw_env");
    let output_dir = call["output_dir"].as_str().unwrap_or("");
    decorate(&mut spec, &job, &raw_env, output_dir).expect("decorate");
    let ours = serde_json::to_value(&spec).expect("pod spec serialises");
    assert_same(
        case,
        &normalise(ours.clone(), Root::PodSpec),
        &normalise(expected, Root::PodSpec),
    );

    let mut go_shaped = ours;
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = go_shaped.get_mut(list) {
            containers.iter_mut().for_each(add_go_zero_structs);
        }
    }
    assert_bytes(case, &go_yaml(&go_shaped));
}

fn check_sidecar(case: &str) {
    let (input, expected) = case_input(case);
    let call = &input["call"];
    assert_eq!(call["function"], "Sidecar", "{case}");
    let config: DecorationConfig = from_call!(call, "config");
    let gcs_options: GcsUploadOptions = from_call!(call, "gcs_options");
    let blob_storage_mounts: Vec<VolumeMount> = from_call!(call, "blob_storage_mounts");
    let log_mount: VolumeMount = from_call!(call, "log_mount");
    let output_mount: Option<VolumeMount> = from_call!(call, "output_mount");
    let secret_volume_mounts: Option<Vec<VolumeMount>> = from_call!(call, "secret_volume_mounts");
    let wrappers: Vec<WrapperOptions> = from_call!(call, "wrappers");
    let container = sidecar(&SidecarArgs {
        config: &config,
        gcs_options: &gcs_options,
        blob_storage_mounts: &blob_storage_mounts,
        log_mount: &log_mount,
        output_mount: output_mount.as_ref(),
        encoded_job_spec: call["encoded_job_spec"].as_str().unwrap_or(""),
        require_passing_entries: call["require_passing_entries"] == json!(true),
        ignore_interrupts: call["ignore_interrupts"] == json!(true),
        secret_volume_mounts: secret_volume_mounts.as_deref().unwrap_or_default(),
        wrappers: &wrappers,
    })
    .expect("Sidecar");
    let ours = serde_json::to_value(&container).expect("container serialises");
    assert_same(
        case,
        &normalise(ours.clone(), Root::Container),
        &normalise(expected, Root::Container),
    );

    let mut go_shaped = ours;
    add_go_zero_structs(&mut go_shaped);
    assert_bytes(case, &go_yaml(&go_shaped));
}

macro_rules! cases {
    ($check:ident: $($name:ident),* $(,)?) => {
        $(
            #[test]
            #[allow(non_snake_case)]
            fn $name() {
                $check(stringify!($name));
            }
        )*
    };
}

cases!(check_prowjob_to_pod:
    TestProwJobToPod_0, TestProwJobToPod_1, TestProwJobToPod_2, TestProwJobToPod_3,
    TestProwJobToPod_4, TestProwJobToPod_5, TestProwJobToPod_6, TestProwJobToPod_7,
    TestProwJobToPod_8, TestProwJobToPod_9, TestProwJobToPod_10,
);

cases!(check_decorate:
    TestDecorate_basic_happy_case, TestDecorate_censor_secrets_in_sidecar,
    TestDecorate_default_memory_request, TestDecorate_enforcing_memory_limit,
    TestDecorate_ignore_interrupts_in_sidecar,
);

cases!(check_sidecar: TestSidecar_basic_case, TestSidecar_with_secrets);

/// Every case folder has a test above, and nothing else hides in the data.
#[test]
fn every_case_is_covered() {
    let dir = shared_conformance_dir().join("prow-decorate");
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    let source = include_str!("decorate.rs");
    let uncovered: Vec<&String> = cases
        .iter()
        .filter(|c| !source.contains(&format!("{c},")) && !source.contains(&format!("{c})")))
        .collect();
    assert_eq!(cases.len(), 18, "{cases:?}");
    assert!(uncovered.is_empty(), "cases without a test: {uncovered:?}");
}

#[test]
fn yaml_rendering_follows_go_yaml() {
    assert_eq!(yaml_scalar("true"), "\"true\"");
    assert_eq!(yaml_scalar("0"), "\"0\"");
    assert_eq!(yaml_scalar(""), "\"\"");
    assert_eq!(yaml_scalar("yes"), "\"yes\"");
    assert_eq!(yaml_scalar("1.5"), "\"1.5\"");
    assert_eq!(yaml_scalar("clonerefs:tag"), "clonerefs:tag");
    assert_eq!(yaml_scalar("--copy-mode-only"), "--copy-mode-only");
    assert_eq!(yaml_scalar("{\"a\":1}"), "'{\"a\":1}'");
    assert_eq!(yaml_scalar("a: b"), "'a: b'");
    assert_eq!(yaml_scalar("tab\there"), "\"tab\\there\"");
    assert!(go_yaml_key_less("a2", "a10"));
    assert!(go_yaml_key_less("a_", "aB"));
    assert_eq!(
        go_yaml(&json!({"b": [{"x": 1, "y": []}], "a": {}})),
        "a: {}\nb:\n- x: 1\n  \"y\": []\n"
    );
}
