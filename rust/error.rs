//! The crate's one error type. Parsing never fails (unusable input is "no
//! information yet"); errors only come from misuse or from the filesystem
//! when constructing a poller, or from the system calls of the executor's loop.
use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// A filesystem call failed on `path`.
    Io { path: PathBuf, source: io::Error },
    /// An argument out of its range (e.g. zero threads).
    InvalidArgument(String),
    /// A system call on no path failed (the executor's poll, waitid, pipe...).
    Sys {
        call: &'static str,
        source: io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::InvalidArgument(msg) => f.write_str(msg),
            Error::Sys { call, source } => write!(f, "{call}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Sys { source, .. } => Some(source),
            Error::InvalidArgument(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_path() {
        let e = Error::io("/x/y", io::Error::from(io::ErrorKind::NotFound));
        assert!(e.to_string().starts_with("/x/y: "));
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(Error::InvalidArgument("bad".into()).to_string(), "bad");
        let e = Error::Sys {
            call: "poll",
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert!(e.to_string().starts_with("poll: "));
    }
}
