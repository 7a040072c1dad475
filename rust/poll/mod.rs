//! The poller core: which jobs are in flight and what was already reported.
//!
//! `poll_events` (events.rs) is O(1) when idle; `sweep` (sweep.rs) is the safety
//! net over every watched job. Both come in two shapes: one call for plain-Rust
//! callers, and begin/step/finish for callers that must stay responsive between
//! bounded steps (the Python adapter checks for Ctrl-C there).
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

mod events;
pub mod fsys;
pub mod rc;
mod state;
mod sweep;
#[cfg(test)]
pub(crate) mod testdir;
#[cfg(test)]
mod tests;
mod threads;

pub use events::EventsPass;
pub use state::Change;
use state::Job;
pub use sweep::SweepPass;

/// Jobs in flight under one rundir.
#[derive(Debug)]
pub struct Poller {
    rundir: PathBuf,
    jobs_dir: PathBuf,
    events_dir: PathBuf,
    threads: usize,
    /// Compact per-job state, indexed by slot; `slots` maps job index -> slot.
    jobs: Vec<Job>,
    slots: HashMap<u64, usize>,
    /// Signature (mtime, inode) of `events/` when it was last listed in full.
    events_sig: Option<(i64, u64)>,
    /// Jobs an end event named whose rc gave nothing yet: looked at on every events pass.
    recheck: HashSet<u64>,
}

impl Poller {
    /// A poller for `rundir`, which must be an existing folder.
    pub fn new(rundir: impl Into<PathBuf>, threads: usize) -> Result<Self> {
        let rundir = rundir.into();
        let meta = fs::metadata(&rundir).map_err(|e| Error::io(&rundir, e))?;
        if !meta.is_dir() {
            return Err(Error::io(
                &rundir,
                io::Error::from(io::ErrorKind::NotADirectory),
            ));
        }
        let mut p = Poller {
            jobs_dir: rundir.join("jobs"),
            events_dir: rundir.join("events"),
            rundir,
            threads: 1,
            jobs: Vec::new(),
            slots: HashMap::new(),
            events_sig: None,
            recheck: HashSet::new(),
        };
        p.set_threads(threads)?;
        Ok(p)
    }

    pub fn rundir(&self) -> &Path {
        &self.rundir
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Threads used by large sweeps and event batches (1 to 64).
    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        if !(1..=64).contains(&threads) {
            return Err(Error::InvalidArgument(format!(
                "threads must be 1..64, not {threads}"
            )));
        }
        self.threads = threads;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Watch (index, trial) pairs; another trial of a watched index replaces it.
    pub fn watch(&mut self, jobs: &[(u64, u64)]) {
        self.jobs.reserve(jobs.len());
        self.slots.reserve(jobs.len());
        for &(index, trial) in jobs {
            match self.slots.get(&index) {
                Some(&slot) if self.jobs[slot].trial == trial => {}
                Some(&slot) => {
                    self.jobs[slot] = Job::new(&self.jobs_dir, index, trial);
                    self.recheck.remove(&index);
                }
                None => {
                    self.slots.insert(index, self.jobs.len());
                    self.jobs.push(Job::new(&self.jobs_dir, index, trial));
                }
            }
        }
    }

    /// Stop watching these indexes (unknown ones are ignored).
    pub fn unwatch(&mut self, indexes: &[u64]) {
        for index in indexes {
            self.remove(*index);
        }
    }

    /// The (index, trial) pairs watched, in no particular order.
    pub fn watched(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.jobs.iter().map(|j| (j.index, j.trial))
    }

    fn remove(&mut self, index: u64) {
        self.recheck.remove(&index);
        if let Some(slot) = self.slots.remove(&index) {
            self.jobs.swap_remove(slot);
            if let Some(moved) = self.jobs.get(slot) {
                self.slots.insert(moved.index, slot);
            }
        }
    }
}
