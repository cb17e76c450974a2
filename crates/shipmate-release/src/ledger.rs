//! The release ledger: shipmate's durable record of its releases, kept in ECS itself, and the
//! release lock built on it (docs/lock.md).
//!
//! A ledger is one task-definition family, `shipmate-ledger-<key>`, whose revisions are never
//! run. Every release (a deploy, a `--no-migrate` deploy, a rollback) registers one revision,
//! its *entry*; ECS numbers revisions of a family atomically and in order, which is the ticket
//! dispenser of the lock: the open (ACTIVE) entry with the lowest revision holds the lock, the
//! others queue behind it, and a release closes its entry (DeregisterTaskDefinition) when it
//! ends. Tags on the entry record what the release did (what was live before it, what it
//! deployed, its migration task and result, when it went live, how it ended), so that a re-run
//! resumes instead of repeating, a rollback returns to what was really live, and a release whose
//! lock was broken knows whether a newer release went live meanwhile.
//!
//! Everything here is pure: names, the tag encoding, and the decisions taken over entries.

use sha2::{Digest, Sha256};

/// Tag keys of an entry.
mod keys {
    pub(super) const RELEASE: &str = "shipmate:release";
    pub(super) const KIND: &str = "shipmate:kind";
    pub(super) const CLUSTER: &str = "shipmate:cluster";
    /// The services and their revisions, in chunks: `shipmate:moves.0` … (`shipmate:moves.count`).
    pub(super) const MOVES: &str = "shipmate:moves";
    pub(super) const MOVES_COUNT: &str = "shipmate:moves.count";
    /// The ARN prefix the revisions in the moves are written without.
    pub(super) const TD_PREFIX: &str = "shipmate:td-prefix";
    pub(super) const IMAGE: &str = "shipmate:image";
    pub(super) const BY: &str = "shipmate:by";
    pub(super) const HEARTBEAT: &str = "shipmate:heartbeat";
    pub(super) const STATE: &str = "shipmate:state";
    pub(super) const MIGRATION_ATTEMPT: &str = "shipmate:migration-attempt";
    pub(super) const MIGRATION_TASK: &str = "shipmate:migration-task";
    pub(super) const MIGRATION_RESULT: &str = "shipmate:migration-result";
    pub(super) const MIGRATION_TD: &str = "shipmate:migration-td";
    pub(super) const LIVE_AT: &str = "shipmate:live-at";
    pub(super) const OUTCOME: &str = "shipmate:outcome";
    pub(super) const CLOSED_BY: &str = "shipmate:closed-by";
    pub(super) const FINISHED_AT: &str = "shipmate:finished-at";
    /// A preset release's contract phase: `pending`, `passed` or `failed`.
    pub(super) const CONTRACT: &str = "shipmate:contract";
}

/// The image every entry's (never run) container names, so nobody mistakes it for a workload.
pub const ENTRY_IMAGE: &str = "shipmate/ledger-entry";
/// The entry's container name.
pub const ENTRY_CONTAINER: &str = "ledger";

const FAMILY_PREFIX: &str = "shipmate-ledger-";
/// Task-definition family names: up to 255 letters, digits, hyphens and underscores.
const FAMILY_MAX: usize = 255;

/// What the lock key may be when given in `shipmate.toml` or `--lock-key`.
pub fn validate_key(key: &str) -> Result<(), String> {
    let max = FAMILY_MAX - FAMILY_PREFIX.len();
    if key.is_empty() || key.len() > max {
        return Err(format!("the lock key must be 1 to {max} characters"));
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "the lock key `{key}` contains `{bad}`: use letters, digits, `-` and `_`"
        ));
    }
    Ok(())
}

/// The ledger family of a lock key.
pub fn family(key: &str) -> String {
    format!("{FAMILY_PREFIX}{key}")
}

/// The default lock key: the cluster and the repository of the released image. Services
/// released from one image (web, workers) nearly always share one database, and releases of
/// other applications or other clusters never wait for each other. The readable part is
/// sanitised and shortened; a digest of the exact inputs keeps distinct ones apart.
pub fn default_key(cluster: &str, image: &str) -> String {
    let cluster_name = cluster.rsplit('/').next().unwrap_or(cluster);
    let repository = image_repository(image);
    let readable_repository = repository.rsplit('/').next().unwrap_or(repository);
    let mut readable: String = format!("{cluster_name}-{readable_repository}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    readable.truncate(100);
    let mut hasher = Sha256::new();
    hasher.update(cluster_name.as_bytes());
    hasher.update([0]);
    hasher.update(repository.as_bytes());
    let digest = hex::encode(hasher.finalize());
    format!("{readable}-{}", &digest[..8])
}

/// `registry/repo:tag` or `registry/repo@sha256:…` without the tag or digest.
pub fn image_repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    // A `:` after the last `/` starts the tag; one before it belongs to a registry port.
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].find(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    }
}

/// What kind of release an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `shipmate deploy`, with a migration.
    Deploy,
    /// `shipmate deploy --no-migrate` (or without a migration command).
    DeployWithoutMigration,
    /// `shipmate rollback`.
    Rollback,
    /// `shipmate finish` of the release with the same id (which returned at `deployed`).
    Finish,
}

impl Kind {
    fn as_tag(self) -> &'static str {
        match self {
            Kind::Deploy => "deploy",
            Kind::DeployWithoutMigration => "deploy-no-migrate",
            Kind::Rollback => "rollback",
            Kind::Finish => "finish",
        }
    }

    fn from_tag(value: &str) -> Option<Kind> {
        match value {
            "deploy" => Some(Kind::Deploy),
            "deploy-no-migrate" => Some(Kind::DeployWithoutMigration),
            "rollback" => Some(Kind::Rollback),
            "finish" => Some(Kind::Finish),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        self.as_tag()
    }
}

/// Where an open entry's release is; shown to people waiting for the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Waiting,
    Preparing,
    Migrating,
    Deploying,
    RollingBack,
    Closed,
}

impl State {
    fn as_tag(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Preparing => "preparing",
            State::Migrating => "migrating",
            State::Deploying => "deploying",
            State::RollingBack => "rolling-back",
            State::Closed => "closed",
        }
    }

    fn from_tag(value: &str) -> Option<State> {
        [
            State::Waiting,
            State::Preparing,
            State::Migrating,
            State::Deploying,
            State::RollingBack,
            State::Closed,
        ]
        .into_iter()
        .find(|state| state.as_tag() == value)
    }

    pub fn label(self) -> &'static str {
        self.as_tag()
    }
}

/// How a release ended, as its entry records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryOutcome {
    /// Live and, when followed, completed.
    Succeeded,
    /// The service was updated and not followed (`--no-wait`).
    Updated,
    /// Production traffic is on the new revision; the deployment's bake time had not ended
    /// (`--wait-until deployed`): `shipmate finish` completes the release.
    Deployed,
    /// The release found its work already done (the service runs what it would deploy).
    AlreadyLive,
    MigrationFailed,
    DeploymentFailed,
    TimedOut,
    Cancelled,
    /// Gave up waiting for the lock.
    GaveUp,
    /// A newer release went live first.
    Superseded,
    /// Its holder stopped heartbeating; another release closed it.
    Broken,
    /// A person released it with `shipmate unlock`.
    Unlocked,
    /// The release ended on an error (AWS, bad input found late).
    Failed,
}

impl EntryOutcome {
    const ALL: [EntryOutcome; 13] = [
        EntryOutcome::Succeeded,
        EntryOutcome::Updated,
        EntryOutcome::Deployed,
        EntryOutcome::AlreadyLive,
        EntryOutcome::MigrationFailed,
        EntryOutcome::DeploymentFailed,
        EntryOutcome::TimedOut,
        EntryOutcome::Cancelled,
        EntryOutcome::GaveUp,
        EntryOutcome::Superseded,
        EntryOutcome::Broken,
        EntryOutcome::Unlocked,
        EntryOutcome::Failed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            EntryOutcome::Succeeded => "succeeded",
            EntryOutcome::Updated => "updated",
            EntryOutcome::Deployed => "deployed",
            EntryOutcome::AlreadyLive => "already-live",
            EntryOutcome::MigrationFailed => "migration-failed",
            EntryOutcome::DeploymentFailed => "deployment-failed",
            EntryOutcome::TimedOut => "timed-out",
            EntryOutcome::Cancelled => "cancelled",
            EntryOutcome::GaveUp => "gave-up",
            EntryOutcome::Superseded => "superseded",
            EntryOutcome::Broken => "broken",
            EntryOutcome::Unlocked => "unlocked",
            EntryOutcome::Failed => "failed",
        }
    }

    fn from_tag(value: &str) -> Option<EntryOutcome> {
        EntryOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.label() == value)
    }
}

/// The migration as an entry records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MigrationRecord {
    /// The attempt whose client token the next RunTask uses (0 unless an attempt failed).
    pub attempt: u32,
    pub task_arn: Option<String>,
    /// `Some(true)` passed the gate, `Some(false)` failed it.
    pub passed: Option<bool>,
    /// The revision it runs from (a separate migration family's, when configured).
    pub task_definition: Option<String>,
}

/// One service of a release: what was live when the release started (its rollback target)
/// and the revision the release deploys.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Move {
    pub service: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The release's UpdateService for this service was accepted.
    pub sent: bool,
}

/// ECS allows 50 tags a resource: what the moves may take of them.
const MOVES_TAG_BUDGET: usize = 31;

/// What an entry says, decoded from its tags.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    pub release_id: String,
    pub kind: Kind,
    pub cluster: String,
    /// The release's services, in order, with their revisions once known.
    pub moves: Vec<Move>,
    pub image: Option<String>,
    /// Who ran the release (CI job or user and host).
    pub by: String,
    /// Epoch milliseconds of the holder's last sign of life.
    pub heartbeat: Option<i64>,
    pub state: State,
    pub migration: Option<MigrationRecord>,
    /// Epoch milliseconds of the release's UpdateService.
    pub live_at: Option<i64>,
    pub outcome: Option<EntryOutcome>,
    /// For a broken or unlocked entry: who closed it.
    pub closed_by: Option<String>,
    pub finished_at: Option<i64>,
    /// Migrations held back until the deployment is complete (a preset's contract phase).
    pub contract: Option<Contract>,
}

/// Where a release's contract phase is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Contract {
    Pending,
    Passed,
    Failed,
}

impl Contract {
    fn as_tag(self) -> &'static str {
        match self {
            Contract::Pending => "pending",
            Contract::Passed => "passed",
            Contract::Failed => "failed",
        }
    }

    fn from_tag(value: &str) -> Option<Contract> {
        match value {
            "pending" => Some(Contract::Pending),
            "passed" => Some(Contract::Passed),
            "failed" => Some(Contract::Failed),
            _ => None,
        }
    }
}

impl Record {
    pub fn new(release_id: &str, kind: Kind, cluster: &str, services: &[String]) -> Record {
        Record {
            release_id: release_id.to_owned(),
            kind,
            cluster: cluster.to_owned(),
            moves: services
                .iter()
                .map(|service| Move {
                    service: service.clone(),
                    from: None,
                    to: None,
                    sent: false,
                })
                .collect(),
            image: None,
            by: String::new(),
            heartbeat: None,
            state: State::Waiting,
            migration: None,
            live_at: None,
            outcome: None,
            closed_by: None,
            finished_at: None,
            contract: None,
        }
    }

    /// Every tag of the record. Absent values are written empty, so that writing a record
    /// over an older one never leaves a stale value behind (TagResource only adds and replaces).
    pub fn to_tags(&self) -> Vec<(String, String)> {
        let number = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_default();
        let migration = self.migration.as_ref();
        let (prefix, moves) = encode_moves(&self.moves);
        let mut tags = vec![
            tag(keys::RELEASE, &self.release_id),
            tag(keys::KIND, self.kind.as_tag()),
            tag(keys::CLUSTER, &self.cluster),
            tag(keys::BY, &self.by),
            tag(keys::STATE, self.state.as_tag()),
            tag(keys::IMAGE, self.image.as_deref().unwrap_or_default()),
            tag(keys::HEARTBEAT, &number(self.heartbeat)),
            tag(keys::TD_PREFIX, &prefix),
            tag(keys::MOVES_COUNT, &moves.len().to_string()),
            tag(
                keys::MIGRATION_ATTEMPT,
                &migration.map(|m| m.attempt.to_string()).unwrap_or_default(),
            ),
            tag(
                keys::MIGRATION_TASK,
                migration
                    .and_then(|m| m.task_arn.as_deref())
                    .unwrap_or_default(),
            ),
            tag(
                keys::MIGRATION_RESULT,
                match migration.and_then(|m| m.passed) {
                    Some(true) => "passed",
                    Some(false) => "failed",
                    None => "",
                },
            ),
            tag(
                keys::MIGRATION_TD,
                migration
                    .and_then(|m| m.task_definition.as_deref())
                    .unwrap_or_default(),
            ),
            tag(keys::LIVE_AT, &number(self.live_at)),
            tag(keys::OUTCOME, self.outcome.map_or("", EntryOutcome::label)),
            tag(
                keys::CLOSED_BY,
                self.closed_by.as_deref().unwrap_or_default(),
            ),
            tag(keys::FINISHED_AT, &number(self.finished_at)),
            tag(keys::CONTRACT, self.contract.map_or("", Contract::as_tag)),
        ];
        for (index, chunk) in moves.iter().enumerate() {
            tags.push((format!("{}.{index}", keys::MOVES), chunk.clone()));
        }
        tags
    }

    /// Whether the record fits in an entry's tags (ECS allows 50 a resource, of values up to
    /// 256 characters).
    pub fn fits(&self) -> bool {
        let chunks = encode_moves(&self.moves).1;
        chunks.len() <= MOVES_TAG_BUDGET && chunks.iter().all(|chunk| chunk.len() <= 256)
    }

    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.moves.iter().map(|m| m.service.as_str())
    }

    pub fn move_of(&self, service: &str) -> Option<&Move> {
        self.moves.iter().find(|m| m.service == service)
    }

    /// Records where `service` moves (from what was live, to the release's revision).
    pub fn set_move(&mut self, service: &str, from: Option<String>, to: Option<String>) {
        match self.moves.iter_mut().find(|m| m.service == service) {
            Some(found) => {
                found.from = from;
                found.to = to;
            }
            None => self.moves.push(Move {
                service: service.to_owned(),
                from,
                to,
                sent: false,
            }),
        }
    }

    /// Records that the release's UpdateService of `service` was accepted.
    pub fn mark_sent(&mut self, service: &str) {
        if let Some(found) = self.moves.iter_mut().find(|m| m.service == service) {
            found.sent = true;
        }
    }

    /// The record behind `tags`, or `None` when they are not a shipmate entry's.
    pub fn from_tags(tags: &[(String, String)]) -> Option<Record> {
        let get = |key: &str| {
            tags.iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let number = |key: &str| get(key).and_then(|v| v.parse::<i64>().ok());
        let text = |key: &str| get(key).map(str::to_owned);
        let migration = match (
            get(keys::MIGRATION_ATTEMPT),
            get(keys::MIGRATION_TASK),
            get(keys::MIGRATION_RESULT),
            get(keys::MIGRATION_TD),
        ) {
            (None, None, None, None) => None,
            (attempt, task, result, task_definition) => Some(MigrationRecord {
                attempt: attempt.and_then(|a| a.parse().ok()).unwrap_or(0),
                task_arn: task.map(str::to_owned),
                passed: match result {
                    Some("passed") => Some(true),
                    Some("failed") => Some(false),
                    _ => None,
                },
                task_definition: task_definition.map(str::to_owned),
            }),
        };
        let chunks: usize = get(keys::MOVES_COUNT)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let encoded: Vec<&str> = (0..chunks)
            .filter_map(|index| get(&format!("{}.{index}", keys::MOVES)))
            .collect();
        Some(Record {
            release_id: text(keys::RELEASE)?,
            kind: Kind::from_tag(get(keys::KIND)?)?,
            cluster: get(keys::CLUSTER).unwrap_or_default().to_owned(),
            moves: decode_moves(get(keys::TD_PREFIX).unwrap_or_default(), &encoded),
            image: text(keys::IMAGE),
            by: get(keys::BY).unwrap_or_default().to_owned(),
            heartbeat: number(keys::HEARTBEAT),
            state: get(keys::STATE)
                .and_then(State::from_tag)
                .unwrap_or(State::Waiting),
            migration,
            live_at: number(keys::LIVE_AT),
            outcome: get(keys::OUTCOME).and_then(EntryOutcome::from_tag),
            closed_by: text(keys::CLOSED_BY),
            finished_at: number(keys::FINISHED_AT),
            contract: get(keys::CONTRACT).and_then(Contract::from_tag),
        })
    }

    /// Whether the release touched the database.
    pub fn migrated(&self) -> bool {
        self.migration
            .as_ref()
            .is_some_and(|m| m.task_arn.is_some())
    }

    pub fn covers(&self, service: &str) -> bool {
        self.move_of(service).is_some()
    }
}

/// The moves as tag values: `service=from@to` items, `+` after one whose UpdateService was
/// accepted (revisions without their common ARN prefix, `-` for none), space-separated, cut
/// into values of at most 256 characters. Returns the prefix and the chunks.
fn encode_moves(moves: &[Move]) -> (String, Vec<String>) {
    let arns: Vec<&str> = moves
        .iter()
        .flat_map(|m| [m.from.as_deref(), m.to.as_deref()])
        .flatten()
        .collect();
    let prefix = arns
        .first()
        .and_then(|arn| arn.rfind('/').map(|slash| &arn[..=slash]))
        .filter(|prefix| arns.iter().all(|arn| arn.starts_with(prefix)))
        .unwrap_or_default()
        .to_owned();
    let short = |td: Option<&str>| {
        td.map_or_else(
            || "-".to_owned(),
            |td| td.strip_prefix(prefix.as_str()).unwrap_or(td).to_owned(),
        )
    };
    let mut chunks: Vec<String> = Vec::new();
    for item in moves.iter().map(|m| {
        format!(
            "{}={}@{}{}",
            m.service,
            short(m.from.as_deref()),
            short(m.to.as_deref()),
            if m.sent { "+" } else { "" }
        )
    }) {
        match chunks.last_mut() {
            Some(chunk) if chunk.len() + 1 + item.len() <= 256 => {
                chunk.push(' ');
                chunk.push_str(&item);
            }
            _ => chunks.push(item),
        }
    }
    (prefix, chunks)
}

fn decode_moves(prefix: &str, chunks: &[&str]) -> Vec<Move> {
    let long = |td: &str| (td != "-" && !td.is_empty()).then(|| format!("{prefix}{td}"));
    chunks
        .iter()
        .flat_map(|chunk| chunk.split(' '))
        .filter_map(|item| {
            let (service, revisions) = item.split_once('=')?;
            let (from, to) = revisions.split_once('@')?;
            let (to, sent) = match to.strip_suffix('+') {
                Some(to) => (to, true),
                None => (to, false),
            };
            Some(Move {
                service: service.to_owned(),
                from: long(from),
                to: long(to),
                sent,
            })
        })
        .collect()
}

/// ECS tags allow letters, digits, spaces and `+ - = . _ : / @`, values up to 256 characters.
pub fn tag_value(text: &str) -> String {
    let mut value: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || " +-=._:/@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if value.len() > 256 {
        let mut end = 256;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
    }
    value
}

fn tag(key: &str, value: &str) -> (String, String) {
    (key.to_owned(), tag_value(value))
}

/// One revision of the ledger family, as DescribeTaskDefinition shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub revision: i32,
    pub arn: String,
    /// ACTIVE: the release has not ended (it holds the lock or queues for it).
    pub open: bool,
    /// Epoch milliseconds.
    pub registered_at: Option<i64>,
    /// `None` for a revision that is not a shipmate entry (someone else's, or tags lost).
    pub record: Option<Record>,
}

impl Entry {
    pub fn release_id(&self) -> Option<&str> {
        self.record.as_ref().map(|r| r.release_id.as_str())
    }

    pub fn went_live(&self) -> bool {
        self.record.as_ref().is_some_and(|r| r.live_at.is_some())
    }
}

/// What to make of an open entry ahead of ours in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ahead {
    /// Its release is alive (recent heartbeat) or its migration may still run: wait.
    Alive,
    /// No heartbeat for longer than the lease, but it recorded a migration task: look at the
    /// task before deciding.
    CheckTask { task_arn: String },
    /// Gone: no heartbeat within the lease and no migration running. Close it.
    Abandoned { silent_ms: i64 },
}

/// Liveness of an open entry ahead of ours. `now_ms` and the heartbeat come from different
/// clocks; the lease is minutes, far above the skew of synchronised clocks (docs/lock.md).
pub fn assess_ahead(entry: &Entry, now_ms: i64, lease_ms: i64) -> Ahead {
    let record = entry.record.as_ref();
    let last_sign = record
        .and_then(|r| r.heartbeat)
        .or(entry.registered_at)
        .unwrap_or(now_ms);
    let silent_ms = now_ms.saturating_sub(last_sign);
    if silent_ms <= lease_ms {
        return Ahead::Alive;
    }
    let running_migration = record
        .and_then(|r| r.migration.as_ref())
        .filter(|m| m.passed.is_none())
        .and_then(|m| m.task_arn.clone());
    match running_migration {
        Some(task_arn) => Ahead::CheckTask { task_arn },
        None => Ahead::Abandoned { silent_ms },
    }
}

/// Whether the migration of a new release can be skipped: the newest entry of the same release
/// recorded a successful migration, and no other release migrated or went live since (entries
/// newest first, the new release's own entry excluded). Returns the successful migration task.
pub fn prior_migration<'a>(entries: &'a [Entry], release_id: &str) -> Option<&'a str> {
    for entry in entries {
        // A `finish` of a release shares its id and migrates nothing of its own.
        let Some(record) = entry.record.as_ref().filter(|r| r.kind != Kind::Finish) else {
            continue;
        };
        if record.release_id == release_id {
            return record
                .migration
                .as_ref()
                .filter(|m| m.passed == Some(true))
                .and_then(|m| m.task_arn.as_deref());
        }
        if record.migrated() || record.live_at.is_some() {
            return None;
        }
    }
    None
}

/// The first entry newer than ours (entries in any order) that went live: a release that
/// finished after ours was broken overtook it.
pub fn overtaken_by(entries: &[Entry], our_revision: i32) -> Option<&Entry> {
    entries
        .iter()
        .filter(|e| e.revision > our_revision && e.went_live())
        .min_by_key(|e| e.revision)
}

/// Where `shipmate rollback` takes `service`: what was live before the newest release that
/// reached it. Walks the entries newest first, skipping those that never sent the service an
/// UpdateService (gated by their migration, cancelled before it, other services' releases):
/// * a release whose rollout completed was live on its `to`: when the service runs something
///   else now (moved by hand since), back to that `to`; else to its `from`, what it found live;
/// * a release that did not complete (failed, rolled back by ECS, timed out) is undone already
///   when the service is back on its `from`: the service stays (the answer is `live_now`);
///   otherwise back to its `from`.
///
/// So a rollback of several services undoes their newest release together: a worker that
/// ECS already took back stays where it is while the web that went live returns.
pub fn rollback_target<'a>(
    entries: &'a [Entry],
    service: &str,
    live_now: &'a str,
) -> Option<&'a str> {
    for record in entries.iter().filter_map(|e| e.record.as_ref()) {
        let Some(moved) = record.move_of(service).filter(|m| m.sent) else {
            continue;
        };
        let (Some(from), Some(to)) = (moved.from.as_deref(), moved.to.as_deref()) else {
            continue;
        };
        let completed = matches!(
            record.outcome,
            Some(
                EntryOutcome::Succeeded
                    | EntryOutcome::Updated
                    | EntryOutcome::Deployed
                    | EntryOutcome::AlreadyLive
            )
        );
        if completed {
            if to != live_now {
                return Some(to);
            }
            if from != live_now {
                return Some(from);
            }
            // A release that found the service on its own revision changed nothing.
            continue;
        }
        return Some(if from == live_now { live_now } else { from });
    }
    None
}

/// The newest release of `service` whose contract phase passed after `target` went live: its
/// held-back migrations (drops, renames) are applied, so `target`'s code expects what is gone.
/// Entries newest first; `None` when `target` is at least as new as every such release.
pub fn contract_after<'a>(entries: &'a [Entry], service: &str, target: &str) -> Option<&'a Record> {
    for record in entries.iter().filter_map(|e| e.record.as_ref()) {
        let Some(moved) = record.move_of(service) else {
            continue;
        };
        // The release that put `target` live: its own contract was written for its code.
        if moved.sent && moved.to.as_deref() == Some(target) {
            return None;
        }
        if record.contract == Some(Contract::Passed) {
            return Some(record);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finish_entry_does_not_hide_its_release_migration() {
        let deployed = released("r1", V1, V2, EntryOutcome::Deployed);
        let mut finish = Record::new("r1", Kind::Finish, "prod", &["web".to_owned()]);
        finish.outcome = Some(EntryOutcome::Succeeded);
        finish.state = State::Closed;
        let entries = vec![entry(2, finish), entry(1, deployed)];
        assert_eq!(prior_migration(&entries, "r1"), Some("arn:task/r1"));
    }

    #[test]
    fn a_rollback_past_an_applied_contract_is_found() {
        let contracted = |release: &str, from: &str, to: &str| {
            let mut record = released(release, from, to, EntryOutcome::Succeeded);
            record.contract = Some(Contract::Passed);
            record
        };
        // Newest first: v3 (contract applied) over v2 over v1.
        let entries = vec![
            entry(3, contracted("r3", V2, V3)),
            entry(2, released("r2", V1, V2, EntryOutcome::Succeeded)),
        ];
        assert_eq!(
            contract_after(&entries, "web", V2).map(|r| r.release_id.as_str()),
            Some("r3")
        );
        assert!(
            contract_after(&entries, "web", V3).is_none(),
            "v3's code expects its contract"
        );
        let plain = vec![
            entry(3, released("r3", V2, V3, EntryOutcome::Succeeded)),
            entry(2, contracted("r2", V1, V2)),
        ];
        assert!(
            contract_after(&plain, "web", V2).is_none(),
            "v2 has its own contract applied"
        );
        assert_eq!(
            contract_after(&plain, "web", V1).map(|r| r.release_id.as_str()),
            Some("r2")
        );
        assert!(contract_after(&plain, "worker", V1).is_none());
    }

    const V1: &str = "arn:aws:ecs:us-east-1:0:task-definition/web:1";
    const V2: &str = "arn:aws:ecs:us-east-1:0:task-definition/web:2";
    const V3: &str = "arn:aws:ecs:us-east-1:0:task-definition/web:3";
    const V4: &str = "arn:aws:ecs:us-east-1:0:task-definition/web:4";

    fn record(release: &str) -> Record {
        Record::new(release, Kind::Deploy, "prod", &["web".to_owned()])
    }

    fn entry(revision: i32, record: Record) -> Entry {
        Entry {
            revision,
            arn: format!("arn:aws:ecs:us-east-1:0:task-definition/shipmate-ledger-k:{revision}"),
            open: record.outcome.is_none(),
            registered_at: Some(1_000),
            record: Some(record),
        }
    }

    fn released(release: &str, from: &str, to: &str, outcome: EntryOutcome) -> Record {
        let mut record = record(release);
        record.set_move("web", Some(from.to_owned()), Some(to.to_owned()));
        if outcome != EntryOutcome::MigrationFailed {
            record.mark_sent("web");
        }
        Record {
            migration: Some(MigrationRecord {
                attempt: 0,
                task_arn: Some(format!("arn:task/{release}")),
                task_definition: None,
                passed: Some(outcome != EntryOutcome::MigrationFailed),
            }),
            live_at: (outcome != EntryOutcome::MigrationFailed).then_some(5),
            outcome: Some(outcome),
            state: State::Closed,
            ..record
        }
    }

    #[test]
    fn keys_and_families() {
        assert_eq!(image_repository("web:v2"), "web");
        assert_eq!(
            image_repository("registry:5000/team/web:v2"),
            "registry:5000/team/web"
        );
        assert_eq!(
            image_repository("1.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:ab"),
            "1.dkr.ecr.eu-west-1.amazonaws.com/web"
        );
        assert_eq!(image_repository("web"), "web");
        let key = default_key(
            "arn:aws:ecs:us-east-1:0:cluster/prod",
            "1.dkr.ecr/team/web:v3",
        );
        assert!(key.starts_with("prod-web-"), "{key}");
        assert_eq!(
            key,
            default_key("prod", "1.dkr.ecr/team/web:v4"),
            "the tag does not matter"
        );
        assert_ne!(
            key,
            default_key("prod", "1.dkr.ecr/other/web:v4"),
            "the whole repository does"
        );
        assert_ne!(key, default_key("staging", "1.dkr.ecr/team/web:v4"));
        assert!(validate_key(&key).is_ok());
        assert!(family(&key).len() <= FAMILY_MAX);
        assert!(validate_key("bookshop-db").is_ok());
        assert!(validate_key("book shop").is_err());
        assert!(validate_key("").is_err());
        assert!(validate_key(&"k".repeat(250)).is_err());
    }

    #[test]
    fn records_round_trip_through_tags() {
        let full = Record {
            image: Some("web:v2".to_owned()),
            by: "github run 42/1".to_owned(),
            heartbeat: Some(1_700_000_000_123),
            state: State::Deploying,
            migration: Some(MigrationRecord {
                attempt: 2,
                task_arn: Some("arn:aws:ecs:us-east-1:0:task/prod/abc".to_owned()),
                passed: Some(true),
                task_definition: Some(
                    "arn:aws:ecs:us-east-1:0:task-definition/web-migrate:4".to_owned(),
                ),
            }),
            live_at: Some(1_700_000_000_999),
            outcome: Some(EntryOutcome::Succeeded),
            closed_by: Some("release 0123456789ab".to_owned()),
            finished_at: Some(1_700_000_001_000),
            moves: vec![
                Move {
                    service: "web".to_owned(),
                    from: Some(V1.to_owned()),
                    to: Some(V2.to_owned()),
                    sent: true,
                },
                Move {
                    service: "worker".to_owned(),
                    from: Some("arn:aws:ecs:us-east-1:0:task-definition/worker:3".to_owned()),
                    to: None,
                    sent: false,
                },
            ],
            ..record("0123456789ab")
        };
        let minimal = record("ba9876543210");
        // Fifty services with long names still fit in an entry's 50 tags.
        let mut many = record("0a0b0c0d0e0f");
        for n in 0..50 {
            let service = format!("payments-worker-queue-{n:02}");
            let td = |revision: u32| {
                format!(
                    "arn:aws:ecs:eu-central-1:123456789012:task-definition/{service}:{revision}"
                )
            };
            many.set_move(&service, Some(td(41)), Some(td(42)));
        }
        assert!(many.fits());
        // One service whose move alone is longer than a tag value does not.
        let mut long = record("0a0b0c0d0e0f");
        let name = "s".repeat(200);
        long.set_move(&name, Some(format!("{name}:1")), Some(format!("{name}:2")));
        assert!(!long.fits());
        for record in [full, minimal, many] {
            let tags = record.to_tags();
            assert!(tags.len() <= 50);
            for (key, value) in &tags {
                assert!(key.len() <= 128 && value.len() <= 256);
                assert_eq!(&tag_value(value), value, "{key} needs no sanitising");
            }
            assert_eq!(Record::from_tags(&tags), Some(record));
        }
        assert_eq!(
            Record::from_tags(&[("team".to_owned(), "x".to_owned())]),
            None
        );
    }

    #[test]
    fn tag_values_are_sanitised_and_bounded() {
        assert_eq!(tag_value("ci (job #7), main"), "ci _job _7__ main");
        assert_eq!(tag_value(&"é".repeat(200)).len(), 256);
    }

    #[test]
    fn ahead_table() {
        let lease = 60_000;
        let now = 1_000_000;
        let mut alive = record("a");
        alive.heartbeat = Some(now - 10_000);
        let mut silent = record("b");
        silent.heartbeat = Some(now - 61_000);
        let mut migrating = silent.clone();
        migrating.migration = Some(MigrationRecord {
            attempt: 0,
            task_arn: Some("arn:task/m".to_owned()),
            task_definition: None,
            passed: None,
        });
        let mut migrated = migrating.clone();
        migrated.migration.as_mut().unwrap().passed = Some(true);
        let cases = [
            (entry(1, alive), Ahead::Alive),
            (entry(2, silent), Ahead::Abandoned { silent_ms: 61_000 }),
            (
                entry(3, migrating),
                Ahead::CheckTask {
                    task_arn: "arn:task/m".to_owned(),
                },
            ),
            (entry(4, migrated), Ahead::Abandoned { silent_ms: 61_000 }),
        ];
        for (entry, expected) in cases {
            assert_eq!(assess_ahead(&entry, now, lease), expected, "{entry:?}");
        }
        // An entry without a heartbeat (its holder died right after registering) ages from
        // its registration.
        let mut bare = entry(5, record("c"));
        bare.registered_at = Some(now - 120_000);
        assert_eq!(
            assess_ahead(&bare, now, lease),
            Ahead::Abandoned { silent_ms: 120_000 }
        );
    }

    #[test]
    fn rollback_targets() {
        // v1 (created outside shipmate) → v2 released → v3 gated → v4 released.
        let history = vec![
            entry(4, released("r4", V2, V4, EntryOutcome::Succeeded)),
            entry(3, released("r3", V2, V3, EntryOutcome::MigrationFailed)),
            entry(2, released("r2", V1, V2, EntryOutcome::Succeeded)),
        ];
        assert_eq!(rollback_target(&history, "web", V4), Some(V2));
        // The service was moved to v3 by hand: the last live release is the target.
        assert_eq!(rollback_target(&history, "web", V3), Some(V4));
        // A failed rollout never counts as live on its target; back on its `from` (ECS's
        // circuit breaker), the release is undone already and the service stays.
        let failed = vec![
            entry(5, released("r5", V2, V3, EntryOutcome::DeploymentFailed)),
            entry(2, released("r2", V1, V2, EntryOutcome::Succeeded)),
        ];
        assert_eq!(rollback_target(&failed, "web", V2), Some(V2));
        assert_eq!(rollback_target(&failed, "web", V3), Some(V2));
        // A release gated by its migration (or cancelled) never sent an update: skipped.
        let mut unsent = released("r6", V2, V4, EntryOutcome::Cancelled);
        unsent.moves[0].sent = false;
        let skipped = vec![entry(6, unsent), failed[1].clone()];
        assert_eq!(rollback_target(&skipped, "web", V2), Some(V1));
        // Other services' releases in a shared ledger do not count.
        let mut worker = released("w", V3, V4, EntryOutcome::Succeeded);
        worker.moves[0].service = "worker".to_owned();
        let shared = vec![entry(6, worker), history[2].clone()];
        assert_eq!(rollback_target(&shared, "web", V2), Some(V1));
        assert_eq!(rollback_target(&[], "web", V2), None);
    }

    #[test]
    fn prior_migrations() {
        let ours = entry(3, released("r", V1, V2, EntryOutcome::Cancelled));
        assert_eq!(
            prior_migration(std::slice::from_ref(&ours), "r"),
            Some("arn:task/r")
        );
        // Another release migrated since: ours must run again.
        let other = entry(4, released("o", V2, V3, EntryOutcome::MigrationFailed));
        assert_eq!(prior_migration(&[other, ours.clone()], "r"), None);
        // A release that only waited and gave up changed nothing.
        let mut gave_up = record("g");
        gave_up.outcome = Some(EntryOutcome::GaveUp);
        assert_eq!(
            prior_migration(&[entry(5, gave_up), ours], "r"),
            Some("arn:task/r")
        );
        let failed = entry(6, released("f", V1, V2, EntryOutcome::MigrationFailed));
        assert_eq!(prior_migration(&[failed], "f"), None);
    }

    #[test]
    fn overtaking() {
        let mut later = released("l", V2, V3, EntryOutcome::Succeeded);
        let entries = vec![entry(7, later.clone()), entry(5, record("w"))];
        assert_eq!(overtaken_by(&entries, 4).map(|e| e.revision), Some(7));
        assert_eq!(overtaken_by(&entries, 7), None);
        later.live_at = None;
        assert_eq!(overtaken_by(&[entry(7, later)], 4), None);
    }
}
