//! Several releases and interfering actors against the simulated ECS, on a manual clock, in
//! an order chosen by a seeded random scheduler — quinn-proto's simulated pair, for releases.
//! After every step the invariants are checked; the schedule that broke one is returned with
//! what happened, so a failure reads as a story.

pub(crate) mod legacy;
pub(crate) mod world;

use std::time::Duration;

use shipmate_release::io::{Command, Observation};
use shipmate_release::machine::{Machine, Step};
use shipmate_release::release::{self, DeployRequest, Finished, LockSettings, RollbackRequest};

use world::{CLUSTER, Happened, SERVICE, World};

/// A deterministic random source (splitmix64): the seed is the whole schedule.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..high`.
    pub(crate) fn range(&mut self, low: i64, high: i64) -> i64 {
        let span = u64::try_from((high - low).max(1)).expect("positive span");
        low + i64::try_from(self.next() % span).expect("small")
    }

    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Which lock protocol the releases use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// shipmate's: the release ledger.
    Ledger,
    /// The earlier one: a RunTask token derived from the service's PRIMARY deployment.
    PrimaryToken,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Deploy { image: String },
    DeployWithoutMigration { image: String },
    Rollback,
}

#[derive(Debug, Clone)]
pub(crate) enum Interference {
    ForcedDeployment,
    ForeignRegistration,
    CrashingDeployment,
}

#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    pub(crate) protocol: Protocol,
    pub(crate) releases: Vec<(i64, Kind)>,
    pub(crate) interferences: Vec<(i64, Interference)>,
    /// (release, at, restarted after): the job is SIGKILLed and re-run.
    pub(crate) kills: Vec<(usize, i64, i64)>,
    /// (release, at, for): the job stalls (a laptop asleep, a frozen runner).
    pub(crate) pauses: Vec<(usize, i64, i64)>,
    pub(crate) list_lag_ms: i64,
}

pub(crate) const LEASE: Duration = Duration::from_secs(10);

impl Scenario {
    /// A random scenario: two or three releases and whatever may happen to them.
    pub(crate) fn random(rng: &mut Rng, protocol: Protocol) -> Scenario {
        let count = if rng.chance(50) { 2 } else { 3 };
        let mut releases = Vec::new();
        for n in 0..count {
            let image = format!("app:v{}-ms{}", n + 2, rng.range(1_000, 3_000));
            let kind = match (protocol, rng.range(0, 10)) {
                (Protocol::Ledger, 0) => Kind::DeployWithoutMigration { image },
                (Protocol::Ledger, 1) => Kind::Rollback,
                _ => Kind::Deploy { image },
            };
            releases.push((rng.range(0, 6_000), kind));
        }
        let mut interferences = Vec::new();
        for _ in 0..rng.range(0, 3) {
            let what = match rng.range(0, 3) {
                0 => Interference::ForcedDeployment,
                1 => Interference::ForeignRegistration,
                _ => Interference::CrashingDeployment,
            };
            interferences.push((rng.range(0, 8_000), what));
        }
        let mut kills = Vec::new();
        if protocol == Protocol::Ledger && rng.chance(40) {
            let who = usize::try_from(rng.range(0, count)).expect("small");
            kills.push((who, rng.range(500, 9_000), rng.range(0, 25_000)));
        }
        let mut pauses = Vec::new();
        if protocol == Protocol::Ledger && rng.chance(30) {
            let who = usize::try_from(rng.range(0, count)).expect("small");
            pauses.push((who, rng.range(500, 9_000), rng.range(11_000, 30_000)));
        }
        Scenario {
            protocol,
            releases,
            interferences,
            kills,
            pauses,
            list_lag_ms: if rng.chance(30) { 3_000 } else { 0 },
        }
    }
}

fn lock_settings() -> LockSettings {
    LockSettings {
        key: Some("bookshop".to_owned()),
        timeout: Duration::from_secs(600),
        lease: LEASE,
        by: "sim".to_owned(),
    }
}

fn deploy_request(image: &str, migrate: bool) -> DeployRequest {
    DeployRequest {
        lock: lock_settings(),
        ..crate::common::deploy_request(image, migrate)
    }
}

/// Anything the scheduler can step.
trait Stepper {
    fn start(&mut self, now: i64) -> Step<u8>;
    fn observe(&mut self, now: i64, observation: Observation) -> Step<u8>;
}

impl Stepper for Machine<Finished> {
    fn start(&mut self, now: i64) -> Step<u8> {
        exit_code(Machine::start(self, now))
    }
    fn observe(&mut self, now: i64, observation: Observation) -> Step<u8> {
        exit_code(Machine::observe(self, now, observation))
    }
}

impl Stepper for Machine<u8> {
    fn start(&mut self, now: i64) -> Step<u8> {
        Machine::start(self, now)
    }
    fn observe(&mut self, now: i64, observation: Observation) -> Step<u8> {
        Machine::observe(self, now, observation)
    }
}

fn exit_code(step: Step<Finished>) -> Step<u8> {
    match step {
        Step::Command(command) => Step::Command(command),
        Step::Done(finished) => Step::Done(
            finished
                .result
                .err()
                .map_or(0, |error| error.exit_code().code()),
        ),
    }
}

fn machine(protocol: Protocol, kind: &Kind) -> Box<dyn Stepper> {
    match (protocol, kind) {
        (Protocol::PrimaryToken, Kind::Deploy { image }) => {
            Box::new(legacy::release(image.clone()))
        }
        (Protocol::PrimaryToken, _) => unreachable!("the legacy protocol only deploys"),
        (Protocol::Ledger, Kind::Deploy { image }) => {
            Box::new(release::deploy(deploy_request(image, true)))
        }
        (Protocol::Ledger, Kind::DeployWithoutMigration { image }) => {
            Box::new(release::deploy(deploy_request(image, false)))
        }
        (Protocol::Ledger, Kind::Rollback) => Box::new(release::rollback(RollbackRequest {
            cluster: CLUSTER.to_owned(),
            services: vec![SERVICE.to_owned()],
            to: None,
            timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(1),
            wait: true,
            dry_run: false,
            force: false,
            lock: lock_settings(),
            max_failed_tasks: None,
        })),
    }
}

struct Actor {
    release: usize,
    kind: Kind,
    machine: Option<Box<dyn Stepper>>,
    pending: Option<Command>,
    starts_at: i64,
    paused_until: i64,
    /// The release's place in the lock order (its ledger entry, or when the legacy protocol
    /// let it migrate).
    order: Option<i64>,
    exit: Option<u8>,
    killed: bool,
    did_update: bool,
}

impl Actor {
    fn wake_at(&self) -> Option<i64> {
        if self.exit.is_some() || self.killed {
            return None;
        }
        let own = match (&self.machine, &self.pending) {
            (None, _) => self.starts_at,
            (Some(_), Some(Command::Sleep { until_ms })) => *until_ms,
            (Some(_), _) => i64::MIN,
        };
        Some(own.max(self.paused_until))
    }
}

/// How a simulated run ended.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) exits: Vec<Option<u8>>,
    pub(crate) final_image: String,
    pub(crate) history: Vec<Happened>,
    pub(crate) violation: Option<String>,
    /// (release, lock order), for reading a failure.
    pub(crate) orders: Vec<(usize, Option<i64>)>,
    pub(crate) open_entries: usize,
}

const MAX_STEPS: usize = 20_000;

pub(crate) fn simulate(scenario: &Scenario, seed: u64) -> Run {
    let mut rng = Rng::new(seed);
    let mut world = World::new();
    world.list_lag_ms = scenario.list_lag_ms;
    let t0 = world.now;
    let mut actors: Vec<Actor> = scenario
        .releases
        .iter()
        .enumerate()
        .map(|(release, (at, kind))| Actor {
            release,
            kind: kind.clone(),
            machine: None,
            pending: None,
            starts_at: t0 + at,
            paused_until: 0,
            order: None,
            exit: None,
            killed: false,
            did_update: false,
        })
        .collect();
    let mut interferences: Vec<(i64, Interference)> = scenario
        .interferences
        .iter()
        .map(|(at, what)| (t0 + at, what.clone()))
        .collect();
    let mut kills: Vec<(usize, i64, i64)> = scenario
        .kills
        .iter()
        .map(|(who, at, after)| (*who, t0 + at, *after))
        .collect();
    let mut pauses: Vec<(usize, i64, i64)> = scenario
        .pauses
        .iter()
        .map(|(who, at, length)| (*who, t0 + at, *length))
        .collect();
    let mut legacy_acquisitions = 0;
    let mut violation = None;

    for _ in 0..MAX_STEPS {
        // Interference and faults that are due.
        interferences.retain(|(at, what)| {
            if *at > world.now {
                return true;
            }
            match what {
                Interference::ForcedDeployment => world.force_new_deployment(),
                Interference::ForeignRegistration => world.foreign_registration(),
                Interference::CrashingDeployment => world.crashing_deployment(),
            }
            false
        });
        let mut restarts = Vec::new();
        kills.retain(|(who, at, after)| {
            if *at > world.now {
                return true;
            }
            if let Some(actor) = actors
                .iter_mut()
                .rev()
                .find(|a| a.release == *who && !a.killed)
                && actor.exit.is_none()
                && actor.machine.is_some()
            {
                actor.killed = true;
                restarts.push((*who, world.now + after));
            }
            false
        });
        for (who, at) in restarts {
            let kind = scenario.releases[who].1.clone();
            actors.push(Actor {
                release: who,
                kind,
                machine: None,
                pending: None,
                starts_at: at,
                paused_until: 0,
                order: None,
                exit: None,
                killed: false,
                did_update: false,
            });
        }
        pauses.retain(|(who, at, length)| {
            if *at > world.now {
                return true;
            }
            let Some(actor) = actors
                .iter_mut()
                .rev()
                .find(|a| a.release == *who && !a.killed)
            else {
                return false;
            };
            // A stall shows up between two of the release's polls. A stall between the lock
            // check and the call it guards is the documented limit (docs/lock.md), pinned by
            // its own test rather than drawn here.
            match actor.pending {
                Some(Command::Sleep { .. }) => {
                    actor.paused_until = world.now + length;
                    false
                }
                _ => actor.exit.is_none(),
            }
        });

        let runnable: Vec<usize> = actors
            .iter()
            .enumerate()
            .filter(|(_, a)| a.wake_at().is_some_and(|t| t <= world.now))
            .map(|(i, _)| i)
            .collect();
        if runnable.is_empty() {
            let next = actors
                .iter()
                .filter_map(Actor::wake_at)
                .chain(world.next_due())
                .chain(interferences.iter().map(|(at, _)| *at))
                .chain(kills.iter().map(|(_, at, _)| *at))
                .chain(pauses.iter().map(|(_, at, _)| *at))
                .filter(|t| *t > world.now)
                .min();
            let waiting_for_actors = actors.iter().any(|a| a.wake_at().is_some());
            match next {
                Some(next) => world.advance_to(next),
                None if waiting_for_actors => unreachable!("an actor waits for nothing"),
                None => break,
            }
            continue;
        }
        let index = runnable[usize::try_from(rng.next() % runnable.len() as u64).expect("small")];
        let now = world.now;
        let started = actors[index].machine.is_some();
        let mut stepper = match actors[index].machine.take() {
            Some(stepper) => stepper,
            None => machine(scenario.protocol, &actors[index].kind),
        };
        let step = if started {
            let command = actors[index]
                .pending
                .take()
                .expect("a runnable actor has a command");
            let observation = world.execute(actors[index].release, &command);
            note_order(
                &mut actors[index],
                &command,
                &observation,
                &mut legacy_acquisitions,
            );
            if let Command::UpdateService { .. } = command {
                if violation.is_none() {
                    violation = check_order(&actors, index);
                }
                actors[index].did_update = true;
            }
            stepper.observe(world.now, observation)
        } else {
            stepper.start(now)
        };
        actors[index].machine = Some(stepper);
        let actor = &mut actors[index];
        match step {
            Step::Command(command) => actor.pending = Some(command),
            Step::Done(code) => {
                actor.exit = Some(code);
                actor.pending = None;
            }
        }
        if violation.is_none() {
            violation = check_overlap(&world);
        }
        if violation.is_some() {
            break;
        }
        // Calls take time: move the clock a little now and then, so steps interleave.
        if rng.chance(30) {
            let jitter = rng.range(1, 300);
            world.advance_to(world.now + jitter);
        }
    }
    let exits = (0..scenario.releases.len())
        .map(|release| {
            actors
                .iter()
                .rev()
                .find(|a| a.release == release && !a.killed)
                .and_then(|a| a.exit)
        })
        .collect();
    Run {
        exits,
        final_image: world.primary_image(),
        orders: actors.iter().map(|a| (a.release, a.order)).collect(),
        history: world.history.clone(),
        violation,
        open_entries: world.open_entries(),
    }
}

fn note_order(
    actor: &mut Actor,
    command: &Command,
    observation: &Observation,
    legacy_acquisitions: &mut i64,
) {
    match (command, observation) {
        (Command::RegisterEntry { .. }, Observation::EntryRegistered(entry)) => {
            actor.order = Some(i64::from(entry.revision));
        }
        (Command::TagEntry { arn, .. }, _) => {
            // A resumed run takes its order from the entry it carries on.
            let revision = arn.rsplit(':').next().and_then(|r| r.parse::<i64>().ok());
            if let Some(revision) = revision {
                actor.order = Some(actor.order.map_or(revision, |o| o.max(revision)));
            }
        }
        (Command::RunTask(spec), Observation::TaskStarted(task))
            if spec.started_by.starts_with("legacy/")
                && task.created_at.is_some()
                && actor.order.is_none() =>
        {
            *legacy_acquisitions += 1;
            actor.order = Some(*legacy_acquisitions);
        }
        _ => {}
    }
}

/// No release goes live after a release that took the lock after it went live.
fn check_order(actors: &[Actor], updating: usize) -> Option<String> {
    let me = &actors[updating];
    let mine = me.order?;
    let newer = actors.iter().find(|other| {
        other.release != me.release && other.order.is_some_and(|o| o > mine) && other.did_update
    })?;
    Some(format!(
        "release {} (lock order {mine}) updated the service after release {} (lock order {:?}) had",
        me.release, newer.release, newer.order
    ))
}

/// No two migration tasks ever run at the same time.
fn check_overlap(world: &World) -> Option<String> {
    let running = world.running_migrations();
    (running.len() > 1).then(|| {
        format!(
            "{} migrations run at once: {}",
            running.len(),
            running
                .iter()
                .map(|t| format!("{} ({})", t.arn, t.started_by))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}
