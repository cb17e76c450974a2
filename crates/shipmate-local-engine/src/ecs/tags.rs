//! TagResource, UntagResource, ListTagsForResource, and the tag limits every tagging operation
//! checks.

use shipmate_local_api::ecs::*;
use shipmate_local_protocol::AwsError;

use super::{Ecs, EcsState, arns, cluster_not_found, invalid_parameter};

impl Ecs {
    pub(crate) fn tag_resource(
        &self,
        input: TagResourceRequest,
    ) -> Result<TagResourceResponse, AwsError> {
        let arn = input
            .resource_arn
            .ok_or_else(|| invalid_parameter("resourceArn is required."))?;
        let new = input
            .tags
            .ok_or_else(|| invalid_parameter("tags is required."))?;
        validate_tags(&new)?;
        let mut state = self.state();
        check_exists(&state, &arn)?;
        let tags = state.tags.entry(arn).or_default();
        for tag in new {
            match tags.iter_mut().find(|t| t.key == tag.key) {
                Some(existing) => existing.value = tag.value,
                None => tags.push(tag),
            }
        }
        if tags.len() > 50 {
            return Err(AwsError::client(
                "LimitExceededException",
                "A resource can have at most 50 tags.",
            ));
        }
        drop(state);
        self.changed();
        Ok(TagResourceResponse {})
    }

    pub(crate) fn untag_resource(
        &self,
        input: UntagResourceRequest,
    ) -> Result<UntagResourceResponse, AwsError> {
        let arn = input
            .resource_arn
            .ok_or_else(|| invalid_parameter("resourceArn is required."))?;
        let keys = input
            .tag_keys
            .ok_or_else(|| invalid_parameter("tagKeys is required."))?;
        let mut state = self.state();
        check_exists(&state, &arn)?;
        if let Some(tags) = state.tags.get_mut(&arn) {
            tags.retain(|t| !t.key.as_ref().is_some_and(|k| keys.contains(k)));
        }
        drop(state);
        self.changed();
        Ok(UntagResourceResponse {})
    }

    pub(crate) fn list_tags_for_resource(
        &self,
        input: ListTagsForResourceRequest,
    ) -> Result<ListTagsForResourceResponse, AwsError> {
        let arn = input
            .resource_arn
            .ok_or_else(|| invalid_parameter("resourceArn is required."))?;
        let state = self.state();
        check_exists(&state, &arn)?;
        Ok(ListTagsForResourceResponse {
            tags: state.tags.get(&arn).cloned().unwrap_or_default(),
        })
    }
}

/// ECS tag limits: at most 50, keys 1-128 and values 0-256 characters, `aws:` reserved.
pub(super) fn validate_tags(tags: &[Tag]) -> Result<(), AwsError> {
    if tags.len() > 50 {
        return Err(invalid_parameter("A resource can have at most 50 tags."));
    }
    for tag in tags {
        let key = tag.key.as_deref().unwrap_or("");
        if key.is_empty() || key.chars().count() > 128 {
            return Err(invalid_parameter("Tag keys must be 1-128 characters."));
        }
        if tag.value.as_deref().unwrap_or("").chars().count() > 256 {
            return Err(invalid_parameter(
                "Tag values must be at most 256 characters.",
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid_parameter(
                "Tag keys beginning with aws: are reserved for AWS use.",
            ));
        }
    }
    Ok(())
}

fn check_exists(state: &EcsState, arn: &str) -> Result<(), AwsError> {
    let not_found = || {
        AwsError::client(
            "ResourceNotFoundException",
            "The specified resource could not be found.",
        )
    };
    if !arn.starts_with("arn:aws:ecs:") {
        return Err(invalid_parameter("The ARN provided is invalid."));
    }
    let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
    if resource.starts_with("cluster/") {
        let name = arns::cluster_name(Some(arn));
        state
            .clusters
            .get(&name)
            .filter(|c| c.status.as_deref() == Some("ACTIVE"))
            .map(|_| ())
            .ok_or_else(cluster_not_found)
    } else if resource.starts_with("task-definition/") {
        let (family, revision) = arns::task_definition_reference(arn);
        let found = revision.is_some_and(|r| {
            r >= 1
                && state
                    .task_definitions
                    .get(&family)
                    .is_some_and(|revisions| revisions.len() >= r as usize)
        });
        found.then_some(()).ok_or_else(not_found)
    } else if resource.starts_with("task/") {
        state
            .tasks
            .contains_key(arns::task_id(arn))
            .then_some(())
            .ok_or_else(not_found)
    } else if resource.starts_with("service/") {
        state
            .services
            .contains_key(arn)
            .then_some(())
            .ok_or_else(not_found)
    } else {
        Err(invalid_parameter("The ARN provided is invalid."))
    }
}
