//! Keeping under ECS's API rate limits. ECS meters every action through per-account token
//! buckets (a burst, then a sustained refill per second; ../shared/reference/ecs-api.md §5),
//! shared with everything else in the account. A release of fifty services would otherwise
//! register fifty revisions at once and spend half a minute in ThrottlingException retries;
//! instead every command waits, before it goes, until its calls fit in a local copy of the
//! buckets, refilled at the documented rates: a release goes exactly as fast as the buckets
//! allow (taking a share of them would slow every large release by that share, for callers
//! that are rarely there). The SDK's retries cover what others in the account use meanwhile.

use std::collections::BTreeMap;

use crate::io::Command;

/// ECS's categories of actions, as far as a release calls them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// RegisterTaskDefinition, DeregisterTaskDefinition.
    TaskDefinitionModify,
    /// DescribeTaskDefinition, ListTaskDefinitions.
    TaskDefinitionRead,
    /// RunTask, StopTask.
    ClusterResourceModify,
    /// DescribeTasks, ListTasks.
    ClusterResourceRead,
    /// UpdateService.
    ServiceModify,
    /// DescribeServices.
    ServiceRead,
    /// TagResource.
    TagModify,
}

impl Category {
    /// (burst, sustained per second), as ECS documents them.
    pub fn limits(self) -> (f64, f64) {
        match self {
            Category::TaskDefinitionModify => (20.0, 1.0),
            Category::TaskDefinitionRead => (50.0, 20.0),
            Category::ClusterResourceModify => (100.0, 40.0),
            Category::ClusterResourceRead => (100.0, 20.0),
            Category::ServiceModify => (50.0, 5.0),
            Category::ServiceRead => (100.0, 20.0),
            Category::TagModify => (20.0, 10.0),
        }
    }
}

fn batches(items: usize, per_call: usize) -> u32 {
    u32::try_from(items.div_ceil(per_call)).unwrap_or(u32::MAX)
}

/// The ECS calls a command makes, by category. Commands that are not ECS calls (waits, logs)
/// make none.
pub fn calls(command: &Command) -> Vec<(Category, u32)> {
    use Category as C;
    match command {
        Command::ListOpenEntries { .. } => vec![(C::TaskDefinitionRead, 1)],
        Command::NewestEntry { .. } => vec![(C::TaskDefinitionRead, 2)],
        Command::DescribeEntries { revisions, .. } => {
            vec![(C::TaskDefinitionRead, batches(revisions.len(), 1))]
        }
        Command::RegisterEntry { .. } => vec![(C::TaskDefinitionModify, 1)],
        Command::TagEntry { .. } => vec![(C::TagModify, 1)],
        Command::CloseEntry { .. } => vec![(C::TagModify, 1), (C::TaskDefinitionModify, 1)],
        Command::DescribeServices { services } => {
            vec![(C::ServiceRead, batches(services.len(), 10))]
        }
        Command::DescribeTaskDefinition { .. } | Command::DescribeTaskDefinitionAnswer { .. } => {
            vec![(C::TaskDefinitionRead, 1)]
        }
        // At most: the family's latest revision read, then one registered.
        Command::RegisterRevision { .. } => {
            vec![(C::TaskDefinitionRead, 1), (C::TaskDefinitionModify, 1)]
        }
        Command::UpdateService { hooks, .. } => {
            // Hooks are replaced within the service's deployment configuration, read first.
            let read = hooks.as_ref().map(|_| (C::ServiceRead, 1));
            read.into_iter().chain([(C::ServiceModify, 1)]).collect()
        }
        Command::SetLifecycleHooks { .. } => vec![(C::ServiceRead, 1), (C::ServiceModify, 1)],
        Command::DescribeServiceDeployments { arns } => {
            vec![(C::ServiceRead, batches(arns.len(), 20))]
        }
        Command::ListServiceDeployments { .. } => vec![(C::ServiceRead, 1)],
        Command::ContinueServiceDeployment { .. } | Command::StopServiceDeployment { .. } => {
            vec![(C::ServiceModify, 1)]
        }
        Command::ListTasks { .. } => vec![(C::ClusterResourceRead, 1)],
        Command::RunTask(_) | Command::StopTask { .. } => vec![(C::ClusterResourceModify, 1)],
        Command::DescribeTasks { arns } => vec![(C::ClusterResourceRead, batches(arns.len(), 100))],
        Command::FollowLogs { .. }
        | Command::TaskStopped { .. }
        | Command::AwaitLogs { .. }
        | Command::StopLogs { .. }
        | Command::DescribeLogGroups { .. }
        | Command::Sleep { .. } => Vec::new(),
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// The local copy of the buckets. Full at the start: what others in the account used is not
/// known, and the SDK retries what this misjudges.
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    buckets: BTreeMap<Category, Bucket>,
}

impl Pacer {
    fn bucket(&mut self, category: Category, now_ms: i64) -> &mut Bucket {
        let (burst, sustained) = category.limits();
        let bucket = self.buckets.entry(category).or_insert(Bucket {
            tokens: burst,
            at_ms: now_ms,
        });
        let refilled = (now_ms - bucket.at_ms).max(0) as f64 / 1000.0 * sustained;
        bucket.tokens = (bucket.tokens + refilled).min(burst);
        bucket.at_ms = now_ms.max(bucket.at_ms);
        bucket
    }

    /// How long `command` must wait before it goes, in milliseconds (0: now). Once it returns
    /// 0 the calls are taken from the buckets; otherwise nothing is taken: ask again after the
    /// wait.
    pub fn wait_ms(&mut self, command: &Command, now_ms: i64) -> i64 {
        let wanted = calls(command);
        let mut wait: i64 = 0;
        for (category, count) in &wanted {
            let (burst, sustained) = category.limits();
            // More calls than a full bucket holds go as soon as it is full.
            let needed = f64::from(*count).min(burst);
            let bucket = self.bucket(*category, now_ms);
            if bucket.tokens < needed {
                let missing = needed - bucket.tokens;
                let ms = (missing / sustained * 1000.0).ceil() as i64;
                wait = wait.max(ms.max(1));
            }
        }
        if wait == 0 {
            for (category, count) in wanted {
                let bucket = self.bucket(category, now_ms);
                bucket.tokens -= f64::from(count);
            }
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Record;

    fn register() -> Command {
        Command::RegisterRevision {
            base: "web:1".to_owned(),
            containers: vec!["app".to_owned()],
            image: "web:2".to_owned(),
        }
    }

    #[test]
    fn a_burst_goes_at_once_then_the_sustained_rate() {
        let mut pacer = Pacer::default();
        for n in 0..20 {
            assert_eq!(
                pacer.wait_ms(&register(), 0),
                0,
                "registration {n} is in the burst"
            );
        }
        // The 21st waits for a token: 1 per second.
        let wait = pacer.wait_ms(&register(), 0);
        assert_eq!(wait, 1000);
        assert_eq!(pacer.wait_ms(&register(), wait), 0);
        // Fifty registrations from full buckets take about 30 s, as ECS's own buckets force.
        let mut pacer = Pacer::default();
        let mut now = 0;
        for _ in 0..50 {
            loop {
                let wait = pacer.wait_ms(&register(), now);
                if wait == 0 {
                    break;
                }
                now += wait;
            }
        }
        assert_eq!(now, 30_000);
    }

    #[test]
    fn categories_are_separate_and_batches_count_as_their_calls() {
        let mut pacer = Pacer::default();
        for _ in 0..20 {
            pacer.wait_ms(&register(), 0);
        }
        let describe = Command::DescribeServices {
            services: (0..50).map(|n| format!("svc-{n}")).collect(),
        };
        assert_eq!(calls(&describe), vec![(Category::ServiceRead, 5)]);
        assert_eq!(pacer.wait_ms(&describe, 0), 0, "another bucket");
        let tag = Command::TagEntry {
            arn: "arn".to_owned(),
            record: Box::new(Record::new("r", crate::ledger::Kind::Deploy, "c", &[])),
        };
        assert_eq!(pacer.wait_ms(&tag, 0), 0);
        assert_eq!(pacer.wait_ms(&Command::Sleep { until_ms: 5 }, 0), 0);
        assert!(calls(&Command::Sleep { until_ms: 5 }).is_empty());
    }
}
