//! The input parser: job records as NUL-ended fields, in any chunking.
//!
//! Pure (no I/O): bytes go in with `feed`, complete records and complaints come
//! out. Each complete field is handed to a small state machine, so a record that
//! arrives a byte at a time costs no more than one that arrives whole. After a
//! malformed record the parser skips fields until the next one that is exactly
//! "J"; only a field too long to hold makes it stop for good.
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::Duration;

use super::{Mode, Record};

/// Longest field kept while waiting for its NUL (Linux takes 128 KiB per argument).
pub const MAX_FIELD: usize = 1 << 20;
/// Most argv or env entries one record may announce.
const MAX_COUNT: usize = 1 << 20;

/// What the parser found.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Record(Box<Record>),
    /// `C`, index, trial: stop that job as a cancel does (SIGTERM, SIGKILL after the grace).
    Cancel(u64, u64),
    /// A record was skipped; the text says why.
    Malformed(String),
    /// The input cannot be followed any further: read no more of it.
    Stop(String),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Tag,
    CancelIndex,
    CancelTrial,
    Index,
    Trial,
    Mode,
    Metadir,
    Events,
    Cwd,
    Timeout,
    Label,
    Cgroup,
    Stamp,
    Argc,
    Argv(usize),
    Envc,
    Env(usize),
    Skip,
}

/// The record being put together, field by field.
struct Builder {
    step: Step,
    timeout_text: Vec<u8>,
    rec: Record,
}

impl Builder {
    fn new() -> Self {
        Builder {
            step: Step::Tag,
            timeout_text: Vec::new(),
            rec: Record::default(),
        }
    }

    /// Take one complete field; a finished record or a complaint may come out.
    fn take(&mut self, field: &[u8]) -> Option<Parsed> {
        match self.step {
            Step::Skip | Step::Tag if field == b"J" => self.restart(),
            Step::Skip | Step::Tag if field == b"C" => {
                *self = Builder::new();
                self.step = Step::CancelIndex;
            }
            Step::Skip => {}
            step => match self.advance(step, field) {
                Ok(done) if self.step == Step::Tag && matches!(step, Step::CancelTrial) => {
                    debug_assert!(done);
                    return Some(Parsed::Cancel(self.rec.index, self.rec.trial));
                }
                Ok(done) => return done.then(|| self.finish()),
                Err(what) => {
                    let job = match step {
                        Step::Tag | Step::Index | Step::CancelIndex => String::new(),
                        Step::Trial | Step::CancelTrial => format!(" (job {})", self.rec.index),
                        _ => format!(" (job {}.{})", self.rec.index, self.rec.trial),
                    };
                    self.step = Step::Skip;
                    if field == b"J" {
                        self.restart(); // a record cut short, then a new one
                    }
                    return Some(Parsed::Malformed(format!("malformed record{job}: {what}")));
                }
            },
        }
        None
    }

    fn restart(&mut self) {
        *self = Builder::new();
        self.step = Step::Index;
    }

    /// Store `field` for `step` and move on; true when the record is complete.
    fn advance(&mut self, step: Step, field: &[u8]) -> Result<bool, String> {
        let r = &mut self.rec;
        self.step = match step {
            Step::Tag => return Err(format!("expected \"J\" or \"C\", got {}", shown(field))),
            Step::CancelIndex => {
                r.index = number(field, "index")?;
                Step::CancelTrial
            }
            Step::CancelTrial => {
                r.trial = number(field, "trial")?;
                self.step = Step::Tag;
                return Ok(true);
            }
            Step::Index => {
                r.index = number(field, "index")?;
                Step::Trial
            }
            Step::Trial => {
                r.trial = number(field, "trial")?;
                Step::Mode
            }
            Step::Mode => {
                r.mode = match field {
                    b"direct" => Mode::Direct,
                    b"wrapper" => Mode::Wrapper,
                    _ => return Err(format!("unknown mode {}", shown(field))),
                };
                Step::Metadir
            }
            Step::Metadir => {
                r.metadir = path(field);
                Step::Events
            }
            Step::Events => {
                r.events = path(field);
                Step::Cwd
            }
            Step::Cwd => {
                r.cwd = (!field.is_empty()).then(|| path(field));
                Step::Timeout
            }
            Step::Timeout => {
                self.timeout_text = field.to_vec();
                Step::Label
            }
            Step::Label => {
                r.timeout_label = String::from_utf8_lossy(field).into_owned();
                Step::Cgroup
            }
            Step::Cgroup => {
                r.cgroup = (!field.is_empty()).then(|| path(field));
                Step::Stamp
            }
            Step::Stamp => {
                if field.iter().any(|b| b.is_ascii_whitespace()) {
                    return Err(format!("stamp {} is not one word", shown(field)));
                }
                r.stamp = String::from_utf8_lossy(field).into_owned();
                Step::Argc
            }
            Step::Argc => match number(field, "argc")? {
                0 => return Err("argc is 0".into()),
                n if n > MAX_COUNT as u64 => return Err(format!("argc {n} is too large")),
                n => {
                    r.argv.reserve(n.min(64) as usize);
                    Step::Argv(n as usize)
                }
            },
            Step::Argv(left) => {
                r.argv.push(OsString::from_vec(field.to_vec()));
                if left > 1 {
                    Step::Argv(left - 1)
                } else {
                    Step::Envc
                }
            }
            Step::Envc => match number(field, "envc")? {
                0 => return Ok(true),
                n if n > MAX_COUNT as u64 => return Err(format!("envc {n} is too large")),
                n => Step::Env(n as usize),
            },
            Step::Env(left) => {
                let eq = field.iter().position(|&b| b == b'=');
                let Some(eq) = eq.filter(|&eq| eq > 0) else {
                    return Err(format!("env entry {} is not KEY=VALUE", shown(field)));
                };
                r.env.push((
                    OsString::from_vec(field[..eq].to_vec()),
                    OsString::from_vec(field[eq + 1..].to_vec()),
                ));
                if left == 1 {
                    return Ok(true);
                }
                Step::Env(left - 1)
            }
            Step::Skip => Step::Skip,
        };
        Ok(false)
    }

    /// Check what only the whole record can tell, and hand it out.
    fn finish(&mut self) -> Parsed {
        let mut done = std::mem::replace(self, Builder::new());
        let r = &mut done.rec;
        let id = format!("malformed record (job {}.{})", r.index, r.trial);
        if r.mode == Mode::Direct {
            if !r.metadir.is_absolute() || !r.events.is_absolute() {
                return Parsed::Malformed(format!("{id}: metadir and events must be absolute"));
            }
            match timeout(&done.timeout_text) {
                Ok(t) => r.timeout = t,
                Err(what) => return Parsed::Malformed(format!("{id}: {what}")),
            }
            if r.timeout.is_some() && r.timeout_label.is_empty() {
                r.timeout_label = format!("{}s", String::from_utf8_lossy(&done.timeout_text));
            }
        }
        Parsed::Record(Box::new(done.rec))
    }
}

/// Splits the input into fields and feeds them to the builder.
pub struct Parser {
    buf: Vec<u8>,
    build: Builder,
    stopped: bool,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    pub fn new() -> Self {
        Parser {
            buf: Vec::new(),
            build: Builder::new(),
            stopped: false,
        }
    }

    /// Add `data`; what it completes is pushed to `out`, in input order.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Parsed>) {
        if self.stopped {
            return;
        }
        let old = self.buf.len();
        self.buf.extend_from_slice(data);
        let mut start = 0;
        let mut from = old;
        while let Some(nul) = self.buf[from..].iter().position(|&b| b == 0) {
            let end = from + nul;
            out.extend(self.build.take(&self.buf[start..end]));
            start = end + 1;
            from = start;
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_FIELD {
            self.stopped = true;
            self.buf = Vec::new();
            out.push(Parsed::Stop(format!(
                "an input field is longer than {MAX_FIELD} bytes: no more records are read"
            )));
        }
    }

    /// The input ended: a record left half-way is a complaint.
    pub fn finish(&mut self, out: &mut Vec<Parsed>) {
        let inside = !matches!(self.build.step, Step::Tag | Step::Skip);
        if !self.stopped && (inside || !self.buf.is_empty()) {
            out.push(Parsed::Malformed("the input ended inside a record".into()));
        }
        self.buf.clear();
        self.build = Builder::new();
    }
}

fn number(field: &[u8], what: &str) -> Result<u64, String> {
    let text = std::str::from_utf8(field).unwrap_or("");
    match text.bytes().all(|b| b.is_ascii_digit()) {
        true => text.parse().ok(),
        false => None,
    }
    .ok_or_else(|| format!("{what} {} is not a number", shown(field)))
}

/// "" is no timeout; so is 0, as in the bash wrapper.
fn timeout(text: &[u8]) -> Result<Option<Duration>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let secs: Option<f64> = std::str::from_utf8(text).ok().and_then(|t| t.parse().ok());
    match secs {
        Some(0.0) => Ok(None),
        Some(s) if s > 0.0 => Ok(Duration::try_from_secs_f64(s).ok()),
        _ => Err(format!("timeout {} is not a count of seconds", shown(text))),
    }
}

fn path(field: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(field.to_vec()))
}

/// A field as a message shows it: quoted, escaped, cut short.
fn shown(field: &[u8]) -> String {
    let cut = &field[..field.len().min(40)];
    let more = if field.len() > cut.len() { "..." } else { "" };
    format!("\"{}{more}\"", cut.escape_ascii())
}
