//! How the driver talks to the outside world without printing: events go to a [`Reporter`],
//! and every wait goes through a [`Pace`] so that the only sleeping code is swappable.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use shipmate_release::event::Event;

/// Receives the release's events as they happen (the CLI renders them).
pub trait Reporter: Send + Sync {
    fn event(&self, event: Event);
}

/// Collects events in memory (tests, and callers that render at the end).
#[derive(Debug, Default)]
pub struct EventLog(pub std::sync::Mutex<Vec<Event>>);

impl Reporter for EventLog {
    fn event(&self, event: Event) {
        if let Ok(mut events) = self.0.lock() {
            events.push(event);
        }
    }
}

/// Time as the driver sees it.
pub trait Pace: Send + Sync {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    /// Wall-clock epoch milliseconds, comparable with ECS timestamps.
    fn now_ms(&self) -> i64;
}

/// Real time through tokio.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioPace;

impl Pace for TokioPace {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }

    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}
