//! Label and field selectors, as the apiserver parses and applies them.

use serde_json::Value;

/// One label requirement.
#[derive(Clone, Debug, PartialEq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed `labelSelector` (all requirements must hold).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<LabelReq>);

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_requirement(req: &str) -> Result<LabelReq, String> {
    let req = req.trim();
    let bad = || format!("unable to parse requirement: {req:?}");
    let key = |k: &str| {
        let k = k.trim();
        if valid_key(k) {
            Ok(k.to_string())
        } else {
            Err(bad())
        }
    };
    let value = |v: &str| {
        let v = v.trim();
        if valid_value(v) {
            Ok(v.to_string())
        } else {
            Err(bad())
        }
    };
    if let Some(open) = req.find('(') {
        let close = req
            .rfind(')')
            .filter(|c| *c == req.len() - 1)
            .ok_or_else(bad)?;
        let mut head = req[..open].split_whitespace();
        let (k, op) = match (head.next(), head.next(), head.next()) {
            (Some(k), Some(op), None) => (key(k)?, op),
            _ => return Err(bad()),
        };
        let values = req[open + 1..close]
            .split(',')
            .map(value)
            .collect::<Result<Vec<_>, _>>()?;
        return match op {
            "in" => Ok(LabelReq::In(k, values)),
            "notin" => Ok(LabelReq::NotIn(k, values)),
            _ => Err(bad()),
        };
    }
    if let Some(rest) = req.strip_prefix('!') {
        return Ok(LabelReq::NotExists(key(rest)?));
    }
    if let Some((k, v)) = req.split_once("!=") {
        return Ok(LabelReq::NotEq(key(k)?, value(v)?));
    }
    if let Some((k, v)) = req.split_once("==") {
        return Ok(LabelReq::Eq(key(k)?, value(v)?));
    }
    if let Some((k, v)) = req.split_once('=') {
        return Ok(LabelReq::Eq(key(k)?, value(v)?));
    }
    for (op, gt) in [('>', true), ('<', false)] {
        if let Some((k, v)) = req.split_once(op) {
            let n: i64 = v.trim().parse().map_err(|_| bad())?;
            let k = key(k)?;
            return Ok(if gt {
                LabelReq::Gt(k, n)
            } else {
                LabelReq::Lt(k, n)
            });
        }
    }
    Ok(LabelReq::Exists(key(req)?))
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Ok(LabelSelector::default());
        }
        split_top_level(s)
            .into_iter()
            .map(parse_requirement)
            .collect::<Result<Vec<_>, _>>()
            .map(LabelSelector)
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::NotIn(k, vs) => !get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
            LabelReq::Gt(k, n) => get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l > *n),
            LabelReq::Lt(k, n) => get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l < *n),
        })
    }
}

/// A parsed `fieldSelector` over the fields a resource supports.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `s`, accepting `metadata.name`, `metadata.namespace` and `extra` field labels.
    pub fn parse(s: &str, extra: &[&str]) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            let field = field.trim();
            if !matches!(field, "metadata.name" | "metadata.namespace") && !extra.contains(&field) {
                return Err(format!("field label not supported: {field}"));
            }
            reqs.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector(reqs))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = match object.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

/// Both selectors of a list or watch request.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}, "status": {"phase": "Running"}})
    }

    #[test]
    fn label_selectors() {
        let o = obj(json!({"app": "web", "tier": "1"}));
        let m = |s: &str| LabelSelector::parse(s).expect("parses").matches(&o);
        assert!(m(""));
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("app in (db, web)"));
        assert!(!m("app notin (db,web)"));
        assert!(m("missing notin (x)"));
        assert!(m("!missing"));
        assert!(!m("!app"));
        assert!(m("tier>0"));
        assert!(!m("tier<1"));
        assert!(LabelSelector::parse("app in db").is_err());
        assert!(LabelSelector::parse("=x").is_err());
    }

    #[test]
    fn field_selectors() {
        let o = obj(json!({}));
        let m = |s: &str| {
            FieldSelector::parse(s, &["status.phase"])
                .expect("parses")
                .matches(&o)
        };
        assert!(m("metadata.name=a,metadata.namespace==ns"));
        assert!(m("status.phase!=Pending"));
        assert!(!m("status.phase=Pending"));
        assert!(FieldSelector::parse("spec.foo=x", &[]).is_err());
    }
}
