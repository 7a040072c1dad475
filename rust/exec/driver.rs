//! The executor's loop: one thread, `poll` on the input and the SIGCHLD pipe.
//!
//! Per wake: read what the input has and start the records it completes, reap
//! every ended child, act on due deadlines, then write the queued report lines
//! just before blocking again. The input is any pollable descriptor (a pipe, a
//! socket, a regular file) and the reports go to any `Write`, so a driver that
//! reads a file of records and writes a results file is this same loop.
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use super::job::Jobs;
use super::record::{Parsed, Parser};
use super::report::Reports;
use super::sigchld::{self, ChildWake};
use super::Events;
use crate::error::Result;

/// Bytes read from the input per wake.
const CHUNK: usize = 64 * 1024;

/// Run jobs from `input` until it ends and every started job has been reported;
/// the exit status (0).
pub fn run<W: Write>(
    input: BorrowedFd<'_>,
    sink: W,
    grace: Duration,
    events: Events,
) -> Result<i32> {
    sigchld::set_dispositions();
    let wake = ChildWake::install()?;
    let _nonblocking = NonBlocking::set(input.as_raw_fd())?;
    let mut out = Reports::new(sink);
    let mut jobs = Jobs::new(grace, events);
    let mut parser = Parser::new();
    let mut input = Some(input.as_raw_fd());
    let mut chunk = vec![0u8; CHUNK];
    let mut parsed = Vec::new();
    loop {
        if let Some(fd) = input {
            if !read_input(fd, &mut chunk, &mut parser, &mut parsed, &mut out) {
                input = None;
            }
            for item in parsed.drain(..) {
                match item {
                    Parsed::Record(rec) => jobs.start(*rec, &mut out),
                    Parsed::Cancel(index, trial) => jobs.cancel(index, trial, Instant::now()),
                    Parsed::Malformed(text) => out.problem(&text),
                    Parsed::Stop(text) => {
                        out.problem(&text);
                        input = None;
                    }
                }
            }
        }
        jobs.reap_all(&mut out)?;
        jobs.ring(Instant::now());
        out.flush();
        if input.is_none() && jobs.is_empty() {
            return Ok(0);
        }
        wait(input, &wake, jobs.next_deadline())?;
    }
}

/// One read from the input into the parser; false once the input has ended.
fn read_input<W: Write>(
    fd: RawFd,
    chunk: &mut [u8],
    parser: &mut Parser,
    parsed: &mut Vec<Parsed>,
    out: &mut Reports<W>,
) -> bool {
    // SAFETY: `chunk` is writable for its length.
    let n = unsafe { libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len()) };
    if n > 0 {
        parser.feed(&chunk[..n as usize], parsed);
        return true;
    }
    if n < 0 {
        let err = io::Error::last_os_error();
        if matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ) {
            return true;
        }
        out.problem(&format!(
            "cannot read the input: {err}; no more records are read"
        ));
    }
    parser.finish(parsed);
    false
}

/// Block until the input has something, a child ended, or the deadline came.
fn wait(input: Option<RawFd>, wake: &ChildWake, deadline: Option<Instant>) -> Result<()> {
    let mut fds = [
        libc::pollfd {
            fd: wake.fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: input.unwrap_or(-1), // a negative fd is skipped by poll
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let timeout = match deadline {
        None => -1,
        Some(at) => {
            let left = at.saturating_duration_since(Instant::now());
            // rounded up: waking a little early would only spin
            let ms = left.as_nanos().div_ceil(1_000_000);
            i32::try_from(ms).unwrap_or(i32::MAX)
        }
    };
    // SAFETY: two valid pollfd entries.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
    if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
        return Err(sigchld::sys("poll"));
    }
    if fds[0].revents != 0 {
        wake.drain();
    }
    Ok(())
}

/// O_NONBLOCK on the input for the loop's life; the old flags come back after.
struct NonBlocking {
    fd: RawFd,
    old: libc::c_int,
}

impl NonBlocking {
    fn set(fd: RawFd) -> Result<Self> {
        // SAFETY: fcntl on a descriptor the caller keeps open.
        let old = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if old < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, old | libc::O_NONBLOCK) } < 0 {
            return Err(sigchld::sys("fcntl(input)"));
        }
        Ok(NonBlocking { fd, old })
    }
}

impl Drop for NonBlocking {
    fn drop(&mut self) {
        // SAFETY: as in `set`.
        unsafe { libc::fcntl(self.fd, libc::F_SETFL, self.old) };
    }
}
