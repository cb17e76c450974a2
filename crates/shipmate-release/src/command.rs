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

#[cfg(test)]
mod tests {
    use super::*;

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
