//! The safety-net sweep: every watched job, one stat each, in bounded steps.
use std::time::{Duration, Instant};

use super::fsys;
use super::state::{Change, Job, Obs};
use super::threads::filter_map_on;
use super::Poller;

/// Below this many jobs a step stays on the calling thread.
const PARALLEL_MIN: usize = 2048;
const FIRST_STEP: usize = 16 * 1024;
const MIN_STEP: usize = 256;
const MAX_STEP: usize = 256 * 1024;
/// A step aims at this much wall time, so the caller regains control promptly.
const STEP_TARGET: Duration = Duration::from_millis(50);

/// One sweep in progress (see `Poller::sweep_begin`).
#[derive(Debug)]
pub struct SweepPass {
    now_ns: i64,
    next: usize,
    step: usize,
    changes: Vec<Change>,
    /// Slots of jobs whose rc was reported; removed by `sweep_finish`.
    ended: Vec<usize>,
}

/// Observe `jobs` (slots `base..`), on up to `threads` threads; non-empty observations.
fn observe_all(jobs: &[Job], base: usize, threads: usize, now: i64) -> Vec<(usize, Obs)> {
    let threads = if jobs.len() < PARALLEL_MIN {
        1
    } else {
        threads
    };
    filter_map_on(jobs, threads, |i, job| {
        let obs = job.observe(now);
        (!obs.is_empty()).then_some((base + i, obs))
    })
}

impl Poller {
    /// Visit every watched job once; changes sorted by index.
    pub fn sweep(&mut self) -> Vec<Change> {
        let mut pass = self.sweep_begin();
        while !self.sweep_step(&mut pass) {}
        self.sweep_finish(pass)
    }

    pub fn sweep_begin(&self) -> SweepPass {
        SweepPass {
            now_ns: fsys::now_ns(),
            next: 0,
            step: FIRST_STEP,
            changes: Vec::new(),
            ended: Vec::new(),
        }
    }

    /// Visit the next bounded batch of jobs (about STEP_TARGET of work); true when done.
    pub fn sweep_step(&mut self, pass: &mut SweepPass) -> bool {
        let start = pass.next.min(self.jobs.len());
        let end = (start + pass.step).min(self.jobs.len());
        let t0 = Instant::now();
        let found = observe_all(&self.jobs[start..end], start, self.threads, pass.now_ns);
        for (slot, obs) in found {
            let ended = obs.rc.is_some();
            if let Some(change) = self.jobs[slot].apply(obs) {
                pass.changes.push(change);
            }
            if ended {
                pass.ended.push(slot);
            }
        }
        pass.next = end;
        let took = t0.elapsed();
        if took < STEP_TARGET / 4 {
            pass.step = (pass.step * 2).min(MAX_STEP);
        } else if took > STEP_TARGET * 2 {
            pass.step = (pass.step / 2).max(MIN_STEP);
        }
        end >= self.jobs.len()
    }

    /// Unwatch the jobs that ended and return the pass's changes (sorted by index).
    /// Also right after an interrupted step: what was found is not lost.
    pub fn sweep_finish(&mut self, mut pass: SweepPass) -> Vec<Change> {
        pass.ended.sort_unstable_by(|a, b| b.cmp(a));
        for slot in pass.ended {
            let index = self.jobs[slot].index;
            self.remove(index);
        }
        pass.changes.sort_unstable_by_key(|c| c.index);
        pass.changes
    }
}
