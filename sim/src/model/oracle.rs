//! What the destination may show, checked after every destination commit and at every stop and kill: from P1 on, the
//! source's state after exactly the whole transactions its checkpoint names (or, between a DDL and its checkpoint,
//! after that DDL); before P1 (catch-up, a mix of copies from different moments), every row that no later
//! transaction touches already equal to the source's row at the checkpoint.

use super::applier::Dest;
use super::db::{Db, Row, DEFS};
use super::source::Group;
use std::collections::BTreeMap;

pub struct Oracle<'a> {
    groups: &'a [Group],
    base: &'a Db,
    p0: usize,
    p1: usize,
    /// The source's state after `at` groups (moved forward, or rebuilt from `base` when asked for an earlier one).
    at: usize,
    state: Db,
    /// For each (table, key), the last group that changed it (cascades included; the DDL, which only runs in
    /// exact mode, left out).
    last_touch: BTreeMap<(usize, u64), usize>,
    pub checks: u64,
}

impl<'a> Oracle<'a> {
    /// `base`: the source before the first group.
    pub fn new(base: &'a Db, groups: &'a [Group], p0: usize, p1: usize) -> Oracle<'a> {
        let mut last_touch = BTreeMap::new();
        for (g, group) in groups.iter().enumerate() {
            for c in &group.changes {
                for r in c.before.iter().chain(c.after.iter()) {
                    last_touch.insert((c.table, r[0]), g);
                }
            }
        }
        Oracle {
            groups,
            base,
            p0,
            p1,
            at: 0,
            state: base.clone(),
            last_touch,
            checks: 0,
        }
    }

    /// The source after `n` groups.
    pub fn state(&mut self, n: usize) -> &Db {
        let n = n.min(self.groups.len());
        if n < self.at {
            self.state = self.base.clone();
            self.at = 0;
        }
        while self.at < n {
            self.groups[self.at].replay(&mut self.state);
            self.at += 1;
        }
        &self.state
    }

    /// The invariant, on the destination's durable (visible) state; `when` names the moment for the message. P1 is
    /// the destination's (a re-copy round moves it to its snapshot); tables catch-up followed cascades into are
    /// exempt until the round re-copies them, and until then the destination is in catch-up even past P1.
    pub fn check(&mut self, d: &Dest, when: &str) -> Result<(), String> {
        self.checks += 1;
        let c = d.checkpoint.unwrap_or(self.p0);
        let p1 = d.p1.unwrap_or(self.p1);
        let awaiting = d.awaiting_recopy();
        if c >= p1 && awaiting.is_empty() {
            if d.db == *self.state(c) {
                return Ok(());
            }
            if let Some(g) = d.ddl_pending {
                if d.db == *self.state(g + 1) {
                    return Ok(());
                }
            }
            let state = self.state(c).clone();
            return Err(format!(
                "{when}: the destination is not the source after the {c} transactions its checkpoint names: {}",
                diff(&d.db, &state)
            ));
        }
        let last_touch = std::mem::take(&mut self.last_touch);
        let settled = |t: usize, k: u64| last_touch.get(&(t, k)).is_none_or(|&g| g < c);
        // Between a DDL (which catch-up applies once a round moved P1 past it) and its checkpoint, the rows show it.
        let state = self.state(d.ddl_pending.map_or(c, |g| (g + 1).max(c)));
        let bad =
            d.db.rows
                .iter()
                .zip(&state.rows)
                .enumerate()
                .filter(|(t, _)| !awaiting.contains(t))
                .find_map(|(t, (held, want))| {
                    held.keys()
                        .chain(want.keys())
                        .find(|&&k| settled(t, k) && held.get(&k) != want.get(&k))
                        .map(|&k| (t, k, held.get(&k).copied(), want.get(&k).copied()))
                });
        self.last_touch = last_touch;
        match bad {
            None => Ok(()),
            Some((t, k, held, want)) => Err(format!(
                "{when}: in catch-up at checkpoint {c}, {} key {k}, which no later transaction touches, is {} on the destination, {} on the source",
                DEFS[t].name,
                shown(held),
                shown(want)
            )),
        }
    }
}

fn shown(r: Option<Row>) -> String {
    match r {
        None => "absent".into(),
        Some(r) => format!(
            "({})",
            r.iter()
                .map(|&v| if v == super::db::NULL {
                    "NULL".to_string()
                } else {
                    v.to_string()
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The first few rows where two states differ.
pub fn diff(dst: &Db, src: &Db) -> String {
    let mut out = Vec::new();
    if dst.kv_c != src.kv_c {
        out.push(format!(
            "kv.c on the destination {}, on the source {}",
            dst.kv_c, src.kv_c
        ));
    }
    for (t, (held, want)) in dst.rows.iter().zip(&src.rows).enumerate() {
        for k in held.keys().chain(want.keys()) {
            let (a, b) = (held.get(k), want.get(k));
            if a != b && out.len() < 5 {
                let s = format!(
                    "{} key {k}: destination {}, source {}",
                    DEFS[t].name,
                    shown(a.copied()),
                    shown(b.copied())
                );
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    out.join("; ")
}
