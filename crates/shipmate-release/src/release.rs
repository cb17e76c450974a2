//! The release as a state machine: the order of its phases, decided from what the driver
//! observed. The driver executes each [`Command`] (the only part that talks to ECS or waits) and
//! reports the result as an [`Observation`]; [`Release::next`] answers with the next command, so
//! every path through a release is tested here without I/O or sleeping.

use crate::event::Phase;

/// A holder that deployed while we waited changes the service under us; after this many
/// preparations the release gives up instead of chasing other deployments forever.
pub const MAX_PREPARES: u32 = 20;

/// What the release was asked to do, as far as the order of its phases cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseOptions {
    /// A migration command is configured.
    pub migrate: bool,
    /// Follow the rollout (`--no-wait` stops after the service update).
    pub wait: bool,
    /// `--rollback`: undo a failed or timed-out rollout ourselves.
    pub rollback_on_failure: bool,
    /// A post-deploy command is configured.
    pub post_deploy: bool,
}

/// Where the release is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    Preparing,
    Locking,
    Migrating,
    Deploying,
    /// Rolling back; `then` is how the release ends once the rollback is steady.
    RollingBack {
        then: Outcome,
    },
    PostDeploy,
    Done(Outcome),
}

/// How a release ended. The driver turns every outcome but `Succeeded` into its error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// The migration did not pass the gate: the service was never touched.
    MigrationFailed,
    /// The deployment failed; `rolled_back_to` when ECS or we rolled it back.
    DeploymentFailed {
        reason: String,
        rolled_back_to: Option<String>,
    },
    /// The rollout did not finish within the deploy timeout.
    DeployTimedOut {
        rolled_back_to: Option<String>,
    },
    /// The post-deploy task did not pass the gate (the service is already updated).
    PostDeployFailed,
    Cancelled,
    /// The service kept changing under the release.
    GaveUp {
        prepares: u32,
    },
    /// The driver reported something this stage does not expect (a driver bug).
    Unexpected {
        stage: String,
        observation: String,
    },
}

/// How a followed rollout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutEnd {
    Completed,
    /// Our deployment failed and ECS did not roll it back.
    Failed {
        reason: String,
    },
    /// Our deployment failed and ECS is rolling back to `to`.
    RolledBackByEcs {
        to: String,
        reason: String,
    },
    TimedOut,
}

/// What the driver saw when it executed the last command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The service was read and the target revision is ready.
    Prepared {
        current: String,
        target: String,
    },
    /// The migration task runs (or ran) under the lock.
    LockAcquired,
    /// Another release deployed while we waited for the lock: start over.
    RestartNeeded,
    MigrationFinished {
        passed: bool,
    },
    ServiceUpdated,
    RolloutFinished(RolloutEnd),
    /// The rollback reached a steady state.
    RollbackFinished,
    PostDeployFinished {
        passed: bool,
    },
    Cancelled,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Read the service and register (or reuse) the revision; `first` announces the release.
    Prepare {
        first: bool,
    },
    AcquireLockAndStartMigration,
    FollowMigration,
    UpdateService,
    FollowRollout,
    /// Roll the service back to `to`; `update_service` is false when ECS already does.
    RollBack {
        to: String,
        reason: String,
        update_service: bool,
    },
    RunPostDeploy,
    Finish(Outcome),
}

#[derive(Debug, Clone)]
pub struct Release {
    options: ReleaseOptions,
    stage: Stage,
    /// The phase of the timeline; it outlives `Done` so the last phase is closed by the driver.
    phase: Phase,
    prepares: u32,
    current: String,
    target: String,
    already_deployed: bool,
}

impl Release {
    /// A release about to prepare; its first command is [`Release::first_command`].
    pub fn new(options: ReleaseOptions) -> Release {
        Release {
            options,
            stage: Stage::Preparing,
            phase: Phase::Prepare,
            prepares: 1,
            current: String::new(),
            target: String::new(),
            already_deployed: false,
        }
    }

    pub fn first_command(&self) -> Command {
        Command::Prepare { first: true }
    }

    pub fn stage(&self) -> &Stage {
        &self.stage
    }

    /// The timeline phase the next command belongs to.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    fn enter(&mut self, stage: Stage, phase: Phase) {
        self.stage = stage;
        self.phase = phase;
    }

    fn finish(&mut self, outcome: Outcome) -> Command {
        self.stage = Stage::Done(outcome.clone());
        Command::Finish(outcome)
    }

    fn roll_back(
        &mut self,
        to: String,
        reason: String,
        update_service: bool,
        then: Outcome,
    ) -> Command {
        self.enter(Stage::RollingBack { then }, Phase::Rollback);
        Command::RollBack {
            to,
            reason,
            update_service,
        }
    }

    /// The next command after `observation`.
    pub fn next(&mut self, observation: Observation) -> Command {
        if observation == Observation::Cancelled {
            return self.finish(Outcome::Cancelled);
        }
        match (self.stage.clone(), observation) {
            (Stage::Preparing, Observation::Prepared { current, target }) => {
                self.already_deployed = current == target;
                self.current = current;
                self.target = target;
                if self.already_deployed {
                    // Nothing to migrate or update: follow (or just report) what runs.
                    self.enter(Stage::Deploying, Phase::Deploy);
                    if self.options.wait {
                        Command::FollowRollout
                    } else {
                        self.finish(Outcome::Succeeded)
                    }
                } else if self.options.migrate {
                    self.enter(Stage::Locking, Phase::Lock);
                    Command::AcquireLockAndStartMigration
                } else {
                    self.enter(Stage::Deploying, Phase::Deploy);
                    Command::UpdateService
                }
            }
            (Stage::Locking, Observation::LockAcquired) => {
                self.enter(Stage::Migrating, Phase::Migrate);
                Command::FollowMigration
            }
            (Stage::Locking, Observation::RestartNeeded) => {
                if self.prepares >= MAX_PREPARES {
                    return self.finish(Outcome::GaveUp {
                        prepares: self.prepares,
                    });
                }
                self.prepares += 1;
                self.enter(Stage::Preparing, Phase::Prepare);
                Command::Prepare { first: false }
            }
            (Stage::Migrating, Observation::MigrationFinished { passed }) => {
                if passed {
                    self.enter(Stage::Deploying, Phase::Deploy);
                    Command::UpdateService
                } else {
                    self.finish(Outcome::MigrationFailed)
                }
            }
            (Stage::Deploying, Observation::ServiceUpdated) => {
                if self.options.wait {
                    Command::FollowRollout
                } else {
                    self.finish(Outcome::Succeeded)
                }
            }
            (Stage::Deploying, Observation::RolloutFinished(end)) => self.after_rollout(end),
            (Stage::RollingBack { then }, Observation::RollbackFinished) => self.finish(then),
            (Stage::PostDeploy, Observation::PostDeployFinished { passed }) => {
                if passed {
                    self.finish(Outcome::Succeeded)
                } else {
                    self.finish(Outcome::PostDeployFailed)
                }
            }
            (stage, observation) => self.finish(Outcome::Unexpected {
                stage: format!("{stage:?}"),
                observation: format!("{observation:?}"),
            }),
        }
    }

    fn after_rollout(&mut self, end: RolloutEnd) -> Command {
        match end {
            // A re-run of a finished release ends with the rollout: its post-deploy already ran.
            RolloutEnd::Completed if self.already_deployed || !self.options.post_deploy => {
                self.finish(Outcome::Succeeded)
            }
            RolloutEnd::Completed => {
                self.enter(Stage::PostDeploy, Phase::PostDeploy);
                Command::RunPostDeploy
            }
            // ECS is already rolling back: follow it so the job ends on a stable service.
            RolloutEnd::RolledBackByEcs { to, reason } => {
                let then = Outcome::DeploymentFailed {
                    reason: reason.clone(),
                    rolled_back_to: Some(to.clone()),
                };
                self.roll_back(to, reason, false, then)
            }
            RolloutEnd::Failed { reason } if self.options.rollback_on_failure => {
                let to = self.current.clone();
                let then = Outcome::DeploymentFailed {
                    reason: reason.clone(),
                    rolled_back_to: Some(to.clone()),
                };
                self.roll_back(to, reason, true, then)
            }
            RolloutEnd::Failed { reason } => self.finish(Outcome::DeploymentFailed {
                reason,
                rolled_back_to: None,
            }),
            RolloutEnd::TimedOut if self.options.rollback_on_failure => {
                let to = self.current.clone();
                let then = Outcome::DeployTimedOut {
                    rolled_back_to: Some(to.clone()),
                };
                self.roll_back(to, "the rollout timed out".to_owned(), true, then)
            }
            RolloutEnd::TimedOut => self.finish(Outcome::DeployTimedOut {
                rolled_back_to: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "arn:td/web:1";
    const NEW: &str = "arn:td/web:2";

    fn options() -> ReleaseOptions {
        ReleaseOptions {
            migrate: true,
            wait: true,
            rollback_on_failure: false,
            post_deploy: false,
        }
    }

    fn prepared() -> Observation {
        Observation::Prepared {
            current: OLD.to_owned(),
            target: NEW.to_owned(),
        }
    }

    fn rollback(to: &str, reason: &str, update_service: bool) -> Command {
        Command::RollBack {
            to: to.to_owned(),
            reason: reason.to_owned(),
            update_service,
        }
    }

    /// Feeds `steps` (observation, expected command, expected phase) to a fresh release.
    fn run(options: ReleaseOptions, steps: &[(Observation, Command, Phase)]) -> Release {
        let mut release = Release::new(options);
        assert_eq!(release.first_command(), Command::Prepare { first: true });
        assert_eq!(release.phase(), Phase::Prepare);
        for (i, (observation, command, phase)) in steps.iter().enumerate() {
            let got = release.next(observation.clone());
            assert_eq!(&got, command, "step {i}: after {observation:?}");
            assert_eq!(
                release.phase(),
                *phase,
                "step {i}: phase after {observation:?}"
            );
        }
        release
    }

    fn failed(reason: &str) -> Observation {
        Observation::RolloutFinished(RolloutEnd::Failed {
            reason: reason.to_owned(),
        })
    }

    #[test]
    fn success_path_with_migration_and_post_deploy() {
        let release = run(
            ReleaseOptions {
                post_deploy: true,
                ..options()
            },
            &[
                (
                    prepared(),
                    Command::AcquireLockAndStartMigration,
                    Phase::Lock,
                ),
                (
                    Observation::LockAcquired,
                    Command::FollowMigration,
                    Phase::Migrate,
                ),
                (
                    Observation::MigrationFinished { passed: true },
                    Command::UpdateService,
                    Phase::Deploy,
                ),
                (
                    Observation::ServiceUpdated,
                    Command::FollowRollout,
                    Phase::Deploy,
                ),
                (
                    Observation::RolloutFinished(RolloutEnd::Completed),
                    Command::RunPostDeploy,
                    Phase::PostDeploy,
                ),
                (
                    Observation::PostDeployFinished { passed: true },
                    Command::Finish(Outcome::Succeeded),
                    Phase::PostDeploy,
                ),
            ],
        );
        assert_eq!(release.stage(), &Stage::Done(Outcome::Succeeded));
    }

    #[test]
    fn already_deployed_skips_migration_update_and_post_deploy() {
        let same = Observation::Prepared {
            current: NEW.to_owned(),
            target: NEW.to_owned(),
        };
        let with_post_deploy = ReleaseOptions {
            post_deploy: true,
            ..options()
        };
        run(
            with_post_deploy,
            &[
                (same.clone(), Command::FollowRollout, Phase::Deploy),
                (
                    Observation::RolloutFinished(RolloutEnd::Completed),
                    Command::Finish(Outcome::Succeeded),
                    Phase::Deploy,
                ),
            ],
        );
        run(
            ReleaseOptions {
                wait: false,
                ..with_post_deploy
            },
            &[(same, Command::Finish(Outcome::Succeeded), Phase::Deploy)],
        );
    }

    #[test]
    fn no_migration_goes_straight_to_the_update() {
        let no_migration = ReleaseOptions {
            migrate: false,
            ..options()
        };
        run(
            no_migration,
            &[
                (prepared(), Command::UpdateService, Phase::Deploy),
                (
                    Observation::ServiceUpdated,
                    Command::FollowRollout,
                    Phase::Deploy,
                ),
                (
                    Observation::RolloutFinished(RolloutEnd::Completed),
                    Command::Finish(Outcome::Succeeded),
                    Phase::Deploy,
                ),
            ],
        );
        // --no-wait ends with the update, before any post-deploy.
        run(
            ReleaseOptions {
                wait: false,
                post_deploy: true,
                ..no_migration
            },
            &[
                (prepared(), Command::UpdateService, Phase::Deploy),
                (
                    Observation::ServiceUpdated,
                    Command::Finish(Outcome::Succeeded),
                    Phase::Deploy,
                ),
            ],
        );
    }

    #[test]
    fn gate_failure_never_touches_the_service() {
        let release = run(
            options(),
            &[
                (
                    prepared(),
                    Command::AcquireLockAndStartMigration,
                    Phase::Lock,
                ),
                (
                    Observation::LockAcquired,
                    Command::FollowMigration,
                    Phase::Migrate,
                ),
                (
                    Observation::MigrationFinished { passed: false },
                    Command::Finish(Outcome::MigrationFailed),
                    Phase::Migrate,
                ),
            ],
        );
        assert_eq!(release.stage(), &Stage::Done(Outcome::MigrationFailed));
    }

    #[test]
    fn lock_restart_prepares_again_and_gives_up_eventually() {
        run(
            options(),
            &[
                (
                    prepared(),
                    Command::AcquireLockAndStartMigration,
                    Phase::Lock,
                ),
                (
                    Observation::RestartNeeded,
                    Command::Prepare { first: false },
                    Phase::Prepare,
                ),
                (
                    prepared(),
                    Command::AcquireLockAndStartMigration,
                    Phase::Lock,
                ),
                (
                    Observation::LockAcquired,
                    Command::FollowMigration,
                    Phase::Migrate,
                ),
            ],
        );
        let mut release = Release::new(options());
        for _ in 1..MAX_PREPARES {
            assert_eq!(
                release.next(prepared()),
                Command::AcquireLockAndStartMigration
            );
            assert_eq!(
                release.next(Observation::RestartNeeded),
                Command::Prepare { first: false }
            );
        }
        assert_eq!(
            release.next(prepared()),
            Command::AcquireLockAndStartMigration
        );
        assert_eq!(
            release.next(Observation::RestartNeeded),
            Command::Finish(Outcome::GaveUp {
                prepares: MAX_PREPARES
            })
        );
    }

    fn to_rollout(options: ReleaseOptions) -> Release {
        let mut release = Release::new(options);
        for observation in [
            prepared(),
            Observation::LockAcquired,
            Observation::MigrationFinished { passed: true },
            Observation::ServiceUpdated,
        ] {
            release.next(observation);
        }
        assert_eq!(release.stage(), &Stage::Deploying);
        release
    }

    #[test]
    fn rollout_endings() {
        let with_rollback = ReleaseOptions {
            rollback_on_failure: true,
            post_deploy: true,
            ..options()
        };
        let without_rollback = ReleaseOptions {
            post_deploy: true,
            ..options()
        };
        let deployment_failed = |to: Option<&str>| Outcome::DeploymentFailed {
            reason: "circuit breaker".to_owned(),
            rolled_back_to: to.map(str::to_owned),
        };
        let ecs_rolled_back = Observation::RolloutFinished(RolloutEnd::RolledBackByEcs {
            to: OLD.to_owned(),
            reason: "circuit breaker".to_owned(),
        });
        let timed_out = Observation::RolloutFinished(RolloutEnd::TimedOut);
        // (options, rollout end, command, then after RollbackFinished)
        let cases = vec![
            (
                without_rollback,
                failed("circuit breaker"),
                Command::Finish(deployment_failed(None)),
                None,
            ),
            (
                with_rollback,
                failed("circuit breaker"),
                rollback(OLD, "circuit breaker", true),
                Some(deployment_failed(Some(OLD))),
            ),
            // ECS's own rollback is followed with or without --rollback.
            (
                without_rollback,
                ecs_rolled_back.clone(),
                rollback(OLD, "circuit breaker", false),
                Some(deployment_failed(Some(OLD))),
            ),
            (
                with_rollback,
                ecs_rolled_back,
                rollback(OLD, "circuit breaker", false),
                Some(deployment_failed(Some(OLD))),
            ),
            (
                without_rollback,
                timed_out.clone(),
                Command::Finish(Outcome::DeployTimedOut {
                    rolled_back_to: None,
                }),
                None,
            ),
            (
                with_rollback,
                timed_out,
                rollback(OLD, "the rollout timed out", true),
                Some(Outcome::DeployTimedOut {
                    rolled_back_to: Some(OLD.to_owned()),
                }),
            ),
        ];
        for (options, end, command, then) in cases {
            let mut release = to_rollout(options);
            assert_eq!(release.next(end.clone()), command, "{options:?} {end:?}");
            if let Some(then) = then {
                assert_eq!(release.phase(), Phase::Rollback);
                assert_eq!(
                    release.next(Observation::RollbackFinished),
                    Command::Finish(then.clone())
                );
                assert_eq!(release.stage(), &Stage::Done(then));
            }
        }
    }

    #[test]
    fn cancel_in_each_phase_ends_the_release() {
        let with_everything = ReleaseOptions {
            rollback_on_failure: true,
            post_deploy: true,
            ..options()
        };
        let paths: Vec<Vec<Observation>> = vec![
            vec![],
            vec![prepared()],
            vec![prepared(), Observation::LockAcquired],
            vec![
                prepared(),
                Observation::LockAcquired,
                Observation::MigrationFinished { passed: true },
                Observation::ServiceUpdated,
            ],
            vec![
                prepared(),
                Observation::LockAcquired,
                Observation::MigrationFinished { passed: true },
                Observation::ServiceUpdated,
                failed("circuit breaker"),
            ],
            vec![
                prepared(),
                Observation::LockAcquired,
                Observation::MigrationFinished { passed: true },
                Observation::ServiceUpdated,
                Observation::RolloutFinished(RolloutEnd::Completed),
            ],
        ];
        let phases = [
            Phase::Prepare,
            Phase::Lock,
            Phase::Migrate,
            Phase::Deploy,
            Phase::Rollback,
            Phase::PostDeploy,
        ];
        for (path, phase) in paths.into_iter().zip(phases) {
            let mut release = Release::new(with_everything);
            for observation in path {
                release.next(observation);
            }
            assert_eq!(release.phase(), phase);
            assert_eq!(
                release.next(Observation::Cancelled),
                Command::Finish(Outcome::Cancelled),
                "cancelled in {phase:?}"
            );
            assert_eq!(
                release.phase(),
                phase,
                "the cancelled phase stays the last one"
            );
        }
    }

    #[test]
    fn post_deploy_failure_fails_the_release() {
        let mut release = to_rollout(ReleaseOptions {
            post_deploy: true,
            ..options()
        });
        assert_eq!(
            release.next(Observation::RolloutFinished(RolloutEnd::Completed)),
            Command::RunPostDeploy
        );
        assert_eq!(
            release.next(Observation::PostDeployFinished { passed: false }),
            Command::Finish(Outcome::PostDeployFailed)
        );
    }

    #[test]
    fn unexpected_observations_end_the_release() {
        let mut release = Release::new(options());
        assert!(matches!(
            release.next(Observation::ServiceUpdated),
            Command::Finish(Outcome::Unexpected { .. })
        ));
    }
}
