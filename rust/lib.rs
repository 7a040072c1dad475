//! PyO3 adapter for the xqdecl hot loop and job executor. The plain-Rust core
//! (`poll`, `liveness`, `exec`, `error`) has no PyO3 types; this file only converts
//! values, releases the GIL around core calls and checks for signals between bounded steps.
use std::collections::HashSet;
use std::io::ErrorKind;
use std::path::PathBuf;

use pyo3::exceptions::{
    PyBlockingIOError, PyBrokenPipeError, PyConnectionAbortedError, PyConnectionRefusedError,
    PyConnectionResetError, PyFileExistsError, PyFileNotFoundError, PyInterruptedError,
    PyIsADirectoryError, PyNotADirectoryError, PyOSError, PyPermissionError, PyTimeoutError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyDict, PyString};
use pyo3::PyErrArguments;

pub mod error;
pub mod exec;
pub mod liveness;
pub mod poll;

use error::Error;
use liveness::States;
use poll::Change;

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        match err {
            Error::InvalidArgument(msg) => PyValueError::new_err(msg),
            Error::Io { path, source } => {
                let args = (
                    source.raw_os_error().unwrap_or(0),
                    source.to_string(),
                    path.to_string_lossy().into_owned(),
                );
                os_error(source.kind(), args)
            }
            Error::Sys { call, source } => {
                let args = (
                    source.raw_os_error().unwrap_or(0),
                    format!("{call}: {source}"),
                );
                os_error(source.kind(), args)
            }
        }
    }
}

/// The OSError subclass Python raises for this kind of error.
fn os_error<A: PyErrArguments + Send + Sync + 'static>(kind: ErrorKind, args: A) -> PyErr {
    match kind {
        ErrorKind::NotFound => PyFileNotFoundError::new_err(args),
        ErrorKind::PermissionDenied => PyPermissionError::new_err(args),
        ErrorKind::AlreadyExists => PyFileExistsError::new_err(args),
        ErrorKind::NotADirectory => PyNotADirectoryError::new_err(args),
        ErrorKind::IsADirectory => PyIsADirectoryError::new_err(args),
        ErrorKind::Interrupted => PyInterruptedError::new_err(args),
        ErrorKind::WouldBlock => PyBlockingIOError::new_err(args),
        ErrorKind::TimedOut => PyTimeoutError::new_err(args),
        ErrorKind::BrokenPipe => PyBrokenPipeError::new_err(args),
        ErrorKind::ConnectionRefused => PyConnectionRefusedError::new_err(args),
        ErrorKind::ConnectionReset => PyConnectionResetError::new_err(args),
        ErrorKind::ConnectionAborted => PyConnectionAbortedError::new_err(args),
        _ => PyOSError::new_err(args),
    }
}

type PyChange = (u64, u64, bool, Option<i32>);

fn to_py(changes: Vec<Change>) -> Vec<PyChange> {
    changes
        .into_iter()
        .map(|c| (c.index, c.trial, c.started, c.rc))
        .collect()
}

/// The Rust poller (same interface and behaviour as the reference `tests/oracles/poller_ref.py`).
#[pyclass(module = "xqdecl._xqdecl", name = "Poller")]
struct PyPoller {
    core: poll::Poller,
    /// Changes found by a pass that a signal interrupted: returned by the next call.
    pending: Vec<Change>,
}

#[pymethods]
impl PyPoller {
    #[new]
    #[pyo3(signature = (rundir, threads = 2))]
    fn new(rundir: PathBuf, threads: usize) -> PyResult<Self> {
        Ok(PyPoller {
            core: poll::Poller::new(rundir, threads)?,
            pending: Vec::new(),
        })
    }

    #[getter]
    fn rundir(&self) -> String {
        self.core.rundir().to_string_lossy().into_owned()
    }

    #[getter]
    fn threads(&self) -> usize {
        self.core.threads()
    }

    #[setter]
    fn set_threads(&mut self, threads: usize) -> PyResult<()> {
        Ok(self.core.set_threads(threads)?)
    }

    fn watch(&mut self, py: Python<'_>, jobs: Vec<(u64, u64)>) {
        let core = &mut self.core;
        py.detach(|| core.watch(&jobs));
    }

    fn unwatch(&mut self, indexes: Vec<u64>) {
        self.core.unwatch(&indexes);
    }

    fn poll_events(&mut self, py: Python<'_>) -> PyResult<Vec<PyChange>> {
        let Self { core, pending } = self;
        let mut pass = py.detach(|| core.events_begin());
        while !py.detach(|| core.events_step(&mut pass)) {
            if let Err(interrupt) = py.check_signals() {
                pending.extend(core.events_finish(pass));
                return Err(interrupt);
            }
        }
        let found = py.detach(|| core.events_finish(pass));
        let mut out = std::mem::take(pending);
        out.extend(found);
        Ok(to_py(out))
    }

    fn sweep(&mut self, py: Python<'_>) -> PyResult<Vec<PyChange>> {
        let Self { core, pending } = self;
        let mut pass = core.sweep_begin();
        while !py.detach(|| core.sweep_step(&mut pass)) {
            if let Err(interrupt) = py.check_signals() {
                pending.extend(core.sweep_finish(pass));
                return Err(interrupt);
            }
        }
        let mut out = std::mem::take(pending);
        out.extend(core.sweep_finish(pass));
        Ok(to_py(out))
    }

    fn __len__(&self) -> usize {
        self.core.len()
    }

    fn __repr__(&self) -> String {
        format!("Poller({:?}, watched={})", self.rundir(), self.core.len())
    }
}

/// `rc` file contents -> exit code (None: no information yet).
#[pyfunction]
fn parse_rc(data: &[u8]) -> Option<i32> {
    poll::rc::parse_rc(data)
}

/// The job executor of `python -m xqdecl.worker`: records on fd 0, reports on
/// fd 1, until fd 0 ends and every job started has been reported; the exit status.
/// `events_always=False`: a direct job's event files only once nobody reads fd 1.
#[pyfunction]
#[pyo3(signature = (grace = 10.0, events_always = true))]
fn run_executor(py: Python<'_>, grace: f64, events_always: bool) -> PyResult<i32> {
    let grace = exec::grace(grace)?;
    let events = if events_always {
        exec::Events::Always
    } else {
        exec::Events::WhenUnheard
    };
    Ok(py.detach(|| exec::run_stdio(grace, events))?)
}

type Parser = fn(&str, &HashSet<String>) -> States;

fn parse_with<'py>(
    py: Python<'py>,
    parser: Parser,
    text: PyBackedStr,
    wanted: HashSet<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let states = py.detach(|| parser(&text, &wanted));
    let out = PyDict::new(py);
    let mut names = std::collections::HashMap::new();
    for (jid, state) in states {
        let live = names
            .entry(state.liveness)
            .or_insert_with(|| PyString::intern(py, state.liveness.as_str()))
            .clone();
        out.set_item(jid, (live, state.reason))?;
    }
    Ok(out)
}

macro_rules! parsers {
    ($($name:ident),* $(,)?) => {$(
        /// See xqdecl.liveness: {jid: (liveness, reason)} for the wanted jids found.
        #[pyfunction]
        fn $name<'py>(
            py: Python<'py>,
            text: PyBackedStr,
            wanted: HashSet<String>,
        ) -> PyResult<Bound<'py, PyDict>> {
            parse_with(py, liveness::$name, text, wanted)
        }
    )*};
}
parsers!(
    parse_squeue,
    parse_sacct,
    parse_qstat,
    parse_qstat_xml,
    parse_qacct,
    parse_ps
);

#[pymodule]
fn _xqdecl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyPoller>()?;
    m.add_function(wrap_pyfunction!(parse_rc, m)?)?;
    m.add_function(wrap_pyfunction!(run_executor, m)?)?;
    m.add_function(wrap_pyfunction!(parse_squeue, m)?)?;
    m.add_function(wrap_pyfunction!(parse_sacct, m)?)?;
    m.add_function(wrap_pyfunction!(parse_qstat, m)?)?;
    m.add_function(wrap_pyfunction!(parse_qstat_xml, m)?)?;
    m.add_function(wrap_pyfunction!(parse_qacct, m)?)?;
    m.add_function(wrap_pyfunction!(parse_ps, m)?)?;
    Ok(())
}
