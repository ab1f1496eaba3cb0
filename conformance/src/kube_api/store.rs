//! The object store: one global resourceVersion counter (like etcd), a bounded change history
//! for watches, the write semantics of the apiserver and the pod log buffers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use chrono::SecondsFormat;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};

use super::error::ApiError;
use super::patch;
use super::resources::{Gvr, ResourceDef};
use super::selectors::Selectors;
use super::{RequestRecord, Verb};

/// (resource, namespace — empty for cluster-scoped —, name).
type ObjKey = (Gvr, String, String);

/// (namespace, pod, container).
pub(crate) type LogKey = (String, String, String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

/// One committed write, as watches see it.
#[derive(Debug)]
pub(crate) struct Change {
    pub rv: u64,
    pub gvr: Gvr,
    pub namespace: String,
    pub kind: ChangeKind,
    /// The object before the write (for selector transitions).
    pub old: Option<Value>,
    /// The object after the write (the last state for DELETED).
    pub new: Value,
}

pub(crate) enum WatchMsg {
    Change(Arc<Change>),
    /// The watch fell out of the history window: send ERROR 410 and end.
    Expired(ApiError),
}

struct Watcher {
    gvr: Gvr,
    namespace: Option<String>,
    tx: mpsc::UnboundedSender<WatchMsg>,
}

/// Which part of an object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// The main resource: with a status subresource, `.status` is kept as it was.
    Main,
    /// The status subresource: only `.status` changes.
    Status,
    /// A test acting as a controller: everything but immutable metadata.
    Whole,
}

pub(crate) enum Deleted {
    /// Removed: the `Status` to answer.
    Gone(Value),
    /// Kept because of finalizers, now with a deletionTimestamp.
    Pending(Value),
}

pub(crate) enum WatchStart {
    /// The requested resourceVersion is older than the history window.
    Expired(ApiError),
    Started {
        initial: Vec<Arc<Change>>,
        rx: mpsc::UnboundedReceiver<WatchMsg>,
        rv: u64,
    },
}

/// One container's log.
#[derive(Debug, Default)]
pub(crate) struct LogBuf {
    pub data: Vec<u8>,
    /// Byte offset and timestamp of each line start.
    line_starts: Vec<(usize, String)>,
    pub finished: bool,
}

impl LogBuf {
    fn append(&mut self, bytes: &[u8]) {
        let ts = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
        let mut at_line_start = self.data.last().is_none_or(|b| *b == b'\n');
        for &b in bytes {
            if at_line_start {
                self.line_starts.push((self.data.len(), ts.clone()));
            }
            self.data.push(b);
            at_line_start = b == b'\n';
        }
    }

    /// Where the last `lines` lines start.
    pub fn tail_start(&self, lines: usize) -> usize {
        match self.line_starts.len().checked_sub(lines) {
            Some(idx) => self
                .line_starts
                .get(idx)
                .map_or(self.data.len(), |(offset, _)| *offset),
            None => 0,
        }
    }

    /// The bytes from `from` on, with each line prefixed by its timestamp if asked.
    pub fn render(&self, from: usize, timestamps: bool) -> Vec<u8> {
        let from = from.min(self.data.len());
        if !timestamps {
            return self.data[from..].to_vec();
        }
        let mut out = Vec::new();
        let first = self
            .line_starts
            .partition_point(|(offset, _)| *offset < from);
        let mut pos = from;
        for (start, ts) in &self.line_starts[first..] {
            out.extend_from_slice(&self.data[pos..*start]);
            out.extend_from_slice(ts.as_bytes());
            out.push(b' ');
            pos = *start;
        }
        out.extend_from_slice(&self.data[pos..]);
        out
    }
}

/// A failure to inject into the next matching request.
pub(crate) struct Injected {
    pub verb: Verb,
    pub gvr: Gvr,
    pub code: u16,
}

pub(crate) struct State {
    rv: u64,
    objects: BTreeMap<ObjKey, Value>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// A watch or continue token from a resourceVersion below this gets 410.
    compacted: u64,
    watchers: Vec<Watcher>,
    namespaces: ResourceDef,
    pub logs: HashMap<LogKey, LogBuf>,
    /// Bumped on every log change; log followers wait on it.
    pub log_tx: watch::Sender<u64>,
    pub requests: Vec<RequestRecord>,
    pub failures: VecDeque<Injected>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

fn metadata_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let meta = obj
        .as_object_mut()?
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut()
}

fn set_meta(obj: &mut Value, field: &str, value: Option<Value>) {
    if let Some(meta) = metadata_mut(obj) {
        match value {
            Some(v) => {
                meta.insert(field.to_string(), v);
            }
            None => {
                meta.remove(field);
            }
        }
    }
}

fn set_field(obj: &mut Value, field: &str, value: Option<Value>) {
    if let Some(map) = obj.as_object_mut() {
        match value {
            Some(v) => {
                map.insert(field.to_string(), v);
            }
            None => {
                map.remove(field);
            }
        }
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// The part of an object whose change bumps metadata.generation.
fn spec_part(res: &ResourceDef, obj: &Value) -> Value {
    let mut obj = obj.clone();
    set_field(&mut obj, "metadata", None);
    if res.status {
        set_field(&mut obj, "status", None);
    }
    obj
}

/// Validation a real apiserver does on the paths bosun uses.
fn validate(res: &ResourceDef, name: &str, obj: &Value) -> Vec<(String, String)> {
    let mut causes = Vec::new();
    let name_ok = if res.gvr == Gvr::NAMESPACES {
        is_dns_label(name)
    } else {
        is_dns_subdomain(name)
    };
    if !name_ok {
        causes.push((
            "metadata.name".to_string(),
            format!(
                "Invalid value: {name:?}: a lowercase RFC 1123 {} must consist of lower case \
                 alphanumeric characters, '-' or '.', and must start and end with an \
                 alphanumeric character",
                if res.gvr == Gvr::NAMESPACES {
                    "label"
                } else {
                    "subdomain"
                }
            ),
        ));
    }
    if res.gvr == Gvr::PODS {
        let mut seen = Vec::new();
        for list in ["initContainers", "containers"] {
            let items = obj
                .pointer(&format!("/spec/{list}"))
                .and_then(Value::as_array);
            if list == "containers" && items.is_none_or(Vec::is_empty) {
                causes.push(("spec.containers".into(), "Required value".into()));
            }
            for (i, c) in items.into_iter().flatten().enumerate() {
                let field = |f: &str| format!("spec.{list}[{i}].{f}");
                match c.get("name").and_then(Value::as_str).unwrap_or_default() {
                    "" => causes.push((field("name"), "Required value".into())),
                    n if !is_dns_label(n) => {
                        causes.push((field("name"), format!("Invalid value: {n:?}")))
                    }
                    n if seen.contains(&n) => {
                        causes.push((field("name"), format!("Duplicate value: {n:?}")))
                    }
                    n => seen.push(n),
                }
                if c.get("image")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .is_empty()
                {
                    causes.push((field("image"), "Required value".into()));
                }
            }
        }
    }
    causes
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

impl State {
    pub fn new(history_limit: usize, namespaces: ResourceDef) -> Self {
        let (log_tx, _) = watch::channel(0);
        let mut state = State {
            rv: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            watchers: Vec::new(),
            namespaces,
            logs: HashMap::new(),
            log_tx,
            requests: Vec::new(),
            failures: VecDeque::new(),
        };
        state.ensure_namespace("default");
        state
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    fn key(res: &ResourceDef, ns: &str, name: &str) -> ObjKey {
        let ns = if res.namespaced { ns } else { "" };
        (res.gvr, ns.to_string(), name.to_string())
    }

    pub fn get(&self, res: &ResourceDef, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&Self::key(res, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(res, name))
    }

    /// Stores a write: bumps the resourceVersion, records the change and tells the watches.
    fn commit(
        &mut self,
        gvr: Gvr,
        namespace: &str,
        name: &str,
        kind: ChangeKind,
        old: Option<Value>,
        mut new: Value,
    ) -> Value {
        self.rv += 1;
        set_meta(
            &mut new,
            "resourceVersion",
            Some(json!(self.rv.to_string())),
        );
        let key = (gvr, namespace.to_string(), name.to_string());
        if kind == ChangeKind::Deleted {
            self.objects.remove(&key);
            if gvr == Gvr::PODS {
                self.finish_pod_logs(namespace, name);
            }
        } else {
            self.objects.insert(key, new.clone());
        }
        let change = Arc::new(Change {
            rv: self.rv,
            gvr,
            namespace: namespace.to_string(),
            kind,
            old,
            new: new.clone(),
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.rv;
            }
        }
        self.watchers.retain(|w| {
            let interested =
                w.gvr == gvr && w.namespace.as_deref().is_none_or(|ns| ns == namespace);
            if interested {
                w.tx.send(WatchMsg::Change(change.clone())).is_ok()
            } else {
                !w.tx.is_closed()
            }
        });
        new
    }

    fn ensure_namespace(&mut self, ns: &str) {
        let ns_res = self.namespaces;
        if ns.is_empty() || self.objects.contains_key(&Self::key(&ns_res, "", ns)) {
            return;
        }
        let obj = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "uid": uuid::Uuid::new_v4().to_string(),
                "creationTimestamp": now(),
                "labels": {"kubernetes.io/metadata.name": ns},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        self.commit(Gvr::NAMESPACES, "", ns, ChangeKind::Added, None, obj);
    }

    /// Checks a request body against the URL: an object, its kind/apiVersion, its namespace.
    fn check_body(res: &ResourceDef, ns: &str, body: Value) -> Result<Value, ApiError> {
        let mut obj = body;
        let Some(map) = obj.as_object_mut() else {
            return Err(ApiError::bad_request(
                "the body of the request was in an unknown format - accepted media types include: application/json",
            ));
        };
        let api_version = res.gvr.api_version();
        match map.get("apiVersion").and_then(Value::as_str) {
            Some(v) if v != api_version => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({v}) does not match the expected API version ({api_version})"
                )));
            }
            _ => {
                map.insert("apiVersion".into(), json!(api_version));
            }
        }
        match map.get("kind").and_then(Value::as_str) {
            Some(k) if k != res.kind => {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    res.kind
                )));
            }
            _ => {
                map.insert("kind".into(), json!(res.kind));
            }
        }
        if res.namespaced {
            match meta_str(&obj, "namespace") {
                Some(n) if !n.is_empty() && n != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => set_meta(&mut obj, "namespace", Some(json!(ns))),
            }
        } else {
            set_meta(&mut obj, "namespace", None);
        }
        Ok(obj)
    }

    pub fn create(&mut self, res: &ResourceDef, ns: &str, body: Value) -> Result<Value, ApiError> {
        let mut obj = Self::check_body(res, ns, body)?;
        let ns = if res.namespaced { ns } else { "" };
        let mut name = meta_str(&obj, "name").unwrap_or_default().to_string();
        if name.is_empty() {
            let prefix: String = meta_str(&obj, "generateName")
                .unwrap_or_default()
                .chars()
                .take(58)
                .collect();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    res,
                    "",
                    &[(
                        "metadata.name".into(),
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
            loop {
                name = format!("{prefix}{}", random_suffix());
                if !self.objects.contains_key(&Self::key(res, ns, &name)) {
                    break;
                }
            }
            set_meta(&mut obj, "name", Some(json!(name)));
        }
        let causes = validate(res, &name, &obj);
        if !causes.is_empty() {
            return Err(ApiError::invalid(res, &name, &causes));
        }
        if self.objects.contains_key(&Self::key(res, ns, &name)) {
            return Err(ApiError::already_exists(res, &name));
        }
        if res.namespaced {
            self.ensure_namespace(ns);
        }
        set_meta(
            &mut obj,
            "uid",
            Some(json!(uuid::Uuid::new_v4().to_string())),
        );
        set_meta(&mut obj, "creationTimestamp", Some(json!(now())));
        set_meta(&mut obj, "generation", Some(json!(1)));
        set_meta(&mut obj, "deletionTimestamp", None);
        set_meta(&mut obj, "deletionGracePeriodSeconds", None);
        if res.gvr == Gvr::PODS {
            set_field(
                &mut obj,
                "status",
                Some(json!({"phase": "Pending", "qosClass": "BestEffort"})),
            );
        } else if res.gvr == Gvr::NAMESPACES {
            set_field(&mut obj, "status", Some(json!({"phase": "Active"})));
        } else if res.status {
            set_field(&mut obj, "status", None);
        }
        Ok(self.commit(res.gvr, ns, &name, ChangeKind::Added, None, obj))
    }

    /// PUT of the main resource or of its status.
    pub fn update(
        &mut self,
        res: &ResourceDef,
        ns: &str,
        name: &str,
        body: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let obj = Self::check_body(res, ns, body)?;
        match meta_str(&obj, "name") {
            Some(n) if n != name => Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            ))),
            _ => self.write(res, ns, name, obj, part),
        }
    }

    /// PATCH: `content_type` picks the patch format.
    pub fn patch(
        &mut self,
        res: &ResourceDef,
        ns: &str,
        name: &str,
        content_type: &str,
        body: &[u8],
        part: Part,
    ) -> Result<Value, ApiError> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let parse = |body: &[u8]| {
            serde_json::from_slice::<Value>(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
        };
        match media.as_str() {
            "application/merge-patch+json" => {
                let patch = parse(body)?;
                let mut obj = self.get(res, ns, name)?;
                patch::merge_patch(&mut obj, &patch);
                self.write_patched(res, ns, name, obj, part)
            }
            "application/json-patch+json" => {
                let patch = parse(body)?;
                let mut obj = self.get(res, ns, name)?;
                patch::json_patch(&mut obj, &patch).map_err(|e| {
                    ApiError::new(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    )
                })?;
                self.write_patched(res, ns, name, obj, part)
            }
            "application/apply-patch+yaml" => {
                let applied: Value = serde_yaml::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
                match self.get(res, ns, name) {
                    Ok(mut obj) => {
                        patch::merge_patch(&mut obj, &applied);
                        self.write_patched(res, ns, name, obj, part)
                    }
                    Err(e) if part == Part::Status => Err(e),
                    Err(_) => {
                        let mut obj = applied;
                        set_meta(&mut obj, "name", Some(json!(name)));
                        self.create(res, ns, obj)
                    }
                }
            }
            other => Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: \
                     application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                ),
            )),
        }
    }

    fn write_patched(
        &mut self,
        res: &ResourceDef,
        ns: &str,
        name: &str,
        obj: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let obj = Self::check_body(res, ns, obj)?;
        if meta_str(&obj, "name") != Some(name) {
            return Err(ApiError::bad_request(
                "a patch may not change metadata.name",
            ));
        }
        self.write(res, ns, name, obj, part)
    }

    /// Replaces a stored object with `new` under the apiserver's rules.
    pub fn write(
        &mut self,
        res: &ResourceDef,
        ns: &str,
        name: &str,
        mut new: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let ns = if res.namespaced { ns } else { "" };
        let old = self.get(res, ns, name)?;
        let old_rv = meta_str(&old, "resourceVersion").unwrap_or_default();
        if let Some(rv) = meta_str(&new, "resourceVersion").filter(|rv| !rv.is_empty())
            && rv != old_rv
        {
            return Err(ApiError::stale(res, name));
        }
        match part {
            Part::Main if res.status => set_field(&mut new, "status", old.get("status").cloned()),
            Part::Status => {
                let status = new.get("status").cloned();
                new = old.clone();
                set_field(&mut new, "status", status);
            }
            _ => {}
        }
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            set_meta(
                &mut new,
                field,
                old.get("metadata").and_then(|m| m.get(field)).cloned(),
            );
        }
        let causes = validate(res, name, &new);
        if !causes.is_empty() {
            return Err(ApiError::invalid(res, name, &causes));
        }
        let deleting = meta_str(&old, "deletionTimestamp").is_some();
        if deleting {
            let old_finalizers = finalizers(&old);
            let added: Vec<String> = finalizers(&new)
                .into_iter()
                .filter(|f| !old_finalizers.contains(f))
                .collect();
            if !added.is_empty() {
                return Err(ApiError::invalid(
                    res,
                    name,
                    &[(
                        "metadata.finalizers".into(),
                        format!(
                            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                        ),
                    )],
                ));
            }
        }
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let generation = if spec_part(res, &old) != spec_part(res, &new) {
            generation + 1
        } else {
            generation
        };
        set_meta(&mut new, "generation", Some(json!(generation)));
        set_meta(&mut new, "resourceVersion", Some(json!(old_rv)));
        if new == old {
            return Ok(old);
        }
        let out = self.commit(res.gvr, ns, name, ChangeKind::Modified, Some(old), new);
        if deleting && finalizers(&out).is_empty() {
            let gone = self.commit(
                res.gvr,
                ns,
                name,
                ChangeKind::Deleted,
                Some(out.clone()),
                out,
            );
            return Ok(gone);
        }
        Ok(out)
    }

    /// DELETE with `options` (a DeleteOptions body, possibly `null`).
    pub fn delete(
        &mut self,
        res: &ResourceDef,
        ns: &str,
        name: &str,
        options: &Value,
    ) -> Result<Deleted, ApiError> {
        let ns = if res.namespaced { ns } else { "" };
        let old = self.get(res, ns, name)?;
        for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
            let wanted = options
                .get("preconditions")
                .and_then(|p| p.get(field))
                .and_then(Value::as_str);
            let actual = meta_str(&old, field).unwrap_or_default();
            if let Some(wanted) = wanted
                && wanted != actual
            {
                return Err(ApiError::conflict(
                    res,
                    name,
                    &format!(
                        "Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {actual}"
                    ),
                ));
            }
        }
        if !finalizers(&old).is_empty() {
            if meta_str(&old, "deletionTimestamp").is_some() {
                return Ok(Deleted::Pending(old));
            }
            let mut new = old.clone();
            set_meta(&mut new, "deletionTimestamp", Some(json!(now())));
            set_meta(&mut new, "deletionGracePeriodSeconds", Some(json!(0)));
            let out = self.commit(res.gvr, ns, name, ChangeKind::Modified, Some(old), new);
            return Ok(Deleted::Pending(out));
        }
        let uid = meta_str(&old, "uid").unwrap_or_default().to_string();
        self.commit(
            res.gvr,
            ns,
            name,
            ChangeKind::Deleted,
            Some(old.clone()),
            old,
        );
        let mut details = json!({"name": name, "kind": res.gvr.resource, "uid": uid});
        if !res.gvr.group.is_empty() {
            details["group"] = json!(res.gvr.group);
        }
        Ok(Deleted::Gone(json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        })))
    }

    fn matching<'a>(
        &'a self,
        res: &ResourceDef,
        ns: Option<&'a str>,
        selectors: &'a Selectors,
    ) -> impl Iterator<Item = (&'a ObjKey, &'a Value)> + 'a {
        let gvr = res.gvr;
        self.objects
            .range((gvr, String::new(), String::new())..)
            .take_while(move |(k, _)| k.0 == gvr)
            .filter(move |(k, _)| ns.is_none_or(|ns| ns == k.1))
            .filter(move |(_, v)| selectors.matches(v))
    }

    /// A list response; `cont` is a continue token from an earlier page.
    pub fn list(
        &self,
        res: &ResourceDef,
        ns: Option<&str>,
        selectors: &Selectors,
        limit: Option<usize>,
        cont: Option<&str>,
    ) -> Result<Value, ApiError> {
        let (list_rv, after) = match cont.filter(|c| !c.is_empty()) {
            None => (self.rv, None),
            Some(token) => {
                let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
                let mut parts = token.splitn(3, '/');
                let rv: u64 = parts.next().and_then(|r| r.parse().ok()).ok_or_else(bad)?;
                let (key_ns, key_name) = parts.next().zip(parts.next()).ok_or_else(bad)?;
                if rv < self.compacted {
                    return Err(ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. \
                         You can start a new list without the continue parameter.",
                    ));
                }
                (rv, Some((key_ns.to_string(), key_name.to_string())))
            }
        };
        let mut items = Vec::new();
        let mut remaining = 0usize;
        let mut last: Option<&ObjKey> = None;
        for (key, obj) in self.matching(res, ns, selectors) {
            if after
                .as_ref()
                .is_some_and(|(n, m)| (&key.1, &key.2) <= (n, m))
            {
                continue;
            }
            if limit.is_some_and(|l| l > 0 && items.len() >= l) {
                remaining += 1;
            } else {
                items.push(obj.clone());
                last = Some(key);
            }
        }
        let mut metadata = json!({"resourceVersion": list_rv.to_string()});
        if remaining > 0
            && let Some(key) = last
        {
            metadata["continue"] = json!(format!("{list_rv}/{}/{}", key.1, key.2));
            metadata["remainingItemCount"] = json!(remaining);
        }
        Ok(json!({
            "kind": res.list_kind(),
            "apiVersion": res.gvr.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// Registers a watch. `snapshot` starts it with synthetic ADDED events for the current
    /// objects; otherwise it replays the history after `from`.
    pub fn watch(
        &mut self,
        res: &ResourceDef,
        ns: Option<&str>,
        from: Option<u64>,
        snapshot: bool,
    ) -> WatchStart {
        let initial = match from {
            _ if snapshot => self
                .matching(res, ns, &Selectors::default())
                .map(|((gvr, namespace, _), obj)| {
                    Arc::new(Change {
                        rv: obj
                            .pointer("/metadata/resourceVersion")
                            .and_then(Value::as_str)
                            .and_then(|r| r.parse().ok())
                            .unwrap_or(0),
                        gvr: *gvr,
                        namespace: namespace.clone(),
                        kind: ChangeKind::Added,
                        old: None,
                        new: obj.clone(),
                    })
                })
                .collect(),
            Some(from) if from < self.compacted => {
                return WatchStart::Expired(ApiError::expired(format!(
                    "too old resource version: {from} ({})",
                    self.compacted
                )));
            }
            Some(from) => self
                .history
                .iter()
                .filter(|c| {
                    c.rv > from && c.gvr == res.gvr && ns.is_none_or(|ns| ns == c.namespace)
                })
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        self.watchers.push(Watcher {
            gvr: res.gvr,
            namespace: ns.map(str::to_string),
            tx,
        });
        WatchStart::Started {
            initial,
            rx,
            rv: self.rv,
        }
    }

    /// Forgets the watch history and ends every open watch with 410 Gone.
    pub fn compact(&mut self) {
        self.compacted = self.rv;
        self.history.clear();
        let message = format!("too old resource version: history compacted at {}", self.rv);
        for w in self.watchers.drain(..) {
            // A watch that already went away needs no notice.
            let _ =
                w.tx.send(WatchMsg::Expired(ApiError::expired(message.clone())));
        }
    }

    /// Resolves the container of a log request, failing as the kubelet does.
    pub fn log_key(
        &self,
        pods: &ResourceDef,
        ns: &str,
        pod: &str,
        container: Option<&str>,
    ) -> Result<LogKey, ApiError> {
        let obj = self.get(pods, ns, pod)?;
        let names = |list: &str| -> Vec<String> {
            obj.pointer(&format!("/spec/{list}"))
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|c| c.get("name").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let containers = names("containers");
        let mut all = names("initContainers");
        all.extend(containers.iter().cloned());
        let container = match container.filter(|c| !c.is_empty()) {
            Some(c) if all.iter().any(|n| n == c) => c.to_string(),
            Some(c) => {
                return Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {pod}"
                )));
            }
            None => match containers.as_slice() {
                [only] => only.clone(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "a container name must be specified for pod {pod}, choose one of: [{}]",
                        all.join(" ")
                    )));
                }
            },
        };
        let key = (ns.to_string(), pod.to_string(), container);
        let phase = obj
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("Pending");
        if !self.logs.contains_key(&key) && phase == "Pending" {
            return Err(ApiError::bad_request(format!(
                "container {:?} in pod {pod:?} is waiting to start: ContainerCreating",
                key.2
            )));
        }
        Ok(key)
    }

    pub fn append_log(&mut self, key: LogKey, bytes: &[u8]) {
        self.logs.entry(key).or_default().append(bytes);
        self.log_tx.send_modify(|v| *v += 1);
    }

    pub fn finish_log(&mut self, key: LogKey) {
        self.logs.entry(key).or_default().finished = true;
        self.log_tx.send_modify(|v| *v += 1);
    }

    fn finish_pod_logs(&mut self, ns: &str, pod: &str) {
        for ((n, p, _), buf) in self.logs.iter_mut() {
            if n == ns && p == pod {
                buf.finished = true;
            }
        }
        self.log_tx.send_modify(|v| *v += 1);
    }

    /// Plays kubelet: sets the pod phase and matching container statuses.
    pub fn set_pod_phase(
        &mut self,
        pods: &ResourceDef,
        ns: &str,
        name: &str,
        phase: &str,
    ) -> Result<Value, ApiError> {
        let mut obj = self.get(pods, ns, name)?;
        let now = now();
        let containers: Vec<String> = obj
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let image = |c: &str| {
            obj.pointer("/spec/containers")
                .and_then(Value::as_array)
                .and_then(|items| {
                    items
                        .iter()
                        .find(|i| i.get("name").and_then(Value::as_str) == Some(c))
                })
                .and_then(|i| i.get("image").cloned())
                .unwrap_or(json!(""))
        };
        let state = |_: &str| match phase {
            "Running" => json!({"running": {"startedAt": now}}),
            "Succeeded" => {
                json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}})
            }
            "Failed" => {
                json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}})
            }
            _ => json!({"waiting": {"reason": "ContainerCreating"}}),
        };
        let statuses: Vec<Value> = containers
            .iter()
            .map(|c| {
                json!({
                    "name": c,
                    "image": image(c),
                    "imageID": "",
                    "ready": phase == "Running",
                    "started": phase == "Running",
                    "restartCount": 0,
                    "state": state(c),
                })
            })
            .collect();
        let mut status = obj.get("status").cloned().unwrap_or_else(|| json!({}));
        patch::merge_patch(
            &mut status,
            &json!({"phase": phase, "containerStatuses": statuses}),
        );
        if phase != "Pending" && status.get("startTime").is_none() {
            status["startTime"] = json!(now);
        }
        set_field(&mut obj, "status", Some(status));
        let out = self.write(pods, ns, name, obj, Part::Whole)?;
        for c in containers {
            let key = (ns.to_string(), name.to_string(), c);
            match phase {
                "Succeeded" | "Failed" => self.finish_log(key),
                "Running" => {
                    self.logs.entry(key).or_default();
                }
                _ => {}
            }
        }
        Ok(out)
    }
}
