//! `deploymentConfiguration` and `loadBalancers` of CreateService and UpdateService: validation
//! (as ECS documents it; where it does not, the messages are this endpoint's), defaults, and the
//! shape echoed back.

use shipmate_local_api::ecs::{
    CanaryConfiguration, DeploymentCircuitBreaker, DeploymentConfiguration as Shape,
    DeploymentLifecycleHook, DeploymentLifecycleHookTimeoutConfiguration, LinearConfiguration,
    LoadBalancer, TaskDefinition, ThresholdConfiguration,
};
use shipmate_local_protocol::AwsError;

use super::model::{
    CanarySteps, CircuitBreaker, Controller, DeploymentConfiguration, LinearSteps, PauseHook,
    Strategy, Threshold,
};
use super::records::{HookAction, Stage};
use crate::ecs::invalid_parameter;

/// Longest bake (one stage may last 24 h in ECS).
const MAX_BAKE_MINUTES: i32 = 1440;
/// ECS allows 10 PAUSE hooks per service.
const MAX_PAUSE_HOOKS: usize = 10;

/// The deployment settings from the request, over the current ones for members the request
/// leaves out (UpdateService), validated for `controller`.
pub(super) fn deployment_configuration(
    shape: Option<&Shape>,
    current: Option<&DeploymentConfiguration>,
    controller: Controller,
) -> Result<DeploymentConfiguration, AwsError> {
    let mut configuration = current.cloned().unwrap_or_default();
    let Some(shape) = shape else {
        return Ok(configuration);
    };
    if let Some(maximum) = shape.maximum_percent {
        configuration.maximum_percent = u32::try_from(maximum)
            .ok()
            .filter(|m| *m >= 100)
            .ok_or_else(|| invalid_parameter("maximumPercent must be at least 100."))?;
    }
    if let Some(minimum) = shape.minimum_healthy_percent {
        configuration.minimum_healthy_percent = u32::try_from(minimum)
            .ok()
            .filter(|m| *m <= 100)
            .ok_or_else(|| {
            invalid_parameter("minimumHealthyPercent must be between 0 and 100.")
        })?;
    }
    if let Some(breaker) = &shape.deployment_circuit_breaker {
        configuration.circuit_breaker = circuit_breaker(breaker)?;
    }
    if controller != Controller::Ecs
        && (shape.strategy.is_some()
            || shape.alarms.is_some()
            || shape.lifecycle_hooks.is_some()
            || shape.bake_time_in_minutes.is_some())
    {
        return Err(invalid_parameter(format!(
            "strategy, bakeTimeInMinutes, alarms and lifecycleHooks can only be used with the ECS deployment controller, not {}.",
            controller.as_str()
        )));
    }
    if let Some(strategy) = &shape.strategy {
        configuration.strategy = Strategy::parse(strategy).ok_or_else(|| {
            invalid_parameter(format!(
                "Invalid strategy {strategy}: one of ROLLING, BLUE_GREEN, LINEAR, CANARY."
            ))
        })?;
    }
    if let Some(minutes) = shape.bake_time_in_minutes {
        configuration.bake_time_minutes = Some(bake_minutes("bakeTimeInMinutes", minutes)?);
    }
    if let Some(linear) = &shape.linear_configuration {
        configuration.linear = Some(linear_steps(linear)?);
    }
    if let Some(canary) = &shape.canary_configuration {
        configuration.canary = Some(canary_steps(canary)?);
    }
    if let Some(hooks) = &shape.lifecycle_hooks {
        configuration.pause_hooks = hooks.iter().map(pause_hook).collect::<Result<_, _>>()?;
    }
    if shape.alarms.is_some() {
        configuration.alarms = shape.alarms.clone();
    }
    if shape.early_success_criteria.is_some() {
        configuration.early_success_criteria = shape.early_success_criteria.clone();
    }
    check_strategy(&mut configuration)?;
    Ok(configuration)
}

fn circuit_breaker(breaker: &DeploymentCircuitBreaker) -> Result<CircuitBreaker, AwsError> {
    let threshold = match &breaker.threshold_configuration {
        None => Threshold::default(),
        Some(ThresholdConfiguration {
            threshold_type,
            value,
        }) => {
            let value = u32::try_from(*value)
                .map_err(|_| invalid_parameter("threshold value must be positive."))?;
            match threshold_type.as_str() {
                "COUNT" => Threshold::Count(value),
                "BOUNDED_PERCENT" | "UNBOUNDED_PERCENT" if !(1..=100).contains(&value) => {
                    return Err(invalid_parameter(
                        "percent threshold value must be between 1 and 100.",
                    ));
                }
                "BOUNDED_PERCENT" => Threshold::BoundedPercent(value),
                "UNBOUNDED_PERCENT" => Threshold::UnboundedPercent(value),
                other => {
                    return Err(invalid_parameter(format!(
                        "Unknown threshold type {other}."
                    )));
                }
            }
        }
    };
    Ok(CircuitBreaker {
        enable: breaker.enable,
        rollback: breaker.rollback,
        reset_on_healthy_task: breaker.reset_on_healthy_task.unwrap_or(true),
        threshold,
    })
}

fn bake_minutes(member: &str, minutes: i32) -> Result<u32, AwsError> {
    if (0..=MAX_BAKE_MINUTES).contains(&minutes) {
        Ok(minutes as u32)
    } else {
        Err(invalid_parameter(format!(
            "{member} must be between 0 and {MAX_BAKE_MINUTES}."
        )))
    }
}

/// A percentage that must be a multiple of 0.1 within `range`.
fn tenths(member: &str, value: f64, low: f64, high: f64) -> Result<f64, AwsError> {
    let tenths = value * 10.0;
    if value.is_finite() && (low..=high).contains(&value) && (tenths - tenths.round()).abs() < 1e-6
    {
        Ok(value)
    } else {
        Err(invalid_parameter(format!(
            "{member} must be a multiple of 0.1 from {low:.1} to {high:.1}."
        )))
    }
}

fn linear_steps(shape: &LinearConfiguration) -> Result<LinearSteps, AwsError> {
    let defaults = LinearSteps::default();
    Ok(LinearSteps {
        step_percent: match shape.step_percent {
            Some(value) => tenths("linearConfiguration.stepPercent", value, 3.0, 100.0)?,
            None => defaults.step_percent,
        },
        step_bake_minutes: match shape.step_bake_time_in_minutes {
            Some(minutes) => bake_minutes("linearConfiguration.stepBakeTimeInMinutes", minutes)?,
            None => defaults.step_bake_minutes,
        },
    })
}

fn canary_steps(shape: &CanaryConfiguration) -> Result<CanarySteps, AwsError> {
    let defaults = CanarySteps::default();
    Ok(CanarySteps {
        canary_percent: match shape.canary_percent {
            Some(value) => tenths("canaryConfiguration.canaryPercent", value, 0.1, 100.0)?,
            None => defaults.canary_percent,
        },
        canary_bake_minutes: match shape.canary_bake_time_in_minutes {
            Some(minutes) => bake_minutes("canaryConfiguration.canaryBakeTimeInMinutes", minutes)?,
            None => defaults.canary_bake_minutes,
        },
    })
}

fn pause_hook(shape: &DeploymentLifecycleHook) -> Result<PauseHook, AwsError> {
    match shape.target_type.as_deref().unwrap_or("AWS_LAMBDA") {
        "PAUSE" => {}
        "AWS_LAMBDA" => {
            return Err(invalid_parameter(
                "AWS_LAMBDA lifecycle hooks are not supported by shipmate local (it runs no Lambda functions); use PAUSE hooks.",
            ));
        }
        other => {
            return Err(invalid_parameter(format!(
                "Invalid lifecycle hook targetType {other}: one of AWS_LAMBDA, PAUSE."
            )));
        }
    }
    let names = shape.lifecycle_stages.as_deref().unwrap_or_default();
    if names.is_empty() {
        return Err(invalid_parameter(
            "lifecycleStages must name at least one lifecycle stage.",
        ));
    }
    let mut stages = Vec::new();
    for name in names {
        let stage = Stage::parse(name)
            .filter(|stage| stage.takes_hooks())
            .ok_or_else(|| invalid_parameter(format!("Invalid lifecycle stage {name}.")))?;
        if matches!(
            stage,
            Stage::TestTrafficShift | Stage::ProductionTrafficShift
        ) {
            return Err(invalid_parameter(format!(
                "PAUSE lifecycle hooks are not supported at {name}: it also runs during a rollback."
            )));
        }
        if !stages.contains(&stage) {
            stages.push(stage);
        }
    }
    let timeout = shape.timeout_configuration.clone().unwrap_or_default();
    let timeout_minutes = match timeout.timeout_in_minutes {
        None => 1440,
        Some(minutes @ 1..=20160) => minutes as u32,
        Some(_) => {
            return Err(invalid_parameter(
                "timeoutConfiguration.timeoutInMinutes must be between 1 and 20160.",
            ));
        }
    };
    let timeout_action = match timeout.action.as_deref() {
        None => HookAction::Rollback,
        Some(action) => HookAction::parse(action).ok_or_else(|| {
            invalid_parameter(format!(
                "Invalid timeout action {action}: one of CONTINUE, ROLLBACK."
            ))
        })?,
    };
    Ok(PauseHook {
        stages,
        timeout_minutes,
        timeout_action,
        details: shape.hook_details.clone(),
    })
}

/// What the strategy requires of the rest of the configuration; fills in defaults.
fn check_strategy(configuration: &mut DeploymentConfiguration) -> Result<(), AwsError> {
    let strategy = configuration.strategy;
    if configuration.linear.is_some() && strategy != Strategy::Linear {
        return Err(invalid_parameter(
            "linearConfiguration is only valid with the LINEAR deployment strategy.",
        ));
    }
    if configuration.canary.is_some() && strategy != Strategy::Canary {
        return Err(invalid_parameter(
            "canaryConfiguration is only valid with the CANARY deployment strategy.",
        ));
    }
    match strategy {
        Strategy::BlueGreen if configuration.bake_time_minutes.is_none() => {
            return Err(invalid_parameter(
                "bakeTimeInMinutes must be specified for the BLUE_GREEN deployment strategy.",
            ));
        }
        Strategy::Linear => {
            configuration
                .linear
                .get_or_insert_with(LinearSteps::default);
        }
        Strategy::Canary => {
            configuration
                .canary
                .get_or_insert_with(CanarySteps::default);
        }
        _ => {}
    }
    if strategy == Strategy::Rolling {
        // The only stages a rolling deployment has (reference §2.1: accepted here, unverified).
        let allowed = [
            Stage::ReconcileService,
            Stage::PreScaleUp,
            Stage::PostScaleUp,
        ];
        if let Some(stage) = configuration
            .pause_hooks
            .iter()
            .flat_map(|hook| &hook.stages)
            .find(|stage| !allowed.contains(stage))
        {
            return Err(invalid_parameter(format!(
                "A ROLLING deployment has no {} stage; PAUSE hooks of ROLLING deployments may use RECONCILE_SERVICE, PRE_SCALE_UP and POST_SCALE_UP.",
                stage.as_str()
            )));
        }
    } else if configuration.early_success_criteria.is_some() {
        return Err(invalid_parameter(
            "earlySuccessCriteria is only valid with the ROLLING deployment strategy.",
        ));
    }
    let healthy_percent = configuration
        .early_success_criteria
        .as_ref()
        .and_then(|criteria| criteria["healthyPercent"].as_i64());
    if let Some(percent) = healthy_percent
        && !(i64::from(configuration.minimum_healthy_percent)..=100).contains(&percent)
    {
        return Err(invalid_parameter(format!(
            "earlySuccessCriteria.healthyPercent must be between minimumHealthyPercent ({}) and 100.",
            configuration.minimum_healthy_percent
        )));
    }
    if configuration.pause_hooks.len() > MAX_PAUSE_HOOKS {
        return Err(invalid_parameter(format!(
            "A service can have at most {MAX_PAUSE_HOOKS} PAUSE lifecycle hooks."
        )));
    }
    Ok(())
}

/// The service's load balancers against its task definition and deployment strategy: each
/// names a container and port the task definition has; blue/green-family strategies behind an
/// ELB need `advancedConfiguration`; LINEAR and CANARY need a load balancer or Service Connect.
pub(super) fn check_traffic(
    configuration: &DeploymentConfiguration,
    load_balancers: Option<&[LoadBalancer]>,
    service_connect: Option<&serde_json::Value>,
    definition: &TaskDefinition,
) -> Result<(), AwsError> {
    let load_balancers = load_balancers.unwrap_or_default();
    let strategy = configuration.strategy;
    for load_balancer in load_balancers {
        if load_balancer.target_group_arn.is_none() && load_balancer.load_balancer_name.is_none() {
            return Err(invalid_parameter(
                "A load balancer needs a targetGroupArn (or a loadBalancerName).",
            ));
        }
        let (Some(name), Some(port)) = (
            load_balancer.container_name.as_deref(),
            load_balancer.container_port,
        ) else {
            return Err(invalid_parameter(
                "A load balancer needs a containerName and a containerPort.",
            ));
        };
        let container = definition
            .container_definitions
            .iter()
            .flatten()
            .find(|c| c.name.as_deref() == Some(name))
            .ok_or_else(|| {
                invalid_parameter(format!(
                    "The container {name} does not exist in the task definition."
                ))
            })?;
        let exposes = container
            .port_mappings
            .iter()
            .flatten()
            .any(|mapping| mapping.container_port == Some(port));
        if !exposes {
            return Err(invalid_parameter(format!(
                "The container {name} did not have a container port {port} defined."
            )));
        }
        if strategy != Strategy::Rolling && load_balancer.target_group_arn.is_some() {
            let advanced = load_balancer.advanced_configuration.as_ref();
            let complete = advanced.is_some_and(|a| {
                a.alternate_target_group_arn.is_some()
                    && a.production_listener_rule.is_some()
                    && a.role_arn.is_some()
            });
            if !complete {
                return Err(invalid_parameter(format!(
                    "The {} deployment strategy with a load balancer needs advancedConfiguration with alternateTargetGroupArn, productionListenerRule and roleArn.",
                    strategy.as_str()
                )));
            }
        }
    }
    let connected = service_connect.is_some_and(|sc| sc["enabled"] == serde_json::json!(true));
    if matches!(strategy, Strategy::Linear | Strategy::Canary)
        && load_balancers.is_empty()
        && !connected
    {
        return Err(invalid_parameter(format!(
            "The {} deployment strategy needs a load balancer (loadBalancers) or Service Connect (serviceConnectConfiguration) to shift traffic.",
            strategy.as_str()
        )));
    }
    Ok(())
}

/// The `deploymentConfiguration` shape of the settings.
pub(super) fn configuration_shape(configuration: &DeploymentConfiguration) -> Shape {
    let breaker = &configuration.circuit_breaker;
    let (threshold_type, value) = match breaker.threshold {
        Threshold::Count(value) => ("COUNT", value),
        Threshold::BoundedPercent(value) => ("BOUNDED_PERCENT", value),
        Threshold::UnboundedPercent(value) => ("UNBOUNDED_PERCENT", value),
    };
    let hooks = configuration
        .pause_hooks
        .iter()
        .map(|hook| DeploymentLifecycleHook {
            target_type: Some("PAUSE".into()),
            lifecycle_stages: Some(hook.stages.iter().map(|s| s.as_str().to_owned()).collect()),
            timeout_configuration: Some(DeploymentLifecycleHookTimeoutConfiguration {
                timeout_in_minutes: Some(hook.timeout_minutes as i32),
                action: Some(hook.timeout_action.as_str().to_owned()),
            }),
            hook_details: hook.details.clone(),
            ..Default::default()
        })
        .collect::<Vec<_>>();
    Shape {
        deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
            enable: breaker.enable,
            rollback: breaker.rollback,
            reset_on_healthy_task: Some(breaker.reset_on_healthy_task),
            threshold_configuration: Some(ThresholdConfiguration {
                threshold_type: threshold_type.into(),
                value: value as i32,
            }),
        }),
        maximum_percent: Some(configuration.maximum_percent as i32),
        minimum_healthy_percent: Some(configuration.minimum_healthy_percent as i32),
        alarms: configuration.alarms.clone(),
        strategy: Some(configuration.strategy.as_str().to_owned()),
        bake_time_in_minutes: configuration.bake_time_minutes.map(|m| m as i32),
        lifecycle_hooks: (!hooks.is_empty()).then_some(hooks),
        linear_configuration: configuration.linear.map(|linear| LinearConfiguration {
            step_percent: Some(linear.step_percent),
            step_bake_time_in_minutes: Some(linear.step_bake_minutes as i32),
        }),
        canary_configuration: configuration.canary.map(|canary| CanaryConfiguration {
            canary_percent: Some(canary.canary_percent),
            canary_bake_time_in_minutes: Some(canary.canary_bake_minutes as i32),
        }),
        early_success_criteria: configuration.early_success_criteria.clone(),
    }
}
