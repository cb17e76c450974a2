//! The least-privilege IAM policy a CI job needs to run shipmate against its services: exactly
//! the actions shipmate calls, each scoped to the narrowest resource ECS and CloudWatch Logs
//! allow. `shipmate iam-policy` prints it; pipelines/iam-actions.json and the CloudFormation
//! template are checked against [`ACTIONS`].

use serde_json::{Value, json};

/// Every AWS action shipmate calls (deploy with rollback and post-deploy, run, plan, status,
/// rollback, doctor), in the policy's order.
pub const ACTIONS: [&str; 18] = [
    "ecs:DescribeServices",
    "ecs:UpdateService",
    "ecs:ListServiceDeployments",
    "ecs:DescribeServiceDeployments",
    "ecs:ContinueServiceDeployment",
    "ecs:StopServiceDeployment",
    "ecs:RunTask",
    "ecs:DescribeTasks",
    "ecs:StopTask",
    "ecs:ListTasks",
    "ecs:RegisterTaskDefinition",
    "ecs:DescribeTaskDefinition",
    "ecs:ListTaskDefinitions",
    "ecs:TagResource",
    "ecs:DeregisterTaskDefinition",
    "logs:GetLogEvents",
    "logs:DescribeLogGroups",
    "iam:PassRole",
];

/// What the policy is scoped to. Unknown parts (`None`, empty) become wildcards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyScope {
    pub partition: Option<String>,
    pub region: Option<String>,
    pub account: Option<String>,
    pub cluster: String,
    /// The services released together.
    pub services: Vec<String>,
    /// Their task-definition families, and the migration's own if it has one: RunTask is
    /// granted on their revisions only, and tagging the revisions shipmate registers.
    pub families: Vec<String>,
    /// The awslogs groups of the migration's container.
    pub log_groups: Vec<String>,
    /// The task role and execution role the task definition passes to ECS.
    pub pass_roles: Vec<String>,
}

impl PolicyScope {
    fn ecs(&self, resource: &str) -> String {
        format!("{}:{resource}", self.prefix("ecs"))
    }

    fn prefix(&self, service: &str) -> String {
        let or_any = |part: &Option<String>| {
            part.clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "*".into())
        };
        let partition = self
            .partition
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "aws".into());
        format!(
            "arn:{partition}:{service}:{}:{}",
            or_any(&self.region),
            or_any(&self.account)
        )
    }

    /// The parts left as wildcards, for the caller to mention.
    pub fn wildcards(&self) -> Vec<&'static str> {
        let mut unknown = Vec::new();
        if self.region.as_deref().is_none_or(str::is_empty) {
            unknown.push("region");
        }
        if self.account.as_deref().is_none_or(str::is_empty) {
            unknown.push("account");
        }
        if self.families.is_empty() {
            unknown.push("task definition family");
        }
        if self.log_groups.is_empty() {
            unknown.push("log group");
        }
        if self.pass_roles.is_empty() {
            unknown.push("task and execution roles");
        }
        unknown
    }
}

/// The policy document.
pub fn policy(scope: &PolicyScope) -> Value {
    let cluster_arn = scope.ecs(&format!("cluster/{}", scope.cluster));
    let families: Vec<String> = if scope.families.is_empty() {
        vec!["*".to_owned()]
    } else {
        scope.families.clone()
    };
    let revisions_of = |families: &[String]| -> Vec<String> {
        families
            .iter()
            .map(|family| scope.ecs(&format!("task-definition/{family}:*")))
            .collect()
    };
    let ledger = scope.ecs(&format!("task-definition/{}*:*", crate::ledger::family("")));
    let mut tagged = revisions_of(&families);
    tagged.push(ledger.clone());
    let services: Vec<String> = scope
        .services
        .iter()
        .map(|service| scope.ecs(&format!("service/{}/{service}", scope.cluster)))
        .collect();
    let service_deployments: Vec<String> = scope
        .services
        .iter()
        .map(|service| scope.ecs(&format!("service-deployment/{}/{service}/*", scope.cluster)))
        .collect();
    let log_streams: Vec<String> = if scope.log_groups.is_empty() {
        vec![format!("{}:log-group:*:log-stream:*", scope.prefix("logs"))]
    } else {
        scope
            .log_groups
            .iter()
            .map(|group| format!("{}:log-group:{group}:log-stream:*", scope.prefix("logs")))
            .collect()
    };
    let roles: Vec<String> = if scope.pass_roles.is_empty() {
        let account = scope
            .account
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "*".into());
        vec![format!(
            "arn:{}:iam::{account}:role/*",
            scope.partition.as_deref().unwrap_or("aws")
        )]
    } else {
        scope.pass_roles.clone()
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadAndRollTheService",
                "Effect": "Allow",
                "Action": ["ecs:DescribeServices", "ecs:UpdateService"],
                "Resource": services,
            },
            {
                "Sid": "ListTheServiceDeployments",
                "Effect": "Allow",
                "Action": ["ecs:ListServiceDeployments"],
                "Resource": services,
            },
            {
                // Follow the deployments it starts; continue or roll back the one it paused
                // (--gate pause-hook).
                "Sid": "FollowContinueAndStopTheServiceDeployments",
                "Effect": "Allow",
                "Action": [
                    "ecs:DescribeServiceDeployments",
                    "ecs:ContinueServiceDeployment",
                    "ecs:StopServiceDeployment"
                ],
                "Resource": service_deployments,
            },
            {
                "Sid": "RunOneOffTasksOfTheServiceFamily",
                "Effect": "Allow",
                "Action": ["ecs:RunTask"],
                "Resource": revisions_of(&families),
                "Condition": {"ArnEquals": {"ecs:cluster": cluster_arn}},
            },
            {
                "Sid": "FollowAndStopTasksInTheCluster",
                "Effect": "Allow",
                "Action": ["ecs:DescribeTasks", "ecs:StopTask"],
                "Resource": scope.ecs(&format!("task/{}/*", scope.cluster)),
            },
            {
                "Sid": "ListTasksInTheCluster",
                "Effect": "Allow",
                "Action": ["ecs:ListTasks"],
                "Resource": "*",
                "Condition": {"ArnEquals": {"ecs:cluster": cluster_arn}},
            },
            {
                // ECS supports no resource-level permissions for these.
                "Sid": "TaskDefinitions",
                "Effect": "Allow",
                "Action": ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"],
                "Resource": "*",
            },
            {
                // Registering with tags is also a TagResource: the release's revisions carry
                // their task definition's tags, and the ledger's entries (docs/lock.md) are
                // tagged when registered and as the release goes on.
                "Sid": "TagWhatItRegisters",
                "Effect": "Allow",
                "Action": ["ecs:TagResource"],
                "Resource": tagged,
            },
            {
                // A release's ledger entry is deregistered when it ends.
                "Sid": "CloseReleaseLedgerEntries",
                "Effect": "Allow",
                "Action": ["ecs:DeregisterTaskDefinition"],
                "Resource": ledger,
            },
            {
                "Sid": "ReadTheMigrationLogs",
                "Effect": "Allow",
                "Action": ["logs:GetLogEvents"],
                "Resource": log_streams,
            },
            {
                // `shipmate doctor` and `plan`: does the awslogs log group exist? A list call,
                // which CloudWatch Logs scopes to the account's groups, not to one.
                "Sid": "FindTheLogGroups",
                "Effect": "Allow",
                "Action": ["logs:DescribeLogGroups"],
                "Resource": format!("{}:log-group:*", scope.prefix("logs")),
            },
            {
                "Sid": "PassTheTaskRolesToEcs",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": roles,
                "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(policy: &Value) -> Vec<String> {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|statement| statement["Action"].as_array().unwrap().iter())
            .map(|action| action.as_str().unwrap().to_owned())
            .collect()
    }

    fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no statement {sid}"))
    }

    #[test]
    fn grants_each_action_exactly_once() {
        let policy = policy(&PolicyScope {
            cluster: "c".into(),
            services: vec!["s".into()],
            ..Default::default()
        });
        assert_eq!(actions(&policy), ACTIONS.map(str::to_owned).to_vec());
    }

    #[test]
    fn scopes_resources_to_the_service_family_log_group_and_roles() {
        let scope = PolicyScope {
            partition: None,
            region: Some("eu-west-1".into()),
            account: Some("123456789012".into()),
            cluster: "prod".into(),
            services: vec!["web".into(), "worker".into()],
            families: vec!["web".into(), "web-migrate".into()],
            log_groups: vec!["/ecs/web".into()],
            pass_roles: vec!["arn:aws:iam::123456789012:role/web-task".into()],
        };
        let policy = policy(&scope);
        assert_eq!(
            statement(&policy, "FollowContinueAndStopTheServiceDeployments")["Resource"],
            json!([
                "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/web/*",
                "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/worker/*"
            ])
        );
        assert_eq!(
            statement(&policy, "ReadAndRollTheService")["Resource"],
            json!([
                "arn:aws:ecs:eu-west-1:123456789012:service/prod/web",
                "arn:aws:ecs:eu-west-1:123456789012:service/prod/worker"
            ])
        );
        assert_eq!(
            statement(&policy, "RunOneOffTasksOfTheServiceFamily")["Resource"],
            json!([
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:*",
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/web-migrate:*"
            ])
        );
        assert_eq!(
            statement(&policy, "RunOneOffTasksOfTheServiceFamily")["Condition"]["ArnEquals"]["ecs:cluster"],
            "arn:aws:ecs:eu-west-1:123456789012:cluster/prod"
        );
        assert_eq!(
            statement(&policy, "FollowAndStopTasksInTheCluster")["Resource"],
            "arn:aws:ecs:eu-west-1:123456789012:task/prod/*"
        );
        // Registering a tagged copy is a TagResource on the family's revisions.
        assert_eq!(
            statement(&policy, "TagWhatItRegisters")["Resource"],
            json!([
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:*",
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/web-migrate:*",
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/shipmate-ledger-*:*"
            ])
        );
        assert_eq!(
            statement(&policy, "CloseReleaseLedgerEntries")["Resource"],
            "arn:aws:ecs:eu-west-1:123456789012:task-definition/shipmate-ledger-*:*"
        );
        assert_eq!(
            statement(&policy, "ReadTheMigrationLogs")["Resource"],
            json!(["arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/web:log-stream:*"])
        );
        assert_eq!(
            statement(&policy, "PassTheTaskRolesToEcs")["Resource"],
            json!(["arn:aws:iam::123456789012:role/web-task"])
        );
        assert!(scope.wildcards().is_empty());
    }

    #[test]
    fn unknown_parts_become_wildcards_and_are_reported() {
        let scope = PolicyScope {
            cluster: "prod".into(),
            services: vec!["web".into()],
            ..Default::default()
        };
        let policy = policy(&scope);
        assert_eq!(
            statement(&policy, "RunOneOffTasksOfTheServiceFamily")["Resource"],
            json!(["arn:aws:ecs:*:*:task-definition/*:*"])
        );
        assert_eq!(
            statement(&policy, "PassTheTaskRolesToEcs")["Resource"],
            json!(["arn:aws:iam::*:role/*"])
        );
        assert_eq!(
            scope.wildcards(),
            vec![
                "region",
                "account",
                "task definition family",
                "log group",
                "task and execution roles"
            ]
        );
    }
}
