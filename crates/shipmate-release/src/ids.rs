//! Deterministic names derived from a release's inputs. The same arguments always make the same
//! release id (so a re-run is recognisably the same release) and the same RunTask clientToken
//! (so ECS's idempotency makes a retry attach to the migration instead of starting another).

use sha2::{Digest, Sha256};

/// What identifies a release: two runs with these equal are the same release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInputs<'a> {
    pub cluster: &'a str,
    pub service: &'a str,
    pub image: &'a str,
    /// `--container` as given (empty: the default choice).
    pub container: &'a str,
    pub migrate: Option<&'a [String]>,
}

fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        // Length-prefixed so that ("ab","c") and ("a","bc") differ.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// A 12-hex-digit release id.
pub fn release_id(inputs: &ReleaseInputs<'_>) -> String {
    let command = inputs
        .migrate
        .map(|words| words.join("\u{0}"))
        .unwrap_or_default();
    let mut id = digest(&[
        "shipmate-release-v1",
        inputs.cluster,
        inputs.service,
        inputs.image,
        inputs.container,
        &command,
    ]);
    id.truncate(12);
    id
}

/// The migration task's `startedBy`: who holds the lock, readable in the console.
pub fn started_by(release_id: &str) -> String {
    format!("shipmate/{release_id}")
}

/// The post-deploy task's `startedBy`: the release's, told apart from its migration.
pub fn post_deploy_started_by(release_id: &str) -> String {
    format!("shipmate/{release_id}/post-deploy")
}

/// `plan --pending`'s read-only task `startedBy` (no release: nothing is released).
pub fn plan_started_by() -> String {
    "shipmate/plan".to_owned()
}

/// The contract phase's task `startedBy`.
pub fn contract_started_by(release_id: &str) -> String {
    format!("shipmate/{release_id}/contract")
}

/// The release id back out of a migration task's `startedBy` (not `shipmate run` tasks, not
/// post-deploy tasks).
pub fn release_of(started_by: &str) -> Option<&str> {
    started_by
        .strip_prefix("shipmate/")
        .filter(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The migration's RunTask clientToken: one per ledger entry (the release's ticket in the
/// lock) and attempt, so a re-run of an interrupted release that resumes its entry sends the
/// same token and ECS hands back the task already started instead of starting a second one.
/// 64 hex characters, the maximum ECS accepts.
pub fn migration_token(ledger_family: &str, entry_revision: i32, attempt: u32) -> String {
    digest(&[
        "shipmate-migrate-v2",
        ledger_family,
        &entry_revision.to_string(),
        &attempt.to_string(),
    ])
}

/// A rollback's release id: the same `shipmate rollback` run again (a re-run of a killed job)
/// is the same release, so it carries on the interrupted one instead of queueing behind it.
pub fn rollback_id(cluster: &str, service: &str, to: Option<&str>) -> String {
    let mut id = digest(&["shipmate-rollback-v1", cluster, service, to.unwrap_or("")]);
    id.truncate(12);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(image: &'a str, migrate: Option<&'a [String]>) -> ReleaseInputs<'a> {
        ReleaseInputs {
            cluster: "prod",
            service: "web",
            image,
            container: "app",
            migrate,
        }
    }

    #[test]
    fn release_id_is_stable_and_input_sensitive() {
        let migrate = vec![
            "python".to_owned(),
            "manage.py".to_owned(),
            "migrate".to_owned(),
        ];
        let other = vec!["python manage.py".to_owned(), "migrate".to_owned()];
        let a = release_id(&inputs("app:1", Some(&migrate)));
        assert_eq!(a.len(), 12);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, release_id(&inputs("app:1", Some(&migrate))));
        assert_ne!(a, release_id(&inputs("app:2", Some(&migrate))));
        assert_ne!(a, release_id(&inputs("app:1", Some(&other))));
        assert_ne!(a, release_id(&inputs("app:1", None)));
    }

    #[test]
    fn migration_token_fits_run_task() {
        let token = migration_token("shipmate-ledger-prod-web-12345678", 7, 0);
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| (33..=126).contains(&b)));
        assert_eq!(
            token,
            migration_token("shipmate-ledger-prod-web-12345678", 7, 0)
        );
        assert_ne!(
            token,
            migration_token("shipmate-ledger-prod-web-12345678", 7, 1)
        );
        assert_ne!(
            token,
            migration_token("shipmate-ledger-prod-web-12345678", 8, 0)
        );
        assert_ne!(token, migration_token("shipmate-ledger-other", 7, 0));
        let rollback = rollback_id("prod", "web", None);
        assert_eq!(rollback.len(), 12);
        assert_eq!(rollback, rollback_id("prod", "web", None));
        assert_ne!(rollback, rollback_id("prod", "web", Some("web:3")));
    }

    #[test]
    fn started_by_round_trips() {
        let by = started_by("0123456789ab");
        assert!(by.len() <= 128);
        assert_eq!(release_of(&by), Some("0123456789ab"));
        assert_eq!(release_of("ecs-svc/42"), None);
        assert_eq!(release_of("shipmate/run"), None);
        assert_eq!(release_of(&post_deploy_started_by("0123456789ab")), None);
    }
}
