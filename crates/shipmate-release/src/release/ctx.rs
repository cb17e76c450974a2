//! What every release flow carries: the exchange with the driver, the report and its phase
//! timeline, the lock it holds, the one-off task and log followers it must not abandon, and the
//! helpers that turn a command's observation into a value or a [`Stop`].

use std::time::Duration;

use crate::deployment::ServiceDeploymentView;
use crate::error::ReleaseError;
use crate::event::{Event, Phase, TaskRole};
use crate::fault::Fault;
use crate::io::{Command, Observation, TaskDefinitionView};
use crate::ledger::{Entry, Record};
use crate::machine::Io;
use crate::report::{PhaseTiming, Report};
use crate::service::ServiceView;
use crate::task::TaskView;

/// Why a flow stopped early; [`super::cleanup`] turns it into the release's error.
#[derive(Debug)]
pub(crate) enum Stop {
    /// SIGINT/SIGTERM.
    Cancelled,
    Error(ReleaseError),
}

impl From<ReleaseError> for Stop {
    fn from(error: ReleaseError) -> Stop {
        Stop::Error(error)
    }
}

pub(crate) fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The release lock as held: our open ledger entry and what it records.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) family: String,
    pub(crate) entry: Entry,
    pub(crate) record: Record,
    /// This run took over the open entry of an earlier run of the same release.
    pub(crate) resumed: bool,
    pub(crate) lease_ms: i64,
    /// When our heartbeat was last written (our clock).
    pub(crate) last_beat_ms: i64,
    /// Our heartbeats had a gap long enough for another release to find us silent and close
    /// our entry: writing a heartbeat again proves nothing (TagResource succeeds on a closed
    /// entry), so we must look at the entry before we act.
    pub(crate) suspect: bool,
}

impl Held {
    /// Heartbeats go out four times per lease, so one slow write never looks like a death.
    pub(crate) fn beat_due(&self, now_ms: i64) -> bool {
        now_ms - self.last_beat_ms >= (self.lease_ms / 4).max(1_000)
    }

    /// Whether we may act on the lock without looking at our entry first: our heartbeats had no
    /// gap, and the last one is younger than half the lease. Others close an entry silent for
    /// longer than the whole lease; the other half is left for clock skew and for the call we
    /// are about to make (docs/lock.md, "Assumptions").
    pub(crate) fn trusted(&self, now_ms: i64) -> bool {
        !self.suspect && now_ms - self.last_beat_ms < self.lease_ms / 2
    }

    /// Records a heartbeat written at `now_ms`. Others close an entry silent for longer than
    /// the lease; a gap of half of it already makes us suspect, leaving the other half for
    /// clock skew.
    pub(crate) fn beat(&mut self, now_ms: i64) {
        if now_ms - self.last_beat_ms >= self.lease_ms / 2 {
            self.suspect = true;
        }
        self.last_beat_ms = now_ms;
    }
}

/// A one-off task the release started and has not seen stop.
#[derive(Debug, Clone)]
pub(crate) struct Running {
    pub(crate) role: TaskRole,
    pub(crate) task_arn: String,
    pub(crate) on_cancel: crate::config::OnCancel,
}

pub(crate) struct Ctx {
    pub(crate) io: Io,
    pub(crate) cluster: String,
    pub(crate) report: Report,
    phase: Option<(Phase, i64)>,
    started_ms: i64,
    pub(crate) held: Option<Held>,
    pub(crate) running: Option<Running>,
    /// Log followers started and not yet awaited.
    pub(crate) following: Vec<TaskRole>,
    /// The service update was sent: ECS rolls it out whatever happens to us.
    pub(crate) service_updating: Option<String>,
    /// DescribeServiceDeployments was refused: follow through DescribeServices only.
    pub(crate) records_unavailable: bool,
    /// Deployments started with our PAUSE hook and not yet continued or rolled back: the
    /// cleanup rolls them back when the release stops early.
    pub(crate) paused: Vec<super::pause::Paused>,
    pacer: crate::pacing::Pacer,
}

impl Ctx {
    pub(crate) fn new(io: Io, cluster: &str) -> Ctx {
        let started_ms = io.now_ms();
        Ctx {
            io,
            cluster: cluster.to_owned(),
            report: Report {
                cluster: cluster.to_owned(),
                result: "failed".to_owned(),
                ..Report::default()
            },
            phase: None,
            started_ms,
            held: None,
            running: None,
            following: Vec::new(),
            service_updating: None,
            records_unavailable: false,
            paused: Vec::new(),
            pacer: crate::pacing::Pacer::default(),
        }
    }

    pub(crate) fn now(&self) -> i64 {
        self.io.now_ms()
    }

    pub(crate) fn emit(&self, event: Event) {
        self.io.emit(event);
    }

    /// Starts `phase` on the timeline, closing the previous one as successful.
    pub(crate) fn enter(&mut self, phase: Phase) {
        if self.phase.map(|(current, _)| current) == Some(phase) {
            return;
        }
        self.close_phase(true);
        self.phase = Some((phase, self.now()));
        self.emit(Event::PhaseStarted { phase });
    }

    pub(crate) fn phase(&self) -> Option<Phase> {
        self.phase.map(|(phase, _)| phase)
    }

    fn close_phase(&mut self, ok: bool) {
        if let Some((phase, started)) = self.phase.take() {
            let duration_ms = u64::try_from(self.now() - started).unwrap_or(0);
            self.report.phases.push(PhaseTiming {
                phase,
                duration_ms,
                ok,
            });
            self.emit(Event::PhaseFinished {
                phase,
                duration_ms,
                ok,
            });
        }
    }

    /// The report of the whole command, with the result it ended with.
    pub(crate) fn finish(mut self, result: &Result<(), ReleaseError>) -> Report {
        self.close_phase(result.is_ok());
        self.report.duration_ms = u64::try_from(self.now() - self.started_ms).unwrap_or(0);
        match result {
            Ok(()) => {
                self.report.result = "succeeded".to_owned();
                self.report.exit_code = 0;
            }
            Err(error) => {
                let exit = error.exit_code();
                self.report.result = exit.result_name().to_owned();
                self.report.exit_code = i32::from(exit.code());
                self.report.message = Some(error.to_string());
            }
        }
        self.report
    }

    /// Issues `command` once its calls fit under ECS's rate limits (`crate::pacing`); a failed
    /// command stops the flow with its error.
    pub(crate) async fn call(&mut self, command: Command) -> Result<Observation, Stop> {
        loop {
            let wait = self.pacer.wait_ms(&command, self.now());
            if wait == 0 {
                break;
            }
            let until_ms = self.now() + wait;
            match self.io.call(Command::Sleep { until_ms }).await {
                Observation::Woke => {}
                Observation::Cancelled => return Err(Stop::Cancelled),
                other => return Err(self.unexpected("Sleep", &other)),
            }
        }
        match self.io.call(command).await {
            Observation::Failed(fault) => Err(self.fault(fault)),
            observation => Ok(observation),
        }
    }

    pub(crate) fn fault(&self, fault: Fault) -> Stop {
        Stop::Error(ReleaseError::from_fault(&self.cluster, fault))
    }

    /// A command answered with an observation of another kind: a driver bug.
    pub(crate) fn unexpected(&self, operation: &'static str, observation: &Observation) -> Stop {
        self.fault(Fault::unexpected(
            operation,
            format!("the driver reported {observation:?}"),
        ))
    }

    /// Sleeps until `until_ms`, heartbeating first when one is due.
    pub(crate) async fn sleep_until(&mut self, until_ms: i64) -> Result<(), Stop> {
        self.heartbeat_if_due().await?;
        match self.io.call(Command::Sleep { until_ms }).await {
            Observation::Woke => Ok(()),
            Observation::Cancelled => Err(Stop::Cancelled),
            other => Err(self.unexpected("Sleep", &other)),
        }
    }

    pub(crate) async fn sleep(&mut self, duration_ms: i64) -> Result<(), Stop> {
        let until = self.now() + duration_ms;
        self.sleep_until(until).await
    }

    /// Writes our heartbeat when one is due (nothing when we hold no lock).
    pub(crate) async fn heartbeat_if_due(&mut self) -> Result<(), Stop> {
        let now = self.now();
        if self.held.as_ref().is_some_and(|held| held.beat_due(now)) {
            self.record(|_| {}).await?;
        }
        Ok(())
    }

    /// Writes our record as it stands, with `change` and a fresh heartbeat (nothing when we
    /// hold no lock).
    pub(crate) async fn record(&mut self, change: impl FnOnce(&mut Record)) -> Result<(), Stop> {
        let now = self.now();
        let Some(held) = self.held.as_mut() else {
            return Ok(());
        };
        change(&mut held.record);
        held.record.heartbeat = Some(now);
        let command = Command::TagEntry {
            arn: held.entry.arn.clone(),
            record: Box::new(held.record.clone()),
        };
        match self.call(command).await? {
            Observation::EntryTagged => {}
            other => return Err(self.unexpected("TagResource", &other)),
        }
        if let Some(held) = self.held.as_mut() {
            held.beat(now);
        }
        Ok(())
    }

    /// The service-deployment records of `arns`, or `None` when ECS does not answer
    /// DescribeServiceDeployments (denied by IAM, or an endpoint without it): the caller then
    /// follows through DescribeServices alone, as before these records existed.
    pub(crate) async fn service_deployments(
        &mut self,
        arns: &[String],
    ) -> Result<Option<Vec<ServiceDeploymentView>>, Stop> {
        if self.records_unavailable || arns.is_empty() {
            return Ok(None);
        }
        let command = Command::DescribeServiceDeployments {
            arns: arns.to_vec(),
        };
        match self.call(command).await {
            Ok(Observation::ServiceDeployments { found, .. }) => Ok(Some(found)),
            Ok(other) => Err(self.unexpected("DescribeServiceDeployments", &other)),
            Err(Stop::Error(ReleaseError::Aws { source, .. }))
                if crate::deployment::records_unavailable(source.code.as_deref()) =>
            {
                self.records_unavailable = true;
                self.emit(Event::RecordsUnavailable {
                    reason: source.to_string(),
                });
                Ok(None)
            }
            Err(stop) => Err(stop),
        }
    }

    /// ListServiceDeployments of `service`, newest first; `Err(reason)` inside when ECS does not
    /// answer it (denied by IAM, or an endpoint without it), which each caller weighs its own way.
    pub(crate) async fn list_service_deployments(
        &mut self,
        service: &str,
    ) -> Result<Result<Vec<String>, String>, Stop> {
        let command = Command::ListServiceDeployments {
            service: service.to_owned(),
        };
        match self.call(command).await {
            Ok(Observation::ServiceDeploymentArns(arns)) => Ok(Ok(arns)),
            Ok(other) => Err(self.unexpected("ListServiceDeployments", &other)),
            Err(Stop::Error(ReleaseError::Aws { source, .. }))
                if crate::deployment::records_unavailable(source.code.as_deref()) =>
            {
                Ok(Err(source.to_string()))
            }
            Err(stop) => Err(stop),
        }
    }

    /// DescribeServices of `services` (batched by the driver), in the order asked; a service
    /// ECS does not know is bad input.
    pub(crate) async fn describe_services(
        &mut self,
        services: &[String],
    ) -> Result<Vec<ServiceView>, Stop> {
        let command = Command::DescribeServices {
            services: services.to_vec(),
        };
        let (found, missing) = match self.call(command).await? {
            Observation::Services { found, missing } => (found, missing),
            other => return Err(self.unexpected("DescribeServices", &other)),
        };
        if let Some(service) = missing.into_iter().next() {
            return Err(Stop::Error(ReleaseError::ServiceNotFound {
                cluster: self.cluster.clone(),
                service,
            }));
        }
        let mut ordered = Vec::with_capacity(services.len());
        for name in services {
            let view = found
                .iter()
                .find(|v| v.service_name == *name || v.service_arn == *name)
                .cloned()
                .ok_or_else(|| {
                    self.fault(crate::fault::Fault::unexpected(
                        "DescribeServices",
                        format!("service `{name}` is neither found nor missing"),
                    ))
                })?;
            ordered.push(view);
        }
        Ok(ordered)
    }

    pub(crate) async fn describe_service(&mut self, service: &str) -> Result<ServiceView, Stop> {
        let mut views = self.describe_services(&[service.to_owned()]).await?;
        Ok(views.remove(0))
    }

    /// The services, which must all be ACTIVE.
    pub(crate) async fn active_services(
        &mut self,
        services: &[String],
    ) -> Result<Vec<ServiceView>, Stop> {
        let views = self.describe_services(services).await?;
        if let Some(inactive) = views.iter().find(|v| v.status != "ACTIVE") {
            return Err(Stop::Error(ReleaseError::ServiceNotActive {
                cluster: self.cluster.clone(),
                service: inactive.service_name.clone(),
                status: inactive.status.clone(),
            }));
        }
        Ok(views)
    }

    pub(crate) async fn describe_task_definition(
        &mut self,
        arn: &str,
    ) -> Result<TaskDefinitionView, Stop> {
        let command = Command::DescribeTaskDefinition {
            arn: arn.to_owned(),
        };
        match self.call(command).await? {
            Observation::TaskDefinition(view) => Ok(view),
            other => Err(self.unexpected("DescribeTaskDefinition", &other)),
        }
    }

    /// DescribeTaskDefinition's whole answer as ECS sent it, members the SDK does not know
    /// included (`{"taskDefinition": {…}}`).
    pub(crate) async fn describe_task_definition_answer(
        &mut self,
        arn: &str,
    ) -> Result<serde_json::Value, Stop> {
        let command = Command::DescribeTaskDefinitionAnswer {
            arn: arn.to_owned(),
        };
        let text = match self.call(command).await? {
            Observation::TaskDefinitionAnswer(text) => text,
            other => return Err(self.unexpected("DescribeTaskDefinition", &other)),
        };
        serde_json::from_str(&text).map_err(|e| {
            self.fault(crate::fault::Fault::unexpected(
                "DescribeTaskDefinition",
                format!("the answer for {arn} is not JSON: {e}"),
            ))
        })
    }

    pub(crate) async fn describe_tasks(&mut self, arns: &[String]) -> Result<Vec<TaskView>, Stop> {
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        let command = Command::DescribeTasks {
            arns: arns.to_vec(),
        };
        match self.call(command).await? {
            Observation::Tasks(tasks) => Ok(tasks),
            other => Err(self.unexpected("DescribeTasks", &other)),
        }
    }

    pub(crate) async fn stop_task(&mut self, arn: &str, reason: &str) -> Result<(), Stop> {
        let command = Command::StopTask {
            arn: arn.to_owned(),
            reason: reason.to_owned(),
        };
        match self.call(command).await? {
            Observation::TaskStopping => Ok(()),
            other => Err(self.unexpected("StopTask", &other)),
        }
    }

    pub(crate) async fn describe_entries(
        &mut self,
        family: &str,
        revisions: Vec<i32>,
    ) -> Result<Vec<Entry>, Stop> {
        if revisions.is_empty() {
            return Ok(Vec::new());
        }
        let command = Command::DescribeEntries {
            family: family.to_owned(),
            revisions,
        };
        match self.call(command).await? {
            Observation::Entries(entries) => Ok(entries),
            other => Err(self.unexpected("DescribeTaskDefinition", &other)),
        }
    }

    pub(crate) async fn close_entry(&mut self, arn: &str, record: Record) -> Result<(), Stop> {
        let command = Command::CloseEntry {
            arn: arn.to_owned(),
            record: Box::new(record),
        };
        match self.call(command).await? {
            Observation::EntryClosed => Ok(()),
            other => Err(self.unexpected("DeregisterTaskDefinition", &other)),
        }
    }

    /// Waits for every log follower to drain its stream.
    pub(crate) async fn await_logs(&mut self) -> Result<(), Stop> {
        while let Some(role) = self.following.first().copied() {
            self.following.remove(0);
            match self.call(Command::AwaitLogs { role }).await? {
                Observation::LogsDrained { lines, .. } => self.record_log_lines(role, lines),
                other => return Err(self.unexpected("GetLogEvents", &other)),
            }
        }
        Ok(())
    }

    /// Waits for the logs of `role` to drain; the preset frames in them.
    pub(crate) async fn drain_logs(&mut self, role: TaskRole) -> Result<Vec<String>, Stop> {
        let Some(index) = self.following.iter().position(|r| *r == role) else {
            return Ok(Vec::new());
        };
        self.following.remove(index);
        match self.call(Command::AwaitLogs { role }).await? {
            Observation::LogsDrained { lines, frames } => {
                self.record_log_lines(role, lines);
                Ok(frames)
            }
            other => Err(self.unexpected("GetLogEvents", &other)),
        }
    }

    /// Stops following the logs of `role`: its task goes on without us.
    pub(crate) async fn stop_logs(&mut self, role: TaskRole) -> Result<(), Stop> {
        let Some(index) = self.following.iter().position(|r| *r == role) else {
            return Ok(());
        };
        self.following.remove(index);
        match self.call(Command::StopLogs { role }).await? {
            Observation::LogsDrained { lines, .. } => {
                self.record_log_lines(role, lines);
                Ok(())
            }
            other => Err(self.unexpected("GetLogEvents", &other)),
        }
    }

    fn task_report(&mut self, role: TaskRole) -> &mut Option<crate::report::TaskReport> {
        match role {
            TaskRole::Migrate => &mut self.report.migration,
            TaskRole::Contract => &mut self.report.contract,
            TaskRole::PostDeploy => &mut self.report.post_deploy,
            TaskRole::Run => &mut self.report.task,
        }
    }

    pub(crate) fn set_task_report(&mut self, role: TaskRole, report: crate::report::TaskReport) {
        *self.task_report(role) = Some(report);
    }

    /// How a task that was stopped (timeout, cancel) ended, into its report.
    pub(crate) fn record_stop(&mut self, role: TaskRole, task: &TaskView) {
        let outcome = match crate::task::assess_task(task) {
            crate::task::TaskProgress::Finished(outcome) => Some(outcome),
            _ => None,
        };
        if let Some(report) = self.task_report(role).as_mut() {
            report.stop_code.clone_from(&task.stop_code);
            report.stopped_reason.clone_from(&task.stopped_reason);
            report.exit_code = match &outcome {
                Some(crate::task::TaskOutcome::Exited { exit_code, .. }) => Some(*exit_code),
                Some(crate::task::TaskOutcome::Succeeded) => Some(0),
                _ => None,
            };
            report.outcome = outcome;
        }
    }

    fn record_log_lines(&mut self, role: TaskRole, lines: u64) {
        if let Some(report) = self.task_report(role).as_mut() {
            report.log_lines = lines;
        }
    }
}
