//! Requests and responses of the service operations (CreateService, UpdateService,
//! DescribeServices, ListServices, DeleteService).

use serde::{Deserialize, Serialize};

use super::{
    CapacityProviderStrategyItem, DeploymentConfiguration, DeploymentController, Failure,
    LoadBalancer, NetworkConfiguration, Service, Tag,
};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateServiceRequest {
    #[serde(default)]
    pub cluster: Option<String>,
    pub service_name: String,
    #[serde(default)]
    pub task_definition: Option<String>,
    #[serde(default)]
    pub load_balancers: Option<Vec<LoadBalancer>>,
    #[serde(default)]
    pub service_registries: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub desired_count: Option<i32>,
    #[serde(default)]
    pub client_token: Option<String>,
    #[serde(default)]
    pub launch_type: Option<String>,
    #[serde(default)]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    #[serde(default)]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub deployment_configuration: Option<DeploymentConfiguration>,
    #[serde(default)]
    pub placement_constraints: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub placement_strategy: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub health_check_grace_period_seconds: Option<i32>,
    #[serde(default)]
    pub scheduling_strategy: Option<String>,
    #[serde(default)]
    pub deployment_controller: Option<DeploymentController>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(default, rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: Option<bool>,
    #[serde(default)]
    pub propagate_tags: Option<String>,
    #[serde(default)]
    pub enable_execute_command: Option<bool>,
    #[serde(default)]
    pub availability_zone_rebalancing: Option<String>,
    #[serde(default)]
    pub service_connect_configuration: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateServiceResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateServiceRequest {
    #[serde(default)]
    pub cluster: Option<String>,
    pub service: String,
    #[serde(default)]
    pub desired_count: Option<i32>,
    #[serde(default)]
    pub task_definition: Option<String>,
    #[serde(default)]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    #[serde(default)]
    pub deployment_configuration: Option<DeploymentConfiguration>,
    #[serde(default)]
    pub availability_zone_rebalancing: Option<String>,
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub placement_constraints: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub placement_strategy: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub force_new_deployment: Option<bool>,
    #[serde(default)]
    pub health_check_grace_period_seconds: Option<i32>,
    #[serde(default)]
    pub deployment_controller: Option<DeploymentController>,
    #[serde(default)]
    pub enable_execute_command: Option<bool>,
    #[serde(default, rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: Option<bool>,
    #[serde(default)]
    pub load_balancers: Option<Vec<LoadBalancer>>,
    #[serde(default)]
    pub propagate_tags: Option<String>,
    #[serde(default)]
    pub service_registries: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub service_connect_configuration: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateServiceResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServicesRequest {
    #[serde(default)]
    pub cluster: Option<String>,
    pub services: Vec<String>,
    #[serde(default)]
    pub include: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServicesResponse {
    pub services: Vec<Service>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesRequest {
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub next_token: Option<String>,
    #[serde(default)]
    pub max_results: Option<i32>,
    #[serde(default)]
    pub launch_type: Option<String>,
    #[serde(default)]
    pub scheduling_strategy: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesResponse {
    pub service_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteServiceRequest {
    #[serde(default)]
    pub cluster: Option<String>,
    pub service: String,
    #[serde(default)]
    pub force: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteServiceResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
}
