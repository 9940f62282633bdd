//! The progress line on stderr: rewritten in place on a terminal, one line per step otherwise
//! (logs and CI keep every step).

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    tty: bool,
    started: Instant,
    shown: bool,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            shown: false,
        }
    }

    /// Shows the current step.
    pub fn step(&mut self, msg: &str) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        // A failed write to stderr leaves nothing better to report it on.
        if self.tty {
            let _ = write!(err, "\r\x1b[2K[{elapsed:5.1}s] {msg}");
            let _ = err.flush();
            self.shown = true;
        } else {
            let _ = writeln!(err, "[{elapsed:5.1}s] {msg}");
        }
    }

    /// Ends the line, so what follows starts on a clean one.
    pub fn finish(&mut self) {
        if self.tty && self.shown {
            let _ = writeln!(std::io::stderr());
            self.shown = false;
        }
    }
}
