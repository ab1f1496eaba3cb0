//! Kubernetes `Status` errors and the server's own setup errors.

use serde_json::{Value, json};

use super::resources::ResourceDef;

/// A failed API request, as the apiserver reports it: a `Status` object with `code`, `reason`
/// and `message`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason`: NotFound, AlreadyExists, Conflict, Invalid, BadRequest, Expired, …
    pub reason: String,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, when the apiserver would send some.
    pub details: Option<Value>,
}

impl ApiError {
    /// An error with a code, reason and message.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }

    /// An error for `code` with the reason the apiserver uses for it (for injected failures).
    pub fn from_code(code: u16, message: impl Into<String>) -> Self {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            409 => "Conflict",
            410 => "Expired",
            415 => "UnsupportedMediaType",
            422 => "Invalid",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "InternalError",
        };
        Self::new(code, reason, message)
    }

    fn with_details(mut self, res: &ResourceDef, name: &str) -> Self {
        let mut details = json!({"name": name, "kind": res.gvr.resource});
        if !res.gvr.group.is_empty() {
            details["group"] = json!(res.gvr.group);
        }
        self.details = Some(details);
        self
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub(crate) fn not_found(res: &ResourceDef, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} {name:?} not found", res.qualified()),
        )
        .with_details(res, name)
    }

    pub(crate) fn already_exists(res: &ResourceDef, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", res.qualified()),
        )
        .with_details(res, name)
    }

    pub(crate) fn conflict(res: &ResourceDef, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {why}",
                res.qualified()
            ),
        )
        .with_details(res, name)
    }

    pub(crate) fn stale(res: &ResourceDef, name: &str) -> Self {
        Self::conflict(
            res,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid with one cause per `(field, message)`.
    pub(crate) fn invalid(res: &ResourceDef, name: &str, causes: &[(String, String)]) -> Self {
        let texts: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let summary = if texts.len() == 1 {
            texts.concat()
        } else {
            format!("[{}]", texts.join(", "))
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(|(field, message)| {
                let reason = if message.starts_with("Required value") {
                    "FieldValueRequired"
                } else if message.starts_with("Forbidden") {
                    "FieldValueForbidden"
                } else if message.starts_with("Duplicate") {
                    "FieldValueDuplicate"
                } else {
                    "FieldValueInvalid"
                };
                json!({"reason": reason, "message": message, "field": field})
            })
            .collect();
        let mut details = json!({"name": name, "kind": res.kind, "causes": causes});
        if !res.gvr.group.is_empty() {
            details["group"] = json!(res.gvr.group);
        }
        ApiError {
            code: 422,
            reason: "Invalid".into(),
            message: format!("{} {name:?} is invalid: {summary}", res.kind),
            details: Some(details),
        }
    }

    pub(crate) fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// The `Status` object the apiserver sends for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// Errors starting the server or building clients for it.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding 127.0.0.1:0 failed.
    #[error("binding the test API server: {0}")]
    Bind(#[source] std::io::Error),
    /// Writing a kubeconfig file failed.
    #[error("writing kubeconfig {path}: {source}")]
    WriteKubeconfig {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig could not be loaded.
    #[error("loading kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// The kube client could not be built.
    #[error("building the kube client: {0}")]
    Client(#[from] kube::Error),
}
