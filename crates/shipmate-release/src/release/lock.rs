//! The release lock over the ledger (docs/lock.md): take a ticket (register an entry), wait
//! until no open entry is ahead of it, close entries whose holders are gone, keep ours alive,
//! and look at it again before anything another release must not see twice.

use std::time::Duration;

use crate::error::{Holder, ReleaseError};
use crate::event::Event;
use crate::io::{Command, Observation};
use crate::ledger::{self, Ahead, Entry, EntryOutcome, Record, State};
use crate::task::TaskProgress;

use super::ctx::{Ctx, Held, Stop, ms};

/// A ListTaskDefinitions answer may lag behind registrations; an entry registered at most this
/// long before our list may be missing from it, so the revisions just below ours are read one by
/// one down to one older than that (docs/lock.md, "Assumptions").
pub const LIST_LAG_MS: i64 = 60_000;
/// How far the history walk reads before giving up.
const HISTORY_LIMIT: usize = 100;
/// How far back a new release looks for an earlier run of itself (docs/lock.md).
pub(crate) const LOOK_BACK_MS: i64 = 24 * 3_600_000;
/// Entries read per DescribeEntries command (the driver reads them concurrently).
const HISTORY_BATCH: i32 = 10;

#[derive(Debug, Clone)]
pub(crate) struct LockRequest {
    pub(crate) family: String,
    /// Our record as a new entry would start it.
    pub(crate) record: Record,
    pub(crate) timeout: Duration,
    pub(crate) lease: Duration,
    pub(crate) poll_ms: i64,
}

pub(crate) fn holder_of(entry: &Entry) -> Option<Holder> {
    let record = entry.record.as_ref()?;
    Some(Holder {
        release_id: record.release_id.clone(),
        kind: record.kind.label(),
        image: record.image.clone(),
        by: record.by.clone(),
        state: record.state.label(),
        migration_task: record
            .migration
            .as_ref()
            .filter(|m| m.passed.is_none())
            .and_then(|m| m.task_arn.clone()),
        entry: entry.arn.clone(),
    })
}

/// After a gap in our heartbeats, how long we wait before looking at our entry: a release that
/// found us silent and decided to close our entry has done so by then (docs/lock.md).
pub(crate) const SETTLE_MS: i64 = 5_000;

/// Takes the lock, waiting behind open entries; on return `ctx.held` is set.
pub(crate) async fn acquire(ctx: &mut Ctx, request: &LockRequest) -> Result<(), Stop> {
    let started = ctx.now();
    loop {
        take_ticket_and_wait(ctx, request).await?;
        // A stall while we waited may have let a release behind us close our entry.
        if verify(ctx).await? {
            break;
        }
        let lost = ctx.held.take().map(|h| h.entry.arn).unwrap_or_default();
        ctx.emit(Event::LockLost { entry: lost });
    }
    let waited_ms = u64::try_from(ctx.now() - started).unwrap_or(0);
    if let Some(lock) = ctx.report.lock.as_mut() {
        lock.waited_ms = waited_ms;
    }
    // A resumed entry records who carries it on now; a new one says so with its next write.
    if ctx.held.as_ref().is_some_and(|h| h.resumed) {
        ctx.record(|_| {}).await?;
    }
    let entry = ctx
        .held
        .as_ref()
        .map(|h| h.entry.arn.clone())
        .unwrap_or_default();
    ctx.emit(Event::LockAcquired { entry, waited_ms });
    Ok(())
}

/// Whether our entry is still open. Free while our heartbeats were continuous; after a gap,
/// a fresh heartbeat, the settle period, and a look at the entry.
pub(crate) async fn verify(ctx: &mut Ctx) -> Result<bool, Stop> {
    let Some(held) = ctx.held.clone() else {
        return Ok(false);
    };
    if held.trusted(ctx.now()) {
        return Ok(true);
    }
    ctx.record(|_| {}).await?;
    ctx.sleep(SETTLE_MS).await?;
    let seen = ctx
        .describe_entries(&held.family, vec![held.entry.revision])
        .await?;
    let open = seen.first().is_some_and(|e| e.open);
    if open && let Some(held) = ctx.held.as_mut() {
        held.suspect = false;
    }
    Ok(open)
}

/// Registers our entry (or finds the one an interrupted run of this release left open) and
/// waits until no open entry is ahead of it.
async fn take_ticket_and_wait(ctx: &mut Ctx, request: &LockRequest) -> Result<(), Stop> {
    let family = request.family.clone();
    let listed_at = ctx.now();
    let open = match ctx
        .call(Command::ListOpenEntries {
            family: family.clone(),
        })
        .await?
    {
        Observation::OpenEntries(revisions) => revisions,
        other => return Err(ctx.unexpected("ListTaskDefinitions", &other)),
    };
    let mut known = ctx.describe_entries(&family, open).await?;
    let lease_ms = ms(request.lease);
    let ours = known
        .iter()
        // The same release and the same command (`finish` shares its release's id).
        .filter(|e| {
            e.open
                && e.release_id() == Some(request.record.release_id.as_str())
                && e.record
                    .as_ref()
                    .is_some_and(|r| r.kind == request.record.kind)
        })
        .min_by_key(|e| e.revision)
        .cloned();
    let held = match ours {
        Some(entry) => {
            // An earlier run of this very release was interrupted: carry on from its record.
            let mut record = entry
                .record
                .clone()
                .unwrap_or_else(|| request.record.clone());
            record.by.clone_from(&request.record.by);
            ctx.emit(Event::ReleaseResumed {
                entry: entry.arn.clone(),
                state: record.state.label().to_owned(),
            });
            Held {
                family: family.clone(),
                entry,
                record,
                resumed: true,
                lease_ms,
                last_beat_ms: i64::MIN / 2,
                // The interrupted run went silent: whoever was behind may have closed it since.
                suspect: true,
            }
        }
        None => {
            let mut record = request.record.clone();
            record.heartbeat = Some(ctx.now());
            record.state = State::Waiting;
            let entry = match ctx
                .call(Command::RegisterEntry {
                    family: family.clone(),
                    record: Box::new(record.clone()),
                })
                .await?
            {
                Observation::EntryRegistered(entry) => *entry,
                other => return Err(ctx.unexpected("RegisterTaskDefinition", &other)),
            };
            let now = ctx.now();
            Held {
                family: family.clone(),
                entry,
                record,
                resumed: false,
                lease_ms,
                last_beat_ms: now,
                suspect: false,
            }
        }
    };
    let our_revision = held.entry.revision;
    ctx.report.lock = Some(crate::report::LockReport {
        family: family.clone(),
        entry: held.entry.arn.clone(),
        waited_ms: 0,
    });
    ctx.held = Some(held);
    scan_below(ctx, &family, our_revision, listed_at, &mut known).await?;
    let mut ahead: Vec<Entry> = known
        .into_iter()
        .filter(|e| e.open && e.revision < our_revision)
        .collect();
    ahead.sort_by_key(|e| e.revision);
    wait_until_first(ctx, request, ahead).await
}

/// Reads the revisions just below ours that a lagging list may have missed: every one
/// registered after `listed_at - LIST_LAG_MS`, and the first one registered before.
async fn scan_below(
    ctx: &mut Ctx,
    family: &str,
    our_revision: i32,
    listed_at: i64,
    known: &mut Vec<Entry>,
) -> Result<(), Stop> {
    let mut revision = our_revision - 1;
    let mut missing_since: Option<i64> = None;
    while revision >= 1 {
        if let Some(entry) = known.iter().find(|e| e.revision == revision) {
            if entry
                .registered_at
                .is_some_and(|t| t < listed_at - LIST_LAG_MS)
            {
                return Ok(());
            }
            revision -= 1;
            continue;
        }
        let found = ctx.describe_entries(family, vec![revision]).await?;
        match found.into_iter().next() {
            Some(entry) => {
                let older = entry
                    .registered_at
                    .is_none_or(|t| t < listed_at - LIST_LAG_MS);
                known.push(entry);
                missing_since = None;
                if older {
                    return Ok(());
                }
                revision -= 1;
            }
            None => {
                // Revisions are numbered in order: one below ours exists unless it was deleted.
                // Give a registration that is not visible yet the same lag, then move on.
                let since = *missing_since.get_or_insert(ctx.now());
                if ctx.now() - since >= LIST_LAG_MS {
                    missing_since = None;
                    revision -= 1;
                } else {
                    ctx.sleep(1_000).await?;
                }
            }
        }
    }
    Ok(())
}

async fn wait_until_first(
    ctx: &mut Ctx,
    request: &LockRequest,
    mut ahead: Vec<Entry>,
) -> Result<(), Stop> {
    let started = ctx.now();
    let deadline = started + ms(request.timeout);
    let lease_ms = ms(request.lease);
    let mut announced: Option<(i32, &'static str)> = None;
    while let Some(first) = ahead.first().cloned() {
        let verdict = assess(ctx, &first, lease_ms).await?;
        match verdict {
            Ahead::Abandoned { silent_ms } => {
                // Look once more right before closing it: a holder that woke up has written a
                // new heartbeat by now, and then it is not ours to close.
                let again = ctx
                    .describe_entries(&request.family, vec![first.revision])
                    .await?
                    .into_iter()
                    .next();
                match again {
                    Some(entry) if entry.open && entry.record == first.record => {}
                    Some(entry) if entry.open => {
                        ahead[0] = entry;
                        continue;
                    }
                    _ => {
                        ahead.remove(0);
                        continue;
                    }
                }
                let mut record = first.record.clone().unwrap_or_else(|| {
                    Record::new("unknown", ledger::Kind::Deploy, &ctx.cluster, &[])
                });
                record.outcome = Some(EntryOutcome::Broken);
                record.state = State::Closed;
                record.closed_by = ctx
                    .held
                    .as_ref()
                    .map(|h| format!("release {} by {}", h.record.release_id, h.record.by));
                record.finished_at = Some(ctx.now());
                ctx.emit(Event::LockBroken {
                    holder: holder_of(&first),
                    entry: first.arn.clone(),
                    silent_ms: u64::try_from(silent_ms).unwrap_or(0),
                });
                ctx.close_entry(&first.arn, record).await?;
                ahead.remove(0);
                continue;
            }
            Ahead::Alive | Ahead::CheckTask { .. } => {
                let state = first.record.as_ref().map_or("open", |r| r.state.label());
                if announced != Some((first.revision, state)) {
                    announced = Some((first.revision, state));
                    ctx.emit(Event::LockWaiting {
                        holder: holder_of(&first),
                        entry: first.arn.clone(),
                        queue: u32::try_from(ahead.len()).unwrap_or(u32::MAX),
                        waited_ms: u64::try_from(ctx.now() - started).unwrap_or(0),
                    });
                }
            }
        }
        if ctx.now() >= deadline {
            let waited = Duration::from_millis(u64::try_from(ctx.now() - started).unwrap_or(0));
            return Err(Stop::Error(ReleaseError::LockTimeout {
                family: request.family.clone(),
                holder: holder_of(&first).map(Box::new),
                waited,
            }));
        }
        let next_poll = (ctx.now() + request.poll_ms).min(deadline);
        ctx.sleep_until(next_poll).await?;
        let refreshed = ctx
            .describe_entries(&request.family, vec![first.revision])
            .await?;
        match refreshed.into_iter().next() {
            Some(entry) if entry.open => ahead[0] = entry,
            // Closed, or deleted by hand: either way it no longer holds the lock.
            _ => {
                ahead.remove(0);
            }
        }
    }
    Ok(())
}

/// Liveness of the first entry ahead, looking at its migration task when its heartbeat is old.
async fn assess(ctx: &mut Ctx, entry: &Entry, lease_ms: i64) -> Result<Ahead, Stop> {
    match ledger::assess_ahead(entry, ctx.now(), lease_ms) {
        Ahead::CheckTask { task_arn } => {
            let tasks = ctx.describe_tasks(std::slice::from_ref(&task_arn)).await?;
            let running = tasks
                .iter()
                .any(|t| !matches!(crate::task::assess_task(t), TaskProgress::Finished(_)));
            if running {
                Ok(Ahead::CheckTask { task_arn })
            } else {
                let silent_ms = entry
                    .record
                    .as_ref()
                    .and_then(|r| r.heartbeat)
                    .map_or(lease_ms, |beat| ctx.now() - beat);
                Ok(Ahead::Abandoned { silent_ms })
            }
        }
        other => Ok(other),
    }
}

/// Before an action another release must not see twice (RunTask, UpdateService): makes sure
/// our entry is still open. When it was closed under us (we stalled past the lease and another
/// release took over), takes the lock again and checks that no newer release went live meanwhile.
pub(crate) async fn ensure_held(ctx: &mut Ctx, request: &LockRequest) -> Result<(), Stop> {
    let Some(held) = ctx.held.clone() else {
        return Ok(());
    };
    if verify(ctx).await? {
        return Ok(());
    }
    ctx.emit(Event::LockLost {
        entry: held.entry.arn.clone(),
    });
    // Take a new ticket carrying what we did so far, then look at what went live in between.
    let mut again = request.clone();
    again.record = held.record.clone();
    again.record.outcome = None;
    again.record.closed_by = None;
    ctx.held = None;
    acquire(ctx, &again).await?;
    let new_revision = ctx.held.as_ref().map_or(0, |h| h.entry.revision);
    let between: Vec<i32> = (held.entry.revision + 1..new_revision).collect();
    let entries = ctx.describe_entries(&held.family, between).await?;
    if let Some(newer) = ledger::overtaken_by(&entries, held.entry.revision) {
        let record = newer.record.clone();
        return Err(Stop::Error(ReleaseError::Superseded {
            service: held.record.services().collect::<Vec<_>>().join(" "),
            by_release: record
                .as_ref()
                .map_or_else(|| newer.arn.clone(), |r| r.release_id.clone()),
            by_image: record.and_then(|r| r.image),
        }));
    }
    Ok(())
}

/// After a call that `ensure_held` guarded: when the call itself took so long that another
/// release may have taken over meanwhile (we were trusted at `checked_at` only for half the
/// lease), look again. `false`: the lock was lost while the call was under way.
pub(crate) async fn still_held_after(ctx: &mut Ctx, checked_at: i64) -> Result<bool, Stop> {
    let Some(held) = ctx.held.as_mut() else {
        return Ok(true);
    };
    if ctx.io.now_ms() - checked_at < held.lease_ms / 2 {
        return Ok(true);
    }
    held.suspect = true;
    verify(ctx).await
}

/// UpdateService, guarded by the lock: checked right before, and again after when the call
/// took long enough for the lock to be taken over meanwhile.
pub(crate) async fn update_service(
    ctx: &mut Ctx,
    request: &LockRequest,
    service: &str,
    task_definition: &str,
) -> Result<crate::service::ServiceView, Stop> {
    update_service_with_hooks(ctx, request, service, task_definition, None).await
}

/// [`update_service`], replacing the service's lifecycle hooks in the same call when `hooks`
/// is given (the new deployment takes the hooks it is created with).
pub(crate) async fn update_service_with_hooks(
    ctx: &mut Ctx,
    request: &LockRequest,
    service: &str,
    task_definition: &str,
    hooks: Option<Vec<crate::deployment::LifecycleHookView>>,
) -> Result<crate::service::ServiceView, Stop> {
    ensure_held(ctx, request).await?;
    let checked_at = ctx.now();
    let command = Command::UpdateService {
        service: service.to_owned(),
        task_definition: task_definition.to_owned(),
        hooks,
    };
    let updated = match ctx.call(command).await? {
        Observation::ServiceUpdated(view) => *view,
        other => return Err(ctx.unexpected("UpdateService", &other)),
    };
    ctx.service_updating = Some(task_definition.to_owned());
    if !still_held_after(ctx, checked_at).await? {
        return Err(lost(ctx, service, "UpdateService", checked_at, None));
    }
    Ok(updated)
}

/// The error of a lock lost during `action`; our entry is no longer ours to close.
pub(crate) fn lost(
    ctx: &mut Ctx,
    service: &str,
    action: &'static str,
    checked_at: i64,
    task_arn: Option<String>,
) -> Stop {
    let entry = ctx.held.take().map(|h| h.entry.arn).unwrap_or_default();
    ctx.emit(Event::LockLost { entry });
    Stop::Error(ReleaseError::LockLost {
        service: service.to_owned(),
        action,
        stalled: Duration::from_millis(u64::try_from(ctx.now() - checked_at).unwrap_or(0)),
        task_arn,
    })
}

/// Ends the release in the ledger: records `outcome` and closes our entry (frees the lock).
pub(crate) async fn close(ctx: &mut Ctx, outcome: EntryOutcome) -> Result<(), Stop> {
    let Some(mut held) = ctx.held.take() else {
        return Ok(());
    };
    held.record.outcome = Some(outcome);
    held.record.state = State::Closed;
    held.record.finished_at = Some(ctx.now());
    ctx.close_entry(&held.entry.arn, held.record).await
}

/// Entries below ours, newest first, read until `enough` says so (or the history ends).
pub(crate) async fn history(
    ctx: &mut Ctx,
    family: &str,
    below: i32,
    enough: impl Fn(&[Entry]) -> bool,
) -> Result<Vec<Entry>, Stop> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut next = below - 1;
    while next >= 1 && entries.len() < HISTORY_LIMIT && !enough(&entries) {
        let batch: Vec<i32> = ((next - HISTORY_BATCH + 1).max(1)..=next).rev().collect();
        next = batch.last().copied().unwrap_or(1) - 1;
        let mut found = ctx.describe_entries(family, batch).await?;
        found.sort_by_key(|e| std::cmp::Reverse(e.revision));
        entries.extend(found);
    }
    Ok(entries)
}
