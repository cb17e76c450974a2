//! The JSON report against docs/report.schema.json.

use crate::harness::{Env, LOG_GROUP};

fn schema() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/report.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("schema file"))
        .expect("schema is JSON")
}

pub(crate) fn assert_valid_report(report: &serde_json::Value) {
    let validator = jsonschema::validator_for(&schema()).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match the schema: {errors:#?}\n{report:#}"
    );
}

#[test]
fn the_schema_rejects_a_report_without_its_required_fields() {
    let validator = jsonschema::validator_for(&schema()).expect("schema compiles");
    assert!(!validator.is_valid(&serde_json::json!({"event": "report", "result": "succeeded"})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_report_matches_the_schema() {
    let env = Env::start().await;
    env.push_image("tool:1", &[("README", "tool image")]);
    env.create_log_group(LOG_GROUP).await;
    env.register_tool("tool:1", LOG_GROUP, 256).await;
    let outcome = env
        .shipmate(&[
            "run",
            "--cluster",
            "prod",
            "--task-definition",
            "tool",
            "--output",
            "json",
            "--",
            "sh",
            "-c",
            "echo hi",
        ])
        .await;
    assert_eq!(outcome.code, Some(0));
    let report = outcome.report();
    assert_eq!(report["result"], "succeeded");
    assert_eq!(report["task"]["exit_code"], 0);
    assert_eq!(report["task"]["log_lines"], 1);
    assert_valid_report(&report);
    let events = outcome.json_lines();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "log_line" && e["message"] == "hi")
    );
}
