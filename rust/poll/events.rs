//! The events path: one stat of `events/` per pass, a listing only when it
//! changed, and a look only at the jobs its entries name.
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::fsys;
use super::rc::parse_event_name;
use super::state::Change;
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
    /// Jobs to look at, sorted by index, with "an end event names it".
    targets: Vec<(u64, bool)>,
    next: usize,
    changes: Vec<Change>,
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
        let mut named: HashMap<u64, bool> = HashMap::new();
        for (name, target) in pass.entries.iter_mut() {
            let Some((index, trial, ended)) = name.to_str().and_then(parse_event_name) else {
                continue;
            };
            if self
                .slots
                .get(&index)
                .is_some_and(|&s| self.jobs[s].trial == trial)
            {
                *target = Some(index);
                *named.entry(index).or_insert(false) |= ended;
            }
        }
        for &index in &self.recheck {
            named.entry(index).or_insert(true);
        }
        pass.targets = named.into_iter().collect();
        pass.targets.sort_unstable_by_key(|t| t.0);
        pass
    }

    /// Look at the next bounded batch of named jobs; true when all were handled.
    pub fn events_step(&mut self, pass: &mut EventsPass) -> bool {
        let end = (pass.next + STEP_JOBS).min(pass.targets.len());
        let batch = &pass.targets[pass.next..end];
        let slots: Vec<usize> = batch.iter().map(|(index, _)| self.slots[index]).collect();
        let threads = if batch.len() >= PARALLEL_MIN {
            self.threads
        } else {
            1
        };
        let observed = {
            let jobs = &self.jobs;
            let look = |part: &[usize]| -> Vec<_> {
                part.iter().map(|&s| jobs[s].observe(pass.now_ns)).collect()
            };
            if threads < 2 || slots.is_empty() {
                look(&slots)
            } else {
                let per = slots.len().div_ceil(threads);
                std::thread::scope(|scope| {
                    let mut parts = slots.chunks(per);
                    let head = parts.next().expect("slots is not empty");
                    let handles: Vec<_> = parts.map(|p| scope.spawn(move || look(p))).collect();
                    let mut out = look(head);
                    for h in handles {
                        out.extend(h.join().expect("events thread panicked"));
                    }
                    out
                })
            }
        };
        for (&(index, end_named), obs) in batch.iter().zip(observed) {
            let slot = self.slots[&index];
            let ended = obs.rc.is_some();
            if let Some(change) = self.jobs[slot].apply(obs) {
                pass.changes.push(change);
            }
            if ended {
                self.remove(index);
            } else if end_named {
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
        let doomed: Vec<_> = pass
            .entries
            .iter()
            .filter(|(_, target)| handled(target))
            .map(|(name, _)| self.events_dir.join(name))
            .collect();
        let threads = if doomed.len() >= PARALLEL_MIN {
            self.threads
        } else {
            1
        };
        if threads < 2 {
            doomed.iter().for_each(|p| fsys::unlink_quietly(p));
        } else {
            let per = doomed.len().div_ceil(threads);
            std::thread::scope(|scope| {
                for part in doomed.chunks(per) {
                    scope.spawn(move || part.iter().for_each(|p| fsys::unlink_quietly(p)));
                }
            });
        }
        if pass.next >= pass.targets.len() {
            if let Some(sig) = pass.listed {
                self.events_sig = Some(sig);
            }
        }
        pass.changes
    }
}
