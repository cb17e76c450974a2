//! GetLogEvents paging, as pure functions over a stream's timestamp-ordered events.
//!
//! Tokens are `f/<index>` (forward: the next page starts at `index`) and `b/<index>` (backward:
//! the next page ends just before `index`), the index zero-padded to 56 digits like CloudWatch's
//! own. A page `[start, end)` always answers `f/<end>` and `b/<start>`, which gives the documented
//! rules for free: tokens are never absent, and at either end of the stream the token you passed
//! comes back unchanged (so the SDK paginator's stop-on-duplicate-token works).

use std::ops::Range;

use shipmate_local_protocol::AwsError;

/// Most events in one page, whatever `limit` says.
pub(crate) const MAX_PAGE_EVENTS: usize = 10_000;
/// Most bytes in one page (messages plus 26 bytes each, as PutLogEvents counts them).
pub(crate) const MAX_PAGE_BYTES: usize = 1_048_576;
/// Per-event overhead in the byte budgets.
pub(crate) const EVENT_OVERHEAD: usize = 26;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    Forward(usize),
    Backward(usize),
}

impl Token {
    pub(crate) fn parse(token: &str) -> Result<Token, AwsError> {
        let invalid = || {
            AwsError::client(
                "InvalidParameterException",
                "The specified nextToken is invalid.",
            )
        };
        let (direction, index) = token.split_once('/').ok_or_else(invalid)?;
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let index = index.parse().map_err(|_| invalid())?;
        match direction {
            "f" => Ok(Token::Forward(index)),
            "b" => Ok(Token::Backward(index)),
            _ => Err(invalid()),
        }
    }

    pub(crate) fn render(self) -> String {
        match self {
            Token::Forward(index) => format!("f/{index:056}"),
            Token::Backward(index) => format!("b/{index:056}"),
        }
    }
}

/// Which page to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageRequest {
    pub(crate) token: Option<Token>,
    pub(crate) start_from_head: bool,
    pub(crate) limit: usize,
}

/// The chosen page and the tokens to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) range: Range<usize>,
    pub(crate) next_forward: Token,
    pub(crate) next_backward: Token,
}

/// Picks the page of `window` (the indexes of the events inside startTime/endTime) that
/// `request` asks for. `size(i)` is event `i`'s size in the byte budget.
pub(crate) fn page(
    window: Range<usize>,
    request: PageRequest,
    size: impl Fn(usize) -> usize,
) -> Page {
    let limit = request.limit.clamp(1, MAX_PAGE_EVENTS);
    let clamp = |index: usize| index.clamp(window.start, window.end);
    let forward_from = |start: usize| {
        let mut end = start;
        let mut bytes = 0;
        while end < window.end && end - start < limit {
            bytes += size(end);
            if bytes > MAX_PAGE_BYTES && end > start {
                break;
            }
            end += 1;
        }
        start..end
    };
    let backward_from = |end: usize| {
        let mut start = end;
        let mut bytes = 0;
        while start > window.start && end - start < limit {
            bytes += size(start - 1);
            if bytes > MAX_PAGE_BYTES && start < end {
                break;
            }
            start -= 1;
        }
        start..end
    };
    let range = match request.token {
        Some(Token::Forward(index)) => forward_from(clamp(index)),
        Some(Token::Backward(index)) => backward_from(clamp(index)),
        None if request.start_from_head => forward_from(window.start),
        None => backward_from(window.end),
    };
    Page {
        next_forward: Token::Forward(range.end),
        next_backward: Token::Backward(range.start),
        range,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(token: Option<Token>, start_from_head: bool, limit: usize) -> PageRequest {
        PageRequest {
            token,
            start_from_head,
            limit,
        }
    }

    #[test]
    fn tokens_round_trip_and_look_like_cloudwatch_tokens() {
        let forward = Token::Forward(42).render();
        assert_eq!(forward.len(), 2 + 56);
        assert!(forward.starts_with("f/0000"));
        assert_eq!(Token::parse(&forward).unwrap(), Token::Forward(42));
        assert_eq!(
            Token::parse(&Token::Backward(7).render()).unwrap(),
            Token::Backward(7)
        );
        for bad in ["", "f/", "x/12", "f/-1", "f/1a", "12"] {
            assert_eq!(
                Token::parse(bad).unwrap_err().code,
                "InvalidParameterException",
                "{bad}"
            );
        }
    }

    #[test]
    fn default_first_page_is_the_newest_events() {
        let page = page(0..10, request(None, false, 3), |_| 1);
        assert_eq!(page.range, 7..10);
        assert_eq!(page.next_forward, Token::Forward(10));
        assert_eq!(page.next_backward, Token::Backward(7));
    }

    #[test]
    fn paging_forward_from_the_head_ends_by_echoing_the_token() {
        let mut token = None;
        let mut seen = Vec::new();
        loop {
            let page = page(0..5, request(token, true, 2), |_| 1);
            seen.extend(page.range.clone());
            if token == Some(page.next_forward) {
                assert!(page.range.is_empty());
                break;
            }
            token = Some(page.next_forward);
        }
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn paging_backward_reaches_the_start_and_echoes_the_token() {
        let first = page(0..5, request(None, false, 2), |_| 1);
        assert_eq!(first.range, 3..5);
        let second = page(0..5, request(Some(first.next_backward), false, 2), |_| 1);
        assert_eq!(second.range, 1..3);
        let third = page(0..5, request(Some(second.next_backward), false, 2), |_| 1);
        assert_eq!(third.range, 0..1);
        let end = page(0..5, request(Some(third.next_backward), false, 2), |_| 1);
        assert!(end.range.is_empty());
        assert_eq!(end.next_backward, third.next_backward);
    }

    #[test]
    fn an_empty_stream_answers_tokens_that_stay_put() {
        let page0 = page(0..0, request(None, true, 100), |_| 1);
        assert!(page0.range.is_empty());
        let page1 = page(0..0, request(Some(page0.next_forward), true, 100), |_| 1);
        assert_eq!(page1.next_forward, page0.next_forward);
    }

    #[test]
    fn new_events_show_up_after_the_forward_token() {
        let page0 = page(0..3, request(None, true, 100), |_| 1);
        assert_eq!(page0.range, 0..3);
        // Two more events arrive; the same token now returns them.
        let page1 = page(0..5, request(Some(page0.next_forward), true, 100), |_| 1);
        assert_eq!(page1.range, 3..5);
    }

    #[test]
    fn the_time_window_bounds_pages() {
        let page0 = page(2..6, request(None, true, 100), |_| 1);
        assert_eq!(page0.range, 2..6);
        let outside = page(2..6, request(Some(Token::Forward(0)), true, 100), |_| 1);
        assert_eq!(outside.range, 2..6);
    }

    #[test]
    fn the_byte_budget_splits_pages_but_never_returns_nothing() {
        let big = MAX_PAGE_BYTES / 2 + 1;
        let page0 = page(0..3, request(None, true, 100), |_| big);
        assert_eq!(page0.range, 0..1);
        let huge = page(0..3, request(None, true, 100), |_| MAX_PAGE_BYTES * 2);
        assert_eq!(huge.range, 0..1);
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Reads the whole window page by page in one direction, as a client that follows the
        /// documented stop rule does; answers the indexes in reading order.
        fn read_all(
            window: Range<usize>,
            start_from_head: bool,
            limit: usize,
            sizes: &[usize],
        ) -> Vec<usize> {
            let mut token = None;
            let mut seen = Vec::new();
            for _ in 0..=window.len() + 1 {
                let page = page(
                    window.clone(),
                    PageRequest {
                        token,
                        start_from_head,
                        limit,
                    },
                    |index| sizes[index],
                );
                let next = if start_from_head {
                    seen.extend(page.range.clone());
                    page.next_forward
                } else {
                    seen.extend(page.range.clone().rev());
                    page.next_backward
                };
                if token == Some(next) {
                    return seen;
                }
                token = Some(next);
            }
            panic!("paging did not end with a repeated token");
        }

        proptest! {
            #[test]
            fn forward_and_backward_paging_read_every_event_once(
                sizes in proptest::collection::vec(1usize..600_000, 0..40),
                limit in 1usize..12,
                cut in 0usize..40,
            ) {
                let start = cut.min(sizes.len());
                let window = start..sizes.len();
                let forward = read_all(window.clone(), true, limit, &sizes);
                prop_assert_eq!(&forward, &window.clone().collect::<Vec<_>>());
                let mut backward = read_all(window.clone(), false, limit, &sizes);
                backward.reverse();
                prop_assert_eq!(&backward, &forward);
            }
        }
    }
}
