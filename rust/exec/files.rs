//! The files of a direct-mode job: start line, output files, rc file, events.
//!
//! The executor is their single writer. Every step reports its own failure so
//! the driver can tell the user; none of them stops the job from being reported.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::reap::signal_name;

/// Where one trial of one job writes.
#[derive(Debug)]
pub struct Files {
    dir: PathBuf,
    events: PathBuf,
    index: u64,
    trial: u64,
}

impl Files {
    pub fn new(dir: &Path, events: &Path, index: u64, trial: u64) -> Self {
        Files {
            dir: dir.to_path_buf(),
            events: events.to_path_buf(),
            index,
            trial,
        }
    }

    /// `<metadir>/<stem>.<trial>`
    pub fn path(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.{}", self.trial))
    }

    /// The metadir itself (its parents are the runner's).
    pub fn make_dir(&self) -> Result<(), String> {
        match fs::create_dir(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(problem(&self.dir, &e)),
            _ => Ok(()),
        }
    }

    /// `stdout.<t>` and `stderr.<t>`, emptied, for the job's fds 1 and 2.
    pub fn open_outputs(&self) -> Result<(File, File), String> {
        let open = |stem: &str| {
            let p = self.path(stem);
            create(&p, false).map_err(|e| problem(&p, &e))
        };
        Ok((open("stdout")?, open("stderr")?))
    }

    /// `start.<t>`: `<host> <pid> <epoch>`.
    pub fn write_start(&self, host: &str, pid: u32, stamp: &str) -> Result<(), String> {
        let p = self.path("start");
        let sep = if stamp.is_empty() { "" } else { " " };
        let line = format!("{host} {pid} {}{sep}{stamp}\n", epoch());
        write_whole(&p, line.as_bytes(), false).map_err(|e| problem(&p, &e))
    }

    /// The empty file `<events>/<index>.<t>.<suffix>`.
    pub fn event(&self, suffix: &str) -> Result<(), String> {
        let p = self.event_path(suffix);
        create(&p, false).map(drop).map_err(|e| problem(&p, &e))
    }

    /// Where `event(suffix)` makes its file.
    pub fn event_path(&self, suffix: &str) -> PathBuf {
        self.events
            .join(format!("{}.{}.{suffix}", self.index, self.trial))
    }

    /// Add a line to `stderr.<t>` (opened again: the job may have replaced it).
    pub fn append_stderr(&self, line: &str) -> Result<(), String> {
        let p = self.path("stderr");
        write_whole(&p, line.as_bytes(), true).map_err(|e| problem(&p, &e))
    }

    /// Steps after the job ended: the stderr note, the rc file (temp + rename),
    /// then the end event that names the rc (without `event`, only when the rc
    /// file could not be written: a bare `e`). Problems come back as messages.
    pub fn record_end(&self, rc: i32, why: &str, signal: Option<i32>, event: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let note = if !why.is_empty() {
            Some(format!("xqdecl: {why} (rc {rc})\n"))
        } else {
            signal.and_then(signal_name).map(|name| {
                format!("xqdecl: the command ended with status {rc} (signal SIG{name})\n")
            })
        };
        if let Some(note) = note {
            problems.extend(self.append_stderr(&note).err());
        }
        let tmp = self.dir.join(format!("rc.{}.tmp", self.trial));
        let body = format!("{rc}\n{why}\n");
        let written = write_whole(&tmp, body.as_bytes(), false)
            .and_then(|()| fs::rename(&tmp, self.path("rc")))
            .map_err(|e| problem(&self.path("rc"), &e));
        let suffix = match written {
            Ok(()) if !event => return problems,
            Ok(()) => format!("e{rc}"),
            Err(p) => {
                problems.push(p);
                "e".to_string()
            }
        };
        problems.extend(self.event(&suffix).err());
        problems
    }
}

fn create(path: &Path, append: bool) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(!append)
        .append(append)
        .mode(0o666)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

fn write_whole(path: &Path, data: &[u8], append: bool) -> io::Result<()> {
    create(path, append)?.write_all(data)
}

fn problem(path: &Path, err: &io::Error) -> String {
    format!("cannot write {}: {}", path.display(), os_text(err))
}

/// An error's text without std's " (os error N)" tail, as a shell would print it.
pub fn os_text(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(cut) if text.ends_with(')') => text[..cut].to_string(),
        _ => text,
    }
}

/// Seconds since 1970 with 6 decimals and a dot, whatever the locale.
pub fn epoch() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:06}", d.as_secs(), d.subsec_micros())
}

/// The kernel's host name (an inherited HOSTNAME may name another host).
pub fn hostname() -> String {
    if let Ok(text) = fs::read_to_string("/proc/sys/kernel/hostname") {
        let name = text.trim_end_matches('\n');
        if !name.is_empty() {
            return name.to_string();
        }
    }
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is what we pass.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match ok {
        true => String::from_utf8_lossy(&buf[..len]).into_owned(),
        false => String::new(),
    }
}
