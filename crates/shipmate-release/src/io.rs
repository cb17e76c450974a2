//! The vocabulary between the release logic and whoever executes it: the [`Command`]s it issues
//! (one AWS operation each, or a wait) and the [`Observation`]s it gets back. Plain data, no AWS
//! types: the AWS driver converts both ways, the simulated ECS of the tests answers directly.

use crate::deployment::{LifecycleHookView, ServiceDeploymentView};
use crate::event::TaskRole;
use crate::fault::Fault;
use crate::ledger::{Entry, Record};
use crate::plan::{ContainerChoice, Launch, NetworkView};
use crate::service::ServiceView;
use crate::task::TaskView;

/// A task definition as the release needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefinitionView {
    pub arn: String,
    pub family: String,
    pub revision: i32,
    pub containers: Vec<ContainerChoice>,
    /// Task-level size, as registered (`1024`, `1 vCPU`, …).
    pub cpu: Option<String>,
    pub memory: Option<String>,
    /// The role ECS uses to pull from a private registry, send awslogs and read secrets.
    pub execution_role_arn: Option<String>,
    /// `awsvpc`, `bridge`, `host` or `none` (`None`: ECS's default for the launch type).
    pub network_mode: Option<String>,
    /// `FARGATE`, `EC2`, `EXTERNAL`, `MANAGED_INSTANCES`.
    pub requires_compatibilities: Vec<String>,
    /// Members ECS returned that the SDK shipmate is built on does not know
    /// (`trustedExecutionConfiguration`, `containerDefinitions[app].restartPolicy`): a copy of
    /// this task definition would silently drop them.
    pub unknown_members: Vec<String>,
}

impl TaskDefinitionView {
    /// Container name → essential (ECS's default is essential).
    pub fn essential(&self, container: &str) -> bool {
        self.containers
            .iter()
            .find(|c| c.name == container)
            .is_none_or(|c| c.essential)
    }
}

/// Everything RunTask needs for one one-off task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    pub task_definition: String,
    pub container: String,
    pub command: Option<Vec<String>>,
    /// Container-level overrides of `container`.
    pub cpu: Option<i32>,
    pub memory: Option<i32>,
    pub environment: Vec<(String, String)>,
    /// Task-level overrides (`overrides.cpu`, `overrides.memory`, the roles).
    pub task_cpu: Option<String>,
    pub task_memory: Option<String>,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    pub network: Option<NetworkView>,
    pub launch: Launch,
    pub platform_version: Option<String>,
    pub started_by: String,
    /// RunTask's idempotency token: the same token and parameters return the same task.
    pub client_token: Option<String>,
}

/// Where a task's awslogs stream is and how long to read it after the task stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFollowSpec {
    pub role: TaskRole,
    pub group: String,
    pub stream: String,
    pub poll_ms: i64,
    /// After the task stopped, read until nothing new arrived for this long.
    pub quiet_ms: i64,
    /// … but stop this long after the quiet period at the latest.
    pub cap_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    // The ledger (one task-definition family).
    /// ListTaskDefinitions, ACTIVE, ascending: the open entries' revisions.
    ListOpenEntries {
        family: String,
    },
    /// The highest revision of the family, open or closed (`None`: no entry yet).
    NewestEntry {
        family: String,
    },
    /// DescribeTaskDefinition with tags for each revision; missing ones are left out.
    DescribeEntries {
        family: String,
        revisions: Vec<i32>,
    },
    RegisterEntry {
        family: String,
        record: Box<Record>,
    },
    /// TagResource with the whole record (idempotent).
    TagEntry {
        arn: String,
        record: Box<Record>,
    },
    /// TagResource, then DeregisterTaskDefinition: the release ended and its lock is free.
    CloseEntry {
        arn: String,
        record: Box<Record>,
    },

    // The services.
    /// DescribeServices, up to 10 a call.
    DescribeServices {
        services: Vec<String>,
    },
    DescribeTaskDefinition {
        arn: String,
    },
    /// DescribeTaskDefinition's whole answer as ECS sent it (JSON text), members the SDK does
    /// not know included.
    DescribeTaskDefinitionAnswer {
        arn: String,
    },
    /// A revision like `base` with the `containers`' image set to `image` (`base` itself, or
    /// the family's latest revision, when it already is that).
    RegisterRevision {
        base: String,
        containers: Vec<String>,
        image: String,
    },
    UpdateService {
        service: String,
        task_definition: String,
        /// Replace `deploymentConfiguration.lifecycleHooks` with these in the same call (the
        /// rest of the deployment configuration stays as the service has it).
        hooks: Option<Vec<LifecycleHookView>>,
    },
    /// Only the service's lifecycle hooks (no new deployment).
    SetLifecycleHooks {
        service: String,
        hooks: Vec<LifecycleHookView>,
    },
    DescribeServiceDeployments {
        arns: Vec<String>,
    },
    /// The newest service-deployment records of a service, newest first.
    ListServiceDeployments {
        service: String,
    },
    ContinueServiceDeployment {
        arn: String,
        hook_id: String,
        /// CONTINUE or ROLLBACK.
        action: String,
    },
    StopServiceDeployment {
        arn: String,
        /// ROLLBACK or ABORT.
        stop_type: String,
    },
    /// ListTasks, by family and/or `startedBy` (a service deployment starts its tasks with
    /// its id), RUNNING or STOPPED (stopped ones stay listed for about an hour).
    ListTasks {
        family: Option<String>,
        started_by: Option<String>,
        stopped: bool,
    },

    // One-off tasks.
    RunTask(Box<TaskSpec>),
    DescribeTasks {
        arns: Vec<String>,
    },
    StopTask {
        arn: String,
        reason: String,
    },

    // Logs, read alongside by the driver.
    FollowLogs {
        task_arn: String,
        spec: LogFollowSpec,
    },
    /// Tells the log follower of `role` the task stopped at `at_ms`: start draining. Answered
    /// once the follower has read the stream after hearing it (briefly bounded), so that what
    /// was readable at the stop is shown before the task's verdict.
    TaskStopped {
        role: TaskRole,
        at_ms: i64,
    },
    /// Waits until the log follower of `role` has drained its stream.
    AwaitLogs {
        role: TaskRole,
    },
    /// Stops the log follower of `role` where it is (its task is left running).
    StopLogs {
        role: TaskRole,
    },

    // CloudWatch Logs.
    /// DescribeLogGroups with `logGroupNamePrefix`, every page: the names found.
    DescribeLogGroups {
        prefix: String,
    },

    /// Waits until `until_ms` (or until cancelled).
    Sleep {
        until_ms: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    OpenEntries(Vec<i32>),
    NewestEntry(Option<i32>),
    Entries(Vec<Entry>),
    EntryRegistered(Box<Entry>),
    EntryTagged,
    EntryClosed,
    /// DescribeServices: the services found, and those it answered MISSING.
    Services {
        found: Vec<ServiceView>,
        missing: Vec<String>,
    },
    TaskDefinition(TaskDefinitionView),
    TaskDefinitionAnswer(String),
    RevisionRegistered {
        arn: String,
        reused: bool,
    },
    ServiceUpdated(Box<ServiceView>),
    ServiceDeployments {
        found: Vec<ServiceDeploymentView>,
        missing: Vec<String>,
    },
    /// ARNs, newest first.
    ServiceDeploymentArns(Vec<String>),
    /// ContinueServiceDeployment or StopServiceDeployment was accepted.
    DeploymentActed,
    TaskArns(Vec<String>),
    TaskStarted(Box<TaskView>),
    /// RunTask's ConflictException: the client token belongs to these tasks.
    RunTaskConflict(Vec<String>),
    /// RunTask placed nothing: its `failures[]`, as `reason: detail`.
    RunTaskFailed(Vec<String>),
    /// DescribeTasks: the tasks ECS still knows (forgotten ones are left out).
    Tasks(Vec<TaskView>),
    TaskStopping,
    /// A log command was handed to the follower.
    Noted,
    LogsDrained {
        lines: u64,
        /// The preset frames among them (see [`crate::preset::FRAME_PREFIX`]), in log order.
        frames: Vec<String>,
    },
    /// DescribeLogGroups: the names of the groups with the prefix asked.
    LogGroups(Vec<String>),
    Woke,
    /// SIGINT/SIGTERM arrived while sleeping.
    Cancelled,
    /// The command failed (after the SDK's retries).
    Failed(Fault),
}
