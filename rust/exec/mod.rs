//! The job executor: one long-lived process per run that starts jobs at the
//! fork/exec floor (no shell), records their start and end, and reports.
//!
//! Input (runner -> executor) is a stream of records, every field ended by a
//! NUL: `J`, index, trial, mode (`direct` | `wrapper`), metadir, events folder,
//! cwd, timeout seconds, timeout label, cgroup.procs path, stamp (a word for the
//! start line), argc + argv, envc +
//! `KEY=VALUE` entries (record.rs); or a cancel: `C`, index, trial (SIGTERM to
//! the job's group, SIGKILL after the grace, as a timeout does, so a cancel
//! whose runner died still ends). Output is one line per fact: `s <index>
//! <trial> <pid> <ticks>` once started (`0 0` when it could not be), `e <index>
//! <trial> <rc>` once ended and its files are in place (`e <index> <trial>
//! <rc> -` when its rc file could not be written), `! <text>` for a problem.
//!
//! In direct mode the executor writes the job's files itself (files.rs): the
//! start line, stdout/stderr, the rc file and the start/end events; in wrapper
//! mode the command is a bash wrapper that writes its own. The loop (driver.rs)
//! is single-threaded over `poll`, so thousands of jobs in flight cost a table
//! entry each, not a thread.
use std::ffi::OsString;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

mod cgroup;
mod driver;
mod files;
mod job;
mod reap;
mod record;
#[cfg(test)]
mod record_tests;
mod report;
mod sigchld;
mod spawn;
#[cfg(test)]
mod tests;

pub use driver::run;
pub use record::{Parsed, Parser};
pub use report::FdWriter;

/// When a direct job's event files (`<i>.<t>.s`, `<i>.<t>.e<rc>`) are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Events {
    /// Always (a reader of the run's events folder is the only one told).
    Always,
    /// Only once the reader of the report lines is gone (a runner that reads
    /// the `s`/`e` lines needs no files; the one after it reads the folder).
    WhenUnheard,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    /// The executor runs the command and writes the job's files.
    Direct,
    /// The command is a wrapper script that writes its own files.
    Wrapper,
}

/// One job to start, as the runner sent it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    pub index: u64,
    pub trial: u64,
    pub mode: Mode,
    pub metadir: PathBuf,
    pub events: PathBuf,
    pub cwd: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub timeout_label: String,
    pub cgroup: Option<PathBuf>,
    /// Added to the start line as its fourth word (the runner's definition hash).
    pub stamp: String,
    pub argv: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
}

/// The grace between SIGTERM and SIGKILL, from seconds.
pub fn grace(seconds: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        Error::InvalidArgument(format!("grace must be 0 or more seconds, not {seconds}"))
    })
}

/// The executor as `python -m xqdecl.worker` runs it: records on fd 0, reports on fd 1.
pub fn run_stdio(grace: Duration, events: Events) -> Result<i32> {
    // SAFETY: fd 0 stays open for the whole run (the process owns it).
    let input = unsafe { BorrowedFd::borrow_raw(0) };
    run(input, FdWriter(1), grace, events)
}
