//! How the release logic stays free of I/O while reading top to bottom.
//!
//! A release is written as plain `async` code against [`Io`], whose only awaitable is
//! [`Io::call`]: hand a [`Command`] out, get the [`Observation`] back. Nothing else is ever
//! awaited, so the future never waits on the outside world: [`Machine`] polls it with a no-op
//! waker until it stops at the next `call`, and hands that command to whoever drives it — the
//! AWS driver in production, a simulated ECS in the tests. Feeding an observation in and polling
//! again runs the logic to its next command. This is the sans-I/O shape of quinn-proto
//! (docs/release.md, "The release machine"): every decision is in the logic, the driver only
//! executes commands and reports what happened, and the logic runs in tests without a runtime,
//! a clock or sleeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::event::Event;
use crate::io::{Command, Observation};

#[derive(Debug, Default)]
struct Exchange {
    /// The command the logic is waiting on, until the driver takes it.
    command: Option<Command>,
    /// The driver's answer to it.
    observation: Option<Observation>,
    /// Epoch milliseconds when the answer was observed: the logic's only clock.
    now_ms: i64,
    events: Vec<Event>,
}

/// The logic's side of the exchange: issue commands, read the clock, emit events.
#[derive(Debug, Clone, Default)]
pub struct Io {
    exchange: Arc<Mutex<Exchange>>,
}

impl Io {
    fn exchange(&self) -> MutexGuard<'_, Exchange> {
        self.exchange.lock().expect("machine exchange")
    }

    /// Issues `command` and resolves to what the driver observed executing it.
    pub fn call(&self, command: Command) -> Call<'_> {
        Call {
            io: self,
            command: Some(command),
        }
    }

    /// The time of the latest observation (epoch milliseconds).
    pub fn now_ms(&self) -> i64 {
        self.exchange().now_ms
    }

    pub fn emit(&self, event: Event) {
        self.exchange().events.push(event);
    }
}

/// The future of one [`Io::call`].
#[derive(Debug)]
pub struct Call<'a> {
    io: &'a Io,
    command: Option<Command>,
}

impl Future for Call<'_> {
    type Output = Observation;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Observation> {
        let mut exchange = self.io.exchange();
        if let Some(command) = self.command.take() {
            exchange.command = Some(command);
            exchange.observation = None;
            return Poll::Pending;
        }
        match exchange.observation.take() {
            Some(observation) => Poll::Ready(observation),
            None => Poll::Pending,
        }
    }
}

type Logic<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Where a machine stands after a step.
#[derive(Debug)]
pub enum Step<T> {
    /// Execute this and report what happened with [`Machine::observe`].
    Command(Command),
    /// The logic ended.
    Done(T),
}

/// A release (or any logic written against [`Io`]) as a value: observations in, commands out.
pub struct Machine<T> {
    io: Io,
    logic: Option<Logic<T>>,
}

impl<T> std::fmt::Debug for Machine<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("done", &self.logic.is_none())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Machine<T> {
    /// Wraps the logic `make` builds around the machine's [`Io`]; nothing runs until
    /// [`Machine::start`].
    pub fn new<F, Fut>(make: F) -> Machine<T>
    where
        F: FnOnce(Io) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let io = Io::default();
        let logic: Logic<T> = Box::pin(make(io.clone()));
        Machine {
            io,
            logic: Some(logic),
        }
    }

    /// Runs the logic to its first command.
    pub fn start(&mut self, now_ms: i64) -> Step<T> {
        self.io.exchange().now_ms = now_ms;
        self.run()
    }

    /// Reports what executing the last command produced, at `now_ms`, and runs the logic to
    /// its next command.
    pub fn observe(&mut self, now_ms: i64, observation: Observation) -> Step<T> {
        {
            let mut exchange = self.io.exchange();
            exchange.now_ms = now_ms;
            exchange.observation = Some(observation);
        }
        self.run()
    }

    /// Events the logic emitted since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.io.exchange().events)
    }

    fn run(&mut self) -> Step<T> {
        let logic = self
            .logic
            .as_mut()
            .expect("a finished machine is not stepped again");
        let mut context = Context::from_waker(Waker::noop());
        match logic.as_mut().poll(&mut context) {
            Poll::Ready(value) => {
                self.logic = None;
                Step::Done(value)
            }
            Poll::Pending => {
                let command = self.io.exchange().command.take();
                // The logic awaits nothing but `Io::call`, so a pending poll always left one.
                Step::Command(
                    command.expect("the release logic awaited something other than Io::call"),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logic_runs_between_commands_and_sees_the_clock() {
        let mut machine = Machine::new(|io: Io| async move {
            let first = io
                .call(Command::ListOpenEntries {
                    family: "f".to_owned(),
                })
                .await;
            io.emit(Event::PhaseStarted {
                phase: crate::event::Phase::Lock,
            });
            let second = io.call(Command::Sleep { until_ms: 10 }).await;
            (first, second, io.now_ms())
        });
        assert!(matches!(
            machine.start(1),
            Step::Command(Command::ListOpenEntries { .. })
        ));
        assert!(machine.take_events().is_empty());
        assert!(matches!(
            machine.observe(2, Observation::OpenEntries(vec![3])),
            Step::Command(Command::Sleep { until_ms: 10 })
        ));
        assert_eq!(machine.take_events().len(), 1);
        match machine.observe(10, Observation::Woke) {
            Step::Done((first, second, now)) => {
                assert_eq!(first, Observation::OpenEntries(vec![3]));
                assert_eq!(second, Observation::Woke);
                assert_eq!(now, 10);
            }
            Step::Command(command) => panic!("unexpected {command:?}"),
        }
    }
}
