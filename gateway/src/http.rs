//! The HTTP side: `/healthz`, `/readyz`, `/metrics` and the stored logs and artifacts under
//! `/artifacts/...` (the target of each job's `status.url` when storage is local).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bosun_agents::kubernetes::{BuildClusters, ClusterHealth};
use bosun_gateway_store::JobStore;

use crate::metrics::Metrics;

#[derive(Clone)]
struct AppState {
    reporter_metrics: Option<bosun_reporters::CrierMetrics>,
    clusters: BuildClusters,
    store: Arc<dyn JobStore>,
    metrics: Metrics,
    artifacts_dir: PathBuf,
}

/// The HTTP routes.
pub fn router(
    store: Arc<dyn JobStore>,
    metrics: Metrics,
    artifacts_dir: PathBuf,
    clusters: BuildClusters,
    reporter_metrics: Option<bosun_reporters::CrierMetrics>,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .route(
            "/artifacts/",
            get(|s: State<AppState>| artifact(s, UrlPath(String::new()))),
        )
        .route("/artifacts/{*path}", get(artifact))
        .with_state(AppState {
            reporter_metrics,
            clusters,
            store,
            metrics,
            artifacts_dir,
        })
}

/// Ready when the store answers. Each build cluster's health is listed too; an unreachable
/// cluster does not make the gateway unready (jobs for other clusters still run).
async fn readyz(State(state): State<AppState>) -> Response {
    let mut body = String::new();
    let store_ok = match state.store.current_revision().await {
        Ok(_) => {
            body.push_str("store: ok\n");
            true
        }
        Err(e) => {
            body.push_str(&format!("store: unavailable: {e}\n"));
            false
        }
    };
    if !state.clusters.is_empty() {
        state
            .clusters
            .check_health(std::time::Duration::from_secs(2))
            .await;
    }
    for (alias, health) in state.clusters.health() {
        let line = match health {
            ClusterHealth::Reachable => "ok".to_owned(),
            ClusterHealth::Unknown => "not checked yet".to_owned(),
            ClusterHealth::Unreachable(e) => format!("unreachable: {e}"),
        };
        body.push_str(&format!("cluster {alias}: {line}\n"));
    }
    let code = if store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body).into_response()
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        format!(
            "{}{}",
            state.metrics.render(),
            state
                .reporter_metrics
                .as_ref()
                .map(|m| m.render())
                .unwrap_or_default()
        ),
    )
        .into_response()
}

/// Joins a URL path under `root`, refusing `..` and absolute components.
fn safe_join(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    for comp in Path::new(rel).components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => "application/json",
        Some("txt" | "log") => "text/plain; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("xml") => "application/xml",
        _ => "application/octet-stream",
    }
}

async fn artifact(State(state): State<AppState>, UrlPath(rel): UrlPath<String>) -> Response {
    let Some(path) = safe_join(&state.artifacts_dir, &rel) else {
        return (StatusCode::BAD_REQUEST, "invalid path\n").into_response();
    };
    match tokio::fs::metadata(&path).await {
        Ok(m) if m.is_dir() => {
            let mut entries = Vec::new();
            if let Ok(mut rd) = tokio::fs::read_dir(&path).await {
                while let Ok(Some(e)) = rd.next_entry().await {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let is_dir = e.file_type().await.map(|t| t.is_dir()).unwrap_or(false);
                    entries.push(if is_dir { format!("{name}/") } else { name });
                }
            }
            entries.sort();
            let items: String = entries
                .iter()
                .map(|e| {
                    let esc = html_escape(e);
                    format!("<li><a href=\"{esc}\">{esc}</a></li>")
                })
                .collect();
            Html(format!(
                "<!doctype html><title>{0}</title><h1>/artifacts/{0}</h1><ul>{items}</ul>",
                html_escape(&rel)
            ))
            .into_response()
        }
        Ok(_) => match tokio::fs::read(&path).await {
            Ok(bytes) => ([(header::CONTENT_TYPE, content_type(&path))], bytes).into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        },
        Err(_) => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
