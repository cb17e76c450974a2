//! The release domain: configuration, plan, the release state machine and its events (no I/O).
