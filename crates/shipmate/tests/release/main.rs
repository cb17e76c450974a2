//! The release commands end to end: the real `shipmate` binary, through the real aws-sdk-rust,
//! against `shipmate local` started in-process by each test (tasks run as local processes).
//! Waits poll for conditions with generous deadlines; nothing here sleeps for a fixed time to
//! let something happen.

mod deploy;
mod doctor;
mod failures;
mod harness;
mod history;
mod interference;
mod kills;
mod logs;
mod run;
mod schema;
mod services;
mod strategies;
mod unlock;
mod web;
