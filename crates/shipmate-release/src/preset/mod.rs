//! Migration presets: shipmate composes the migration task's command itself and reads back,
//! from the task's log stream, the plan it ran and its verdict. A preset is a program run inside
//! the release's image in three phases — `plan` (report only), `expand` (check the plan against
//! the code still serving and apply the part that runs before the deployment) and `contract`
//! (apply what was held back, once the deployment is complete) — that reports through framed
//! lines ([`FRAME_PREFIX`]). The release flow only knows phases and frames, so another
//! framework (Rails, Alembic) is another variant here, not another flow.

use serde::{Deserialize, Serialize};

/// The prefix of a frame line in the task's log.
pub const FRAME_PREFIX: &str = "SHIPMATE1 ";

/// The exit code a preset program uses when it refused the plan (nothing was applied).
pub const REFUSED_EXIT: i32 = 3;

/// RunTask caps its overrides at 8 KiB; the command is most of them.
pub const MAX_COMMAND_BYTES: usize = 7_000;

/// The Django program (`python -c`): Django's own migration loader and executor.
const DJANGO_PROGRAM: &str = include_str!("django.py");

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// `manage`: how Django is invoked in the image (`python manage.py`): the interpreter and
    /// the path of manage.py.
    Django { manage: Vec<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Plan,
    Expand,
    Contract,
}

impl Phase {
    fn as_arg(self) -> &'static str {
        match self {
            Phase::Plan => "plan",
            Phase::Expand => "expand",
            Phase::Contract => "contract",
        }
    }
}

/// How a preset treats what it cannot judge, and whether unsafe operations are let through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PresetOptions {
    /// RunSQL and RunPython refuse the release (default: reported as unknown, allowed).
    pub refuse_unknown: bool,
    /// Apply unsafe operations anyway (`--allow-unsafe`).
    pub allow_unsafe: bool,
}

impl Preset {
    pub fn name(&self) -> &'static str {
        match self {
            Preset::Django { .. } => "django",
        }
    }

    /// `django` with `manage` (default `python manage.py`).
    pub fn parse(name: &str, manage: Option<Vec<String>>) -> Result<Preset, String> {
        match name {
            "django" => {
                let manage = manage.unwrap_or_else(|| vec!["python".into(), "manage.py".into()]);
                if manage.len() != 2 {
                    return Err(format!(
                        "`manage` is the interpreter and the path of manage.py (e.g. `python manage.py`), found {} word(s)",
                        manage.len()
                    ));
                }
                Ok(Preset::Django { manage })
            }
            other => Err(format!("unknown preset `{other}` (known: django)")),
        }
    }

    /// The migration task's command for `phase`.
    pub fn command(&self, phase: Phase, options: PresetOptions) -> Vec<String> {
        match self {
            Preset::Django { manage } => {
                let mut words = vec![
                    manage[0].clone(),
                    "-c".to_owned(),
                    DJANGO_PROGRAM.to_owned(),
                    manage[1].clone(),
                    phase.as_arg().to_owned(),
                ];
                if options.refuse_unknown {
                    words.push("--unknown=refuse".to_owned());
                }
                if options.allow_unsafe {
                    words.push("--allow-unsafe".to_owned());
                }
                words
            }
        }
    }
}

/// One operation of a pending migration, as the preset classified it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedOperation {
    pub index: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    /// `safe`, `unsafe` or `unknown`.
    pub class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// One pending migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedMigration {
    pub id: String,
    /// `before_deploy`, `after_deploy` or `always`.
    pub marker: String,
    /// The phase that applies it: `expand` or `contract`.
    pub run: String,
    pub operations: Vec<PlannedOperation>,
}

/// Why the preset refused the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    #[serde(default)]
    pub migration: Option<String>,
    #[serde(default)]
    pub index: Option<u32>,
    pub why: String,
    #[serde(default)]
    pub hint: Option<String>,
}

/// What a preset task reported: its plan, refusals, what it applied, and its verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MigrationPlan {
    pub phase: String,
    pub migrations: Vec<PlannedMigration>,
    pub refusals: Vec<Refusal>,
    pub applied: Vec<String>,
    /// `refused`, `applied`, `planned` or `nothing`.
    pub verdict: String,
}

impl MigrationPlan {
    /// Migrations held back for the contract phase.
    pub fn held_back(&self) -> impl Iterator<Item = &PlannedMigration> {
        self.migrations.iter().filter(|m| m.run == "contract")
    }

    pub fn refused(&self) -> bool {
        self.verdict == "refused"
    }
}

/// The frames could not be read as a complete report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the migration task's report is incomplete: {0}")]
    Incomplete(String),
    #[error("the migration task's report has an unreadable frame {seq}: {reason}")]
    Unreadable { seq: usize, reason: String },
}

#[derive(Deserialize)]
struct Frame {
    seq: usize,
    kind: String,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

/// The frames of one task's log (the lines after [`FRAME_PREFIX`], in log order), checked for
/// completeness: numbered from 0 without a gap or repeat, ended by an `end` frame that counts
/// them. A line the log driver split, or lost, makes the report incomplete.
pub fn parse_frames(lines: &[String]) -> Result<MigrationPlan, FrameError> {
    let mut plan = MigrationPlan::default();
    let mut ended = false;
    for (expected, line) in lines.iter().enumerate() {
        let frame: Frame = serde_json::from_str(line).map_err(|e| FrameError::Unreadable {
            seq: expected,
            reason: e.to_string(),
        })?;
        if ended {
            return Err(FrameError::Incomplete(
                "frames after the end frame".to_owned(),
            ));
        }
        if frame.seq != expected {
            return Err(FrameError::Incomplete(format!(
                "frame {expected} is missing (found {} there)",
                frame.seq
            )));
        }
        let field = |name: &str| frame.rest.get(name).cloned().unwrap_or_default();
        let unreadable = |e: serde_json::Error| FrameError::Unreadable {
            seq: frame.seq,
            reason: e.to_string(),
        };
        match frame.kind.as_str() {
            "start" => plan.phase = field("phase").as_str().unwrap_or_default().to_owned(),
            "migration" => plan.migrations.push(PlannedMigration {
                id: field("id").as_str().unwrap_or_default().to_owned(),
                marker: field("marker").as_str().unwrap_or("always").to_owned(),
                run: field("run").as_str().unwrap_or("expand").to_owned(),
                operations: Vec::new(),
            }),
            "operation" => {
                let migration = field("migration").as_str().unwrap_or_default().to_owned();
                let operation: PlannedOperation =
                    serde_json::from_value(serde_json::Value::Object(frame.rest.clone()))
                        .map_err(unreadable)?;
                match plan.migrations.iter_mut().rev().find(|m| m.id == migration) {
                    Some(found) => found.operations.push(operation),
                    None => {
                        return Err(FrameError::Incomplete(format!(
                            "an operation of {migration}, which the plan does not list"
                        )));
                    }
                }
            }
            "refusal" => plan.refusals.push(
                serde_json::from_value(serde_json::Value::Object(frame.rest.clone()))
                    .map_err(unreadable)?,
            ),
            "applied" => plan
                .applied
                .push(field("migration").as_str().unwrap_or_default().to_owned()),
            "end" => {
                let counted = field("frames").as_u64().unwrap_or(u64::MAX);
                if usize::try_from(counted).ok() != Some(expected) {
                    return Err(FrameError::Incomplete(format!(
                        "the end frame counts {counted} frames before it, {expected} arrived"
                    )));
                }
                plan.verdict = field("verdict").as_str().unwrap_or_default().to_owned();
                ended = true;
            }
            // A newer program's frame this shipmate does not know: counted, not read.
            _ => {}
        }
    }
    if !ended {
        return Err(FrameError::Incomplete(format!(
            "no end frame after {} frame(s)",
            lines.len()
        )));
    }
    Ok(plan)
}

/// The frames among a task's log lines.
pub fn frame_of(line: &str) -> Option<&str> {
    line.strip_prefix(FRAME_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| (*l).to_owned()).collect()
    }

    #[test]
    fn a_complete_report() {
        let plan = parse_frames(&frames(&[
            r#"{"seq":0,"kind":"start","phase":"expand","django":"5.2"}"#,
            r#"{"seq":1,"kind":"migration","id":"catalog.0007_drop","marker":"after_deploy","run":"contract","operations":1}"#,
            r#"{"seq":2,"kind":"operation","migration":"catalog.0007_drop","index":0,"type":"RemoveField","text":"Remove field subtitle from book","class":"unsafe","why":"the serving code reads it"}"#,
            r#"{"seq":3,"kind":"migration","id":"catalog.0006_x","marker":"always","run":"expand","operations":0}"#,
            r#"{"seq":4,"kind":"applied","migration":"catalog.0006_x"}"#,
            r#"{"seq":5,"kind":"end","verdict":"applied","frames":5}"#,
        ]))
        .unwrap();
        assert_eq!(plan.phase, "expand");
        assert_eq!(plan.verdict, "applied");
        assert_eq!(plan.migrations.len(), 2);
        assert_eq!(plan.migrations[0].operations[0].kind, "RemoveField");
        assert_eq!(plan.held_back().count(), 1);
        assert_eq!(plan.applied, vec!["catalog.0006_x".to_owned()]);
    }

    #[test]
    fn incomplete_reports_are_refused() {
        let start = r#"{"seq":0,"kind":"start","phase":"expand"}"#;
        let cases: Vec<Vec<&str>> = vec![
            vec![start],
            vec![
                start,
                r#"{"seq":2,"kind":"end","verdict":"applied","frames":2}"#,
            ],
            vec![
                start,
                r#"{"seq":1,"kind":"end","verdict":"applied","frames":3}"#,
            ],
            vec![
                start,
                r#"{"seq":1,"kind":"operation","migration":"x.1","index":0,"type":"T","text":"","class":"safe"}"#,
                r#"{"seq":2,"kind":"end","verdict":"applied","frames":2}"#,
            ],
            vec![r#"{"seq":0,"kind":"start","phas"#],
        ];
        for case in cases {
            assert!(parse_frames(&frames(&case)).is_err(), "{case:?}");
        }
    }

    #[test]
    fn commands_fit_in_runtask_overrides() {
        let preset = Preset::parse("django", None).unwrap();
        let command = preset.command(
            Phase::Expand,
            PresetOptions {
                refuse_unknown: true,
                allow_unsafe: true,
            },
        );
        assert_eq!(&command[..2], &["python".to_owned(), "-c".to_owned()]);
        assert_eq!(
            &command[3..],
            &["manage.py", "expand", "--unknown=refuse", "--allow-unsafe"]
        );
        let bytes = serde_json::to_string(&command).unwrap().len();
        assert!(bytes <= MAX_COMMAND_BYTES, "{bytes} bytes");
        assert!(Preset::parse("rails", None).is_err());
        assert!(Preset::parse("django", Some(vec!["manage.py".into()])).is_err());
    }
}
