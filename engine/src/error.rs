//! The engine's error type: definite errors carry a stable code and a hint, transient ones are retried.

use std::fmt;

/// A stable error code with the one-line summary and the hint a DBA can act on.
#[derive(Debug, PartialEq, Eq)]
pub struct Code {
    pub id: &'static str,
    pub summary: &'static str,
    pub hint: &'static str,
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id)
    }
}

/// Errors of the engine. `Definite` stops the task; `Transient` may be retried within a retry window.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{code} {summary}: {detail}", code = code.id, summary = code.summary)]
    Definite {
        code: &'static Code,
        detail: String,
        /// The MySQL error number behind it, when the server sent one.
        errno: Option<u16>,
    },
    #[error("transient failure: {detail}")]
    Transient {
        detail: String,
        /// The MySQL error number behind it, when the server sent one.
        mysql_errno: Option<u16>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn definite(code: &'static Code, detail: impl Into<String>) -> Self {
        Error::Definite {
            code,
            detail: detail.into(),
            errno: None,
        }
    }

    /// A failure that may pass if retried (no server error number behind it).
    pub fn transient(detail: impl Into<String>) -> Self {
        Error::Transient {
            detail: detail.into(),
            mysql_errno: None,
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transient { .. })
    }

    /// The stable code, or `FERRY-NET-001`'s family for transient failures that outlived their retries.
    pub fn code(&self) -> &'static Code {
        match self {
            Error::Definite { code, .. } => code,
            Error::Transient { .. } => &crate::codes::TRANSIENT_EXHAUSTED,
        }
    }

    /// The MySQL error number behind the error, when a server sent one.
    pub fn mysql_errno(&self) -> Option<u16> {
        match self {
            Error::Transient { mysql_errno, .. } => *mysql_errno,
            Error::Definite { errno, .. } => *errno,
        }
    }

    pub fn hint(&self) -> &'static str {
        self.code().hint
    }

    /// Adds what was being done to the detail, keeping the code and the class.
    pub fn context(self, what: impl fmt::Display) -> Self {
        match self {
            Error::Definite {
                code,
                detail,
                errno,
            } => Error::Definite {
                code,
                detail: format!("{what}: {detail}"),
                errno,
            },
            Error::Transient {
                detail,
                mysql_errno,
            } => Error::Transient {
                detail: format!("{what}: {detail}"),
                mysql_errno,
            },
        }
    }
}

/// `result.ctx("copying shop.orders")?` adds context to an engine error.
pub trait ResultExt<T> {
    fn ctx(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }
}
