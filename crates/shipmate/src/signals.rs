//! Waiting for the signals that end a command: SIGINT (Ctrl-C) and SIGTERM (a cancelled CI job).

/// Returns the name of the first SIGINT or SIGTERM that arrives.
pub(crate) async fn wait_for_signal() -> &'static str {
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    match terminate {
        Ok(mut terminate) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
