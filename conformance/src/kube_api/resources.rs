//! The resource types the test API server serves and its discovery documents.

use serde_json::{Value, json};

/// A group / version / resource triple naming one of the served resource types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gvr {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural resource name, as in URLs.
    pub resource: &'static str,
}

impl Gvr {
    /// core/v1 pods.
    pub const PODS: Gvr = Gvr::new("", "v1", "pods");
    /// core/v1 events.
    pub const EVENTS: Gvr = Gvr::new("", "v1", "events");
    /// core/v1 namespaces (cluster-scoped).
    pub const NAMESPACES: Gvr = Gvr::new("", "v1", "namespaces");
    /// events.k8s.io/v1 events (what `kube::runtime::events::Recorder` writes).
    pub const EVENTS_V1: Gvr = Gvr::new("events.k8s.io", "v1", "events");
    /// prow.k8s.io/v1 prowjobs.
    pub const PROWJOBS: Gvr = Gvr::new("prow.k8s.io", "v1", "prowjobs");
    /// tekton.dev/v1 pipelineruns.
    pub const PIPELINERUNS: Gvr = Gvr::new("tekton.dev", "v1", "pipelineruns");
    /// tekton.dev/v1 taskruns.
    pub const TASKRUNS: Gvr = Gvr::new("tekton.dev", "v1", "taskruns");
    /// coordination.k8s.io/v1 leases.
    pub const LEASES: Gvr = Gvr::new("coordination.k8s.io", "v1", "leases");

    /// A triple from its parts.
    pub const fn new(group: &'static str, version: &'static str, resource: &'static str) -> Self {
        Gvr {
            group,
            version,
            resource,
        }
    }

    /// The `apiVersion` of objects of this resource (`v1`, `prow.k8s.io/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// How the server treats one resource type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResourceDef {
    pub gvr: Gvr,
    pub kind: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    /// Has a `status` subresource (main-resource writes keep the old status, creates drop it).
    pub status: bool,
    /// Has the `log` subresource (pods).
    pub log: bool,
    /// Field selector labels beyond `metadata.name` / `metadata.namespace`.
    pub field_labels: &'static [&'static str],
    pub short_names: &'static [&'static str],
}

impl ResourceDef {
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// `pods`, or `prowjobs.prow.k8s.io`: how errors name the resource.
    pub fn qualified(&self) -> String {
        if self.gvr.group.is_empty() {
            self.gvr.resource.to_string()
        } else {
            format!("{}.{}", self.gvr.resource, self.gvr.group)
        }
    }
}

const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// The resource table; `prowjob_status` enables the status subresource on prowjobs (Prow's
/// own CRD has none, bosun's deploy/crds has one).
pub(crate) fn table(prowjob_status: bool) -> Vec<ResourceDef> {
    let def = |gvr, kind, singular, namespaced, status| ResourceDef {
        gvr,
        kind,
        singular,
        namespaced,
        status,
        log: false,
        field_labels: &[],
        short_names: &[],
    };
    vec![
        ResourceDef {
            log: true,
            field_labels: &[
                "status.phase",
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "status.podIP",
                "status.nominatedNodeName",
            ],
            short_names: &["po"],
            ..def(Gvr::PODS, "Pod", "pod", true, true)
        },
        ResourceDef {
            field_labels: EVENT_FIELDS,
            short_names: &["ev"],
            ..def(Gvr::EVENTS, "Event", "event", true, false)
        },
        ResourceDef {
            field_labels: &["status.phase"],
            short_names: &["ns"],
            ..def(Gvr::NAMESPACES, "Namespace", "namespace", false, true)
        },
        ResourceDef {
            short_names: &["ev"],
            ..def(Gvr::EVENTS_V1, "Event", "event", true, false)
        },
        def(Gvr::PROWJOBS, "ProwJob", "prowjob", true, prowjob_status),
        ResourceDef {
            short_names: &["pr", "prs"],
            ..def(Gvr::PIPELINERUNS, "PipelineRun", "pipelinerun", true, true)
        },
        ResourceDef {
            short_names: &["tr", "trs"],
            ..def(Gvr::TASKRUNS, "TaskRun", "taskrun", true, true)
        },
        def(Gvr::LEASES, "Lease", "lease", true, false),
    ]
}

pub(crate) fn find<'a>(
    table: &'a [ResourceDef],
    group: &str,
    version: &str,
    resource: &str,
) -> Option<&'a ResourceDef> {
    table
        .iter()
        .find(|r| r.gvr.group == group && r.gvr.version == version && r.gvr.resource == resource)
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `GET /api`.
pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn groups(table: &[ResourceDef]) -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for r in table {
        if !r.gvr.group.is_empty() && !groups.contains(&r.gvr.group) {
            groups.push(r.gvr.group);
        }
    }
    groups
}

fn group_doc(table: &[ResourceDef], group: &str) -> Value {
    let mut versions: Vec<&'static str> = Vec::new();
    for r in table.iter().filter(|r| r.gvr.group == group) {
        if !versions.contains(&r.gvr.version) {
            versions.push(r.gvr.version);
        }
    }
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": preferred,
    })
}

/// `GET /apis`.
pub(crate) fn group_list(table: &[ResourceDef]) -> Value {
    let groups: Vec<Value> = groups(table)
        .into_iter()
        .map(|g| {
            let mut doc = group_doc(table, g);
            if let Value::Object(map) = &mut doc {
                map.remove("kind");
                map.remove("apiVersion");
            }
            doc
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>`, if the group is served.
pub(crate) fn group(table: &[ResourceDef], group: &str) -> Option<Value> {
    table
        .iter()
        .any(|r| r.gvr.group == group)
        .then(|| group_doc(table, group))
}

/// `GET /api/v1` or `GET /apis/<group>/<version>`, if served.
pub(crate) fn resource_list(table: &[ResourceDef], group: &str, version: &str) -> Option<Value> {
    let defs: Vec<&ResourceDef> = table
        .iter()
        .filter(|r| r.gvr.group == group && r.gvr.version == version)
        .collect();
    if defs.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in defs {
        resources.push(json!({
            "name": r.gvr.resource,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
            "shortNames": r.short_names,
        }));
        if r.status {
            resources.push(json!({
                "name": format!("{}/status", r.gvr.resource),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r.log {
            resources.push(json!({
                "name": format!("{}/log", r.gvr.resource),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// `GET /version`.
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "gitVersion": "v1.34.0-bosun-test",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}
