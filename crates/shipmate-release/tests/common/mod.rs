//! What the scripted-ECS tests share: a release of `web:…` to service `web` in cluster `prod`
//! with quiet defaults (10-minute timeouts, no rollback, no post-deploy, no log quiet period);
//! each test changes what it is about with struct update syntax.

use std::time::Duration;

use shipmate_release::config::{Gate, OnCancel, WaitUntil};
use shipmate_release::release::{DeployRequest, LockSettings, MigrationShape};

pub(crate) fn deploy_request(image: &str, migrate: bool) -> DeployRequest {
    DeployRequest {
        cluster: "prod".to_owned(),
        services: vec!["web".to_owned()],
        image: image.to_owned(),
        container: None,
        migrate: migrate.then(|| vec!["migrate".to_owned()]),
        migrate_cpu: None,
        migrate_memory: None,
        migrate_shape: MigrationShape::default(),
        migrate_timeout: Duration::from_secs(600),
        launch_type: None,
        allow_spot: false,
        deploy_timeout: Duration::from_secs(600),
        poll_interval: Duration::from_secs(1),
        rollback_on_failure: false,
        wait_until: WaitUntil::Complete,
        gate: Gate::BeforeDeploy,
        migrate_only: false,
        preset: None,
        preset_options: shipmate_release::preset::PresetOptions::default(),
        lock: LockSettings {
            key: None,
            timeout: Duration::from_secs(60),
            lease: Duration::from_secs(300),
            by: "test".to_owned(),
        },
        on_cancel: OnCancel::Stop,
        post_deploy: None,
        post_deploy_timeout: Duration::from_secs(60),
        log_quiet_period: Duration::ZERO,
        max_failed_tasks: None,
        waves: Vec::new(),
    }
}
