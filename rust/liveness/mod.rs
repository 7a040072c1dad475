//! Batched liveness: a scheduler's one-call status output -> job states.
//!
//! Every parser takes the output text and the caller's set of wanted job ids and
//! returns states for the wanted ids found, nothing else. Cost is proportional to
//! the output's lines plus the wanted ids: a collapsed array range is never
//! expanded beyond the wanted tasks it covers. The rules are in python/xqdecl/liveness.py;
//! the pure-Python reference the differential tests compare with, in tests/oracles/liveness_ref.py.
use std::collections::{HashMap, HashSet};

mod ps;
pub mod ranges;
mod sge;
mod slurm;
mod text;

pub use ps::parse_ps;
pub use sge::{parse_qacct, parse_qstat, parse_qstat_xml};
pub use slurm::{parse_sacct, parse_squeue, slurm_state};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Liveness {
    Pending,
    Running,
    Done,
    Failed,
}

impl Liveness {
    /// The value of the matching `xqdecl.backends.base.Liveness` member.
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Pending => "pending",
            Liveness::Running => "running",
            Liveness::Done => "done",
            Liveness::Failed => "failed",
        }
    }
}

/// One job's liveness; `reason` is the scheduler's word for a failure, else empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobState {
    pub liveness: Liveness,
    pub reason: String,
}

impl JobState {
    pub fn new(liveness: Liveness) -> Self {
        JobState {
            liveness,
            reason: String::new(),
        }
    }

    pub fn failed(reason: impl Into<String>) -> Self {
        JobState {
            liveness: Liveness::Failed,
            reason: reason.into(),
        }
    }
}

pub type States = HashMap<String, JobState>;

/// The caller's job ids, plus an index of array tasks by parent id (built on first use).
pub struct Wanted<'a> {
    jids: &'a HashSet<String>,
    sep: char,
    tasks: Option<HashMap<&'a str, HashMap<u64, Vec<&'a str>>>>,
}

impl<'a> Wanted<'a> {
    pub fn new(jids: &'a HashSet<String>, sep: char) -> Self {
        Wanted {
            jids,
            sep,
            tasks: None,
        }
    }

    pub fn contains(&self, jid: &str) -> bool {
        self.jids.contains(jid)
    }

    fn tasks_of(&mut self, base: &str) -> Option<&HashMap<u64, Vec<&'a str>>> {
        let (jids, sep) = (self.jids, self.sep);
        self.tasks
            .get_or_insert_with(|| {
                let mut map: HashMap<&'a str, HashMap<u64, Vec<&'a str>>> = HashMap::new();
                for jid in jids {
                    let Some((b, t)) = jid.split_once(sep) else {
                        continue;
                    };
                    if let (Some(_), Some(task)) = (text::int18(b), text::int18(t)) {
                        map.entry(b).or_default().entry(task).or_default().push(jid);
                    }
                }
                map
            })
            .get(base)
    }

    /// Call `hit` with each wanted `base<sep>task` whose task is in `ranges`;
    /// cost min(range size, wanted tasks of base) per range.
    pub fn in_ranges(
        &mut self,
        base: &str,
        ranges: &[ranges::Range],
        mut hit: impl FnMut(&'a str),
    ) {
        let Some(tasks) = self.tasks_of(base) else {
            return;
        };
        for r in ranges {
            if r.count() <= tasks.len() as u64 {
                for t in r.iter() {
                    tasks.get(&t).into_iter().flatten().for_each(|j| hit(j));
                }
            } else {
                for (&t, jids) in tasks {
                    if r.contains(t) {
                        jids.iter().for_each(|j| hit(j));
                    }
                }
            }
        }
    }
}
