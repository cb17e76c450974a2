//! Fuzzes the request decoder of every operation through the engine's `handle`: arbitrary bytes,
//! arbitrary JSON, and JSON built from botocore's input shapes with members of random (often
//! wrong) types. Every answer must be a JSON object or an AWS error (4xx/5xx, bare `__type`
//! code, a message), within a deadline: never a panic, never a hang.
//!
//! Set `PROPTEST_CASES` to fuzz longer than the default run.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value};
use shipmate_local_engine::{Engine, EngineConfig, Request};
use shipmate_local_protocol::{AwsError, Target};

const ANSWER_DEADLINE: Duration = Duration::from_secs(20);
/// Nesting beyond this depth is cut short: the ECS input shapes are recursive in places.
const MAX_DEPTH: u32 = 5;

#[derive(Debug, Deserialize)]
struct Model {
    operations: Vec<Operation>,
    shapes: BTreeMap<String, Shape>,
}

#[derive(Debug, Deserialize)]
struct Operation {
    target: String,
    input: String,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Shape {
    Structure {
        members: BTreeMap<String, String>,
        required: Vec<String>,
    },
    List {
        member: String,
    },
    Map {
        key: String,
        value: String,
    },
    String {
        #[serde(default)]
        r#enum: Vec<String>,
    },
    Integer,
    Long,
    Boolean,
    Double,
    Float,
    Timestamp,
    Blob,
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        serde_json::from_str(include_str!("../fixtures/input-shapes.json"))
            .expect("fixtures/input-shapes.json matches its generator")
    })
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    engine: Engine,
}

/// One engine for every case: state left by earlier inputs (a cluster a fuzzed CreateCluster made)
/// lets later inputs reach deeper than an empty engine would.
fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        // The harness lives as long as the test binary (a static is never dropped): its images
        // go under cargo's scratch directory rather than a temporary one nobody would remove.
        let state = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("decoder-fuzz");
        let _ = std::fs::remove_dir_all(&state);
        let engine = runtime
            .block_on(Engine::start(EngineConfig {
                state_dir: Some(state),
                ..EngineConfig::default()
            }))
            .expect("engine starts");
        Harness { runtime, engine }
    })
}

/// Sends `body` to `target` and checks the answer is well formed.
fn answer_is_well_formed(target: &str, body: &[u8]) -> Result<(), TestCaseError> {
    let target = Target::parse(target).expect("fixture targets are valid");
    let harness = harness();
    let request = Request {
        target: &target,
        region: "us-east-1",
        body,
    };
    let answer = harness.runtime.block_on(async {
        tokio::time::timeout(ANSWER_DEADLINE, harness.engine.handle(request)).await
    });
    let body_text = String::from_utf8_lossy(body);
    match answer {
        Err(_) => Err(TestCaseError::fail(format!(
            "{target} did not answer within {ANSWER_DEADLINE:?} for {body_text}"
        ))),
        Ok(Ok(response)) => {
            let value: Value = serde_json::from_slice(&response).map_err(|error| {
                TestCaseError::fail(format!("{target}: response is not JSON ({error})"))
            })?;
            prop_assert!(
                value.is_object(),
                "{target}: response is not an object: {value}"
            );
            Ok(())
        }
        Ok(Err(error)) => error_is_well_formed(&target, &error, &body_text),
    }
}

fn error_is_well_formed(
    target: &Target,
    error: &AwsError,
    body: &str,
) -> Result<(), TestCaseError> {
    prop_assert!(
        (400..600).contains(&error.status),
        "{target}: status {} for {body}",
        error.status
    );
    prop_assert!(
        !error.code.is_empty() && error.code.chars().all(|c| c.is_ascii_alphanumeric()),
        "{target}: `{}` is not a bare error code",
        error.code
    );
    let envelope: Value = serde_json::from_slice(&error.body()).expect("error body is JSON");
    prop_assert_eq!(envelope["__type"].as_str(), Some(error.code.as_str()));
    prop_assert!(envelope["message"].is_string());
    Ok(())
}

fn targets() -> Vec<String> {
    model()
        .operations
        .iter()
        .map(|operation| operation.target.clone())
        .collect()
}

/// Any JSON value, nested a little.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A value for `shape`: usually of the modelled type, sometimes anything at all.
fn shaped(shape_key: &str, depth: u32) -> BoxedStrategy<Value> {
    let typed = typed(shape_key, depth);
    prop_oneof![8 => typed, 1 => any_json()].boxed()
}

fn typed(shape_key: &str, depth: u32) -> BoxedStrategy<Value> {
    let shape = &model().shapes[shape_key];
    match shape {
        Shape::Structure { .. } | Shape::List { .. } | Shape::Map { .. } if depth >= MAX_DEPTH => {
            Just(Value::Object(Map::new())).boxed()
        }
        Shape::Structure { members, required } => {
            let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = members
                .iter()
                .map(|(name, member)| {
                    // Required members are usually present, optional ones usually absent.
                    let present = if required.contains(name) { 0.9 } else { 0.3 };
                    let name = name.clone();
                    let value = shaped(member, depth + 1).prop_map(move |v| (name.clone(), v));
                    proptest::option::weighted(present, value).boxed()
                })
                .collect();
            fields
                .prop_map(|fields| Value::Object(fields.into_iter().flatten().collect()))
                .boxed()
        }
        Shape::List { member } => proptest::collection::vec(shaped(member, depth + 1), 0..3)
            .prop_map(Value::Array)
            .boxed(),
        Shape::Map { key, value } => proptest::collection::btree_map(
            typed(key, depth + 1).prop_map(|key| key.as_str().unwrap_or("k").to_owned()),
            shaped(value, depth + 1),
            0..3,
        )
        .prop_map(|map| Value::Object(map.into_iter().collect()))
        .boxed(),
        Shape::String { r#enum } if !r#enum.is_empty() => prop_oneof![
            4 => proptest::sample::select(r#enum.clone()).prop_map(Value::from),
            1 => ".{0,12}".prop_map(Value::from),
        ]
        .boxed(),
        Shape::String { .. } => prop_oneof![
            Just(Value::from("default")),
            "[a-z0-9:/_-]{1,20}".prop_map(Value::from),
            ".{0,40}".prop_map(Value::from),
        ]
        .boxed(),
        Shape::Integer | Shape::Long => prop_oneof![
            (-2i64..200).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
        ]
        .boxed(),
        Shape::Boolean => any::<bool>().prop_map(Value::from).boxed(),
        Shape::Double | Shape::Float | Shape::Timestamp => prop_oneof![
            (0.0f64..5e12).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
        ]
        .boxed(),
        Shape::Blob => "[A-Za-z0-9+/]{0,16}".prop_map(Value::from).boxed(),
    }
}

/// `(target, body)` for any operation, the body built from its input shape.
fn shaped_request() -> impl Strategy<Value = (String, Value)> {
    let per_operation: Vec<BoxedStrategy<(String, Value)>> = model()
        .operations
        .iter()
        .map(|operation| {
            let target = operation.target.clone();
            typed(&operation.input, 0)
                .prop_map(move |body| (target.clone(), body))
                .boxed()
        })
        .collect();
    proptest::strategy::Union::new(per_operation)
}

// 256 cases each by default; `PROPTEST_CASES` overrides (ProptestConfig::default reads it).
proptest! {
    #[test]
    fn arbitrary_bytes_get_an_answer(
        target in proptest::sample::select(targets()),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        answer_is_well_formed(&target, &body)?;
    }

    #[test]
    fn arbitrary_json_gets_an_answer(
        target in proptest::sample::select(targets()),
        body in any_json(),
    ) {
        answer_is_well_formed(&target, body.to_string().as_bytes())?;
    }

    #[test]
    fn model_shaped_json_with_random_member_types_gets_an_answer(
        (target, body) in shaped_request(),
    ) {
        answer_is_well_formed(&target, body.to_string().as_bytes())?;
    }
}

#[test]
fn the_fixture_covers_every_supported_operation() {
    let operations = targets();
    assert_eq!(operations.len(), 34, "{operations:?}");
    for operation in &operations {
        let target = Target::parse(operation).expect("valid target");
        assert!(!target.operation.is_empty());
    }
    for (key, shape) in &model().shapes {
        let references: Vec<&String> = match shape {
            Shape::Structure { members, .. } => members.values().collect(),
            Shape::List { member } => vec![member],
            Shape::Map { key, value } => vec![key, value],
            _ => vec![],
        };
        for reference in references {
            assert!(
                model().shapes.contains_key(reference),
                "{key} refers to missing {reference}"
            );
        }
    }
}
