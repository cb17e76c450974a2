//! The `shipmate` command line: argument parsing, settings, output and exit codes. The work
//! itself lives in the library crates (`shipmate-release*` for releases, `shipmate-local-*` for
//! the local endpoint); this crate is the only one that prints.

mod args;
mod commands;
mod exit;
mod hints;
mod printer;
mod render;
mod session;
mod settings;
mod signals;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

pub use exit::ExitStatus;
pub use printer::Printer;

/// Parses `args`, runs the command, renders any error, and returns the process exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match args::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints help/version to stdout and usage errors to stderr itself.
            let _ = error.print();
            return if error.use_stderr() {
                ExitStatus::Usage.into()
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing(cli.global.verbose);
    let printer = Printer::new(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            printer.error(&anyhow::Error::new(error).context("cannot start the async runtime"));
            return ExitStatus::Failure.into();
        }
    };
    let status = runtime.block_on(commands::run(cli.command, &printer));
    // Child processes and in-flight requests are the commands' to finish; don't wait on stragglers.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    status.into()
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        // aws-config warns at every failed IMDS probe when no region is set; the error says it once.
        0 => "warn,aws_config::imds=error",
        1 => "info,aws_smithy_runtime=warn,aws_config=warn",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHIPMATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
