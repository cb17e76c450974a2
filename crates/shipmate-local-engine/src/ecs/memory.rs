//! Memory limits. ECS enforces a task's or container's hard `memory` limit with a cgroup; here
//! one background loop samples the resident set size of every watched container's process group
//! from /proc about every 100 ms and SIGKILLs a container that is over its limit (or the largest
//! one when the task as a whole is over), reporting it as out of memory first.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::mpsc::UnboundedSender;

use super::supervisor::ContainerEvent;

const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub(crate) struct MemoryWatch {
    tasks: Arc<Mutex<HashMap<String, Watched>>>,
}

/// The limits of one task's containers.
#[derive(Debug)]
pub(crate) struct Watched {
    pub(crate) containers: Vec<WatchedContainer>,
    pub(crate) task_limit_mib: Option<u64>,
    pub(crate) events: UnboundedSender<ContainerEvent>,
}

#[derive(Debug, Clone)]
pub(crate) struct WatchedContainer {
    pub(crate) index: usize,
    /// The container's process group (its main process id).
    pub(crate) process_group: i32,
    pub(crate) limit_mib: Option<u64>,
}

impl MemoryWatch {
    /// Starts enforcing a task's limits; containers join with [`MemoryWatch::add_container`].
    pub(crate) fn watch(&self, task_id: &str, watched: Watched) {
        self.lock().insert(task_id.to_owned(), watched);
    }

    /// Adds a container that just started to its task's watch.
    pub(crate) fn add_container(&self, task_id: &str, container: WatchedContainer) {
        if let Some(watched) = self.lock().get_mut(task_id) {
            watched.containers.push(container);
        }
    }

    /// Stops sampling one container (it exited).
    pub(crate) fn forget_container(&self, task_id: &str, index: usize) {
        if let Some(watched) = self.lock().get_mut(task_id) {
            watched.containers.retain(|c| c.index != index);
        }
    }

    pub(crate) fn unwatch(&self, task_id: &str) {
        self.lock().remove(task_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Watched>> {
        self.tasks.lock().expect("memory watch lock")
    }

    /// The sampling loop; runs for the life of the engine. A scan of /proc costs time in
    /// proportion to the processes on the machine, so the period stretches to ten times the last
    /// scan: sampling never takes more than about a tenth of a core.
    pub(crate) async fn run(self) {
        let mut period = SAMPLE_EVERY;
        loop {
            tokio::time::sleep(period).await;
            // Only containers with a limit to enforce (their own or their task's) are sampled.
            let groups: HashSet<i32> = self
                .lock()
                .values()
                .flat_map(|w| {
                    w.containers
                        .iter()
                        .filter(|c| c.limit_mib.is_some() || w.task_limit_mib.is_some())
                        .map(|c| c.process_group)
                })
                .collect();
            if groups.is_empty() {
                continue;
            }
            let started = Instant::now();
            let Ok(usage) =
                tokio::task::spawn_blocking(move || resident_bytes_by_group(&groups)).await
            else {
                continue;
            };
            period = SAMPLE_EVERY.max(started.elapsed() * 10);
            self.enforce(&usage);
        }
    }

    fn enforce(&self, usage: &HashMap<i32, u64>) {
        let mut tasks = self.lock();
        for watched in tasks.values_mut() {
            let sample: Vec<ContainerSample> = watched
                .containers
                .iter()
                .map(|c| ContainerSample {
                    index: c.index,
                    resident_bytes: usage.get(&c.process_group).copied().unwrap_or(0),
                    limit_mib: c.limit_mib,
                })
                .collect();
            let Some(victim) = over_limit(&sample, watched.task_limit_mib) else {
                continue;
            };
            let Some(position) = watched.containers.iter().position(|c| c.index == victim) else {
                continue;
            };
            let container = watched.containers.remove(position);
            // Reported before the kill so the exit that follows is known to be an OOM kill.
            let _ = watched
                .events
                .send(ContainerEvent::OutOfMemory { index: victim });
            let _ = killpg(Pid::from_raw(container.process_group), Signal::SIGKILL);
        }
    }
}

/// One container's memory use at a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerSample {
    pub(crate) index: usize,
    pub(crate) resident_bytes: u64,
    pub(crate) limit_mib: Option<u64>,
}

/// The container to kill, if any: one over its own limit, else the largest when the task's
/// total is over the task limit.
pub(crate) fn over_limit(sample: &[ContainerSample], task_limit_mib: Option<u64>) -> Option<usize> {
    if let Some(container) = sample.iter().find(|c| {
        c.limit_mib
            .is_some_and(|limit| c.resident_bytes > limit.saturating_mul(MIB))
    }) {
        return Some(container.index);
    }
    let total: u64 = sample.iter().map(|c| c.resident_bytes).sum();
    if task_limit_mib.is_some_and(|limit| total > limit.saturating_mul(MIB)) {
        return sample
            .iter()
            .max_by_key(|c| c.resident_bytes)
            .map(|c| c.index);
    }
    None
}

/// Resident bytes of every process in `groups`, summed per process group, read from /proc.
fn resident_bytes_by_group(groups: &HashSet<i32>) -> HashMap<i32, u64> {
    let mut usage = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return usage;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(group) = process_group_of(&stat).filter(|g| groups.contains(g)) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        *usage.entry(group).or_insert(0) += resident_bytes_of(&status);
    }
    usage
}

/// The process group from `/proc/<pid>/stat` (the third field after the `(comm)`).
fn process_group_of(stat: &str) -> Option<i32> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(2)?.parse().ok()
}

/// `VmRSS` from `/proc/<pid>/status`, in bytes.
fn resident_bytes_of(status: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(index: usize, mib: u64, limit: Option<u64>) -> ContainerSample {
        ContainerSample {
            index,
            resident_bytes: mib * MIB,
            limit_mib: limit,
        }
    }

    #[test]
    fn picks_the_container_over_its_limit_then_the_largest_over_the_task_limit() {
        assert_eq!(over_limit(&[sample(0, 10, Some(64))], None), None);
        assert_eq!(over_limit(&[sample(0, 65, Some(64))], None), Some(0));
        assert_eq!(
            over_limit(&[sample(0, 30, None), sample(1, 90, Some(64))], Some(512)),
            Some(1)
        );
        assert_eq!(
            over_limit(&[sample(0, 100, None), sample(1, 30, None)], Some(128)),
            Some(0)
        );
        assert_eq!(
            over_limit(&[sample(0, 60, None), sample(1, 60, None)], Some(128)),
            None
        );
        // Absurd limits (a task memory of "9999999999999GB") never overflow.
        assert_eq!(
            over_limit(&[sample(0, 60, Some(u64::MAX))], Some(u64::MAX)),
            None
        );
    }

    #[test]
    fn parses_proc_files() {
        let stat = "1234 (my (odd) prog) S 1 1230 1230 0 -1 4194560 100";
        assert_eq!(process_group_of(stat), Some(1230));
        let status = "Name:\tpython3\nVmPeak:\t  20000 kB\nVmRSS:\t   12345 kB\nThreads:\t1\n";
        assert_eq!(resident_bytes_of(status), 12345 * 1024);
        assert_eq!(resident_bytes_of("Name:\tkthreadd\n"), 0);
    }

    #[test]
    fn measures_this_process() {
        let own_group = nix::unistd::getpgrp().as_raw();
        let usage = resident_bytes_by_group(&HashSet::from([own_group]));
        assert!(usage.get(&own_group).copied().unwrap_or(0) > MIB);
    }
}
