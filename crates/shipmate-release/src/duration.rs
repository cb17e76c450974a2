//! Durations as people write them in `shipmate.toml` and on the command line (`90s`, `15m`,
//! `1h30m`, `500ms`), and back for messages.

use std::time::Duration;

/// Parses a sequence of `<number><unit>` parts, unit one of `ms`, `s`, `m`, `h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "invalid duration `{text}`: expected a number followed by ms, s, m or h (e.g. \"90s\", \"15m\", \"1h30m\")"
        )
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            _ => return Err(invalid()),
        };
        total = total.saturating_add(part);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// `1h2m3s`, `45s`, `1.2s`, `350ms`: short, for progress lines and summaries.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let secs = duration.as_secs();
    if secs < 10 {
        return format!("{}.{}s", secs, (millis % 1000) / 100);
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s:02}s"),
        _ => format!("{h}h{m:02}m{s:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("90s", Some(90_000)),
            ("15m", Some(900_000)),
            ("1h30m", Some(5_400_000)),
            ("500ms", Some(500)),
            ("2m5s", Some(125_000)),
            (" 3s ", Some(3000)),
            ("0s", Some(0)),
            ("", None),
            ("10", None),
            ("s", None),
            ("5 minutes", None),
            ("1.5s", None),
            ("-3s", None),
        ];
        for (text, millis) in cases {
            let parsed = parse_duration(text).ok().map(|d| d.as_millis() as u64);
            assert_eq!(parsed, *millis, "for {text:?}");
        }
    }

    #[test]
    fn format_table() {
        let cases: &[(u64, &str)] = &[
            (350, "350ms"),
            (1234, "1.2s"),
            (45_000, "45s"),
            (125_000, "2m05s"),
            (3_725_000, "1h02m05s"),
        ];
        for (millis, text) in cases {
            assert_eq!(format_duration(Duration::from_millis(*millis)), *text);
        }
    }
}
