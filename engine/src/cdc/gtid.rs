//! GTID bookkeeping of a checkpoint: MySQL GTID sets (`uuid:1-5:7,uuid2:1-3`) and MariaDB GTID lists (`0-1-100,1-1-7`).

use crate::codes;
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// Executed GTIDs of a MySQL server: per source id (`uuid` or `uuid:tag`), ordered disjoint closed intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet {
    sids: BTreeMap<String, Vec<(u64, u64)>>,
}

impl GtidSet {
    /// Parses `@@gtid_executed` text (newlines and spaces ignored; 8.4 tags kept with their uuid).
    pub fn parse(text: &str) -> Result<GtidSet> {
        let mut set = GtidSet::default();
        let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        for part in clean.split(',').filter(|p| !p.is_empty()) {
            let bad = || {
                Error::definite(
                    &codes::CDC_POSITION,
                    format!("`{part}` is not a GTID set element"),
                )
            };
            let mut fields = part.split(':');
            let uuid = fields.next().filter(|u| u.len() == 36).ok_or_else(bad)?;
            let mut tag = String::new();
            for f in fields {
                if f.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                    let (lo, hi) = match f.split_once('-') {
                        Some((a, b)) => {
                            (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?)
                        }
                        None => {
                            let n: u64 = f.parse().map_err(|_| bad())?;
                            (n, n)
                        }
                    };
                    if lo == 0 || hi < lo {
                        return Err(bad());
                    }
                    let sid = if tag.is_empty() {
                        uuid.to_ascii_lowercase()
                    } else {
                        format!("{}:{tag}", uuid.to_ascii_lowercase())
                    };
                    set.add_range(&sid, lo, hi);
                } else {
                    tag = f.to_string();
                }
            }
        }
        Ok(set)
    }

    /// Adds one transaction.
    pub fn add(&mut self, sid: &str, gno: u64) {
        self.add_range(sid, gno, gno);
    }

    fn add_range(&mut self, sid: &str, lo: u64, hi: u64) {
        let v = self.sids.entry(sid.to_string()).or_default();
        v.push((lo, hi));
        v.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for &(a, b) in v.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *v = merged;
    }

    pub fn contains(&self, sid: &str, gno: u64) -> bool {
        self.sids
            .get(sid)
            .is_some_and(|v| v.iter().any(|&(a, b)| a <= gno && gno <= b))
    }
}

impl std::fmt::Display for GtidSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (sid, ranges) in &self.sids {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(sid)?;
            for &(a, b) in ranges {
                if a == b {
                    write!(f, ":{a}")?;
                } else {
                    write!(f, ":{a}-{b}")?;
                }
            }
        }
        Ok(())
    }
}

/// A MariaDB GTID position: the last GTID per replication domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidList {
    domains: BTreeMap<u32, (u32, u64)>,
}

impl GtidList {
    /// Parses `@@gtid_binlog_pos` / `@@gtid_slave_pos` text.
    pub fn parse(text: &str) -> Result<GtidList> {
        let mut list = GtidList::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let g = parse_mariadb_gtid(part)?;
            list.set(g.0, g.1, g.2);
        }
        Ok(list)
    }

    /// Records a transaction: it becomes the last of its domain.
    pub fn set(&mut self, domain: u32, server: u32, seq: u64) {
        self.domains.insert(domain, (server, seq));
    }
}

impl std::fmt::Display for GtidList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .domains
            .iter()
            .map(|(d, (s, n))| format!("{d}-{s}-{n}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// `domain-server-seq`.
pub fn parse_mariadb_gtid(text: &str) -> Result<(u32, u32, u64)> {
    let bad = || {
        Error::definite(
            &codes::CDC_POSITION,
            format!("`{text}` is not a MariaDB GTID (domain-server-seq)"),
        )
    };
    let mut it = text.trim().split('-');
    let (Some(d), Some(s), Some(n), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    Ok((
        d.parse().map_err(|_| bad())?,
        s.parse().map_err(|_| bad())?,
        n.parse().map_err(|_| bad())?,
    ))
}

/// Splits a MySQL GTID `uuid:n` or `uuid:tag:n` into source id and number.
pub fn split_mysql_gtid(text: &str) -> Option<(&str, u64)> {
    let (sid, n) = text.rsplit_once(':')?;
    Some((sid, n.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const U: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn mysql_sets_parse_merge_and_print() {
        let text = format!("{U}:1-5:7,\n{}:1-3", U.replace('3', "4"));
        let mut s = GtidSet::parse(&text).expect("parses");
        s.add(U, 6);
        assert_eq!(
            s.to_string(),
            format!("{U}:1-7,{}:1-3", U.replace('3', "4"))
        );
        assert!(s.contains(U, 7) && !s.contains(U, 8));
        s.add(U, 9);
        assert_eq!(
            s.to_string().split(',').next(),
            Some(format!("{U}:1-7:9").as_str())
        );
        let tagged = GtidSet::parse(&format!("{U}:1-2:blue:1-4")).expect("tagged");
        assert!(tagged.contains(&format!("{U}:blue"), 4));
        assert!(GtidSet::parse("nope:1").is_err());
        assert!(GtidSet::parse(&format!("{U}:0")).is_err());
    }

    #[test]
    fn mariadb_lists_keep_the_last_gtid_per_domain() {
        let mut l = GtidList::parse("0-1-100, 1-1-7").expect("parses");
        l.set(0, 2, 101);
        l.set(5, 1, 1);
        assert_eq!(l.to_string(), "0-2-101,1-1-7,5-1-1");
        assert!(GtidList::parse("0-1").is_err());
        assert_eq!(
            GtidList::parse("").map(|l| l.to_string()).ok(),
            Some(String::new())
        );
    }

    proptest! {
        /// Adding transactions in any order gives the same set as parsing its printed form.
        #[test]
        fn sets_round_trip(gnos in proptest::collection::vec(1u64..200, 0..60)) {
            let mut s = GtidSet::default();
            for g in &gnos {
                s.add(U, *g);
            }
            let again = GtidSet::parse(&s.to_string()).expect("own output parses");
            prop_assert_eq!(&again, &s);
            for g in 1u64..200 {
                prop_assert_eq!(s.contains(U, g), gnos.contains(&g));
            }
        }
    }
}
