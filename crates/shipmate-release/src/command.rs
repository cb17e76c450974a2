//! Commands given as one string (`--migrate "python manage.py migrate"`) are split the way a
//! POSIX shell splits words, but no shell ever runs: the words become the container's command.

/// The command line could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot split the command `{line}`: unbalanced quotes")]
pub struct SplitError {
    pub line: String,
}

pub fn split_command(line: &str) -> Result<Vec<String>, SplitError> {
    shlex::split(line).ok_or_else(|| SplitError {
        line: line.to_owned(),
    })
}

/// The inverse, for messages people may paste into a terminal.
pub fn join_command(words: &[String]) -> String {
    shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
}

/// An environment variable's name as a shell takes it: a letter or `_`, then letters, digits
/// and `_` (ECS takes more, but a name a shell cannot read is a mistake in a release setting).
pub fn validate_env_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not an environment variable name (letters, digits and `_`, not starting with a digit)"
        ))
    }
}

/// `NAME=value` as a flag gives it.
pub fn parse_env_assignment(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=value, found `{text}`"))?;
    validate_env_name(name)?;
    Ok((name.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_assignments() {
        assert_eq!(
            parse_env_assignment("DATABASE_URL=postgres://a=b"),
            Ok(("DATABASE_URL".to_owned(), "postgres://a=b".to_owned()))
        );
        assert_eq!(
            parse_env_assignment("EMPTY="),
            Ok(("EMPTY".to_owned(), String::new()))
        );
        assert!(
            parse_env_assignment("NOVALUE")
                .unwrap_err()
                .contains("NAME=value")
        );
        assert!(
            parse_env_assignment("9X=1")
                .unwrap_err()
                .contains("not an environment")
        );
        assert!(parse_env_assignment("=1").is_err());
    }

    #[test]
    fn split_table() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            (
                "python manage.py migrate",
                Some(&["python", "manage.py", "migrate"]),
            ),
            (
                "sh -c 'echo a && exit 5'",
                Some(&["sh", "-c", "echo a && exit 5"]),
            ),
            (
                r#"echo "two words" x\ y"#,
                Some(&["echo", "two words", "x y"]),
            ),
            ("echo 'open", None),
        ];
        for (line, expected) in cases {
            let split = split_command(line).ok();
            let expected = expected.map(|words| words.iter().map(|w| (*w).to_owned()).collect());
            assert_eq!(split, expected, "for {line:?}");
        }
    }

    #[test]
    fn join_round_trips() {
        let words = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "echo a && exit 5".to_owned(),
        ];
        assert_eq!(split_command(&join_command(&words)).unwrap(), words);
    }
}
