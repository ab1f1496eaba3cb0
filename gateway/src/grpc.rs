//! The gRPC service `bosun.v1.JobGateway`.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::Arc;

use bosun_gateway_store::{CreateOutcome, ListFilter, StoreError, StoredJob, WatchEventKind};
use bosun_proto::api::job_gateway_server::JobGateway;
use bosun_proto::api::{
    AbortRequest, GetRequest, Job, ListRequest, ListResponse, LogChunk, LogsRequest, RerunRequest,
    SubmitRequest, SubmitResponse, TriggerRequest, WatchEvent, WatchRequest, watch_event,
};
use bosun_proto::parse::{ProwJobParseError, parse_prowjob};
use bosun_proto::{ProwJob, ProwJobState, ProwJobStatus};
use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::dispatcher::{Dispatcher, TransitionError};
use crate::metrics::Metrics;
use crate::trigger::{TriggerError, Triggerer};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The service implementation.
#[derive(Clone)]
pub struct GatewayService {
    dispatcher: Dispatcher,
    triggerer: Arc<Triggerer>,
    metrics: Metrics,
    /// Namespace new jobs get when they name none (`prowjob_namespace`).
    namespace: String,
    shutdown: tokio_util::sync::CancellationToken,
}

impl GatewayService {
    /// A service over a dispatcher.
    pub fn new(
        dispatcher: Dispatcher,
        triggerer: Arc<Triggerer>,
        metrics: Metrics,
        namespace: String,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            dispatcher,
            triggerer,
            metrics,
            namespace,
            shutdown,
        }
    }

    async fn create(&self, job: ProwJob, key: &str) -> Result<SubmitResponse, Status> {
        let key = (!key.is_empty()).then(|| key.to_owned());
        let outcome = self
            .dispatcher
            .store()
            .create(job, key)
            .await
            .map_err(store_status)?;
        let (stored, existing) = match outcome {
            CreateOutcome::Created(s) => {
                self.metrics.job_submitted();
                (s, false)
            }
            CreateOutcome::Existing(s) => (s, true),
        };
        Ok(SubmitResponse {
            job: Some(to_api(&stored)),
            existing,
        })
    }
}

/// Converts a stored job to its wire form.
pub fn to_api(stored: &StoredJob) -> Job {
    Job {
        name: stored.job.name().to_owned(),
        revision: stored.revision,
        prowjob_json: serde_json::to_string(&stored.job).unwrap_or_default(),
    }
}

fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::NotFound { .. } => Status::not_found(e.to_string()),
        StoreError::AlreadyExists { .. } => Status::already_exists(e.to_string()),
        StoreError::Conflict { .. } => Status::aborted(e.to_string()),
        StoreError::Invalid(_) => Status::invalid_argument(e.to_string()),
        StoreError::Compacted { .. } => Status::out_of_range(e.to_string()),
        StoreError::Closed => Status::unavailable(e.to_string()),
        _ => Status::unavailable(format!("job store unavailable: {e}")),
    }
}

fn transition_status(e: TransitionError) -> Status {
    match e {
        TransitionError::NotFound(_) => Status::not_found(e.to_string()),
        TransitionError::AlreadyComplete { .. } => Status::failed_precondition(e.to_string()),
        TransitionError::Unsupported(_) => Status::failed_precondition(e.to_string()),
        TransitionError::Store(s) => store_status(s),
    }
}

fn parse_status(e: ProwJobParseError) -> Status {
    Status::invalid_argument(e.to_string())
}

/// Kubernetes object-name rule (DNS subdomain).
fn valid_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// Makes a submitted ProwJob ready to store, the way `pjutil.NewProwJob` would have built it:
/// a fresh name when missing, Prow's labels and annotations (the job's own win), a reset
/// status (`triggered`, start time now).
pub fn prepare_submitted(mut job: ProwJob, namespace: &str) -> Result<ProwJob, Status> {
    match job.metadata.name.as_deref() {
        None | Some("") => job.metadata.name = Some(bosun_proto::new_job_name()),
        Some(n) if !valid_object_name(n) => {
            return Err(Status::invalid_argument(format!(
                "metadata.name: {n:?} is not a valid name (lowercase letters, digits, '-' and '.', at most 253 characters)"
            )));
        }
        Some(_) => {}
    }
    if !job
        .spec
        .job
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' || b == b'/')
    {
        return Err(Status::invalid_argument(format!(
            "spec.job: {:?} is not a valid job name (letters, digits, '-', '.', '_')",
            job.spec.job
        )));
    }
    if job.metadata.namespace.as_deref().unwrap_or("").is_empty() {
        job.metadata.namespace = Some(namespace.to_owned());
    }
    let own_labels: BTreeMap<String, String> = job.metadata.labels.take().unwrap_or_default();
    let own_annotations: BTreeMap<String, String> =
        job.metadata.annotations.take().unwrap_or_default();
    let (labels, annotations) = bosun_proto::labels::labels_and_annotations_for_spec(
        &job.spec,
        &own_labels,
        &own_annotations,
    );
    job.metadata.labels = Some(labels);
    job.metadata.annotations = Some(annotations);
    job.metadata.resource_version = None;
    job.metadata.uid = None;
    let initial = match job.status.as_ref().map(|s| s.state) {
        Some(ProwJobState::Scheduling) => ProwJobState::Scheduling,
        _ => ProwJobState::Triggered,
    };
    job.status = Some(ProwJobStatus {
        state: initial,
        start_time: Some(crate::dispatcher::now()),
        ..Default::default()
    });
    Ok(job)
}

fn matches_watch(req: &WatchRequest, job: &ProwJob) -> bool {
    (req.name.is_empty() || job.name() == req.name)
        && (req.job.is_empty() || job.spec.job == req.job)
}

fn parse_enum<T: std::str::FromStr>(field: &str, value: &str) -> Result<Option<T>, Status>
where
    T::Err: std::fmt::Display,
{
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|e| Status::invalid_argument(format!("{field}: {e}")))
}

#[tonic::async_trait]
impl JobGateway for GatewayService {
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let req = request.into_inner();
        if req.prowjob.len() > 4 * 1024 * 1024 {
            return Err(Status::invalid_argument("prowjob: larger than 4 MiB"));
        }
        let job = parse_prowjob(&req.prowjob, "prowjob").map_err(parse_status)?;
        let job = prepare_submitted(job, &self.namespace)?;
        Ok(Response::new(self.create(job, &req.idempotency_key).await?))
    }

    async fn trigger(
        &self,
        request: Request<TriggerRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let req = request.into_inner();
        let key = req.idempotency_key.clone();
        let job = self.triggerer.build(&req).map_err(|e| match e {
            TriggerError::NoConfig => Status::failed_precondition(e.to_string()),
            TriggerError::NotFound(_) => Status::not_found(e.to_string()),
            TriggerError::Invalid(_) => Status::invalid_argument(e.to_string()),
        })?;
        Ok(Response::new(self.create(job, &key).await?))
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<Job>, Status> {
        let name = request.into_inner().name;
        if name.is_empty() {
            return Err(Status::invalid_argument("name: required"));
        }
        let stored = self
            .dispatcher
            .store()
            .get(&name)
            .await
            .map_err(store_status)?;
        Ok(Response::new(to_api(&stored)))
    }

    async fn list(&self, request: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let req = request.into_inner();
        let filter = ListFilter {
            job: (!req.job.is_empty()).then(|| req.job.clone()),
            job_type: parse_enum("type", &req.r#type)?,
            state: parse_enum("state", &req.state)?,
            agent: (!req.agent.is_empty()).then(|| req.agent.clone()),
            cluster: (!req.cluster.is_empty()).then(|| req.cluster.clone()),
            org: (!req.org.is_empty()).then(|| req.org.clone()),
            repo: (!req.repo.is_empty()).then(|| req.repo.clone()),
            pull: (req.pull != 0).then_some(req.pull),
            labels: req.labels.into_iter().collect(),
            incomplete_only: false,
        };
        let token = (!req.page_token.is_empty()).then_some(req.page_token.as_str());
        let page = self
            .dispatcher
            .store()
            .list(&filter, req.page_size as usize, token)
            .await
            .map_err(store_status)?;
        Ok(Response::new(ListResponse {
            jobs: page.jobs.iter().map(to_api).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    type WatchStream = BoxStream<WatchEvent>;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let req = request.into_inner();
        let store = self.dispatcher.store().clone();
        let shutdown = self.shutdown.clone();
        let mut initial = Vec::new();
        let mut seen: HashMap<String, u64> = HashMap::new();
        let from = if req.from_revision == 0 {
            let from = store.current_revision().await.map_err(store_status)?;
            if !req.name.is_empty() {
                match store.get(&req.name).await {
                    Ok(s) => initial.push(s),
                    Err(StoreError::NotFound { .. }) => {}
                    Err(e) => return Err(store_status(e)),
                }
            } else {
                let filter = ListFilter {
                    job: (!req.job.is_empty()).then(|| req.job.clone()),
                    ..Default::default()
                };
                let mut token: Option<String> = None;
                loop {
                    let page = store
                        .list(&filter, 1000, token.as_deref())
                        .await
                        .map_err(store_status)?;
                    initial.extend(page.jobs);
                    match page.next_page_token {
                        Some(t) => token = Some(t),
                        None => break,
                    }
                }
            }
            for s in &initial {
                seen.insert(s.job.name().to_owned(), s.revision);
            }
            from
        } else {
            req.from_revision
        };
        let existing = futures::stream::iter(initial.into_iter().map(|s| {
            Ok(WatchEvent {
                kind: watch_event::Kind::Existing as i32,
                job: Some(to_api(&s)),
            })
        }));
        let live = store
            .watch(from)
            .take_until(async move { shutdown.cancelled().await })
            .filter_map(move |ev| {
                let out = match ev {
                    Err(e) => Some(Err(store_status(e))),
                    Ok(ev) => {
                        let name = ev.job.job.name();
                        let stale = seen.get(name).is_some_and(|r| *r >= ev.job.revision);
                        if stale || !matches_watch(&req, &ev.job.job) {
                            None
                        } else {
                            let kind = match ev.kind {
                                WatchEventKind::Created => watch_event::Kind::Created,
                                WatchEventKind::Updated => watch_event::Kind::Updated,
                                WatchEventKind::Deleted => watch_event::Kind::Deleted,
                            };
                            Some(Ok(WatchEvent {
                                kind: kind as i32,
                                job: Some(to_api(&ev.job)),
                            }))
                        }
                    }
                };
                futures::future::ready(out)
            });
        Ok(Response::new(Box::pin(existing.chain(live))))
    }

    async fn abort(&self, request: Request<AbortRequest>) -> Result<Response<Job>, Status> {
        let req = request.into_inner();
        if req.name.is_empty() {
            return Err(Status::invalid_argument("name: required"));
        }
        let stored = self
            .dispatcher
            .abort(&req.name, &req.reason)
            .await
            .map_err(transition_status)?;
        Ok(Response::new(to_api(&stored)))
    }

    async fn rerun(
        &self,
        request: Request<RerunRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let req = request.into_inner();
        let stored = self
            .dispatcher
            .store()
            .get(&req.name)
            .await
            .map_err(store_status)?;
        let mut job = stored.job;
        job.metadata = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(bosun_proto::new_job_name()),
            namespace: job.metadata.namespace.clone(),
            labels: job.metadata.labels.clone(),
            annotations: job.metadata.annotations.clone(),
            ..Default::default()
        };
        job.status = None;
        let job = prepare_submitted(job, &self.namespace)?;
        Ok(Response::new(self.create(job, &req.idempotency_key).await?))
    }

    type LogsStream = BoxStream<LogChunk>;

    async fn logs(
        &self,
        request: Request<LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        let req = request.into_inner();
        let stream = self
            .dispatcher
            .logs(&req.name, req.follow)
            .await
            .map_err(transition_status)?;
        let shutdown = self.shutdown.clone();
        let out = stream
            .take_until(async move { shutdown.cancelled().await })
            .map(|chunk| {
                chunk
                    .map(|data| LogChunk {
                        data: data.to_vec(),
                    })
                    .map_err(|e| Status::unavailable(e.to_string()))
            });
        Ok(Response::new(Box::pin(out)))
    }
}

/// Checks `authorization: Bearer <token>` against the configured tokens (constant time).
#[derive(Clone)]
pub struct BearerAuth {
    tokens: Arc<Vec<Vec<u8>>>,
}

impl BearerAuth {
    /// Accepts any of `tokens`; with none, every call is allowed.
    pub fn new(tokens: Vec<String>) -> Self {
        Self {
            tokens: Arc::new(tokens.into_iter().map(String::into_bytes).collect()),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if self.tokens.is_empty() {
            return Ok(request);
        }
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::as_bytes);
        match presented {
            Some(p) if self.tokens.iter().any(|t| constant_time_eq(t, p)) => Ok(request),
            Some(_) => Err(Status::unauthenticated("invalid bearer token")),
            None => Err(Status::unauthenticated(
                "missing bearer token (authorization: Bearer ...)",
            )),
        }
    }
}
