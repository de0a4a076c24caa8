//! Runs any program (`sh -c <deploy>` in the stack's `path`). Its output lines become logs;
//! `::cloud::{json}` lines report resources and progress; a file it may write holds outputs.

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command as Process;

use super::{cancelled, BoxFuture, Executor, ExecutorUpdate, Job, Updates};
use crate::event::{ErrorDetail, LogLevel, Operation, Outputs, ResourceState};
use crate::manifest::ExecutorSpec;

/// Stderr lines kept for `error.details` when the program fails.
const STDERR_TAIL: usize = 20;
const STRUCTURED_PREFIX: &str = "::cloud::";

pub struct Command;

impl Executor for Command {
    fn run(&self, job: Job, updates: Updates) -> BoxFuture {
        Box::pin(run(job, updates))
    }
}

async fn run(job: Job, updates: Updates) -> Result<Outputs, ErrorDetail> {
    let ExecutorSpec::Command { deploy, destroy } = &job.stack.executor else {
        return Err(failure(
            "EXECUTOR_MISMATCH",
            "the command executor got a stack of another kind".into(),
            None,
        ));
    };
    let script = match job.operation {
        Operation::Deploy => deploy.clone(),
        Operation::Destroy | Operation::Rollback => match destroy {
            Some(d) => d.clone(),
            None => {
                return Err(failure(
                    "NO_DESTROY_COMMAND",
                    format!("stack `{}` has no `destroy:` command", job.stack.name),
                    Some("add `destroy: <command>` to the stack in the manifest".into()),
                ))
            }
        },
    };

    let scratch = job.scratch.join(&job.stack.name);
    std::fs::create_dir_all(&scratch).map_err(|e| io_failure("creating scratch folder", e))?;
    let outputs_file = scratch.join("outputs.json");
    let deps_file = scratch.join("dependency-outputs.json");
    std::fs::write(&outputs_file, b"").map_err(|e| io_failure("creating CLOUD_OUTPUTS", e))?;
    let deps_json = serde_json::to_vec_pretty(&job.dependency_outputs).unwrap_or_default();
    std::fs::write(&deps_file, deps_json)
        .map_err(|e| io_failure("writing CLOUD_DEPENDENCY_OUTPUTS", e))?;

    let mut child = Process::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(&job.path)
        .env("CLOUD_DEPLOYMENT_ID", &job.deployment_id)
        .env("CLOUD_ENVIRONMENT", &job.environment)
        .env("CLOUD_STACK", &job.stack.name)
        .env("CLOUD_OPERATION", job.operation.as_str())
        .env("CLOUD_OUTPUTS", &outputs_file)
        .env("CLOUD_DEPENDENCY_OUTPUTS", &deps_file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: signals reach the whole tree, and a terminal's Ctrl-C reaches
        // only us, so that we decide how the stack is stopped.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            failure(
                "COMMAND_NOT_STARTED",
                format!("could not start `{script}` in {}: {e}", job.path.display()),
                None,
            )
        })?;
    let pid = child.id();

    let stdout = read_lines(child.stdout.take(), updates.clone(), LogLevel::Info, 0);
    let stderr = read_lines(
        child.stderr.take(),
        updates.clone(),
        LogLevel::Warn,
        STDERR_TAIL,
    );

    let status = tokio::select! {
        status = child.wait() => status,
        _ = job.cancel.cancelled() => {
            signal_group(pid, libc::SIGINT);
            let stopped = tokio::time::timeout(job.grace, child.wait()).await;
            let how = match stopped {
                Ok(_) => "stopped by SIGINT".to_owned(),
                Err(_) => {
                    signal_group(pid, libc::SIGKILL);
                    let _ = child.wait().await;
                    format!("killed with SIGKILL after a {}s grace period", job.grace.as_secs_f64())
                }
            };
            let _ = stdout.await;
            let tail = stderr.await.unwrap_or_default();
            let mut error = cancelled(how);
            if !tail.is_empty() {
                let detail = error.details.take().unwrap_or_default();
                error.details = Some(format!("{detail}\n{}", join_tail(&tail)));
            }
            return Err(error);
        }
    };
    let status = status.map_err(|e| io_failure("waiting for the command", e))?;
    let _ = stdout.await;
    let tail = stderr.await.unwrap_or_default();

    if !status.success() {
        return Err(failure(
            "COMMAND_FAILED",
            format!("`{script}` {}", describe(status)),
            (!tail.is_empty()).then(|| join_tail(&tail)),
        ));
    }
    read_outputs(&outputs_file)
}

fn join_tail(tail: &VecDeque<String>) -> String {
    tail.iter().cloned().collect::<Vec<_>>().join("\n")
}

fn failure(code: &str, message: String, details: Option<String>) -> ErrorDetail {
    ErrorDetail {
        code: code.into(),
        message,
        details,
    }
}

fn io_failure(what: &str, e: std::io::Error) -> ErrorDetail {
    failure("IO_ERROR", format!("{what}: {e}"), None)
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "failed".into(),
    }
}

fn signal_group(pid: Option<u32>, signal: libc::c_int) {
    if let Some(pid) = pid {
        // SAFETY: kill(2) with a negative pid signals the process group we created; no memory
        // is touched.
        unsafe {
            libc::kill(-(pid as libc::pid_t), signal);
        }
    }
}

/// Reads lines until the stream ends; keeps the last `keep` lines for error details.
fn read_lines<R: AsyncRead + Unpin + Send + 'static>(
    stream: Option<R>,
    updates: Updates,
    level: LogLevel,
    keep: usize,
) -> tokio::task::JoinHandle<VecDeque<String>> {
    tokio::spawn(async move {
        let mut tail = VecDeque::new();
        let Some(stream) = stream else { return tail };
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match line.strip_prefix(STRUCTURED_PREFIX) {
                Some(json) => match parse_structured(json) {
                    Ok(update) => updates.send(update),
                    Err(why) => updates.log(
                        LogLevel::Warn,
                        format!("ignored a malformed {STRUCTURED_PREFIX} line ({why}): {json}"),
                    ),
                },
                None => {
                    if keep > 0 {
                        if tail.len() == keep {
                            tail.pop_front();
                        }
                        tail.push_back(line.clone());
                    }
                    updates.log(level, line);
                }
            }
        }
        tail
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Structured {
    resource: Option<StructuredResource>,
    op: Option<ResourceState>,
    id: Option<String>,
    error: Option<String>,
    progress: Option<f64>,
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StructuredResource {
    #[serde(rename = "type")]
    type_: String,
    name: String,
    urn: Option<String>,
    id: Option<String>,
}

/// Parses the JSON after `::cloud::`: a resource state change or a progress report.
pub fn parse_structured(json: &str) -> Result<ExecutorUpdate, String> {
    let s: Structured = serde_json::from_str(json).map_err(|e| e.to_string())?;
    match (s.resource, s.op) {
        (Some(r), Some(state)) => Ok(ExecutorUpdate::Resource {
            state,
            urn: r.urn.unwrap_or_default(),
            type_: r.type_,
            name: r.name,
            id: s.id.or(r.id),
            error: s
                .error
                .or_else(|| (state == ResourceState::Failed).then(|| "failed".to_owned()))
                .map(|message| failure("RESOURCE_FAILED", message, None)),
        }),
        (Some(_), None) => Err("a `resource` needs an `op`".into()),
        (None, Some(_)) => Err("an `op` needs a `resource`".into()),
        (None, None) if s.progress.is_some() || s.message.is_some() => {
            Ok(ExecutorUpdate::Progress {
                percent: s.progress.map(|p| p.clamp(0.0, 100.0) as u32),
                message: s.message,
                current_resource: None,
            })
        }
        (None, None) => Err("expected `resource`+`op`, or `progress`/`message`".into()),
    }
}

fn read_outputs(file: &std::path::Path) -> Result<Outputs, ErrorDetail> {
    let text = std::fs::read_to_string(file).map_err(|e| io_failure("reading CLOUD_OUTPUTS", e))?;
    if text.trim().is_empty() {
        return Ok(Outputs::new());
    }
    serde_json::from_str::<Outputs>(&text).map_err(|e| {
        failure(
            "OUTPUTS_INVALID",
            format!("the file in CLOUD_OUTPUTS is not a JSON object: {e}"),
            Some(text.chars().take(500).collect()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_lines() {
        let r = parse_structured(
            r#"{"resource":{"type":"aws:s3/bucket:Bucket","name":"logs"},"op":"created","id":"b-1"}"#,
        )
        .unwrap();
        assert!(matches!(
            r,
            ExecutorUpdate::Resource { state: ResourceState::Created, ref id, .. } if id.as_deref() == Some("b-1")
        ));
        let p =
            parse_structured(r#"{"progress":45,"message":"Creating RDS instance..."}"#).unwrap();
        assert_eq!(
            p,
            ExecutorUpdate::Progress {
                percent: Some(45),
                message: Some("Creating RDS instance...".into()),
                current_resource: None
            }
        );
        assert!(parse_structured(r#"{"op":"created"}"#).is_err());
        assert!(parse_structured("not json").is_err());
        assert!(
            parse_structured(r#"{"resource":{"type":"t","name":"n"},"op":"exploded"}"#).is_err()
        );
    }
}
