//! The final report of a command: what `--output json` ends with and what the GitHub step
//! summary shows. Its JSON shape is pinned by docs/report.schema.json.

use serde::Serialize;

use crate::event::Phase;
use crate::task::TaskOutcome;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskReport {
    pub task_arn: String,
    pub attached: bool,
    pub attempt: u32,
    pub exit_code: Option<i32>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub outcome: Option<TaskOutcome>,
    pub duration_ms: u64,
    pub log_lines: u64,
    pub console_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentReport {
    pub id: Option<String>,
    pub task_definition: String,
    pub rollout_state: Option<String>,
    pub reason: Option<String>,
    pub rolled_back_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseTiming {
    pub phase: Phase,
    pub duration_ms: u64,
    pub ok: bool,
}

/// The release lock as this release held it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockReport {
    /// The ledger (task-definition family).
    pub family: String,
    /// This release's entry (task-definition revision ARN).
    pub entry: String,
    pub waited_ms: u64,
}

/// One service of a release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceReport {
    pub service: String,
    /// What was live when the release started.
    pub previous_task_definition: Option<String>,
    pub task_definition: Option<String>,
    pub revision_reused: bool,
    /// The containers that got the image: name, image before, image after.
    pub containers: Vec<ContainerChange>,
    pub deployment: Option<DeploymentReport>,
    pub rollback: Option<DeploymentReport>,
    /// `completed`, `already_live`, `updated` (not followed), `failed`, `rolled_back`,
    /// `timed_out`, `replaced`, or `not_deployed` (the release ended before its turn).
    pub outcome: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerChange {
    pub name: String,
    pub from: String,
    pub to: String,
}

/// What a release did. Fields the release never reached stay `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub release_id: Option<String>,
    pub cluster: String,
    pub service: Option<String>,
    pub image: Option<String>,
    pub container: Option<String>,
    /// `succeeded`, or the failure class (the same names as the exit code table).
    pub result: String,
    pub exit_code: i32,
    pub message: Option<String>,
    pub previous_task_definition: Option<String>,
    pub task_definition: Option<String>,
    pub revision_reused: bool,
    pub lock: Option<LockReport>,
    /// Every service of the release (the fields above are the first one's).
    pub services: Vec<ServiceReport>,
    pub migration: Option<TaskReport>,
    pub deployment: Option<DeploymentReport>,
    pub rollback: Option<DeploymentReport>,
    pub post_deploy: Option<TaskReport>,
    pub task: Option<TaskReport>,
    /// A preset's plan, classified, as its migration task reported it (`None` without a preset).
    pub migration_plan: Option<crate::preset::MigrationPlan>,
    /// A preset's contract phase task.
    pub contract: Option<TaskReport>,
    /// What is left for `shipmate finish` when deploy returned at `deployed`: `deployment`
    /// (ECS's bake time and clean-up), `post_deploy` (the post-deploy command).
    pub pending: Vec<String>,
    /// The files `--migrate-only` wrote (the CLI writes them and fills this).
    pub artifacts: Vec<String>,
    /// Their contents, per service, for the CLI to write.
    #[serde(skip)]
    pub codedeploy: Vec<crate::codedeploy::Artifacts>,
    pub phases: Vec<PhaseTiming>,
    pub retries: u32,
    pub duration_ms: u64,
    pub service_console_url: Option<String>,
}

/// The region of an ARN (`arn:aws:ecs:<region>:…`).
pub fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|region| !region.is_empty())
}

/// The ECS console page of a service.
pub fn service_console_url(service_arn: &str, cluster: &str, service: &str) -> Option<String> {
    let region = arn_region(service_arn)?;
    Some(format!(
        "https://{region}.console.aws.amazon.com/ecs/v2/clusters/{cluster}/services/{service}/deployments?region={region}"
    ))
}

/// The ECS console page of a task.
pub fn task_console_url(task_arn: &str, cluster: &str) -> Option<String> {
    let region = arn_region(task_arn)?;
    let id = crate::task::task_id(task_arn);
    Some(format!(
        "https://{region}.console.aws.amazon.com/ecs/v2/clusters/{cluster}/tasks/{id}/configuration?region={region}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_urls() {
        assert_eq!(
            task_console_url("arn:aws:ecs:eu-west-1:123:task/prod/abc123", "prod").unwrap(),
            "https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/prod/tasks/abc123/configuration?region=eu-west-1"
        );
        assert_eq!(task_console_url("not-an-arn", "prod"), None);
        assert!(
            service_console_url("arn:aws:ecs:us-east-1:1:service/prod/web", "prod", "web")
                .unwrap()
                .contains("/services/web/")
        );
    }
}
