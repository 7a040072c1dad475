//! The report lines (`s`, `e`, `!`), gathered and written in bursts.
//!
//! Lines are queued and written when the loop is about to block, so a burst of
//! starts is one write. A reader that went away (EPIPE) is not an error: the
//! executor goes on, the jobs' files are still written, the lines are dropped.
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::fd::RawFd;
use std::path::PathBuf;

/// Queued report lines and where they go.
pub struct Reports<W: Write> {
    sink: W,
    buf: Vec<u8>,
    dead: bool,
    /// Event files that stand in for queued lines if those cannot be delivered.
    unheard: Vec<PathBuf>,
}

impl<W: Write> Reports<W> {
    pub fn new(sink: W) -> Self {
        Reports {
            sink,
            buf: Vec::with_capacity(8192),
            dead: false,
            unheard: Vec::new(),
        }
    }

    /// `s <index> <trial> <pid> <ticks>`; pid 0 and ticks 0: not started.
    pub fn started(&mut self, index: u64, trial: u64, pid: u32, ticks: &str) {
        self.line(format_args!("s {index} {trial} {pid} {ticks}"));
    }

    /// `e <index> <trial> <rc>`; with ` -` after it when the job's rc file could
    /// not be written (the rc is then only what the executor saw).
    pub fn ended(&mut self, index: u64, trial: u64, rc: i32, recorded: bool) {
        let mark = if recorded { "" } else { " -" };
        self.line(format_args!("e {index} {trial} {rc}{mark}"));
    }

    /// `! <text>`, on one line whatever the text holds.
    pub fn problem(&mut self, text: &str) {
        let flat = text.replace(['\n', '\r'], " ");
        self.line(format_args!("! {flat}"));
    }

    fn line(&mut self, args: std::fmt::Arguments<'_>) {
        if !self.dead {
            // Writing into a Vec cannot fail.
            let _ = self.buf.write_fmt(args);
            self.buf.push(b'\n');
        }
    }

    /// The empty file `event` is made only if the lines queued with it cannot
    /// be delivered (nobody reads them any more: the events folder tells the
    /// next reader instead). A problem making it is reported like any other.
    pub fn unless_heard(&mut self, event: PathBuf) {
        self.unheard.push(event);
        if self.dead {
            self.make_unheard();
        }
    }

    /// Write what is queued; after a failure nothing more is written, and the
    /// event files of what was not delivered are made.
    pub fn flush(&mut self) {
        if !self.dead && !self.buf.is_empty() {
            let ok = self
                .sink
                .write_all(&self.buf)
                .and_then(|()| self.sink.flush());
            self.dead = ok.is_err();
        }
        self.buf.clear();
        if self.dead {
            self.make_unheard();
        }
        self.unheard.clear();
    }

    fn make_unheard(&mut self) {
        for path in self.unheard.drain(..) {
            let made = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path);
            if let Err(err) = made {
                eprintln!("xqdecl executor: cannot write {}: {err}", path.display());
            }
        }
    }
}

/// A borrowed descriptor as a `Write` (fd 1 is not ours to close). A
/// non-blocking descriptor is waited on rather than failed.
#[derive(Debug)]
pub struct FdWriter(pub RawFd);

impl Write for FdWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `data` is readable for its length.
            let n = unsafe { libc::write(self.0, data.as_ptr().cast(), data.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    let mut pfd = libc::pollfd {
                        fd: self.0,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut pfd, 1, -1) };
                }
                _ => return Err(err),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
