//! The model's tables and what a server does with one statement on them: keys, unique keys, and foreign keys whose
//! ON DELETE / ON UPDATE rules run every level down as InnoDB runs them (on the source always; on the destination
//! for the statements ferry sends with foreign_key_checks on), plus the plain writes ferry sends with them off.

use ferry_engine::schema::model::{Column, FkRule, Follower, Key, Table};
use std::collections::VecDeque;
use std::sync::OnceLock;

/// A column's NULL.
pub const NULL: u64 = u64::MAX;

/// A row: column 0 is the key, unused columns are NULL.
pub type Row = [u64; 4];

/// The tables: `kv (k, v, c)` whose rows commute (`c` is the column the DDL adds); `parent (id, sku UNIQUE, v)`;
/// `child (id, psku, n, v)`, UNIQUE (psku, n), FK psku -> parent.sku ON DELETE CASCADE ON UPDATE CASCADE;
/// `grandchild (id, csku, cn, v)`, FK (csku, cn) -> child (psku, n) ON DELETE SET NULL ON UPDATE CASCADE; and
/// `node (id, up, v)`, FK up -> node.id ON DELETE CASCADE (a tree, or any graph with cycles, in one table).
pub const KV: usize = 0;
pub const PARENT: usize = 1;
pub const CHILD: usize = 2;
pub const GRANDCHILD: usize = 3;
pub const NODE: usize = 4;
pub const TABLES: usize = 5;

/// A table's name, columns and unique keys other than the key (column 0).
pub struct Def {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    pub uniques: &'static [&'static [usize]],
}

pub const DEFS: [Def; TABLES] = [
    Def {
        name: "kv",
        columns: &["k", "v", "c"],
        uniques: &[],
    },
    Def {
        name: "parent",
        columns: &["id", "sku", "v"],
        uniques: &[&[1]],
    },
    Def {
        name: "child",
        columns: &["id", "psku", "n", "v"],
        uniques: &[&[1, 2]],
    },
    Def {
        name: "grandchild",
        columns: &["id", "csku", "cn", "v"],
        uniques: &[],
    },
    Def {
        name: "node",
        columns: &["id", "up", "v"],
        uniques: &[],
    },
];

/// A foreign key: `child.columns` reference `parent.referenced`.
pub struct Fk {
    pub child: usize,
    pub columns: &'static [usize],
    pub parent: usize,
    pub referenced: &'static [usize],
    pub on_delete: FkRule,
    pub on_update: FkRule,
}

/// Self-referencing ON UPDATE CASCADE is refused by InnoDB (it acts as RESTRICT), so the tree's is RESTRICT.
pub const FKS: [Fk; 3] = [
    Fk {
        child: CHILD,
        columns: &[1],
        parent: PARENT,
        referenced: &[1],
        on_delete: FkRule::Cascade,
        on_update: FkRule::Cascade,
    },
    Fk {
        child: GRANDCHILD,
        columns: &[1, 2],
        parent: CHILD,
        referenced: &[1, 2],
        on_delete: FkRule::SetNull,
        on_update: FkRule::Cascade,
    },
    Fk {
        child: NODE,
        columns: &[1],
        parent: NODE,
        referenced: &[0],
        on_delete: FkRule::Cascade,
        on_update: FkRule::Restrict,
    },
];

/// What the applier decides per table, read from the engine's own table shapes: whether a delete cascades
/// (`Table::cascades_on_delete`), which columns' change cascades (`Table::cascade_update_columns`), and whether the
/// rows commute (the applier's rule: a key, no other unique key, no follower, no cascade into the table), so go
/// through `compact::TableBatch`.
pub struct Rules {
    pub cascades_on_delete: bool,
    pub cascade_update_columns: Vec<usize>,
    pub commutes: bool,
}

/// The tables as the engine describes them (what introspection would read from the source).
pub fn engine_tables() -> &'static [Table] {
    static TABLES_SHAPES: OnceLock<Vec<Table>> = OnceLock::new();
    TABLES_SHAPES.get_or_init(|| {
        DEFS.iter()
            .enumerate()
            .map(|(t, d)| Table {
                db: "m".into(),
                name: d.name.into(),
                columns: d
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Column {
                        name: (*c).into(),
                        data_type: "bigint".into(),
                        column_type: "bigint unsigned".into(),
                        charset: None,
                        nullable: i > 0,
                        generated: false,
                    })
                    .collect(),
                key: Some(Key {
                    name: "PRIMARY".into(),
                    columns: vec![0],
                }),
                uniques: d
                    .uniques
                    .iter()
                    .map(|u| Key {
                        name: "u".into(),
                        columns: u.to_vec(),
                    })
                    .collect(),
                followers: FKS
                    .iter()
                    .filter(|f| f.parent == t)
                    .map(|f| Follower {
                        db: "m".into(),
                        table: DEFS[f.child].name.into(),
                        columns: f
                            .columns
                            .iter()
                            .map(|&i| DEFS[f.child].columns[i].into())
                            .collect(),
                        referenced: f.referenced.to_vec(),
                        keep: Vec::new(),
                        on_delete: f.on_delete,
                        on_update: f.on_update,
                    })
                    .collect(),
                engine: "InnoDB".into(),
                rows_estimate: 0,
                create_sql: String::new(),
                omitted: Vec::new(),
            })
            .collect()
    })
}

pub fn rules() -> &'static [Rules] {
    static RULES: OnceLock<Vec<Rules>> = OnceLock::new();
    RULES.get_or_init(|| {
        let tables = engine_tables();
        tables
            .iter()
            .map(|t| {
                let cascade_child = tables
                    .iter()
                    .flat_map(|p| &p.followers)
                    .any(|f| f.db == t.db && f.table == t.name);
                Rules {
                    cascades_on_delete: t.cascades_on_delete(),
                    cascade_update_columns: t.cascade_update_columns(),
                    commutes: t.key.is_some()
                        && t.uniques.is_empty()
                        && t.followers.is_empty()
                        && !cascade_child,
                }
            })
            .collect()
    })
}

/// A table's rows in key order (a sorted vector: the model's tables hold a few dozen rows, and a schedule copies
/// them at every destination transaction).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rows(Vec<Row>);

impl Rows {
    fn find(&self, key: u64) -> Result<usize, usize> {
        self.0.binary_search_by(|r| r[0].cmp(&key))
    }

    pub fn get(&self, key: &u64) -> Option<&Row> {
        self.find(*key).ok().map(|i| &self.0[i])
    }

    pub fn contains_key(&self, key: &u64) -> bool {
        self.find(*key).is_ok()
    }

    /// Inserts or replaces the row of `key` (which is `row[0]`); the row it replaced.
    pub fn insert(&mut self, key: u64, row: Row) -> Option<Row> {
        debug_assert_eq!(key, row[0]);
        match self.find(key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i], row)),
            Err(i) => {
                self.0.insert(i, row);
                None
            }
        }
    }

    pub fn remove(&mut self, key: &u64) -> Option<Row> {
        self.find(*key).ok().map(|i| self.0.remove(i))
    }

    pub fn values(&self) -> std::slice::Iter<'_, Row> {
        self.0.iter()
    }

    /// The rows, to change columns other than the key.
    pub fn values_mut(&mut self) -> std::slice::IterMut<'_, Row> {
        self.0.iter_mut()
    }

    pub fn keys(&self) -> impl Iterator<Item = &u64> {
        self.0.iter().map(|r| &r[0])
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The tables' rows, and whether the DDL's column `kv.c` exists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Db {
    pub rows: [Rows; TABLES],
    pub kv_c: bool,
}

/// One row change a statement made (cascaded ones too): what the binlog would log if it logged them all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub table: usize,
    pub before: Option<Row>,
    pub after: Option<Row>,
}

impl Change {
    pub fn apply(&self, db: &mut Db) {
        if let Some(b) = self.before {
            db.rows[self.table].remove(&b[0]);
        }
        if let Some(a) = self.after {
            db.rows[self.table].insert(a[0], a);
        }
    }
}

/// A statement on one row, by key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stmt {
    Insert(usize, Row),
    Update(usize, u64, Row),
    Delete(usize, u64),
}

pub fn has_null(r: &Row, cols: &[usize]) -> bool {
    cols.iter().any(|&i| r[i] == NULL)
}

/// Whether `a`'s `ac` columns hold `b`'s `bc` columns' values.
pub fn same(a: &Row, ac: &[usize], b: &Row, bc: &[usize]) -> bool {
    ac.iter().zip(bc).all(|(&i, &j)| a[i] == b[j])
}

/// Whether a row other than `key` holds one of `row`'s unique values (NULL never conflicts).
pub fn unique_taken(db: &Db, t: usize, key: u64, row: &Row) -> Option<u64> {
    for u in DEFS[t].uniques {
        if has_null(row, u) {
            continue;
        }
        if let Some(r) = db.rows[t]
            .values()
            .find(|r| r[0] != key && same(r, u, row, u))
        {
            return Some(r[0]);
        }
    }
    None
}

/// The rows of `fk.child` that reference `parent_row`.
pub fn children(db: &Db, fk: &Fk, parent_row: &Row) -> Vec<Row> {
    db.rows[fk.child]
        .values()
        .filter(|c| same(c, fk.columns, parent_row, fk.referenced))
        .copied()
        .collect()
}

/// The refusals a server makes before running a statement with foreign_key_checks on: duplicate key or unique
/// value, a reference to no parent row, a RESTRICT child row, no such row.
pub fn check(db: &Db, s: &Stmt) -> Result<(), &'static str> {
    let own_fks = |t: usize, old: Option<&Row>, new: &Row| -> Result<(), &'static str> {
        for fk in FKS.iter().filter(|f| f.child == t) {
            if has_null(new, fk.columns)
                || old.is_some_and(|o| same(o, fk.columns, new, fk.columns))
            {
                continue;
            }
            // A row may reference itself (a self-referencing key it holds after the statement).
            let itself = fk.parent == t && same(new, fk.columns, new, fk.referenced);
            if !itself
                && !db.rows[fk.parent]
                    .values()
                    .any(|p| same(p, fk.referenced, new, fk.columns))
            {
                return Err("no parent row");
            }
        }
        Ok(())
    };
    let restricted = |t: usize, old: &Row, new: Option<&Row>| -> Result<(), &'static str> {
        for fk in FKS.iter().filter(|f| f.parent == t) {
            let rule = if new.is_some() {
                fk.on_update
            } else {
                fk.on_delete
            };
            if rule != FkRule::Restrict
                || has_null(old, fk.referenced)
                || new.is_some_and(|n| same(n, fk.referenced, old, fk.referenced))
            {
                continue;
            }
            if !children(db, fk, old).is_empty() {
                return Err("a child row restricts it");
            }
        }
        Ok(())
    };
    match *s {
        Stmt::Insert(t, row) => {
            if db.rows[t].contains_key(&row[0]) {
                return Err("duplicate key");
            }
            if unique_taken(db, t, row[0], &row).is_some() {
                return Err("duplicate unique value");
            }
            own_fks(t, None, &row)
        }
        Stmt::Update(t, key, row) => {
            let Some(old) = db.rows[t].get(&key) else {
                return Err("no such row");
            };
            if row[0] != key && db.rows[t].contains_key(&row[0]) {
                return Err("duplicate key");
            }
            if unique_taken(db, t, key, &row).is_some() {
                return Err("duplicate unique value");
            }
            own_fks(t, Some(old), &row)?;
            restricted(t, old, Some(&row))
        }
        Stmt::Delete(t, key) => match db.rows[t].get(&key) {
            None => Err("no such row"),
            Some(old) => restricted(t, old, None),
        },
    }
}

/// Cascaded work: a row deleted, or a row's FK columns (of `FKS[fk]`) set to new values (None: NULL).
enum Work {
    Delete(usize, u64),
    Set(usize, u64, usize, Option<Row>),
    Replace(usize, u64, Row),
}

/// A bound on one statement's cascaded row changes (the model's tables hold a few dozen rows).
pub const CASCADE_STEPS_MAX: usize = 10_000;

/// Runs a statement as the server does with foreign_key_checks on: `check` first, then the row change and every
/// cascaded one (breadth first; a row already gone is skipped, so cycles end). `log` gets every row change, the
/// statement's own first. Returns the statement's own (before, after): what the binlog logs.
pub fn execute(
    db: &mut Db,
    s: &Stmt,
    log: &mut Vec<Change>,
) -> Result<(Option<Row>, Option<Row>), &'static str> {
    check(db, s)?;
    let first = log.len();
    let mut work = VecDeque::new();
    match *s {
        Stmt::Insert(t, row) => {
            db.rows[t].insert(row[0], row);
            log.push(Change {
                table: t,
                before: None,
                after: Some(row),
            });
        }
        Stmt::Update(t, key, row) => work.push_back(Work::Replace(t, key, row)),
        Stmt::Delete(t, key) => work.push_back(Work::Delete(t, key)),
    }
    let mut steps = 0;
    while let Some(w) = work.pop_front() {
        steps += 1;
        if steps > CASCADE_STEPS_MAX {
            return Err("a cascade did not end");
        }
        let (t, old, new) = match w {
            Work::Delete(t, key) => {
                let Some(old) = db.rows[t].remove(&key) else {
                    continue;
                };
                (t, old, None)
            }
            Work::Replace(t, key, row) => {
                let Some(old) = db.rows[t].remove(&key) else {
                    continue;
                };
                db.rows[t].insert(row[0], row);
                (t, old, Some(row))
            }
            Work::Set(t, key, fk, to) => {
                let Some(&old) = db.rows[t].get(&key) else {
                    continue;
                };
                let mut row = old;
                for (n, &c) in FKS[fk].columns.iter().enumerate() {
                    row[c] = match &to {
                        Some(p) => p[FKS[fk].referenced[n]],
                        None => NULL,
                    };
                }
                if row == old {
                    continue;
                }
                if unique_taken(db, t, key, &row).is_some() {
                    return Err("a cascade hit a duplicate unique value");
                }
                db.rows[t].insert(key, row);
                (t, old, Some(row))
            }
        };
        log.push(Change {
            table: t,
            before: Some(old),
            after: new,
        });
        for (fi, fk) in FKS.iter().enumerate().filter(|(_, f)| f.parent == t) {
            if has_null(&old, fk.referenced)
                || new.is_some_and(|n| same(&n, fk.referenced, &old, fk.referenced))
            {
                continue;
            }
            let rule = if new.is_some() {
                fk.on_update
            } else {
                fk.on_delete
            };
            for c in children(db, fk, &old) {
                work.push_back(match (rule, new) {
                    (FkRule::Restrict, _) => return Err("a child row restricts a cascade"),
                    (FkRule::Cascade, None) => Work::Delete(fk.child, c[0]),
                    (FkRule::Cascade, Some(n)) => Work::Set(fk.child, c[0], fi, Some(n)),
                    (FkRule::SetNull, _) => Work::Set(fk.child, c[0], fi, None),
                });
            }
        }
    }
    let own = log.get(first).map(|c| (c.before, c.after));
    Ok(own.unwrap_or((None, None)))
}

/// What a statement sent with foreign_key_checks off refused (exact mode reads it as a divergence).
pub type Refusal = &'static str;

/// INSERT with foreign_key_checks off: the key and unique values must be free.
pub fn raw_insert(db: &mut Db, t: usize, row: Row) -> Result<(), Refusal> {
    if db.rows[t].contains_key(&row[0]) {
        return Err("the key to insert is already there");
    }
    if unique_taken(db, t, row[0], &row).is_some() {
        return Err("a unique value to insert is held by another row");
    }
    db.rows[t].insert(row[0], row);
    Ok(())
}

/// UPDATE by the old key with foreign_key_checks off: one row affected, nothing follows.
pub fn raw_update(db: &mut Db, t: usize, key: u64, row: Row) -> Result<(), Refusal> {
    if !db.rows[t].contains_key(&key) {
        return Err("the row to update is not there");
    }
    if row[0] != key && db.rows[t].contains_key(&row[0]) {
        return Err("the key to update to is already there");
    }
    if unique_taken(db, t, key, &row).is_some() {
        return Err("a unique value to update to is held by another row");
    }
    db.rows[t].remove(&key);
    db.rows[t].insert(row[0], row);
    Ok(())
}

/// DELETE by key with foreign_key_checks off: one row affected, nothing follows.
pub fn raw_delete(db: &mut Db, t: usize, key: u64) -> Result<(), Refusal> {
    match db.rows[t].remove(&key) {
        Some(_) => Ok(()),
        None => Err("the row to delete is not there"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: u64, b: u64, c: u64, d: u64) -> Row {
        [a, b, c, d]
    }

    fn run(db: &mut Db, s: Stmt) -> Vec<Change> {
        let mut log = Vec::new();
        execute(db, &s, &mut log).expect("statement");
        log
    }

    #[test]
    fn the_engine_reads_the_rules_the_model_runs() {
        let rules = rules();
        assert!(rules[KV].commutes);
        assert!(!rules[PARENT].commutes && !rules[GRANDCHILD].commutes);
        assert!(rules[PARENT].cascades_on_delete && rules[NODE].cascades_on_delete);
        assert!(!rules[GRANDCHILD].cascades_on_delete);
        assert_eq!(rules[PARENT].cascade_update_columns, vec![1]);
        assert_eq!(rules[CHILD].cascade_update_columns, vec![1, 2]);
        // ON UPDATE RESTRICT: a node's key change follows nothing (the source refuses it while children point).
        assert!(rules[NODE].cascade_update_columns.is_empty());
    }

    #[test]
    fn cascades_run_every_level_down() {
        let mut db = Db::default();
        run(&mut db, Stmt::Insert(PARENT, r(1, 10, 0, NULL)));
        run(&mut db, Stmt::Insert(CHILD, r(1, 10, 0, 0)));
        run(&mut db, Stmt::Insert(GRANDCHILD, r(1, 10, 0, 0)));
        // The sku changes: child and grandchild follow.
        let log = run(&mut db, Stmt::Update(PARENT, 1, r(1, 11, 0, NULL)));
        assert_eq!(log.len(), 3);
        assert_eq!(db.rows[GRANDCHILD].get(&1), Some(&r(1, 11, 0, 0)));
        // The key changes, the sku does not: nothing follows.
        let log = run(&mut db, Stmt::Update(PARENT, 1, r(2, 11, 0, NULL)));
        assert_eq!(log.len(), 1);
        assert_eq!(db.rows[CHILD].get(&1), Some(&r(1, 11, 0, 0)));
        // The parent goes: the child goes, the grandchild's reference is set NULL.
        let log = run(&mut db, Stmt::Delete(PARENT, 2));
        assert_eq!(log.len(), 3);
        assert!(db.rows[CHILD].is_empty());
        assert_eq!(db.rows[GRANDCHILD].get(&1), Some(&r(1, NULL, NULL, 0)));
    }

    #[test]
    fn a_cycle_in_the_tree_ends() {
        let mut db = Db::default();
        run(&mut db, Stmt::Insert(NODE, r(1, NULL, 0, NULL)));
        run(&mut db, Stmt::Insert(NODE, r(2, 1, 0, NULL)));
        run(&mut db, Stmt::Insert(NODE, r(3, 2, 0, NULL)));
        run(&mut db, Stmt::Update(NODE, 1, r(1, 3, 0, NULL)));
        run(&mut db, Stmt::Insert(NODE, r(4, 4, 0, NULL)));
        let log = run(&mut db, Stmt::Delete(NODE, 2));
        assert_eq!(log.len(), 3);
        assert_eq!(db.rows[NODE].keys().copied().collect::<Vec<_>>(), vec![4]);
        // A key change under a child is refused (ON UPDATE RESTRICT); a leaf's is not.
        run(&mut db, Stmt::Insert(NODE, r(5, 4, 0, NULL)));
        assert!(check(&db, &Stmt::Update(NODE, 4, r(6, 4, 0, NULL))).is_err());
        assert!(check(&db, &Stmt::Update(NODE, 5, r(6, 4, 0, NULL))).is_ok());
    }

    #[test]
    fn refusals() {
        let mut db = Db::default();
        run(&mut db, Stmt::Insert(PARENT, r(1, 10, 0, NULL)));
        assert!(check(&db, &Stmt::Insert(PARENT, r(2, 10, 0, NULL))).is_err());
        assert!(check(&db, &Stmt::Insert(CHILD, r(1, 9, 0, 0))).is_err());
        assert!(check(&db, &Stmt::Insert(CHILD, r(1, NULL, 0, 0))).is_ok());
        assert!(check(&db, &Stmt::Delete(PARENT, 2)).is_err());
    }
}
