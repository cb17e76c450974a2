//! CreateCluster, DescribeClusters, ListClusters, DeleteCluster.

use shipmate_local_api::ecs::*;
use shipmate_local_protocol::AwsError;

use super::pagination::paginate;
use super::tags::validate_tags;
use super::{Ecs, EcsState, arns, check_name, cluster_not_found, invalid_parameter};

impl Ecs {
    pub(crate) fn create_cluster(
        &self,
        region: &str,
        input: CreateClusterRequest,
    ) -> Result<CreateClusterResponse, AwsError> {
        let name = input.cluster_name.unwrap_or_else(|| "default".to_owned());
        check_name("Cluster", &name)?;
        let tags = input.tags.unwrap_or_default();
        validate_tags(&tags)?;
        let mut state = self.state();
        let arn = arns::cluster(region, &name);
        let active = state
            .clusters
            .get(&name)
            .is_some_and(|c| c.status.as_deref() == Some("ACTIVE"));
        if !active {
            // A new cluster, or an INACTIVE one coming back.
            state.clusters.insert(
                name.clone(),
                Cluster {
                    cluster_arn: Some(arn.clone()),
                    cluster_name: Some(name.clone()),
                    status: Some("ACTIVE".into()),
                    settings: Some(input.settings.unwrap_or_else(|| {
                        vec![ClusterSetting {
                            name: Some("containerInsights".into()),
                            value: Some("disabled".into()),
                        }]
                    })),
                    capacity_providers: Some(input.capacity_providers.unwrap_or_default()),
                    default_capacity_provider_strategy: Some(
                        input.default_capacity_provider_strategy.unwrap_or_default(),
                    ),
                    configuration: input.configuration,
                    ..Cluster::default()
                },
            );
            if tags.is_empty() {
                state.tags.remove(&arn);
            } else {
                state.tags.insert(arn.clone(), tags);
            }
        }
        let cluster = describe(&state, &name, true).expect("the cluster was just created");
        drop(state);
        self.changed();
        Ok(CreateClusterResponse { cluster })
    }

    pub(crate) fn describe_clusters(
        &self,
        region: &str,
        input: DescribeClustersRequest,
    ) -> Result<DescribeClustersResponse, AwsError> {
        let references = input.clusters.unwrap_or_else(|| vec!["default".to_owned()]);
        if references.len() > 100 {
            return Err(invalid_parameter(
                "DescribeClusters accepts at most 100 clusters.",
            ));
        }
        let with_tags = includes(&input.include, "TAGS");
        let with_statistics = includes(&input.include, "STATISTICS");
        let state = self.state();
        let mut output = DescribeClustersResponse::default();
        for reference in references {
            let name = arns::cluster_name(Some(&reference));
            match describe(&state, &name, with_tags) {
                Some(mut cluster) => {
                    if with_statistics {
                        cluster.statistics = Some(statistics(&state, &cluster));
                    }
                    output.clusters.push(cluster);
                }
                None => output.failures.push(Failure {
                    arn: Some(if reference.starts_with("arn:") {
                        reference
                    } else {
                        arns::cluster(region, &name)
                    }),
                    reason: Some("MISSING".into()),
                    detail: None,
                }),
            }
        }
        Ok(output)
    }

    pub(crate) fn list_clusters(
        &self,
        input: ListClustersRequest,
    ) -> Result<ListClustersResponse, AwsError> {
        let arns: Vec<String> = self
            .state()
            .clusters
            .values()
            .filter(|c| c.status.as_deref() == Some("ACTIVE"))
            .filter_map(|c| c.cluster_arn.clone())
            .collect();
        let (cluster_arns, next_token) =
            paginate(arns, input.next_token.as_deref(), input.max_results)?;
        Ok(ListClustersResponse {
            cluster_arns,
            next_token,
        })
    }

    pub(crate) fn delete_cluster(
        &self,
        input: DeleteClusterRequest,
    ) -> Result<DeleteClusterResponse, AwsError> {
        let reference = input
            .cluster
            .ok_or_else(|| invalid_parameter("cluster is required."))?;
        let name = arns::cluster_name(Some(&reference));
        let mut state = self.state();
        let cluster = state
            .clusters
            .get(&name)
            .filter(|c| c.status.as_deref() == Some("ACTIVE"))
            .ok_or_else(cluster_not_found)?;
        let arn = cluster.cluster_arn.clone();
        let busy = state
            .tasks
            .values()
            .any(|t| t.task.cluster_arn == arn && !t.is_stopped());
        if busy {
            return Err(AwsError::client(
                "ClusterContainsTasksException",
                "The Cluster cannot be deleted while Tasks are active.",
            ));
        }
        let services = state
            .services
            .values()
            .any(|s| Some(&s.cluster_arn) == arn.as_ref() && s.status != "INACTIVE");
        if services {
            return Err(AwsError::client(
                "ClusterContainsServicesException",
                "The Cluster cannot be deleted while Services are active.",
            ));
        }
        if let Some(cluster) = state.clusters.get_mut(&name) {
            cluster.status = Some("INACTIVE".into());
        }
        let cluster = describe(&state, &name, false).expect("the cluster exists");
        drop(state);
        self.changed();
        Ok(DeleteClusterResponse { cluster })
    }
}

/// The `Cluster` shape with its live counts.
pub(super) fn describe(state: &EcsState, name: &str, with_tags: bool) -> Option<Cluster> {
    let mut cluster = state.clusters.get(name)?.clone();
    let arn = cluster.cluster_arn.clone();
    let tasks = state.tasks.values().filter(|t| {
        t.task.cluster_arn == arn && t.task.desired_status.as_deref() == Some("RUNNING")
    });
    for record in tasks {
        match record.last_status() {
            Some(super::lifecycle::TaskStatus::Running) => cluster.running_tasks_count += 1,
            Some(status) if status.is_starting() => cluster.pending_tasks_count += 1,
            _ => {}
        }
    }
    cluster.active_services_count = state
        .services
        .values()
        .filter(|s| Some(&s.cluster_arn) == arn.as_ref() && s.status == "ACTIVE")
        .count() as i32;
    if with_tags {
        cluster.tags = arn.and_then(|arn| state.tags.get(&arn).cloned());
    }
    Some(cluster)
}

/// `include: [STATISTICS]`: task and service counts by launch type, as ECS reports them (values
/// are strings). Tasks and services without a launch type count as EC2, as on ECS.
fn statistics(state: &EcsState, cluster: &Cluster) -> Vec<KeyValuePair> {
    let arn = cluster.cluster_arn.as_deref();
    let fargate = |launch_type: Option<&str>| launch_type == Some("FARGATE");
    let mut counts = [0usize; 8];
    for task in state.tasks.values().map(|record| &record.task) {
        if task.cluster_arn.as_deref() != arn || task.desired_status.as_deref() != Some("RUNNING") {
            continue;
        }
        let slot = usize::from(fargate(task.launch_type.as_deref()));
        match task.last_status.as_deref() {
            Some("RUNNING") => counts[slot] += 1,
            Some("STOPPED") | None => {}
            Some(_) => counts[2 + slot] += 1,
        }
    }
    for service in state
        .services
        .values()
        .filter(|s| Some(s.cluster_arn.as_str()) == arn)
    {
        let slot = usize::from(fargate(service.spec.launch_type.as_deref()));
        match service.status.as_str() {
            "ACTIVE" => counts[4 + slot] += 1,
            "DRAINING" => counts[6 + slot] += 1,
            _ => {}
        }
    }
    let names = [
        "runningEC2TasksCount",
        "runningFargateTasksCount",
        "pendingEC2TasksCount",
        "pendingFargateTasksCount",
        "activeEC2ServiceCount",
        "activeFargateServiceCount",
        "drainingEC2ServiceCount",
        "drainingFargateServiceCount",
    ];
    names
        .iter()
        .zip(counts)
        .map(|(name, count)| KeyValuePair {
            name: Some((*name).to_owned()),
            value: Some(count.to_string()),
        })
        .collect()
}

/// The ACTIVE cluster a request names (name, ARN or omitted for `default`).
pub(super) fn active_cluster<'a>(
    state: &'a EcsState,
    reference: Option<&str>,
) -> Result<&'a Cluster, AwsError> {
    state
        .clusters
        .get(&arns::cluster_name(reference))
        .filter(|c| c.status.as_deref() == Some("ACTIVE"))
        .ok_or_else(cluster_not_found)
}

pub(super) fn includes(include: &Option<Vec<String>>, what: &str) -> bool {
    include.iter().flatten().any(|i| i == what)
}
