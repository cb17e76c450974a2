//! The release lock under interference (docs/lock.md): release A (web:3) is migrating when
//! something else happens to the service, and release B (web:4) starts a second later. Each row
//! runs three times. Whatever happens, migrations never overlap (checked on the tasks' own
//! timestamps); interference that is not a release leaves A and B to succeed and the service on
//! web:4; interference that is a release (a `--no-migrate` deploy, `shipmate rollback`) leaves
//! every release succeeded or superseded and the service on the revision of the release that
//! took the lock last. The lock is free at the end.

use aws_sdk_ecs::types::{
    ContainerDefinition, KeyValuePair, SortOrder, TaskDefinitionFamilyStatus, TaskDefinitionStatus,
};

use crate::harness::{CLUSTER, Env, LOG_GROUP, Outcome, finish};
use crate::web::{
    deploy_args, deploy_without_migration_args, register_web, rollback_args, running_migration,
    wait_steady, web_env,
};

/// A migration of 1–2 s.
const MIGRATE: &str = "sh -c 'echo migrating; sleep 1.5; echo migrated'";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interference {
    ForcedDeployment,
    DeployWithoutMigration,
    Rollback,
    CircuitBreakerRollback,
    ForeignTaskDefinition,
}

impl Interference {
    fn is_release(self) -> bool {
        matches!(
            self,
            Interference::DeployWithoutMigration | Interference::Rollback
        )
    }
}

/// Every migration task's [startedAt, stoppedAt], sorted.
async fn migration_spans(env: &Env) -> Vec<(i64, i64, String)> {
    let mut spans: Vec<(i64, i64, String)> = env
        .tasks_started_by("shipmate/")
        .await
        .iter()
        .filter(|t| {
            t.started_by()
                .is_some_and(|b| !b.ends_with("/post-deploy") && b != "shipmate/run")
        })
        .filter_map(|t| {
            let start = t.started_at()?.to_millis().ok()?;
            let stop = t.stopped_at()?.to_millis().ok()?;
            Some((start, stop, t.task_arn().unwrap_or_default().to_owned()))
        })
        .collect();
    spans.sort();
    spans
}

pub(crate) async fn assert_no_overlap(env: &Env) -> usize {
    let spans = migration_spans(env).await;
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "migrations overlap: {pair:?}");
    }
    spans.len()
}

/// Open entries left in any release ledger.
pub(crate) async fn open_ledger_entries(env: &Env) -> Vec<String> {
    // ListTaskDefinitions' familyPrefix is a whole family name; the families' is a prefix.
    let families = env
        .ecs
        .list_task_definition_families()
        .family_prefix("shipmate-ledger-")
        .status(TaskDefinitionFamilyStatus::All)
        .send()
        .await
        .expect("ListTaskDefinitionFamilies");
    assert!(
        !families.families().is_empty(),
        "a release registered its ledger entry"
    );
    let mut open = Vec::new();
    for family in families.families() {
        let revisions = env
            .ecs
            .list_task_definitions()
            .family_prefix(family)
            .status(TaskDefinitionStatus::Active)
            .sort(SortOrder::Asc)
            .send()
            .await
            .expect("ListTaskDefinitions");
        open.extend(revisions.task_definition_arns().iter().cloned());
    }
    open
}

/// The ledger revision a release's report names (its place in the lock order).
fn lock_order(outcome: &Outcome) -> i64 {
    outcome.report()["lock"]["entry"]
        .as_str()
        .and_then(|arn| arn.rsplit(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no lock entry in the report:\n{}", outcome.stdout))
}

async fn interfere(env: &Env, how: Interference) -> Option<tokio::process::Child> {
    match how {
        Interference::ForcedDeployment => {
            env.ecs
                .update_service()
                .cluster(CLUSTER)
                .service("web")
                .force_new_deployment(true)
                .send()
                .await
                .expect("forced deployment");
            None
        }
        Interference::DeployWithoutMigration => Some(
            env.command(&deploy_without_migration_args(
                "web:2",
                &["--output", "json"],
            ))
            .spawn()
            .expect("spawn --no-migrate deploy"),
        ),
        Interference::Rollback => Some(
            env.command(&rollback_args(&["--output", "json"]))
                .spawn()
                .expect("spawn rollback"),
        ),
        Interference::CircuitBreakerRollback => {
            let crashing = register_web(env, "web:crash", &["sh", "start.sh"], LOG_GROUP).await;
            env.ecs
                .update_service()
                .cluster(CLUSTER)
                .service("web")
                .task_definition(crashing)
                .send()
                .await
                .expect("deploy the crashing revision by hand");
            None
        }
        Interference::ForeignTaskDefinition => {
            // An infrastructure-as-code tool registers a revision (it does not deploy it).
            let container = ContainerDefinition::builder()
                .name("app")
                .image("web:1")
                .essential(true)
                .memory(256)
                .environment(KeyValuePair::builder().name("FEATURE").value("on").build())
                .build();
            env.ecs
                .register_task_definition()
                .family("web")
                .container_definitions(container)
                .send()
                .await
                .expect("foreign RegisterTaskDefinition");
            None
        }
    }
}

async fn row(how: Interference) {
    for run in 1..=3 {
        let (env, _) = web_env().await;
        env.push_image("web:4", &[("start.sh", "exec sleep 600\n")]);
        env.push_image("web:crash", &[("start.sh", "echo crashing; exit 1\n")]);
        let a = env
            .command(&deploy_args("web:3", MIGRATE, &["--output", "json"]))
            .spawn()
            .expect("spawn A");
        running_migration(&env, "A's migration runs").await;
        let other = interfere(&env, how).await;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let b = env
            .command(&deploy_args("web:4", MIGRATE, &["--output", "json"]))
            .spawn()
            .expect("spawn B");
        let other = async {
            match other {
                Some(child) => Some(finish(child).await),
                None => None,
            }
        };
        let (a, b, other) = tokio::join!(finish(a), finish(b), other);
        let migrations = assert_no_overlap(&env).await;
        let service = wait_steady(&env, "web").await;
        let live = service.task_definition().unwrap_or_default().to_owned();
        if how.is_release() {
            let mut releases = vec![a, b, other.expect("the interfering release")];
            for outcome in &releases {
                assert!(
                    matches!(outcome.code, Some(0 | 8)),
                    "{how:?} run {run}: every release succeeds or is superseded: {:?}",
                    outcome.code
                );
            }
            releases.retain(|o| o.code == Some(0));
            let last = releases
                .iter()
                .max_by_key(|o| lock_order(o))
                .expect("a release succeeded");
            assert_eq!(
                last.report()["task_definition"].as_str(),
                Some(live.as_str()),
                "{how:?} run {run}: the service ends on the release that took the lock last"
            );
            assert!(migrations >= 2, "A and B migrated");
        } else {
            assert_eq!((a.code, b.code), (Some(0), Some(0)), "{how:?} run {run}");
            assert_eq!(migrations, 2, "{how:?} run {run}: one migration each");
            let image = describe_image(&env, &live).await;
            assert_eq!(image, "web:4", "{how:?} run {run}: the service ends on B");
            assert!(lock_order(&b) > lock_order(&a), "B took the lock after A");
        }
        assert_eq!(
            open_ledger_entries(&env).await,
            Vec::<String>::new(),
            "{how:?} run {run}: the lock is free"
        );
    }
}

async fn describe_image(env: &Env, task_definition: &str) -> String {
    env.ecs
        .describe_task_definition()
        .task_definition(task_definition)
        .send()
        .await
        .expect("DescribeTaskDefinition")
        .task_definition()
        .and_then(|td| td.container_definitions().first())
        .and_then(|c| c.image())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_deployment_between_two_releases() {
    row(Interference::ForcedDeployment).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_without_migration_between_two_releases() {
    row(Interference::DeployWithoutMigration).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_between_two_releases() {
    row(Interference::Rollback).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_circuit_breaker_rollback_between_two_releases() {
    row(Interference::CircuitBreakerRollback).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_task_definition_between_two_releases() {
    row(Interference::ForeignTaskDefinition).await;
}
