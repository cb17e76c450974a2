//! Service deployments and service revisions: ListServiceDeployments,
//! DescribeServiceDeployments, DescribeServiceRevisions, StopServiceDeployment and
//! ContinueServiceDeployment, with the shapes they return (`ServiceDeployment`,
//! `ServiceRevision`, …). Counts are plain integers, traffic weights doubles, times epoch seconds.

use serde::{Deserialize, Serialize};

use super::{
    CapacityProviderStrategyItem, DeploymentConfiguration, Failure, LoadBalancer,
    NetworkConfiguration, Timestamp,
};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServiceDeploymentsRequest {
    pub service: String,
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub status: Option<Vec<String>>,
    #[serde(default)]
    pub created_at: Option<CreatedAt>,
    #[serde(default)]
    pub next_token: Option<String>,
    #[serde(default)]
    pub max_results: Option<i32>,
}

/// `CreatedAt`: the ListServiceDeployments time filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedAt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServiceDeploymentsResponse {
    pub service_deployments: Vec<ServiceDeploymentBrief>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `ServiceDeploymentBrief`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentBrief {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_deployment_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_service_revision_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceDeploymentsRequest {
    pub service_deployment_arns: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceDeploymentsResponse {
    pub service_deployments: Vec<ServiceDeployment>,
    pub failures: Vec<Failure>,
}

/// `ServiceDeployment`. `lifecycleStage` may be `PRE_PRODUCTION_TRAFFIC_SHIFT`, which ECS sends
/// although the model's enum lacks it (clients keep it as an unknown value).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeployment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_deployment_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_service_revisions: Option<Vec<ServiceRevisionSummary>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_service_revision: Option<ServiceRevisionSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_hook_details: Option<Vec<DeploymentLifecycleHookDetail>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_configuration: Option<DeploymentConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_circuit_breaker: Option<ServiceDeploymentCircuitBreaker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<ServiceDeploymentAlarms>,
}

/// `ServiceRevisionSummary`: counts are boxed-less integers in the model, weights doubles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRevisionSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default)]
    pub requested_task_count: i32,
    #[serde(default)]
    pub running_task_count: i32,
    #[serde(default)]
    pub pending_task_count: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_test_traffic_weight: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_production_traffic_weight: Option<f64>,
}

/// `Rollback`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_revision_arn: Option<String>,
}

/// `ServiceDeploymentCircuitBreaker` (status TRIGGERED, MONITORING, MONITORING_COMPLETE,
/// DISABLED).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentCircuitBreaker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default)]
    pub failure_count: i32,
    #[serde(default)]
    pub threshold: i32,
}

/// `ServiceDeploymentAlarms`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentAlarms {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_alarm_names: Option<Vec<String>>,
}

/// `DeploymentLifecycleHookDetail`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentLifecycleHookDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_action: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceRevisionsRequest {
    pub service_revision_arns: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceRevisionsResponse {
    pub service_revisions: Vec<ServiceRevision>,
    pub failures: Vec<Failure>,
}

/// `ServiceRevision`: what one deployment deploys, immutable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRevision {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_revision_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancers: Option<Vec<LoadBalancer>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_registries: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_images: Option<Vec<ContainerImage>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard_duty_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_connect_configuration: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
}

/// `ContainerImage`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerImage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopServiceDeploymentRequest {
    pub service_deployment_arn: String,
    #[serde(default)]
    pub stop_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopServiceDeploymentResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_deployment_arn: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContinueServiceDeploymentRequest {
    pub service_deployment_arn: String,
    pub hook_id: String,
    #[serde(default)]
    pub action: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContinueServiceDeploymentResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_deployment_arn: Option<String>,
}
