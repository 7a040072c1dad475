//! Starting a job inside its cgroup without a fork of the executor.
//!
//! A cgroup is entered by writing to its `cgroup.procs`; a child is born in its
//! parent's cgroup. Entering in the child (between fork and exec) forces a real
//! fork of the executor, which costs far more than the job's own start; so the
//! executor moves itself into the job's cgroup, starts the job the fast way (a
//! vfork-like spawn), and moves back home. The job is in its cgroup from its
//! first instruction, so nothing it starts can escape it.
//!
//! Home is the `launcher` cgroup beside the job's (the runner puts the executor
//! there: `<run>/launcher` next to `<run>/<slot>`, see backends/cgroup.py). The
//! runner kills a job's cgroup only after the job ended, and hands it to the
//! next job only after that, so the executor is never inside a cgroup being killed.
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The name of the executor's own cgroup, beside the jobs' ones.
const HOME: &str = "launcher";

/// Open `cgroup.procs` files, by path (a run reuses a few slots for all its jobs).
#[derive(Debug, Default)]
pub struct Cgroups {
    files: HashMap<PathBuf, Option<File>>,
}

impl Cgroups {
    fn file(&mut self, procs: &Path) -> Option<&mut File> {
        self.files
            .entry(procs.to_path_buf())
            .or_insert_with(|| OpenOptions::new().write(true).open(procs).ok())
            .as_mut()
    }

    /// Run `start` with the executor inside the cgroup of `procs`, then move it
    /// home. None (and `start` not run) when that cannot be done: the caller
    /// then enters the cgroup in the child instead.
    pub fn inside<T>(&mut self, procs: &Path, start: impl FnOnce() -> T) -> Option<T> {
        let home = procs.parent()?.parent()?.join(HOME).join("cgroup.procs");
        self.file(&home)?;
        enter(self.file(procs)?).then_some(())?;
        let out = start();
        let mut back = false;
        for _ in 0..100 {
            if let Some(file) = self.file(&home) {
                back = enter(file);
            }
            if back {
                break;
            }
            self.files.remove(&home); // opened again on the next try
        }
        if !back {
            // staying in a job's cgroup would end the executor with that job
            eprintln!("xqdecl executor: cannot move back to {}", home.display());
            std::process::exit(70);
        }
        Some(out)
    }
}

/// Move the calling process into the cgroup whose `cgroup.procs` is open as `file`.
fn enter(file: &mut File) -> bool {
    file.write_all(b"0").is_ok()
}
