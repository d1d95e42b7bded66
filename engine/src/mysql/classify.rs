//! Classifies MySQL/MariaDB errors by error number into transient or definite (with a code); never by message text.

use crate::codes;
use crate::error::{Code, Error};

/// What to do about a server error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Retry: the same statement may succeed later.
    Transient,
    /// Stop: retrying cannot help.
    Definite(&'static Code),
}

/// Error numbers shared by MySQL and MariaDB (and the client-side CR_* numbers).
pub fn classify(errno: u16) -> Class {
    use Class::*;
    match errno {
        // Lock wait timeout, deadlock, too many connections, server shutdown in progress, query interrupted
        // by shutdown, connection killed (MariaDB 1927), lost connection/gone away (client 2006, 2013),
        // can't connect (2002, 2003), net read/write interrupted (1158-1161), out of resources (1041).
        1205 | 1213 | 1040 | 1053 | 1927 | 2006 | 2013 | 2002 | 2003 | 1158 | 1159 | 1160
        | 1161 | 1041 | 1043 => Transient,
        // Access denied to the server, a database, a table, a column, a privilege, a routine.
        1045 | 1698 => Definite(&codes::CON_AUTH),
        1044 | 1142 | 1143 | 1227 | 1370 | 1211 => Definite(&codes::PRIV_MISSING),
        // Unknown database / table.
        1049 | 1146 => Definite(&codes::SCH_NOT_FOUND),
        // Object exists.
        1050 | 1304 | 1359 | 1537 | 1007 => Definite(&codes::SCH_NAME_CONFLICT),
        // Duplicate key.
        1062 | 1586 => Definite(&codes::DATA_DUPLICATE),
        // Data too long, incorrect value, out of range, truncated, cannot be null, invalid json/geometry,
        // foreign key failure on a row.
        1406 | 1366 | 1264 | 1265 | 1048 | 1292 | 3140 | 3037 | 4038 | 1452 | 1451 | 1416 => {
            Definite(&codes::DATA_REJECTED)
        }
        // Packet too big.
        1153 | 1301 => Definite(&codes::DATA_PACKET),
        // Syntax, unknown engine/charset/collation, unsupported feature, wrong DDL.
        1064 | 1286 | 1115 | 1273 | 1235 | 1005 | 1067 | 1071 | 1170 | 1059 | 1166 => {
            Definite(&codes::SCH_CREATE_FAILED)
        }
        // MariaDB ER_SLAVE_SAME_ID: a newer dump under our replica server_id made the source end ours.
        4052 => Definite(&codes::CDC_REPLICA_ID_TAKEN),
        _ => Definite(&codes::SQL_OTHER),
    }
}

/// Errors a DDL statement gets when it already took effect: database exists (1007), table exists (1050) or is unknown (1051, 1146),
/// duplicate column (1060) or key name (1061), multiple primary keys (1068), unknown column (1054), cannot drop a
/// missing column or key (1091), key does not exist (1176), routine exists (1304) or does not (1305), trigger
/// exists (1359), duplicate FK name (1826). Only meaningful for a statement being replayed.
pub fn already_applied(errno: u16) -> bool {
    matches!(
        errno,
        1007 | 1050
            | 1051
            | 1146
            | 1060
            | 1061
            | 1068
            | 1054
            | 1091
            | 1176
            | 1304
            | 1305
            | 1359
            | 1826
    )
}

impl From<mysql_async::Error> for Error {
    fn from(e: mysql_async::Error) -> Self {
        match &e {
            mysql_async::Error::Server(se) => match classify(se.code) {
                Class::Transient => Error::Transient {
                    detail: format!("server error {} ({}): {}", se.code, se.state, se.message),
                    mysql_errno: Some(se.code),
                },
                Class::Definite(code) => Error::Definite {
                    code,
                    detail: format!("server error {} ({}): {}", se.code, se.state, se.message),
                    errno: Some(se.code),
                },
            },
            mysql_async::Error::Io(_) => Error::Transient {
                detail: e.to_string(),
                mysql_errno: None,
            },
            mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed)
            | mysql_async::Error::Driver(mysql_async::DriverError::PoolDisconnected) => {
                Error::Transient {
                    detail: e.to_string(),
                    mysql_errno: None,
                }
            }
            mysql_async::Error::Driver(_) | mysql_async::Error::Other(_) => {
                Error::definite(&codes::SQL_OTHER, e.to_string())
            }
            mysql_async::Error::Url(_) => Error::definite(&codes::CFG_BAD_VALUE, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_numbers_are_transient() {
        for errno in [1205, 1213, 2006, 2013, 1927] {
            assert_eq!(classify(errno), Class::Transient, "{errno}");
        }
    }

    #[test]
    fn definite_numbers_carry_codes() {
        assert_eq!(classify(1045), Class::Definite(&codes::CON_AUTH));
        assert_eq!(classify(1142), Class::Definite(&codes::PRIV_MISSING));
        assert_eq!(classify(1062), Class::Definite(&codes::DATA_DUPLICATE));
        assert_eq!(classify(1406), Class::Definite(&codes::DATA_REJECTED));
        assert_eq!(classify(1050), Class::Definite(&codes::SCH_NAME_CONFLICT));
        assert_eq!(classify(9999), Class::Definite(&codes::SQL_OTHER));
    }

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for c in codes::ALL {
            assert!(c.id.starts_with("FERRY-"), "{}", c.id);
            assert!(seen.insert(c.id), "duplicate code {}", c.id);
            assert!(!c.hint.is_empty());
        }
    }
}
