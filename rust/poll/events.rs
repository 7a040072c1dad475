//! The events path: one stat of `events/` per pass, a listing only when it
//! changed, and a look only at the jobs its entries name. An end event that
//! carries its rc (`<i>.<t>.e<rc>`, written by the wrapper once its rc file is
//! in place) and a start event are taken as they are: no file is read for
//! them. An end event without an rc has the job's files read.
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::fsys;
use super::rc::{parse_event_name, Event};
use super::state::{Change, Obs};
use super::threads::filter_map_on;
use super::Poller;

/// Jobs looked at per step of a big events pass.
const STEP_JOBS: usize = 8192;
/// From this many jobs in one step, their files are looked at on `threads` threads.
const PARALLEL_MIN: usize = 64;

/// One events pass in progress (see `Poller::events_begin`).
#[derive(Debug)]
pub struct EventsPass {
    now_ns: i64,
    /// The folder's signature, recorded once the whole listing was handled.
    pub(super) listed: Option<(i64, u64)>,
    /// Entries listed, with the job index they name when it is watched in that trial.
    pub(super) entries: Vec<(OsString, Option<u64>)>,
    /// Jobs the entries name, sorted by index, with what the entries say.
    targets: Vec<(u64, Named)>,
    next: usize,
    changes: Vec<Change>,
}

/// What the entries of one pass say about one job.
#[derive(Clone, Copy, Debug, Default)]
struct Named {
    started: bool,
    ended: bool,
    /// The rc an end event carried.
    rc: Option<i32>,
    /// End events named different rcs (one wrapper never does): the rc file decides.
    mixed: bool,
}

impl Named {
    fn add(&mut self, event: Event) {
        match event {
            Event::Start => self.started = true,
            Event::End(rc) => {
                self.ended = true;
                match (self.rc, rc) {
                    (None, Some(b)) => self.rc = Some(b),
                    (Some(a), Some(b)) if a != b => self.mixed = true,
                    _ => {}
                }
            }
        }
    }

    /// The rc the names tell, when they tell one.
    fn told(&self) -> Option<i32> {
        self.rc.filter(|_| !self.mixed)
    }

    /// An end event without an rc (or a recheck): the job's files must be read.
    fn needs_look(&self) -> bool {
        self.ended && self.told().is_none()
    }
}

fn folder_sig(path: &Path) -> Option<(i64, u64)> {
    let meta = fs::metadata(path).ok()?;
    let mtime = meta
        .mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec());
    Some((mtime, meta.ino()))
}

impl Poller {
    /// Handle the events folder; cheap (one stat) when nothing changed.
    pub fn poll_events(&mut self) -> Vec<Change> {
        let mut pass = self.events_begin();
        while !self.events_step(&mut pass) {}
        self.events_finish(pass)
    }

    /// Stat `events/`, list it when it changed, and find the watched jobs it names.
    pub fn events_begin(&mut self) -> EventsPass {
        let now_ns = fsys::now_ns();
        let mut pass = EventsPass {
            now_ns,
            listed: None,
            entries: Vec::new(),
            targets: Vec::new(),
            next: 0,
            changes: Vec::new(),
        };
        if let Some(sig) = folder_sig(&self.events_dir) {
            if Some(sig) != self.events_sig || now_ns.saturating_sub(sig.0) < fsys::RECENT_NS {
                if let Ok(dir) = fs::read_dir(&self.events_dir) {
                    pass.entries = dir
                        .filter_map(|e| e.ok().map(|e| (e.file_name(), None)))
                        .collect();
                    pass.listed = Some(sig);
                }
            }
        }
        let mut named: HashMap<u64, Named> = HashMap::new();
        for (name, target) in pass.entries.iter_mut() {
            let Some((index, trial, event)) = name.to_str().and_then(parse_event_name) else {
                continue;
            };
            if self
                .slots
                .get(&index)
                .is_some_and(|&s| self.jobs[s].trial == trial)
            {
                *target = Some(index);
                named.entry(index).or_default().add(event);
            }
        }
        for &index in &self.recheck {
            named.entry(index).or_default().add(Event::End(None));
        }
        pass.targets = named.into_iter().collect();
        pass.targets.sort_unstable_by_key(|t| t.0);
        pass
    }

    /// Handle the next bounded batch of named jobs; true when all were handled.
    /// Only end events without an rc have files read, on `threads` threads when many.
    pub fn events_step(&mut self, pass: &mut EventsPass) -> bool {
        let end = (pass.next + STEP_JOBS).min(pass.targets.len());
        let batch = &pass.targets[pass.next..end];
        let look: Vec<usize> = batch
            .iter()
            .filter(|(_, n)| n.needs_look())
            .map(|(index, _)| self.slots[index])
            .collect();
        let threads = if look.len() >= PARALLEL_MIN {
            self.threads
        } else {
            1
        };
        let jobs = &self.jobs;
        let now = pass.now_ns;
        let mut observed =
            filter_map_on(&look, threads, |_, &slot| Some(jobs[slot].observe(now))).into_iter();
        for &(index, named) in batch {
            let slot = self.slots[&index];
            let obs = if named.needs_look() {
                observed.next().expect("one observation per looked-at job")
            } else {
                Obs {
                    rc: named.told(),
                    start_seen: named.started,
                    ..Obs::default()
                }
            };
            let ended = obs.rc.is_some();
            if let Some(change) = self.jobs[slot].apply(obs) {
                pass.changes.push(change);
            }
            if ended {
                self.remove(index);
            } else if named.ended {
                self.recheck.insert(index);
            }
        }
        pass.next = end;
        end >= pass.targets.len()
    }

    /// Remove the handled entries and return the changes (sorted by index).
    /// After an interrupted step, entries of jobs not yet looked at stay in place.
    pub fn events_finish(&mut self, pass: EventsPass) -> Vec<Change> {
        let done = &pass.targets[..pass.next];
        let handled = |target: &Option<u64>| match target {
            None => true,
            Some(index) => done.binary_search_by_key(index, |t| t.0).is_ok(),
        };
        let doomed: Vec<&OsString> = pass
            .entries
            .iter()
            .filter(|(_, target)| handled(target))
            .map(|(name, _)| name)
            .collect();
        if !doomed.is_empty() {
            if let Some(folder) = fsys::Folder::open(&self.events_dir) {
                // unlinks in one folder partly queue on its lock: 2 threads still
                // gain about a quarter (measured in C: 5-6 µs vs 7-8 µs each)
                let threads = if doomed.len() >= PARALLEL_MIN {
                    self.threads
                } else {
                    1
                };
                filter_map_on(&doomed, threads, |_, name| {
                    folder.unlink_quietly(name);
                    None::<()>
                });
            }
        }
        if pass.next >= pass.targets.len() {
            if let Some(sig) = pass.listed {
                self.events_sig = Some(sig);
            }
        }
        pass.changes
    }
}
