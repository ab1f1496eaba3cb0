//! Tekton for tests: the upstream PipelineRun CRD schema (read in place from
//! `../shared/conformance/tekton-data`) and [`TektonController`], which plays Tekton's
//! controller on a [`KubeApiServer`]: it starts runs, creates their TaskRuns and step pods,
//! writes step logs, and ends runs (success, failure, cancellation when `spec.status` asks).

use serde_json::{Value, json};

use crate::kube_api::{ApiError, Gvr, KubeApiServer};

/// The upstream CRD file, relative to the shared conformance directory.
pub const PIPELINERUN_CRD: &str = "tekton-data/config/300-crds/300-pipelinerun.yaml";

/// The upstream PipelineRun CRD.
pub fn pipelinerun_crd() -> Value {
    crate::read_yaml(PIPELINERUN_CRD)
}

/// The `openAPIV3Schema` of the CRD's `v1` version.
pub fn pipelinerun_v1_schema() -> Value {
    let crd = pipelinerun_crd();
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|versions| versions.iter().find(|v| v["name"] == "v1"))
        .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
        .cloned()
        .unwrap_or_else(|| panic!("{PIPELINERUN_CRD} has no v1 openAPIV3Schema"))
}

/// Checks `object` against the CRD's v1 schema, as the API server would; the errors name the
/// offending paths.
pub fn validate_pipelinerun_v1(object: &Value) -> Result<(), Vec<String>> {
    let schema = pipelinerun_v1_schema();
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| vec![format!("the upstream schema does not compile: {e}")])?;
    let errors: Vec<String> = validator
        .iter_errors(object)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Plays the Tekton controller for PipelineRuns on one test API server.
pub struct TektonController<'a> {
    server: &'a KubeApiServer,
    namespace: String,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl<'a> TektonController<'a> {
    /// A controller for runs in `namespace`.
    pub fn new(server: &'a KubeApiServer, namespace: &str) -> Self {
        Self {
            server,
            namespace: namespace.to_owned(),
        }
    }

    /// The PipelineRun, if it exists.
    pub fn run(&self, name: &str) -> Option<Value> {
        self.server.get(Gvr::PIPELINERUNS, &self.namespace, name)
    }

    /// Marks the run started: `startTime` and `Succeeded: Unknown (Running)`.
    pub fn start(&self, name: &str) -> Result<Value, ApiError> {
        self.server.patch_status(
            Gvr::PIPELINERUNS,
            &self.namespace,
            name,
            &json!({
                "startTime": now(),
                "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running",
                                "message": "Tasks Completed: 0 (Failed: 0, Cancelled 0), Skipped: 0",
                                "lastTransitionTime": now()}],
            }),
        )
    }

    /// Creates the TaskRun of pipeline task `task` with its pod (containers `step-<step>`,
    /// running), and lists it in the run's `childReferences`. Returns the pod's name.
    pub fn run_task(&self, run: &str, task: &str, steps: &[&str]) -> Result<String, ApiError> {
        let task_run = format!("{run}-{task}");
        let pod = format!("{task_run}-pod");
        let labels = json!({
            "tekton.dev/pipelineRun": run,
            "tekton.dev/pipelineTask": task,
            "tekton.dev/taskRun": task_run,
        });
        let containers: Vec<Value> = steps
            .iter()
            .map(|s| json!({"name": format!("step-{s}"), "image": "busybox"}))
            .collect();
        self.server.create(
            Gvr::PODS,
            &self.namespace,
            json!({"metadata": {"name": pod, "labels": labels}, "spec": {"containers": containers}}),
        )?;
        self.server
            .set_pod_phase(&self.namespace, &pod, "Running")?;
        self.server.create(
            Gvr::TASKRUNS,
            &self.namespace,
            json!({"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
                   "metadata": {"name": task_run, "labels": labels},
                   "spec": {"taskRef": {"name": task}}}),
        )?;
        let step_states: Vec<Value> = steps
            .iter()
            .map(|s| json!({"name": s, "container": format!("step-{s}")}))
            .collect();
        self.server.patch_status(
            Gvr::TASKRUNS,
            &self.namespace,
            &task_run,
            &json!({"podName": pod, "startTime": now(), "steps": step_states,
                    "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running"}]}),
        )?;
        let mut children = self
            .run(run)
            .and_then(|r| r.pointer("/status/childReferences").cloned())
            .and_then(|c| c.as_array().cloned())
            .unwrap_or_default();
        children.push(json!({"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": task_run, "pipelineTaskName": task}));
        self.server.patch_status(
            Gvr::PIPELINERUNS,
            &self.namespace,
            run,
            &json!({"childReferences": children}),
        )?;
        Ok(pod)
    }

    /// Writes to a step's log.
    pub fn log(&self, pod: &str, step: &str, text: &str) {
        self.server.append_log(
            &self.namespace,
            pod,
            &format!("step-{step}"),
            text.as_bytes(),
        );
    }

    /// Ends a task's pod (its logs end) with `phase` (`Succeeded` / `Failed`).
    pub fn end_task(&self, pod: &str, phase: &str) -> Result<Value, ApiError> {
        self.server.set_pod_phase(&self.namespace, pod, phase)
    }

    /// Ends the run: `Succeeded` condition `status` (`True` / `False`) with reason and message,
    /// and `completionTime`.
    pub fn finish(
        &self,
        name: &str,
        status: &str,
        reason: &str,
        message: &str,
    ) -> Result<Value, ApiError> {
        self.server.patch_status(
            Gvr::PIPELINERUNS,
            &self.namespace,
            name,
            &json!({
                "completionTime": now(),
                "conditions": [{"type": "Succeeded", "status": status, "reason": reason,
                                "message": message, "lastTransitionTime": now()}],
            }),
        )
    }

    /// Whether the run's `spec.status` asks for cancellation (`Cancelled` or
    /// `CancelledRunFinally`).
    pub fn cancel_requested(&self, name: &str) -> bool {
        self.run(name)
            .and_then(|r| {
                r.pointer("/spec/status")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .is_some_and(|s| s.starts_with("Cancelled"))
    }

    /// Confirms a requested cancellation as Tekton does (`False`, reason `Cancelled`).
    pub fn confirm_cancel(&self, name: &str) -> Result<Value, ApiError> {
        self.finish(
            name,
            "False",
            "Cancelled",
            &format!("PipelineRun \"{name}\" was cancelled"),
        )
    }
}
