//! `nextToken`/`maxResults` paging of the List operations. Tokens are opaque to clients; here
//! they are the offset of the next item in the (stably ordered) full listing.

use shipmate_local_protocol::AwsError;

const TOKEN_PREFIX: &str = "shipmate-offset-";

/// One page of `items` (already in listing order) and the token of the next page, if any.
pub(crate) fn paginate<T>(
    items: Vec<T>,
    next_token: Option<&str>,
    max_results: Option<i32>,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let limit = match max_results {
        None => 100,
        Some(n @ 1..=100) => n as usize,
        Some(n) => {
            return Err(AwsError::client(
                "InvalidParameterException",
                format!("maxResults must be between 1 and 100, got {n}."),
            ));
        }
    };
    let start = match next_token {
        None => 0,
        Some(token) => token
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| AwsError::client("InvalidParameterException", "Invalid token"))?,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let end = start + page.len();
    let next = (end < total).then(|| format!("{TOKEN_PREFIX}{end}"));
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_through_everything_once() {
        let items: Vec<u32> = (0..7).collect();
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let (page, next) = paginate(items.clone(), token.as_deref(), Some(3)).unwrap();
            seen.extend(page);
            match next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn rejects_bad_limits_and_tokens() {
        for max in [0, 101, -1] {
            let error = paginate(vec![1], None, Some(max)).unwrap_err();
            assert_eq!(error.code, "InvalidParameterException");
        }
        let error = paginate(vec![1], Some("garbage"), None).unwrap_err();
        assert_eq!(error.code, "InvalidParameterException");
        assert_eq!(
            paginate(vec![1, 2], None, None).unwrap(),
            (vec![1, 2], None)
        );
    }
}
