//! The session a statement ran in on the source, read from its query event's status variables, and the SET
//! statements that give a destination session the same context before the statement is replayed there.
//!
//! A replica does the same with these variables (sql_mode, time zone, client character set and collations, the
//! statement's timestamp with microseconds, explicit_defaults_for_timestamp, foreign_key_checks): without them a
//! DDL replayed under ferry's own session settings can mean something else (`||` as OR instead of concatenation,
//! `"a"` as a string instead of a column, a TIMESTAMP default read in another time zone, CURRENT_TIMESTAMP taken
//! from the destination's clock, non-ASCII bytes of a latin1 client read as UTF-8).
//!
//! The status variable layout is parsed here rather than through mysql_common's iterator, which stops at MariaDB's
//! own keys (128 and up), so a MariaDB event's later variables would be lost.

use crate::codes;
use crate::error::{Error, Result};

/// Status variable keys (MySQL's `Q_*`; MariaDB shares 0-13 and adds 128-131).
mod key {
    pub const FLAGS2: u8 = 0;
    pub const SQL_MODE: u8 = 1;
    pub const CATALOG: u8 = 2;
    pub const AUTO_INCREMENT: u8 = 3;
    pub const CHARSET: u8 = 4;
    pub const TIME_ZONE: u8 = 5;
    pub const CATALOG_NZ: u8 = 6;
    pub const LC_TIME_NAMES: u8 = 7;
    pub const CHARSET_DATABASE: u8 = 8;
    pub const TABLE_MAP_FOR_UPDATE: u8 = 9;
    pub const MASTER_DATA_WRITTEN: u8 = 10;
    pub const INVOKER: u8 = 11;
    pub const UPDATED_DB_NAMES: u8 = 12;
    pub const MICROSECONDS: u8 = 13;
    pub const COMMIT_TS: u8 = 14;
    pub const COMMIT_TS2: u8 = 15;
    pub const EXPLICIT_DEFAULTS_FOR_TIMESTAMP: u8 = 16;
    pub const DDL_LOGGED_WITH_XID: u8 = 17;
    pub const DEFAULT_COLLATION_FOR_UTF8MB4: u8 = 18;
    pub const SQL_REQUIRE_PRIMARY_KEY: u8 = 19;
    pub const DEFAULT_TABLE_ENCRYPTION: u8 = 20;
    /// MariaDB: microseconds of the statement's timestamp (3 bytes).
    pub const HRNOW: u8 = 128;
    pub const XID: u8 = 129;
    pub const GTID_FLAGS3: u8 = 130;
    /// MariaDB 11.2+: count, then that many pairs of 2-byte collation ids.
    pub const CHARACTER_SET_COLLATIONS: u8 = 131;
}

/// `flags2` bits (the options the server writes to the binlog).
mod flags2 {
    pub const NO_FOREIGN_KEY_CHECKS: u32 = 1 << 26;
    /// MariaDB only: explicit_defaults_for_timestamp (MySQL writes status variable 16 instead).
    pub const MARIADB_EXPLICIT_DEFAULTS_FOR_TIMESTAMP: u32 = 1 << 24;
}

/// MySQL 5.7's NO_AUTO_CREATE_USER: MySQL 8 refuses it in sql_mode, and it only concerns GRANT, which ferry never
/// replays.
const SQL_MODE_NO_AUTO_CREATE_USER: u64 = 1 << 28;

/// The context of one statement on the source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionContext {
    /// The statement's timestamp (the event header's seconds) and its microseconds when the server logged them.
    pub ts_s: u32,
    pub ts_us: Option<u32>,
    pub flags2: Option<u32>,
    pub sql_mode: Option<u64>,
    /// character_set_client, collation_connection, collation_server (collation ids).
    pub charset: Option<(u16, u16, u16)>,
    /// Written only when the statement used the time zone.
    pub time_zone: Option<String>,
    /// collation_database, when the statement's default database differs from the server's.
    pub collation_database: Option<u16>,
    /// MySQL's status variable 16.
    pub explicit_defaults_for_timestamp: Option<bool>,
    /// Why the statement's bytes could not be decoded exactly (its text is then only good for classifying it; it
    /// is never replayed).
    pub undecodable: Option<String>,
}

impl SessionContext {
    /// Reads the status variables of a query event; an unknown key ends the reading (its length is unknown), keeping
    /// what came before it.
    pub fn parse(status_vars: &[u8], ts_s: u32) -> SessionContext {
        let mut c = SessionContext {
            ts_s,
            ..Default::default()
        };
        let mut r = Reader {
            b: status_vars,
            at: 0,
        };
        while let Some(k) = r.u8() {
            let ok = match k {
                key::FLAGS2 => r.u32().map(|v| c.flags2 = Some(v)),
                key::SQL_MODE => r.u64().map(|v| c.sql_mode = Some(v)),
                key::CATALOG => r.u8().and_then(|n| r.skip(usize::from(n) + 1)),
                key::AUTO_INCREMENT => r.skip(4),
                key::CHARSET => match (r.u16(), r.u16(), r.u16()) {
                    (Some(a), Some(b), Some(s)) => {
                        c.charset = Some((a, b, s));
                        Some(())
                    }
                    _ => None,
                },
                key::TIME_ZONE => r.u8().and_then(|n| r.bytes(usize::from(n))).map(|tz| {
                    c.time_zone = Some(String::from_utf8_lossy(tz).into_owned());
                }),
                key::CATALOG_NZ => r.u8().and_then(|n| r.skip(usize::from(n))),
                key::LC_TIME_NAMES => r.skip(2),
                key::CHARSET_DATABASE => r.u16().map(|v| c.collation_database = Some(v)),
                key::TABLE_MAP_FOR_UPDATE => r.skip(8),
                key::MASTER_DATA_WRITTEN => r.skip(4),
                key::INVOKER => r
                    .u8()
                    .and_then(|n| r.skip(usize::from(n)))
                    .and_then(|_| r.u8())
                    .and_then(|n| r.skip(usize::from(n))),
                key::UPDATED_DB_NAMES => r.u8().and_then(|n| {
                    // 254 (OVER_MAX_DBS_IN_EVENT_MTS): no names follow.
                    for _ in 0..if n < 254 { n } else { 0 } {
                        r.cstr()?;
                    }
                    Some(())
                }),
                key::MICROSECONDS | key::HRNOW => r.u24().map(|v| c.ts_us = Some(v)),
                key::COMMIT_TS => r.skip(8),
                key::COMMIT_TS2 => r.skip(8),
                key::EXPLICIT_DEFAULTS_FOR_TIMESTAMP => r
                    .u8()
                    .map(|v| c.explicit_defaults_for_timestamp = Some(v != 0)),
                key::DDL_LOGGED_WITH_XID | key::XID => r.skip(8),
                key::DEFAULT_COLLATION_FOR_UTF8MB4 => r.skip(2),
                key::SQL_REQUIRE_PRIMARY_KEY | key::DEFAULT_TABLE_ENCRYPTION => r.skip(1),
                key::GTID_FLAGS3 => r.skip(1),
                key::CHARACTER_SET_COLLATIONS => r.u8().and_then(|n| r.skip(usize::from(n) * 4)),
                _ => None,
            };
            if ok.is_none() {
                break;
            }
        }
        c
    }

    /// The SET statements that make a destination session run a statement as the source did. `mariadb`: the
    /// source is MariaDB (its flags2 carry explicit_defaults_for_timestamp).
    pub fn set_statements(&self, mariadb: bool) -> Vec<String> {
        let mut vars = Vec::new();
        let mut out = Vec::new();
        out.push(match self.ts_us {
            Some(us) => format!("SET TIMESTAMP = {}.{us:06}", self.ts_s),
            None => format!("SET TIMESTAMP = {}", self.ts_s),
        });
        if let Some(mode) = self.sql_mode {
            vars.push(format!(
                "sql_mode = {}",
                mode & !SQL_MODE_NO_AUTO_CREATE_USER
            ));
        }
        if let Some(tz) = &self.time_zone {
            vars.push(format!("time_zone = {}", crate::mysql::quote::string(tz)));
        }
        if let Some(f) = self.flags2 {
            vars.push(format!(
                "foreign_key_checks = {}",
                u8::from(f & flags2::NO_FOREIGN_KEY_CHECKS == 0)
            ));
            if mariadb {
                vars.push(format!(
                    "explicit_defaults_for_timestamp = {}",
                    u8::from(f & flags2::MARIADB_EXPLICIT_DEFAULTS_FOR_TIMESTAMP != 0)
                ));
            }
        }
        if let Some(e) = self.explicit_defaults_for_timestamp {
            vars.push(format!("explicit_defaults_for_timestamp = {}", u8::from(e)));
        }
        if let Some((client, connection, server)) = self.charset {
            vars.push(format!(
                "character_set_client = {client}, collation_connection = {connection}, collation_server = {server}"
            ));
        }
        if let Some(db) = self.collation_database {
            vars.push(format!("collation_database = {db}"));
        }
        if !vars.is_empty() {
            out.push(format!("SET SESSION {}", vars.join(", ")));
        }
        out
    }

    /// The settings MySQL and MariaDB share, for a destination that refused `set_statements` (another flavor's
    /// collation ids or sql_mode bits): the timestamp, sql_mode bits 0-31 (the same modes on both; MySQL's
    /// NO_AUTO_CREATE_USER left out), time zone, foreign_key_checks, explicit_defaults_for_timestamp, and utf8mb4
    /// for the statement's text.
    pub fn portable_statements(&self, mariadb: bool) -> Vec<String> {
        let shared = SessionContext {
            sql_mode: self.sql_mode.map(|m| m & 0xFFFF_FFFF),
            charset: None,
            collation_database: None,
            ..self.clone()
        };
        let mut out = shared.set_statements(mariadb);
        out.push("SET NAMES utf8mb4".into());
        out
    }

    /// The character set the statement's bytes are in (character_set_client), when ferry knows its encoding.
    pub fn client_encoding(&self) -> Option<&'static encoding_rs::Encoding> {
        match self.charset {
            Some((client, _, _)) => encoding_of(client),
            None => Some(encoding_rs::UTF_8),
        }
    }

    /// The statement's text: its bytes decoded from the client character set exactly (a byte that does not
    /// decode is an error, never a replacement character).
    pub fn decode(&self, raw: &[u8]) -> Result<String> {
        if let Ok(s) = std::str::from_utf8(raw) {
            if self
                .client_encoding()
                .is_some_and(|e| e == encoding_rs::UTF_8)
                || raw.is_ascii()
            {
                return Ok(s.to_string());
            }
        }
        let Some(enc) = self.client_encoding() else {
            return match std::str::from_utf8(raw) {
                Ok(s) => Ok(s.to_string()),
                Err(_) => Err(Error::definite(
                    &codes::CDC_DECODE,
                    format!(
                        "a statement's text is in a client character set ferry cannot read (collation id {})",
                        self.charset.map(|c| c.0).unwrap_or_default()
                    ),
                )),
            };
        };
        let (text, had_errors) = enc.decode_without_bom_handling(raw);
        if had_errors {
            return Err(Error::definite(
                &codes::CDC_DECODE,
                format!(
                    "a statement's text is not valid {} (its client character set)",
                    enc.name()
                ),
            ));
        }
        Ok(text.into_owned())
    }

    /// `text` as bytes of the client character set, when every character maps; else None (send it as utf8mb4).
    pub fn encode(&self, text: &str) -> Option<Vec<u8>> {
        let enc = self.client_encoding()?;
        if enc == encoding_rs::UTF_8 {
            return Some(text.as_bytes().to_vec());
        }
        let (bytes, _, had_errors) = enc.encode(text);
        (!had_errors).then(|| bytes.into_owned())
    }
}

/// The encoding of a character set by one of its collation ids (ids below 256 are the same on MySQL and MariaDB;
/// MySQL 8's utf8mb4_0900 collations are 255-323; MariaDB's UCA 14 collations are 2048 and up). None when ferry
/// does not know it.
fn encoding_of(collation_id: u16) -> Option<&'static encoding_rs::Encoding> {
    use encoding_rs::*;
    Some(match collation_id {
        // utf8mb3, utf8mb4 and ASCII are all read as UTF-8.
        11 | 33 | 45 | 46 | 65 | 76 | 83 | 192..=215 | 223..=247 | 255..=323 | 576..=671 => UTF_8,
        1024..=4095 => UTF_8,
        5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 => WINDOWS_1252, // latin1 is cp1252 on MySQL/MariaDB
        14 | 23 | 50 | 51 | 52 => WINDOWS_1251,
        26 | 34 | 44 | 66 | 99 => WINDOWS_1250,
        57 | 67 => WINDOWS_1256,
        29 | 58 | 59 => WINDOWS_1257,
        30 | 78 => WINDOWS_1254,
        2 | 9 | 21 | 27 | 77 => ISO_8859_2,
        25 | 70 => ISO_8859_7,
        16 | 71 => ISO_8859_8,
        20 | 41 | 42 | 79 => ISO_8859_13,
        7 | 74 => KOI8_R,
        22 | 75 => KOI8_U,
        18 | 89 => WINDOWS_874,
        28 | 87 | 24 | 86 => GBK,
        13 | 88 | 95 | 96 => SHIFT_JIS,
        1 | 84 => BIG5,
        19 | 85 => EUC_KR,
        12 | 91 | 97 | 98 => EUC_JP,
        _ => return None,
    })
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }
    fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<u32> {
        self.bytes(3)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        self.bytes(8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    }
    fn cstr(&mut self) -> Option<()> {
        let rest = self.b.get(self.at..)?;
        let n = rest.iter().position(|&c| c == 0)?;
        self.at += n + 1;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status variables MariaDB 10.11 wrote for `ALTER TABLE ... TIMESTAMP DEFAULT '...'` from a `+05:00`
    /// session with microseconds used: flags2, sql_mode, charset, time zone, HRNOW.
    fn mariadb_vars() -> Vec<u8> {
        let mut v = vec![key::FLAGS2];
        v.extend((1u32 << 24).to_le_bytes());
        v.push(key::SQL_MODE);
        v.extend(1_411_383_296u64.to_le_bytes());
        v.push(key::CATALOG_NZ);
        v.extend([3, b'd', b'e', b'f']);
        v.push(key::CHARSET);
        v.extend([8u16, 8, 8].iter().flat_map(|x| x.to_le_bytes()));
        v.push(key::TIME_ZONE);
        v.extend([6, b'+', b'0', b'5', b':', b'0', b'0']);
        v.push(key::UPDATED_DB_NAMES);
        v.extend([1, b'd', 0]);
        v.push(key::HRNOW);
        v.extend([0xF0, 0xA6, 0x09]); // 632560
        v.push(key::XID);
        v.extend([0u8; 8]);
        v
    }

    #[test]
    fn mariadb_status_variables_give_the_whole_context() {
        let c = SessionContext::parse(&mariadb_vars(), 1_796_667_957);
        assert_eq!(c.flags2, Some(1 << 24));
        assert_eq!(c.sql_mode, Some(1_411_383_296));
        assert_eq!(c.charset, Some((8, 8, 8)));
        assert_eq!(c.time_zone.as_deref(), Some("+05:00"));
        assert_eq!(c.ts_us, Some(632_560));
        assert_eq!(
            c.set_statements(true),
            vec![
                "SET TIMESTAMP = 1796667957.632560".to_string(),
                format!(
                    "SET SESSION sql_mode = {}, time_zone = _utf8mb4 X'2B30353A3030', foreign_key_checks = 1, \
                     explicit_defaults_for_timestamp = 1, character_set_client = 8, collation_connection = 8, \
                     collation_server = 8",
                    1_411_383_296u64 & !SQL_MODE_NO_AUTO_CREATE_USER
                ),
            ]
        );
    }

    #[test]
    fn portable_settings_leave_out_the_flavor_specific_ones() {
        let c = SessionContext {
            ts_s: 5,
            sql_mode: Some((1 << 32) | (1 << 28) | 2),
            charset: Some((255, 255, 255)),
            collation_database: Some(255),
            ..Default::default()
        };
        assert_eq!(
            c.portable_statements(false),
            vec![
                "SET TIMESTAMP = 5".to_string(),
                "SET SESSION sql_mode = 2".to_string(),
                "SET NAMES utf8mb4".to_string()
            ]
        );
    }

    #[test]
    fn mysql_explicit_defaults_and_unknown_keys() {
        let mut v = vec![key::FLAGS2];
        v.extend((1u32 << 26).to_le_bytes());
        v.push(key::EXPLICIT_DEFAULTS_FOR_TIMESTAMP);
        v.push(0);
        v.push(key::MICROSECONDS);
        v.extend([1, 0, 0]);
        v.push(99); // unknown: reading stops, what came before stays
        v.extend([1, 2, 3]);
        let c = SessionContext::parse(&v, 10);
        assert_eq!(c.explicit_defaults_for_timestamp, Some(false));
        assert_eq!(c.ts_us, Some(1));
        let sets = c.set_statements(false);
        assert_eq!(sets[0], "SET TIMESTAMP = 10.000001");
        assert_eq!(
            sets[1],
            "SET SESSION foreign_key_checks = 0, explicit_defaults_for_timestamp = 0"
        );
        // Truncated variables never panic.
        for n in 0..v.len() {
            let _ = SessionContext::parse(&v[..n], 0);
        }
    }

    #[test]
    fn statement_bytes_decode_in_the_client_charset_and_back() {
        let latin1 = SessionContext {
            charset: Some((8, 8, 8)),
            ..Default::default()
        };
        let raw = b"ALTER TABLE t ADD c VARCHAR(9) DEFAULT '\xe9\xe8'";
        let text = latin1.decode(raw).expect("latin1");
        assert!(text.ends_with("DEFAULT 'éè'"), "{text}");
        assert_eq!(latin1.encode(&text).as_deref(), Some(&raw[..]));
        let utf8 = SessionContext {
            charset: Some((45, 45, 45)),
            ..Default::default()
        };
        assert!(
            utf8.decode(raw).is_err(),
            "invalid UTF-8 is refused, never replaced"
        );
        assert_eq!(utf8.decode("é".as_bytes()).expect("utf8"), "é");
        let unknown = SessionContext {
            charset: Some((1000, 1000, 1000)),
            ..Default::default()
        };
        assert!(unknown.decode(raw).is_err());
        assert_eq!(unknown.decode(b"plain").expect("ascii"), "plain");
    }
}
