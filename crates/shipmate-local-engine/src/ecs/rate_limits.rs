//! ECS's API request throttling (APIReference/request-throttling.html, reference ecs-api.md §5),
//! as pure logic: every action belongs to a category, each category has one token bucket per
//! account and Region (`burst` tokens, refilled at `sustained` tokens a second), a call takes a
//! token, and a call that finds its bucket empty is answered `ThrottlingException` "Rate
//! exceeded". The engine applies it only when asked ([`RateLimits::enabled`]); time is passed
//! in, so all of this is tested without sleeping.

use std::collections::HashMap;
use std::time::SystemTime;

use shipmate_local_protocol::AwsError;

/// The throttling categories of the ECS API that contain an operation this endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RateCategory {
    ClusterModify,
    ClusterRead,
    TaskDefinitionModify,
    TaskDefinitionRead,
    TagModify,
    TagRead,
    ClusterResourceModify,
    ClusterResourceRead,
    ServiceModify,
    ServiceRead,
    ServiceDeploymentRead,
    ServiceRevisionRead,
}

/// Every ECS operation this endpoint serves, with the category ECS meters it in. This is also
/// the list of operations the engine dispatches: an operation missing here is not served, so a
/// new one cannot go unmetered by accident.
pub const OPERATIONS: &[(&str, RateCategory)] = &[
    ("CreateCluster", RateCategory::ClusterModify),
    ("DeleteCluster", RateCategory::ClusterModify),
    ("DescribeClusters", RateCategory::ClusterRead),
    ("ListClusters", RateCategory::ClusterRead),
    ("RegisterTaskDefinition", RateCategory::TaskDefinitionModify),
    (
        "DeregisterTaskDefinition",
        RateCategory::TaskDefinitionModify,
    ),
    ("DescribeTaskDefinition", RateCategory::TaskDefinitionRead),
    ("ListTaskDefinitions", RateCategory::TaskDefinitionRead),
    (
        "ListTaskDefinitionFamilies",
        RateCategory::TaskDefinitionRead,
    ),
    ("TagResource", RateCategory::TagModify),
    ("UntagResource", RateCategory::TagModify),
    ("ListTagsForResource", RateCategory::TagRead),
    ("RunTask", RateCategory::ClusterResourceModify),
    ("StopTask", RateCategory::ClusterResourceModify),
    ("DescribeTasks", RateCategory::ClusterResourceRead),
    ("ListTasks", RateCategory::ClusterResourceRead),
    ("CreateService", RateCategory::ServiceModify),
    ("UpdateService", RateCategory::ServiceModify),
    ("DeleteService", RateCategory::ServiceModify),
    ("DescribeServices", RateCategory::ServiceRead),
    ("ListServices", RateCategory::ServiceRead),
    (
        "DescribeServiceDeployments",
        RateCategory::ServiceDeploymentRead,
    ),
    (
        "ListServiceDeployments",
        RateCategory::ServiceDeploymentRead,
    ),
    (
        "DescribeServiceRevisions",
        RateCategory::ServiceRevisionRead,
    ),
    // ECS's table leaves these two out; they change a service, so they share its bucket (our
    // choice).
    ("StopServiceDeployment", RateCategory::ServiceModify),
    ("ContinueServiceDeployment", RateCategory::ServiceModify),
];

impl RateCategory {
    /// The category of an ECS operation; `None` for one this endpoint does not serve.
    pub fn of(operation: &str) -> Option<RateCategory> {
        OPERATIONS
            .iter()
            .find(|(name, _)| *name == operation)
            .map(|(_, category)| *category)
    }

    /// The bucket's size: how many calls may arrive at once.
    pub fn burst(self) -> u32 {
        self.rates().0
    }

    /// Tokens added per second: the rate calls can keep up.
    pub fn sustained(self) -> u32 {
        self.rates().1
    }

    /// (burst, sustained) as the ECS API reference's table gives them.
    fn rates(self) -> (u32, u32) {
        match self {
            RateCategory::ClusterModify => (20, 1),
            RateCategory::ClusterRead => (50, 20),
            RateCategory::TaskDefinitionModify => (20, 1),
            RateCategory::TaskDefinitionRead => (50, 20),
            RateCategory::TagModify => (20, 10),
            RateCategory::TagRead => (50, 20),
            RateCategory::ClusterResourceModify => (100, 40),
            RateCategory::ClusterResourceRead => (100, 20),
            RateCategory::ServiceModify => (50, 5),
            RateCategory::ServiceRead => (100, 20),
            RateCategory::ServiceDeploymentRead => (50, 20),
            RateCategory::ServiceRevisionRead => (50, 20),
        }
    }
}

/// Whether calls are metered, and how fast buckets refill. Off by default: tests and demos must
/// not wait for tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub enabled: bool,
    /// Multiplies every category's sustained rate; bursts stay as documented. `1` is ECS's
    /// rates; a larger value lets a test see refills quickly; `0` never refills, so exactly the
    /// burst is answered, whatever the timing.
    pub refill_scale: u32,
}

impl RateLimits {
    /// Not metered (the default).
    pub const OFF: RateLimits = RateLimits {
        enabled: false,
        refill_scale: 1,
    };
    /// ECS's documented rates.
    pub const ECS: RateLimits = RateLimits {
        enabled: true,
        refill_scale: 1,
    };
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::OFF
    }
}

/// A call that found its category's bucket empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the {category:?} bucket is empty")]
pub struct Throttled {
    pub category: RateCategory,
}

impl From<Throttled> for AwsError {
    /// ECS's answer names no category: HTTP 400 `ThrottlingException`, "Rate exceeded".
    fn from(_: Throttled) -> AwsError {
        AwsError::throttling()
    }
}

/// One token, in the bucket's unit. Levels are kept in nano-tokens so that a refill, `elapsed
/// nanoseconds × tokens per second`, is an exact integer: no float drift at bucket edges.
const TOKEN: u128 = 1_000_000_000;

/// A token bucket: holds up to `burst` tokens and gains `per_second` a second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    capacity: u128,
    per_second: u128,
    level: u128,
    updated: SystemTime,
}

impl TokenBucket {
    /// A bucket holding its whole burst at `now`.
    pub fn full(burst: u32, per_second: u32, now: SystemTime) -> TokenBucket {
        let capacity = u128::from(burst) * TOKEN;
        TokenBucket {
            capacity,
            per_second: u128::from(per_second),
            level: capacity,
            updated: now,
        }
    }

    /// Takes one token if there is one at `now`.
    pub fn try_take(&mut self, now: SystemTime) -> bool {
        self.refill(now);
        if self.level < TOKEN {
            return false;
        }
        self.level -= TOKEN;
        true
    }

    fn refill(&mut self, now: SystemTime) {
        // A wall clock stepping back refills nothing (and does not move `updated` back, which
        // would count the same time twice).
        let Ok(elapsed) = now.duration_since(self.updated) else {
            return;
        };
        let gained = elapsed.as_nanos().saturating_mul(self.per_second);
        self.level = self.level.saturating_add(gained).min(self.capacity);
        self.updated = now;
    }
}

/// The buckets of one account: one per Region and category, made full on first use.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    limits: RateLimits,
    buckets: HashMap<(String, RateCategory), TokenBucket>,
}

impl RateLimiter {
    /// Fresh buckets, all full.
    pub fn new(limits: RateLimits) -> RateLimiter {
        RateLimiter {
            limits,
            buckets: HashMap::new(),
        }
    }

    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// Meters one call of `category` in `region` at `now`: `Ok` when it may go ahead (always, when
    /// limits are off).
    pub fn admit(
        &mut self,
        region: &str,
        category: RateCategory,
        now: SystemTime,
    ) -> Result<(), Throttled> {
        if !self.limits.enabled {
            return Ok(());
        }
        let scale = self.limits.refill_scale;
        let bucket = self
            .buckets
            .entry((region.to_owned(), category))
            .or_insert_with(|| {
                TokenBucket::full(
                    category.burst(),
                    category.sustained().saturating_mul(scale),
                    now,
                )
            });
        if bucket.try_take(now) {
            Ok(())
        } else {
            Err(Throttled { category })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const T0: SystemTime = UNIX_EPOCH;
    const REGION: &str = "us-east-1";

    fn at(millis: u64) -> SystemTime {
        T0 + Duration::from_millis(millis)
    }

    /// How long a bucket of `category` takes to gain one token at ECS's rate.
    fn token_interval(category: RateCategory) -> Duration {
        Duration::from_secs(1) / category.sustained()
    }

    /// How many calls a bucket answers at `now`, emptying it.
    fn drain(bucket: &mut TokenBucket, now: SystemTime) -> usize {
        std::iter::from_fn(|| bucket.try_take(now).then_some(())).count()
    }

    /// The ECS API reference's table, row by row, for every operation served.
    const DOCUMENTED: &[(&str, u32, u32)] = &[
        ("CreateCluster", 20, 1),
        ("DeleteCluster", 20, 1),
        ("DescribeClusters", 50, 20),
        ("ListClusters", 50, 20),
        ("RegisterTaskDefinition", 20, 1),
        ("DeregisterTaskDefinition", 20, 1),
        ("DescribeTaskDefinition", 50, 20),
        ("ListTaskDefinitions", 50, 20),
        ("ListTaskDefinitionFamilies", 50, 20),
        ("TagResource", 20, 10),
        ("UntagResource", 20, 10),
        ("ListTagsForResource", 50, 20),
        ("RunTask", 100, 40),
        ("StopTask", 100, 40),
        ("DescribeTasks", 100, 20),
        ("ListTasks", 100, 20),
        ("CreateService", 50, 5),
        ("UpdateService", 50, 5),
        ("DeleteService", 50, 5),
        ("DescribeServices", 100, 20),
        ("ListServices", 100, 20),
        ("DescribeServiceDeployments", 50, 20),
        ("ListServiceDeployments", 50, 20),
        ("DescribeServiceRevisions", 50, 20),
        ("StopServiceDeployment", 50, 5),
        ("ContinueServiceDeployment", 50, 5),
    ];

    #[test]
    fn every_operation_served_has_its_documented_rates() {
        assert_eq!(OPERATIONS.len(), DOCUMENTED.len());
        for &(operation, burst, sustained) in DOCUMENTED {
            let category = RateCategory::of(operation).expect(operation);
            assert_eq!(
                (category.burst(), category.sustained()),
                (burst, sustained),
                "{operation}"
            );
        }
        assert_eq!(RateCategory::of("PutLogEvents"), None);
        assert_eq!(RateCategory::of("ExecuteCommand"), None);
    }

    #[test]
    fn each_category_answers_its_burst_then_refills_at_its_sustained_rate() {
        for &(operation, burst, sustained) in DOCUMENTED {
            let category = RateCategory::of(operation).unwrap();
            let mut limiter = RateLimiter::new(RateLimits::ECS);
            for n in 0..burst {
                assert_eq!(
                    limiter.admit(REGION, category, T0),
                    Ok(()),
                    "{operation} call {n}"
                );
            }
            assert_eq!(
                limiter.admit(REGION, category, T0),
                Err(Throttled { category }),
                "{operation} beyond its burst"
            );
            // Just short of one token's worth of time: still empty.
            let interval = token_interval(category);
            let almost = T0 + interval - Duration::from_nanos(1);
            assert!(
                limiter.admit(REGION, category, almost).is_err(),
                "{operation}"
            );
            assert_eq!(limiter.admit(REGION, category, T0 + interval), Ok(()));
            assert!(limiter.admit(REGION, category, T0 + interval).is_err());
            // A whole second later: `sustained` more, and no more.
            let later = T0 + interval + Duration::from_secs(1);
            for n in 0..sustained {
                assert_eq!(
                    limiter.admit(REGION, category, later),
                    Ok(()),
                    "{operation} refill {n}"
                );
            }
            assert!(
                limiter.admit(REGION, category, later).is_err(),
                "{operation}"
            );
        }
    }

    #[test]
    fn operations_of_one_category_share_its_bucket_and_other_categories_are_untouched() {
        let mut limiter = RateLimiter::new(RateLimits::ECS);
        let modify = RateCategory::of("RegisterTaskDefinition").unwrap();
        for _ in 0..20 {
            limiter.admit(REGION, modify, T0).unwrap();
        }
        let deregister = RateCategory::of("DeregisterTaskDefinition").unwrap();
        assert_eq!(
            limiter.admit(REGION, deregister, T0),
            Err(Throttled {
                category: RateCategory::TaskDefinitionModify
            })
        );
        let read = RateCategory::of("DescribeTaskDefinition").unwrap();
        assert_eq!(limiter.admit(REGION, read, T0), Ok(()));
        assert_eq!(
            limiter.admit(REGION, RateCategory::ClusterModify, T0),
            Ok(())
        );
    }

    #[test]
    fn each_region_has_its_own_buckets() {
        let mut limiter = RateLimiter::new(RateLimits::ECS);
        for _ in 0..20 {
            limiter
                .admit(REGION, RateCategory::ClusterModify, T0)
                .unwrap();
        }
        assert!(
            limiter
                .admit(REGION, RateCategory::ClusterModify, T0)
                .is_err()
        );
        assert_eq!(
            limiter.admit("eu-west-1", RateCategory::ClusterModify, T0),
            Ok(())
        );
    }

    #[test]
    fn a_bucket_never_holds_more_than_its_burst() {
        // An hour idle still leaves 20 tokens, not 3,620.
        let mut bucket = TokenBucket::full(20, 1, T0);
        assert_eq!(drain(&mut bucket, at(3_600_000)), 20);
        assert_eq!(drain(&mut bucket, at(3_600_500)), 0);
        assert_eq!(drain(&mut bucket, at(3_601_000)), 1);
    }

    #[test]
    fn refills_count_fractions_of_a_token() {
        // 40 a second is one every 25 ms; three calls 10 ms apart make one token between them.
        let mut bucket = TokenBucket::full(1, 40, T0);
        assert!(bucket.try_take(T0));
        assert!(!bucket.try_take(at(10)));
        assert!(!bucket.try_take(at(20)));
        assert!(bucket.try_take(at(25)));
    }

    #[test]
    fn a_clock_stepping_back_refills_nothing() {
        let mut bucket = TokenBucket::full(1, 1, at(10_000));
        assert!(bucket.try_take(at(10_000)));
        assert!(!bucket.try_take(at(5_000)));
        assert!(!bucket.try_take(at(10_999)));
        assert!(bucket.try_take(at(11_000)));
    }

    #[test]
    fn the_refill_scale_multiplies_sustained_rates_only() {
        let modify = RateCategory::TaskDefinitionModify;
        for (scale, after_a_second) in [(0, 0), (1, 1), (50, 20)] {
            let mut limiter = RateLimiter::new(RateLimits {
                enabled: true,
                refill_scale: scale,
            });
            for _ in 0..20 {
                limiter.admit(REGION, modify, T0).unwrap();
            }
            assert!(limiter.admit(REGION, modify, T0).is_err());
            let admitted = (0..100)
                .filter(|_| limiter.admit(REGION, modify, at(1000)).is_ok())
                .count();
            assert_eq!(admitted, after_a_second, "scale {scale}");
        }
    }

    #[test]
    fn a_throttled_call_is_answered_as_ecs_does() {
        let error = AwsError::from(Throttled {
            category: RateCategory::ServiceModify,
        });
        assert_eq!(
            (error.status, error.code.as_str(), error.message.as_str()),
            (400, "ThrottlingException", "Rate exceeded")
        );
    }

    #[test]
    fn nothing_is_metered_when_limits_are_off() {
        let mut limiter = RateLimiter::new(RateLimits::OFF);
        for _ in 0..1000 {
            assert_eq!(
                limiter.admit(REGION, RateCategory::ClusterModify, T0),
                Ok(())
            );
        }
    }
}
