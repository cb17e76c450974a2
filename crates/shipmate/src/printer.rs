//! Everything shipmate prints goes through the [`Printer`]: data to stdout, people to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::IsTerminal;
use std::io::Write;

use crate::args::{ColorChoice, GlobalArgs};

#[derive(Debug, Clone)]
pub struct Printer {
    quiet: bool,
    color: bool,
}

impl Printer {
    pub(crate) fn new(global: &GlobalArgs) -> Printer {
        let color = match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
                    && std::io::stderr().is_terminal()
            }
        };
        Printer {
            quiet: global.quiet,
            color,
        }
    }

    pub fn color(&self) -> bool {
        self.color
    }

    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// One line of data on stdout (flushed: scripts read it as it comes).
    pub fn data(&self, line: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }

    /// One line for people on stderr, unless `--quiet`.
    pub fn info(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// `error: …` with its causes and any `hint:` lines.
    pub fn error(&self, error: &anyhow::Error) {
        let (prefix, end) = if self.color {
            ("\x1b[1;31merror\x1b[0m", "")
        } else {
            ("error", "")
        };
        eprintln!("{prefix}: {error}{end}");
        for cause in error.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
    }

    /// `warning: …` and its `hint: …` line, unless `--quiet`.
    pub fn warning(&self, warning: &str, hint: Option<&str>) {
        if self.quiet {
            return;
        }
        let prefix = if self.color {
            "\x1b[1;33mwarning\x1b[0m"
        } else {
            "warning"
        };
        eprintln!("{prefix}: {warning}");
        if let Some(hint) = hint {
            self.hint(hint);
        }
    }

    /// A `hint: …` line after an error.
    pub fn hint(&self, hint: &str) {
        let prefix = if self.color {
            "\x1b[1;36mhint\x1b[0m"
        } else {
            "hint"
        };
        eprintln!("{prefix}: {hint}");
    }
}
