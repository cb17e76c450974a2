//! ECS ARNs and the short names clients may use instead of them.

use crate::ACCOUNT_ID;

pub(crate) fn cluster(region: &str, name: &str) -> String {
    format!("arn:aws:ecs:{region}:{ACCOUNT_ID}:cluster/{name}")
}

pub(crate) fn task_definition(region: &str, family: &str, revision: i32) -> String {
    format!("arn:aws:ecs:{region}:{ACCOUNT_ID}:task-definition/{family}:{revision}")
}

pub(crate) fn task(region: &str, cluster: &str, id: &str) -> String {
    format!("arn:aws:ecs:{region}:{ACCOUNT_ID}:task/{cluster}/{id}")
}

pub(crate) fn container(region: &str, cluster: &str, task_id: &str, uuid: &str) -> String {
    format!("arn:aws:ecs:{region}:{ACCOUNT_ID}:container/{cluster}/{task_id}/{uuid}")
}

/// The region of any ECS ARN (`arn:aws:ecs:<region>:…`).
pub(crate) fn region_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// The cluster name from a name or a cluster ARN; `None`/empty means `default`.
pub(crate) fn cluster_name(reference: Option<&str>) -> String {
    match reference.filter(|r| !r.is_empty()) {
        None => "default".to_owned(),
        Some(r) if r.starts_with("arn:") => {
            r.rsplit_once(":cluster/").map_or(r, |(_, n)| n).to_owned()
        }
        Some(r) => r.to_owned(),
    }
}

/// The task id from a task id or a task ARN (long `task/<cluster>/<id>` or old `task/<id>`).
pub(crate) fn task_id(reference: &str) -> &str {
    if reference.starts_with("arn:") {
        reference.rsplit('/').next().unwrap_or(reference)
    } else {
        reference
    }
}

/// `(family, revision)` from `family`, `family:revision` or a task-definition ARN.
pub(crate) fn task_definition_reference(reference: &str) -> (String, Option<i32>) {
    let short = match reference.split_once(":task-definition/") {
        Some((_, rest)) if reference.starts_with("arn:") => rest,
        _ => reference,
    };
    match short.rsplit_once(':') {
        Some((family, revision)) => match revision.parse() {
            Ok(revision) => (family.to_owned(), Some(revision)),
            Err(_) => (short.to_owned(), None),
        },
        None => (short.to_owned(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(cluster_name(None), "default");
        assert_eq!(cluster_name(Some("")), "default");
        assert_eq!(cluster_name(Some("c1")), "c1");
        assert_eq!(cluster_name(Some(&cluster("eu-west-1", "c2"))), "c2");
        assert_eq!(task_id("0123abcd"), "0123abcd");
        assert_eq!(task_id(&task("us-east-1", "c", "0123abcd")), "0123abcd");
        assert_eq!(task_definition_reference("web"), ("web".into(), None));
        assert_eq!(task_definition_reference("web:3"), ("web".into(), Some(3)));
        assert_eq!(
            task_definition_reference(&task_definition("us-east-1", "web", 12)),
            ("web".into(), Some(12))
        );
        assert_eq!(region_of(&cluster("eu-west-1", "c")), Some("eu-west-1"));
    }
}
