//! A small subset of Go's `text/template`, enough for Prow's Slack report templates: plain
//! text and `{{ .Field.Path }}` references (Go field names, e.g. `{{.Spec.Job}}`,
//! `{{.Status.State}}`, `{{.ObjectMeta.Name}}`, `{{.Spec.Refs.Org}}`), with `{{-`/`-}}` trim
//! markers. Anything else inside `{{ }}` (pipelines, functions, `if`, `range`) is refused at
//! parse time.
//!
//! Fields are looked up on the job's JSON form: a Go field name maps to its JSON key (`URL` →
//! `url`, `BuildID` → `build_id`, `StartTime` → `startTime`, `ObjectMeta` → `metadata`). A field
//! Prow omits when empty renders as the empty string; a scalar renders as Go prints it.

use serde_json::Value;

/// Why a template could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without a matching `}}`.
    #[error("unclosed action at byte {0}")]
    Unclosed(usize),
    /// An action this subset does not support.
    #[error("unsupported action {0:?}: only field references like {{{{.Spec.Job}}}} are supported")]
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Text(String),
    Field(Vec<String>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    /// Parses `source`.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut nodes = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        let mut trim_next_text = false;
        while let Some(open) = rest.find("{{") {
            let mut text = &rest[..open];
            if trim_next_text {
                text = text.trim_start();
            }
            let after_open = &rest[open + 2..];
            let close = after_open.find("}}").ok_or(Unclosed(offset + open))?;
            let mut action = &after_open[..close];
            if let Some(a) = action.strip_prefix("- ") {
                text = text.trim_end();
                action = a;
            }
            trim_next_text = false;
            if let Some(a) = action.strip_suffix(" -") {
                trim_next_text = true;
                action = a;
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text.to_owned()));
            }
            nodes.push(parse_action(action.trim())?);
            let consumed = open + 2 + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        let text = if trim_next_text {
            rest.trim_start()
        } else {
            rest
        };
        if !text.is_empty() {
            nodes.push(Node::Text(text.to_owned()));
        }
        Ok(Template { nodes })
    }

    /// Renders the template against `data` (the job as JSON).
    pub fn render(&self, data: &Value) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Field(path) => {
                    let mut current = Some(data);
                    for field in path {
                        current = current.and_then(|v| lookup(v, field));
                    }
                    if let Some(value) = current {
                        render_value(value, &mut out);
                    }
                }
            }
        }
        out
    }
}

use TemplateError::Unclosed;

fn parse_action(action: &str) -> Result<Node, TemplateError> {
    let unsupported = || TemplateError::Unsupported(action.to_owned());
    if action == "." {
        return Ok(Node::Field(Vec::new()));
    }
    let Some(path) = action.strip_prefix('.') else {
        return Err(unsupported());
    };
    let fields: Vec<String> = path.split('.').map(str::to_owned).collect();
    let valid = fields.iter().all(|f| {
        !f.is_empty()
            && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && f.starts_with(|c: char| c.is_ascii_uppercase())
    });
    if !valid {
        return Err(unsupported());
    }
    Ok(Node::Field(fields))
}

/// The JSON key candidates of a Go field name, most specific first.
fn json_keys(go_name: &str) -> Vec<String> {
    let special = match go_name {
        "ObjectMeta" => Some("metadata"),
        "TypeMeta" => Some(""),
        "URL" => Some("url"),
        "BuildID" => Some("build_id"),
        "JenkinsBuildID" => Some("jenkins_build_id"),
        "PodName" => Some("pod_name"),
        "UID" => Some("uid"),
        "SHA" => Some("sha"),
        "Type" => Some("type"),
        _ => None,
    };
    let mut keys: Vec<String> = special.map(str::to_owned).into_iter().collect();
    keys.push(snake_case(go_name));
    let mut chars = go_name.chars();
    if let Some(first) = chars.next() {
        keys.push(first.to_ascii_lowercase().to_string() + chars.as_str());
    }
    keys.push(go_name.to_ascii_lowercase());
    keys
}

/// `BaseSHA` → `base_sha`, `PrevReportStates` → `prev_report_states`.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && !chars[i - 1].is_ascii_uppercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn lookup<'a>(value: &'a Value, go_name: &str) -> Option<&'a Value> {
    let object = value.as_object()?;
    for key in json_keys(go_name) {
        if key.is_empty() {
            return Some(value);
        }
        if let Some(v) = object.get(&key) {
            return Some(v);
        }
    }
    // Fields embedded in ObjectMeta are promoted in Go (`.Name` on a ProwJob).
    object
        .get("metadata")
        .and_then(|m| m.as_object())
        .and_then(|m| json_keys(go_name).into_iter().find_map(|k| m.get(&k)))
}

fn render_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => {}
        Value::String(s) => out.push_str(s),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                render_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                render_value(v, out);
            }
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_fields_and_text() {
        let data = json!({
            "metadata": {"name": "abc"},
            "spec": {"job": "unit", "type": "periodic", "refs": {"org": "o", "base_sha": "123"}},
            "status": {"state": "failure", "url": "https://x/y", "build_id": "42", "startTime": "t"}
        });
        let t = Template::parse(
            "{{.ObjectMeta.Name}} {{.Name}} {{ .Spec.Job }} {{.Spec.Type}} {{.Status.State}} {{.Status.URL}} {{.Status.BuildID}} {{.Spec.Refs.BaseSHA}} {{.Status.StartTime}} [{{.Status.Description}}]",
        )
        .expect("parse");
        assert_eq!(
            t.render(&data),
            "abc abc unit periodic failure https://x/y 42 123 t []"
        );
    }

    #[test]
    fn trims_and_refuses_unsupported() {
        let t = Template::parse("a  {{- .Spec.Job -}}  b").expect("parse");
        assert_eq!(t.render(&json!({"spec": {"job": "j"}})), "ajb");
        assert!(matches!(
            Template::parse("{{if .Spec.Job}}x{{end}}"),
            Err(TemplateError::Unsupported(_))
        ));
        assert!(matches!(
            Template::parse("{{.Spec.Job"),
            Err(TemplateError::Unclosed(0))
        ));
        assert_eq!(snake_case("PrevReportStates"), "prev_report_states");
        assert_eq!(snake_case("BaseSHA"), "base_sha");
        assert_eq!(snake_case("BuildID"), "build_id");
    }
}
