//! The `doctor` machine driven by scripted answers, without a runtime: which calls it makes, and
//! that a failed call becomes a finding (the first one: the credentials or the cluster; a later
//! one: a check it could not make), never the command's error.

mod common;

use shipmate_release::doctor::{CheckStatus, Diagnosis, Finding, ImageSource};
use shipmate_release::fault::{AwsError, AwsErrorKind, Fault};
use shipmate_release::io::{Command, Observation, TaskDefinitionView};
use shipmate_release::machine::Step;
use shipmate_release::plan::{ContainerChoice, LogSettings, NetworkView};
use shipmate_release::release::{DoctorRequest, doctor};
use shipmate_release::service::{DeploymentView, ServiceView};

const TD: &str = "arn:aws:ecs:us-east-1:1:task-definition/web:1";

fn request() -> DoctorRequest {
    DoctorRequest {
        release: common::deploy_request("web:2", false),
        images: ImageSource::LocalStore {
            endpoint: "http://127.0.0.1:4590".to_owned(),
            images: Ok(vec!["web:2".to_owned()]),
        },
    }
}

fn service() -> ServiceView {
    ServiceView {
        service_name: "web".to_owned(),
        status: "ACTIVE".to_owned(),
        task_definition: TD.to_owned(),
        launch_type: Some("FARGATE".to_owned()),
        network: Some(NetworkView {
            subnets: vec!["subnet-1".to_owned()],
            security_groups: vec!["sg-1".to_owned()],
            assign_public_ip: None,
        }),
        deployments: vec![DeploymentView {
            status: "PRIMARY".to_owned(),
            task_definition: TD.to_owned(),
            ..DeploymentView::default()
        }],
        ..ServiceView::default()
    }
}

fn task_definition() -> TaskDefinitionView {
    TaskDefinitionView {
        arn: TD.to_owned(),
        family: "web".to_owned(),
        revision: 1,
        containers: vec![ContainerChoice {
            name: "app".to_owned(),
            essential: true,
            image: "web:1".to_owned(),
            logs: Some(LogSettings {
                driver: "awslogs".to_owned(),
                group: Some("/ecs/web".to_owned()),
                stream_prefix: Some("ecs".to_owned()),
                create_group: false,
            }),
            secrets: false,
        }],
        cpu: Some("256".to_owned()),
        memory: Some("512".to_owned()),
        execution_role_arn: Some("arn:aws:iam::1:role/exec".to_owned()),
        network_mode: Some("awsvpc".to_owned()),
        requires_compatibilities: vec!["FARGATE".to_owned()],
        unknown_members: Vec::new(),
    }
}

fn denied(operation: &'static str, code: &str) -> Observation {
    Observation::Failed(Fault::Aws(AwsError {
        operation,
        kind: AwsErrorKind::Service,
        code: Some(code.to_owned()),
        message: "no".to_owned(),
    }))
}

/// Runs the machine, answering each command with `answer`; returns the diagnosis and the
/// commands in order.
fn run(answer: impl Fn(&Command) -> Observation) -> (Diagnosis, Vec<Command>) {
    let mut machine = doctor(request());
    let mut commands = Vec::new();
    let mut step = machine.start(1_000);
    loop {
        match step {
            Step::Done(result) => return (result.expect("doctor ends with findings"), commands),
            Step::Command(command) => {
                let observation = answer(&command);
                commands.push(command);
                step = machine.observe(1_000, observation);
            }
        }
    }
}

fn sound(command: &Command) -> Observation {
    match command {
        Command::DescribeServices { .. } => Observation::Services {
            found: vec![service()],
            missing: Vec::new(),
        },
        Command::DescribeTaskDefinition { .. } => Observation::TaskDefinition(task_definition()),
        Command::DescribeLogGroups { .. } => {
            Observation::LogGroups(vec!["/ecs/web".to_owned(), "/ecs/web-old".to_owned()])
        }
        Command::ListOpenEntries { .. } => Observation::OpenEntries(Vec::new()),
        Command::DescribeEntries { .. } => Observation::Entries(Vec::new()),
        other => panic!("doctor only reads: {other:?}"),
    }
}

fn names(diagnosis: &Diagnosis, status: CheckStatus) -> Vec<&'static str> {
    diagnosis
        .checks
        .iter()
        .filter(|c| c.status() == status)
        .map(|c| c.finding.name())
        .collect()
}

#[test]
fn a_sound_service_passes_and_its_log_group_is_asked_for_once() {
    let (diagnosis, commands) = run(sound);
    assert!(
        names(&diagnosis, CheckStatus::Fail).is_empty(),
        "{diagnosis:#?}"
    );
    assert!(
        names(&diagnosis, CheckStatus::Warn).is_empty(),
        "{diagnosis:#?}"
    );
    assert_eq!(
        commands
            .iter()
            .filter(|c| matches!(c, Command::DescribeLogGroups { prefix } if prefix == "/ecs/web"))
            .count(),
        1
    );
}

#[test]
fn an_unknown_cluster_stops_the_checks_there() {
    let (diagnosis, commands) = run(|command| match command {
        Command::DescribeServices { .. } => denied("DescribeServices", "ClusterNotFoundException"),
        other => panic!("nothing after the cluster: {other:?}"),
    });
    assert_eq!(commands.len(), 1);
    assert_eq!(names(&diagnosis, CheckStatus::Fail), ["cluster"]);
    assert_eq!(
        names(&diagnosis, CheckStatus::Pass),
        ["aws_access", "image"]
    );
}

#[test]
fn a_failing_first_call_is_the_access_check() {
    let (diagnosis, _) = run(|command| match command {
        Command::DescribeServices { .. } => denied("DescribeServices", "AccessDeniedException"),
        other => panic!("nothing after the first call: {other:?}"),
    });
    assert_eq!(names(&diagnosis, CheckStatus::Fail), ["aws_access"]);
    assert!(matches!(
        diagnosis.checks[0].finding,
        Finding::Unreachable { .. }
    ));
}

#[test]
fn a_later_call_denied_is_a_check_not_made_and_the_others_go_on() {
    let (diagnosis, _) = run(|command| match command {
        Command::DescribeLogGroups { .. } => denied("DescribeLogGroups", "AccessDeniedException"),
        other => sound(other),
    });
    assert!(
        names(&diagnosis, CheckStatus::Fail).is_empty(),
        "{diagnosis:#?}"
    );
    assert_eq!(names(&diagnosis, CheckStatus::Warn), ["log_group"]);
    let lock = diagnosis.checks.last().expect("checks");
    assert_eq!(lock.finding.name(), "lock", "the lock is still checked");
    assert_eq!(lock.status(), CheckStatus::Pass);
}

#[test]
fn a_missing_service_fails_and_the_lock_is_still_checked() {
    let (diagnosis, _) = run(|command| match command {
        Command::DescribeServices { .. } => Observation::Services {
            found: Vec::new(),
            missing: vec!["web".to_owned()],
        },
        other => sound(other),
    });
    assert_eq!(names(&diagnosis, CheckStatus::Fail), ["service"]);
    assert!(
        names(&diagnosis, CheckStatus::Pass).contains(&"lock"),
        "{diagnosis:#?}"
    );
}
