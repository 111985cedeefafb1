//! The timeline, printed as it happens and kept for the report.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The timeline, printed as it happens.
#[derive(Clone)]
pub(crate) struct Timeline {
    pub(crate) started: Instant,
    pub(crate) lines: Arc<Mutex<Vec<String>>>,
    pub(crate) to_stderr: bool,
    pub(crate) spinner: bool,
}

impl Timeline {
    pub(crate) fn say(&self, line: impl AsRef<str>) {
        let line = format!(
            "[{:7.3}s] {}",
            self.started.elapsed().as_secs_f64(),
            line.as_ref()
        );
        if self.spinner {
            eprint!("\r\x1b[K");
        }
        if self.to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        self.lines.lock().unwrap().push(line);
    }

    pub(crate) fn progress(&self, what: &str) {
        if self.spinner {
            const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
            let frame = FRAMES[(self.started.elapsed().as_millis() / 150) as usize % 4];
            eprint!("\r\x1b[K{frame} {what}");
            let _ = std::io::stderr().flush();
        }
    }
}
