//! The artifacts CodePipeline's CodeDeployToECS action takes, written by
//! `shipmate deploy --migrate-only` for a CODE_DEPLOY service once its migration passed:
//! `imageDetail.json` (`{"ImageURI": …}`), `taskdef.json` (the service's task definition as
//! RegisterTaskDefinition takes it, the released containers' image replaced by
//! `<IMAGE1_NAME>`) and `appspec.yaml` (`TaskDefinition: <TASK_DEFINITION>`). The action fills
//! both placeholders, registers the revision and starts the blue/green deployment.

use serde::Serialize;
use serde_json::Value;

/// The placeholder CodeDeployToECS replaces with the image of `imageDetail.json` (its
/// `Image1ContainerName` must be `IMAGE1_NAME`).
pub const IMAGE_PLACEHOLDER: &str = "<IMAGE1_NAME>";
/// The placeholder CodeDeployToECS replaces with the revision it registers.
pub const TASK_DEFINITION_PLACEHOLDER: &str = "<TASK_DEFINITION>";

/// Members of a DescribeTaskDefinition answer that ECS sets and RegisterTaskDefinition refuses.
const READ_ONLY: [&str; 9] = [
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
    "deleteRequestedAt",
];

/// One service's set of files, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifacts {
    pub service: String,
    pub image_detail: String,
    pub taskdef: String,
    pub appspec: String,
}

/// The load balancer CodeDeploy shifts traffic on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadBalancerView {
    pub container_name: String,
    pub container_port: i32,
}

/// Why the files cannot be made from what ECS answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write CodeDeploy's taskdef.json from the answer for {arn}: {reason}")]
pub struct ArtifactError {
    pub arn: String,
    pub reason: String,
}

pub fn image_detail(image: &str) -> String {
    format!("{}\n", serde_json::json!({ "ImageURI": image }))
}

/// `answer` is DescribeTaskDefinition's whole answer (`taskDefinition`, `tags`), as ECS sent
/// it: members newer than shipmate are kept as they are.
pub fn taskdef(arn: &str, answer: &Value, containers: &[String]) -> Result<String, ArtifactError> {
    let error = |reason: &str| ArtifactError {
        arn: arn.to_owned(),
        reason: reason.to_owned(),
    };
    let mut td = answer
        .get("taskDefinition")
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| error("no taskDefinition in it"))?;
    for member in READ_ONLY {
        td.remove(member);
    }
    let mut replaced = 0;
    for container in td
        .get_mut("containerDefinitions")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| error("no containerDefinitions in it"))?
        .iter_mut()
        .filter_map(Value::as_object_mut)
    {
        let name = container.get("name").and_then(Value::as_str).unwrap_or("");
        if containers.iter().any(|c| c == name) {
            container.insert("image".to_owned(), Value::from(IMAGE_PLACEHOLDER));
            replaced += 1;
        }
    }
    if replaced == 0 {
        return Err(error("none of its containers gets the release's image"));
    }
    let tags: Vec<Value> = answer
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|tag| {
            // aws: tags belong to AWS and are refused on registration.
            !tag.get("key")
                .and_then(Value::as_str)
                .is_some_and(|key| key.to_ascii_lowercase().starts_with("aws:"))
        })
        .cloned()
        .collect();
    if !tags.is_empty() {
        td.insert("tags".to_owned(), Value::from(tags));
    }
    let text =
        serde_json::to_string_pretty(&Value::Object(td)).map_err(|e| error(&e.to_string()))?;
    Ok(format!("{text}\n"))
}

/// The AppSpec of an ECS deployment: the revision CodeDeployToECS registers, and the container
/// and port of the service's load balancer (CodeDeploy's blue/green needs one).
pub fn appspec(load_balancer: Option<&LoadBalancerView>) -> String {
    let mut text = format!(
        "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: {TASK_DEFINITION_PLACEHOLDER}\n"
    );
    if let Some(lb) = load_balancer {
        // A JSON string is a YAML string: any container name stays one scalar.
        text.push_str(&format!(
            "        LoadBalancerInfo:\n          ContainerName: {}\n          ContainerPort: {}\n",
            Value::from(lb.container_name.as_str()),
            lb.container_port
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taskdef_keeps_what_registration_takes_and_places_the_placeholder() {
        let answer = serde_json::json!({
            "taskDefinition": {
                "taskDefinitionArn": "arn:aws:ecs:eu-west-1:1:task-definition/web:7",
                "family": "web",
                "revision": 7,
                "status": "ACTIVE",
                "registeredAt": 1.7e9,
                "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"}],
                "compatibilities": ["EC2", "FARGATE"],
                "cpu": "256",
                "newerMember": {"kept": true},
                "containerDefinitions": [
                    {"name": "app", "image": "shop:1", "essential": true},
                    {"name": "envoy", "image": "envoy:1"}
                ]
            },
            "tags": [{"key": "team", "value": "shop"}, {"key": "aws:cloudformation:stack-name", "value": "x"}]
        });
        let text = taskdef("arn:td", &answer, &["app".to_owned()]).unwrap();
        let td: Value = serde_json::from_str(&text).unwrap();
        for member in READ_ONLY {
            assert!(td.get(member).is_none(), "{member} is dropped");
        }
        assert_eq!(td["family"], "web");
        assert_eq!(td["newerMember"]["kept"], true, "unknown members survive");
        assert_eq!(td["containerDefinitions"][0]["image"], IMAGE_PLACEHOLDER);
        assert_eq!(td["containerDefinitions"][1]["image"], "envoy:1");
        assert_eq!(
            td["tags"],
            serde_json::json!([{"key": "team", "value": "shop"}])
        );
        assert!(taskdef("arn:td", &answer, &["nope".to_owned()]).is_err());
        assert!(taskdef("arn:td", &serde_json::json!({}), &[]).is_err());
    }

    #[test]
    fn appspec_and_image_detail() {
        assert_eq!(
            image_detail("1.dkr.ecr/web:v2"),
            "{\"ImageURI\":\"1.dkr.ecr/web:v2\"}\n"
        );
        let with_lb = appspec(Some(&LoadBalancerView {
            container_name: "app".to_owned(),
            container_port: 8000,
        }));
        assert!(with_lb.contains("TaskDefinition: <TASK_DEFINITION>\n"));
        assert!(with_lb.contains("ContainerName: \"app\"\n          ContainerPort: 8000\n"));
        assert!(!appspec(None).contains("LoadBalancerInfo"));
    }
}
