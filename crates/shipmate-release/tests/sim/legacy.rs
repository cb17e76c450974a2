//! The lock shipmate used before the ledger, re-created as a machine so the property test can
//! show it fails: the migration's RunTask token was derived from the service's PRIMARY
//! deployment (plus an attempt number), a conflicting holder that was still running meant
//! "wait", one that had failed meant "next attempt", and one that had succeeded meant "wait
//! until the primary deployment changes, then start over". A forced deployment changes the
//! primary deployment, so a release started after it computes a fresh token and migrates while
//! the first release still does.

use shipmate_release::io::{Command, Observation, TaskSpec};
use shipmate_release::machine::{Io, Machine};
use shipmate_release::plan::Launch;
use shipmate_release::service::ServiceView;
use shipmate_release::task::{TaskOutcome, TaskProgress, TaskView, assess_task};

use super::world::SERVICE;

/// How long a successful holder's lock lasted while it rolled out (the old `lock_lease`).
const LEASE_MS: i64 = 10_000;

pub(crate) fn release(image: String) -> Machine<u8> {
    Machine::new(|io: Io| async move { run(&io, &image).await })
}

async fn service(io: &Io) -> Option<ServiceView> {
    match io
        .call(Command::DescribeServices {
            services: vec![SERVICE.to_owned()],
        })
        .await
    {
        Observation::Services { mut found, .. } if !found.is_empty() => Some(found.remove(0)),
        _ => None,
    }
}

async fn sleep(io: &Io, ms: i64) {
    io.call(Command::Sleep {
        until_ms: io.now_ms() + ms,
    })
    .await;
}

async fn describe(io: &Io, arns: &[String]) -> Vec<TaskView> {
    match io
        .call(Command::DescribeTasks {
            arns: arns.to_vec(),
        })
        .await
    {
        Observation::Tasks(tasks) => tasks,
        _ => Vec::new(),
    }
}

async fn run(io: &Io, image: &str) -> u8 {
    'prepare: loop {
        let Some(view) = service(io).await else {
            return 1;
        };
        let base = view.primary().map(|d| d.id.clone()).unwrap_or_default();
        let target = match io
            .call(Command::RegisterRevision {
                base: view.desired_revision().to_owned(),
                containers: vec!["app".to_owned()],
                image: image.to_owned(),
            })
            .await
        {
            Observation::RevisionRegistered { arn, .. } => arn,
            _ => return 1,
        };
        let mut attempt = 0;
        loop {
            let spec = TaskSpec {
                task_definition: target.clone(),
                container: "app".to_owned(),
                command: Some(vec!["migrate".to_owned()]),
                cpu: None,
                memory: None,
                environment: Vec::new(),
                task_cpu: None,
                task_memory: None,
                task_role_arn: None,
                execution_role_arn: None,
                network: None,
                launch: Launch::ClusterDefault,
                platform_version: None,
                started_by: format!("legacy/{image}"),
                client_token: Some(format!("lock-{base}-{attempt}")),
            };
            match io.call(Command::RunTask(Box::new(spec))).await {
                Observation::TaskStarted(task) => {
                    return migrate_and_deploy(io, task.task_arn.clone(), &target).await;
                }
                Observation::RunTaskConflict(holders) => {
                    let tasks = describe(io, &holders).await;
                    if let Some(running) = tasks.iter().find(|t| !t.is_stopped()) {
                        // Held: wait for the holder's task to stop, then decide again.
                        let arn = running.task_arn.clone();
                        loop {
                            sleep(io, 1_000).await;
                            if describe(io, std::slice::from_ref(&arn))
                                .await
                                .first()
                                .is_none_or(TaskView::is_stopped)
                            {
                                break;
                            }
                        }
                        continue;
                    }
                    let succeeded = tasks.iter().find(|t| {
                        matches!(
                            assess_task(t),
                            TaskProgress::Finished(TaskOutcome::Succeeded)
                        )
                    });
                    match succeeded {
                        Some(holder)
                            if io.now_ms() - holder.stopped_at.unwrap_or(0) <= LEASE_MS =>
                        {
                            // The holder deploys: wait for the primary deployment to change.
                            loop {
                                sleep(io, 1_000).await;
                                let Some(now) = service(io).await else {
                                    return 1;
                                };
                                if now.primary().map(|d| d.id.clone()).unwrap_or_default() != base {
                                    continue 'prepare;
                                }
                            }
                        }
                        _ => attempt += 1,
                    }
                }
                _ => return 1,
            }
        }
    }
}

async fn migrate_and_deploy(io: &Io, task_arn: String, target: &str) -> u8 {
    loop {
        sleep(io, 1_000).await;
        let tasks = describe(io, std::slice::from_ref(&task_arn)).await;
        match tasks.first().map(assess_task) {
            Some(TaskProgress::Finished(TaskOutcome::Succeeded)) => break,
            Some(TaskProgress::Finished(_)) => return 4,
            _ => {}
        }
    }
    io.call(Command::UpdateService {
        service: SERVICE.to_owned(),
        task_definition: target.to_owned(),
        hooks: None,
    })
    .await;
    loop {
        sleep(io, 1_000).await;
        let Some(view) = service(io).await else {
            return 1;
        };
        if view.desired_revision() != target {
            return 6;
        }
        if view.deployments.len() == 1 {
            return 0;
        }
    }
}
