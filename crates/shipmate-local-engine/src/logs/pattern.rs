//! The subset of CloudWatch Logs filter pattern syntax FilterLogEvents understands here: terms
//! and quoted phrases that must all appear (`ERROR "connection refused"`), `-term` for terms
//! that must not, and `?term` alternatives of which at least one must appear. Matching is
//! case-sensitive, as CloudWatch's is. JSON (`{ $.level = … }`) and space-delimited (`[ip, …]`)
//! patterns are refused with InvalidParameterException rather than silently matching wrongly.

use shipmate_local_protocol::AwsError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FilterPattern {
    required: Vec<String>,
    excluded: Vec<String>,
    any_of: Vec<String>,
}

impl FilterPattern {
    pub(crate) fn parse(pattern: &str) -> Result<FilterPattern, AwsError> {
        let unsupported = |why: &str| {
            AwsError::client(
                "InvalidParameterException",
                format!("shipmate local does not support this filter pattern ({why}): {pattern}"),
            )
        };
        let trimmed = pattern.trim();
        if trimmed.starts_with('{') || trimmed.starts_with('[') || trimmed.starts_with('%') {
            return Err(unsupported(
                "only terms, \"quoted phrases\", -term and ?term are supported",
            ));
        }
        let mut parsed = FilterPattern::default();
        let mut chars = trimmed.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else { break };
            let kind = match first {
                '-' | '?' => {
                    chars.next();
                    first
                }
                _ => ' ',
            };
            let mut term = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => term.extend(chars.next()),
                        _ => term.push(c),
                    }
                }
                if !closed {
                    return Err(unsupported("unterminated quote"));
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    term.push(c);
                }
            }
            if term.is_empty() {
                continue;
            }
            match kind {
                '-' => parsed.excluded.push(term),
                '?' => parsed.any_of.push(term),
                _ => parsed.required.push(term),
            }
        }
        Ok(parsed)
    }

    pub(crate) fn matches(&self, message: &str) -> bool {
        self.required
            .iter()
            .all(|term| message.contains(term.as_str()))
            && !self
                .excluded
                .iter()
                .any(|term| message.contains(term.as_str()))
            && (self.any_of.is_empty()
                || self
                    .any_of
                    .iter()
                    .any(|term| message.contains(term.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, message: &str) -> bool {
        FilterPattern::parse(pattern).unwrap().matches(message)
    }

    #[test]
    fn empty_pattern_matches_everything() {
        assert!(matches("", "anything"));
        assert!(matches("   ", "anything"));
    }

    #[test]
    fn all_terms_must_appear_case_sensitively() {
        assert!(matches("ERROR db", "ERROR: db down"));
        assert!(!matches("ERROR db", "ERROR: cache down"));
        assert!(!matches("error", "ERROR: db down"));
    }

    #[test]
    fn quoted_phrases_match_as_a_whole() {
        assert!(matches(
            "\"Applying migration\"",
            "  Applying migration 0001_initial... OK"
        ));
        assert!(!matches(
            "\"migration Applying\"",
            "Applying migration 0001"
        ));
        assert!(matches(r#""say \"hi\"""#, r#"they say "hi" here"#));
    }

    #[test]
    fn exclusions_and_alternatives() {
        assert!(matches("ERROR -timeout", "ERROR: refused"));
        assert!(!matches("ERROR -timeout", "ERROR: timeout"));
        assert!(matches("?WARN ?ERROR", "WARN low disk"));
        assert!(!matches("?WARN ?ERROR", "INFO all good"));
    }

    #[test]
    fn unsupported_syntax_is_refused() {
        for pattern in ["{ $.level = \"error\" }", "[ip, user]", "%err%", "\"open"] {
            let error = FilterPattern::parse(pattern).unwrap_err();
            assert_eq!(error.code, "InvalidParameterException", "{pattern}");
        }
    }
}
