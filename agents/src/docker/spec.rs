//! From a ProwJob's pod spec to what the Docker container needs (no IO).

use std::collections::HashMap;

use bosun_proto::ProwJob;

use crate::agent::AgentError;

/// Where the job's logs directory is mounted (as in a decorated Prow pod).
pub(crate) const LOGS_MOUNT: &str = "/logs";
/// Where the static entrypoint is mounted.
pub(crate) const ENTRYPOINT_PATH: &str = "/tools/entrypoint";
/// Where the clones are mounted (GOPATH, as in a decorated Prow pod).
pub(crate) const CODE_MOUNT: &str = "/home/prow/go";

/// Where a mount comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MountSource {
    /// `hostPath`: a bind mount of this host path.
    HostPath(String),
    /// `emptyDir`: a Docker volume with this pod-volume name (the agent names the volume).
    EmptyDir(String),
    /// `emptyDir` with `medium: Memory`: a tmpfs.
    Tmpfs,
}

/// One volume mount of the test container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedMount {
    pub(crate) source: MountSource,
    pub(crate) target: String,
    pub(crate) read_only: bool,
}

/// What the job's first container asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ContainerPlan {
    pub(crate) image: String,
    /// `command` (may be empty: then the image's entrypoint is used).
    pub(crate) command: Vec<String>,
    /// `args` (may be empty: then, without a command, the image's cmd is used).
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) working_dir: Option<String>,
    /// Memory limit in bytes.
    pub(crate) memory: Option<i64>,
    /// CPU limit in billionths of a CPU.
    pub(crate) nano_cpus: Option<i64>,
    pub(crate) host_network: bool,
    pub(crate) mounts: Vec<PlannedMount>,
    /// `uid[:gid]` from the security context.
    pub(crate) user: Option<String>,
}

fn invalid(msg: impl Into<String>) -> AgentError {
    AgentError::InvalidJob(format!("docker agent: {}", msg.into()))
}

/// Reads the job's first container and pod-level settings; every unsupported feature is an
/// `InvalidJob` naming the field.
pub(crate) fn plan(job: &ProwJob) -> Result<ContainerPlan, AgentError> {
    let pod = job
        .spec
        .pod_spec
        .as_ref()
        .ok_or_else(|| invalid("the job has no pod_spec"))?;
    let c = pod
        .containers
        .first()
        .ok_or_else(|| invalid("pod_spec has no containers"))?;
    let image = c.image.clone().unwrap_or_default();
    if image.trim().is_empty() {
        return Err(invalid(format!(
            "spec.pod_spec.containers[0].image: container {:?} has no image",
            c.name
        )));
    }
    let command = c.command.clone().unwrap_or_default();
    let args = c.args.clone().unwrap_or_default();

    let mut env = Vec::new();
    for (i, e) in c.env.iter().flatten().enumerate() {
        if e.value_from.is_some() {
            return Err(invalid(format!(
                "spec.pod_spec.containers[0].env[{i}] ({}): valueFrom is not supported (only value)",
                e.name
            )));
        }
        env.push((e.name.clone(), e.value.clone().unwrap_or_default()));
    }

    let mut memory = None;
    let mut nano_cpus = None;
    if let Some(limits) = c.resources.as_ref().and_then(|r| r.limits.as_ref()) {
        for (name, q) in limits {
            match name.as_str() {
                "memory" => {
                    let bytes = parse_quantity(&q.0).ok_or_else(|| {
                        invalid(format!(
                            "spec.pod_spec.containers[0].resources.limits.memory: {:?} is not a quantity",
                            q.0
                        ))
                    })?;
                    memory = Some(bytes.ceil() as i64);
                }
                "cpu" => {
                    let cpus = parse_quantity(&q.0).ok_or_else(|| {
                        invalid(format!(
                            "spec.pod_spec.containers[0].resources.limits.cpu: {:?} is not a quantity",
                            q.0
                        ))
                    })?;
                    nano_cpus = Some((cpus * 1e9).ceil() as i64);
                }
                // ephemeral-storage, hugepages, devices: nothing Docker enforces portably.
                _ => {}
            }
        }
    }

    let volumes: HashMap<&str, _> = pod
        .volumes
        .iter()
        .flatten()
        .map(|v| (v.name.as_str(), v))
        .collect();
    let mut mounts = Vec::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let field = format!("spec.pod_spec.containers[0].volumeMounts[{i}]");
        let target = m.mount_path.clone();
        if !target.starts_with('/') {
            return Err(invalid(format!(
                "{field}.mountPath: {target:?} is not an absolute path"
            )));
        }
        for reserved in [LOGS_MOUNT, CODE_MOUNT, "/tools"] {
            if target == reserved || target.starts_with(&format!("{reserved}/")) {
                return Err(invalid(format!(
                    "{field}.mountPath: {target:?} is reserved for bosun's own mounts"
                )));
            }
        }
        let v = volumes.get(m.name.as_str()).ok_or_else(|| {
            invalid(format!(
                "{field}: no volume {:?} in spec.pod_spec.volumes",
                m.name
            ))
        })?;
        let sub_path = m.sub_path.clone().filter(|s| !s.is_empty());
        let source = if let Some(hp) = &v.host_path {
            if !hp.path.starts_with('/') {
                return Err(invalid(format!(
                    "volume {:?}: hostPath {:?} is not an absolute path",
                    v.name, hp.path
                )));
            }
            let path = match &sub_path {
                Some(sp) if sp.split('/').any(|p| p == "..") => {
                    return Err(invalid(format!(
                        "{field}.subPath: {sp:?} must not contain .."
                    )));
                }
                Some(sp) => format!("{}/{}", hp.path.trim_end_matches('/'), sp),
                None => hp.path.clone(),
            };
            MountSource::HostPath(path)
        } else if let Some(ed) = &v.empty_dir {
            if sub_path.is_some() {
                return Err(invalid(format!(
                    "{field}.subPath: not supported for emptyDir volumes"
                )));
            }
            if ed.medium.as_deref() == Some("Memory") {
                MountSource::Tmpfs
            } else {
                MountSource::EmptyDir(v.name.clone())
            }
        } else {
            return Err(invalid(format!(
                "volume {:?}: only hostPath and emptyDir volumes are supported",
                v.name
            )));
        };
        mounts.push(PlannedMount {
            source,
            target,
            read_only: m.read_only.unwrap_or(false),
        });
    }

    let user = {
        let csc = c.security_context.as_ref();
        let psc = pod.security_context.as_ref();
        let uid = csc
            .and_then(|s| s.run_as_user)
            .or_else(|| psc.and_then(|s| s.run_as_user));
        let gid = csc
            .and_then(|s| s.run_as_group)
            .or_else(|| psc.and_then(|s| s.run_as_group));
        match (uid, gid) {
            (Some(u), Some(g)) => Some(format!("{u}:{g}")),
            (Some(u), None) => Some(u.to_string()),
            (None, Some(g)) => Some(format!("0:{g}")),
            (None, None) => None,
        }
    };

    Ok(ContainerPlan {
        image,
        command,
        args,
        env,
        working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
        memory,
        nano_cpus,
        host_network: pod.host_network.unwrap_or(false),
        mounts,
        user,
    })
}

/// The test command: Kubernetes' rules (command replaces the image's entrypoint, args replace
/// its cmd), resolved against the image's own entrypoint and cmd.
pub(crate) fn resolve_argv(
    plan: &ContainerPlan,
    image_entrypoint: &[String],
    image_cmd: &[String],
) -> Result<Vec<String>, AgentError> {
    let argv: Vec<String> = if !plan.command.is_empty() {
        plan.command.iter().chain(&plan.args).cloned().collect()
    } else if !plan.args.is_empty() {
        image_entrypoint.iter().chain(&plan.args).cloned().collect()
    } else {
        image_entrypoint.iter().chain(image_cmd).cloned().collect()
    };
    if argv.first().is_none_or(|a| a.is_empty()) {
        return Err(invalid(format!(
            "spec.pod_spec.containers[0]: neither the container nor image {} has a command to run",
            plan.image
        )));
    }
    Ok(argv)
}

/// A Kubernetes quantity (`512Mi`, `1G`, `500m`, `2`, `1e3`) as a number.
pub(crate) fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    if num.is_empty() {
        return None;
    }
    let value: f64 = num.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        "Pi" => 1024.0f64.powi(5),
        "Ei" => 1024.0f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    let v = value * factor;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// A name Docker accepts for containers and volumes (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
pub(crate) fn docker_name(parts: &[&str]) -> String {
    let joined = parts.join("-");
    let mut out: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        out.insert(0, 'x');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(pod_spec: serde_json::Value) -> ProwJob {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "prow.k8s.io/v1",
            "kind": "ProwJob",
            "metadata": {"name": "pj"},
            "spec": {"type": "periodic", "agent": "docker", "job": "j", "pod_spec": pod_spec},
            "status": {"state": "pending", "build_id": "1"}
        }))
        .expect("prowjob")
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("512Mi"), Some(512.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("1.5"), Some(1.5));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("abc"), None);
        assert_eq!(parse_quantity("1Zi"), None);
        assert_eq!(parse_quantity("-1"), None);
    }

    #[test]
    fn full_container() {
        let j = job(serde_json::json!({
            "hostNetwork": true,
            "securityContext": {"runAsUser": 1000},
            "volumes": [
                {"name": "cache", "emptyDir": {}},
                {"name": "mem", "emptyDir": {"medium": "Memory"}},
                {"name": "data", "hostPath": {"path": "/srv/data"}}
            ],
            "containers": [{
                "name": "test", "image": "busybox", "command": ["sh", "-c"], "args": ["true"],
                "workingDir": "/work",
                "env": [{"name": "A", "value": "1"}, {"name": "B"}],
                "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}, "requests": {"cpu": "1"}},
                "volumeMounts": [
                    {"name": "cache", "mountPath": "/cache"},
                    {"name": "mem", "mountPath": "/mem"},
                    {"name": "data", "mountPath": "/data", "readOnly": true, "subPath": "x"}
                ]
            }]
        }));
        let p = plan(&j).expect("plan");
        assert_eq!(p.image, "busybox");
        assert_eq!(
            resolve_argv(&p, &[], &[]).expect("argv"),
            vec!["sh", "-c", "true"]
        );
        assert_eq!(
            p.env,
            vec![("A".into(), "1".into()), ("B".into(), String::new())]
        );
        assert_eq!(p.working_dir.as_deref(), Some("/work"));
        assert_eq!(p.memory, Some(64 * 1024 * 1024));
        assert_eq!(p.nano_cpus, Some(500_000_000));
        assert!(p.host_network);
        assert_eq!(p.user.as_deref(), Some("1000"));
        assert_eq!(
            p.mounts,
            vec![
                PlannedMount {
                    source: MountSource::EmptyDir("cache".into()),
                    target: "/cache".into(),
                    read_only: false
                },
                PlannedMount {
                    source: MountSource::Tmpfs,
                    target: "/mem".into(),
                    read_only: false
                },
                PlannedMount {
                    source: MountSource::HostPath("/srv/data/x".into()),
                    target: "/data".into(),
                    read_only: true
                },
            ]
        );
    }

    #[test]
    fn argv_falls_back_to_the_image() {
        let j =
            job(serde_json::json!({"containers": [{"name": "t", "image": "i", "args": ["x"]}]}));
        let p = plan(&j).expect("plan");
        assert_eq!(
            resolve_argv(&p, &["/ep".into()], &["cmd".into()]).expect("argv"),
            vec!["/ep", "x"]
        );
        let j = job(serde_json::json!({"containers": [{"name": "t", "image": "i"}]}));
        let p = plan(&j).expect("plan");
        assert_eq!(
            resolve_argv(&p, &["/ep".into()], &["cmd".into()]).expect("argv"),
            vec!["/ep", "cmd"]
        );
        let err = resolve_argv(&p, &[], &[]).expect_err("nothing to run");
        assert!(err.to_string().contains("has a command to run"), "{err}");
    }

    #[test]
    fn unsupported_things_are_named() {
        let cases = [
            (
                serde_json::json!({"containers": [{"name": "t"}]}),
                "containers[0].image",
            ),
            (
                serde_json::json!({"containers": [{"name": "t", "image": "i", "env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}),
                "env[0] (S): valueFrom",
            ),
            (
                serde_json::json!({"containers": [{"name": "t", "image": "i", "resources": {"limits": {"memory": "lots"}}}]}),
                "limits.memory",
            ),
            (
                serde_json::json!({"volumes": [{"name": "s", "secret": {"secretName": "x"}}], "containers": [{"name": "t", "image": "i", "volumeMounts": [{"name": "s", "mountPath": "/s"}]}]}),
                "only hostPath and emptyDir",
            ),
            (
                serde_json::json!({"containers": [{"name": "t", "image": "i", "volumeMounts": [{"name": "nope", "mountPath": "/s"}]}]}),
                "no volume \"nope\"",
            ),
            (
                serde_json::json!({"volumes": [{"name": "c", "emptyDir": {}}], "containers": [{"name": "t", "image": "i", "volumeMounts": [{"name": "c", "mountPath": "/logs/x"}]}]}),
                "reserved",
            ),
        ];
        for (spec, want) in cases {
            let err = plan(&job(spec.clone())).expect_err("invalid");
            assert!(matches!(err, AgentError::InvalidJob(_)), "{spec}: {err:?}");
            assert!(err.to_string().contains(want), "{spec}: {err}");
        }
    }

    #[test]
    fn docker_names() {
        assert_eq!(docker_name(&["bosun", "a/b c"]), "bosun-a-b-c");
        assert_eq!(docker_name(&["-x"]), "x-x");
    }
}
