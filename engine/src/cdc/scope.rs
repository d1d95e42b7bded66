//! The tables incremental sync tracks, and what a DDL statement from the binlog does to them and to the destination.
//!
//! Pure: `plan` turns a classified statement into the statements to run on the destination, the tables whose shape
//! must be read again, and the tables that leave the task; the applier carries the plan out and records it with the
//! checkpoint.

use super::ddl::{Ddl, Name, Object, Statement, Verb};
use crate::codes;
use crate::error::{Code, Error, Result};
use crate::schema::rewrite;
use std::collections::BTreeSet;

/// What incremental sync applies changes to.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Databases selected whole: every table in them is tracked, and objects created there are replicated.
    pub databases: BTreeSet<String>,
    /// Tables tracked now: selected, created in a selected database, or followed through a rename.
    pub tables: BTreeSet<Name>,
    /// Follow a rename of a table selected on its own (with whole databases, renames inside them are always
    /// followed).
    pub follow_renames: bool,
    /// The destination engine the task imposes (`schema.destination_engine`) on tables created or altered.
    pub engine: Option<String>,
    /// `objects.exclude` patterns: names that are never migrated, also when created or renamed to later.
    pub exclude: Vec<String>,
    /// ferry's metadata schema, which no pattern selects.
    pub metadata_schema: String,
    /// `objects.tables` entries: a table created later under a name one of its patterns matches is tracked.
    pub include: Vec<String>,
    /// Tables whose columns the task renames or leaves out (`[mapping] columns`, `objects.columns`): DDL on them
    /// cannot be translated (FERRY-CDC-012).
    pub reshaped: BTreeSet<Name>,
    /// Lowercase names of the tables the task renames or reshapes: views and routines created later that use them
    /// are not replicated (FERRY-CDC-010), as in the schema step (FERRY-PRE-017).
    pub touched: BTreeSet<String>,
}

/// Why a table stopped being tracked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gone {
    /// Dropped on the source (and so on the destination).
    Dropped,
    /// Renamed, and followed under the new name.
    Renamed(Name),
    /// Renamed where the task does not follow: no longer migrated.
    Detached(Name),
}

impl Gone {
    pub fn state(&self) -> &'static str {
        match self {
            Gone::Dropped => "dropped",
            Gone::Renamed(_) => "renamed",
            Gone::Detached(_) => "detached",
        }
    }

    pub fn note(&self) -> String {
        match self {
            Gone::Dropped => String::new(),
            Gone::Renamed(n) | Gone::Detached(n) => n.to_string(),
        }
    }
}

/// What to do for one statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Statements for the destination, run with the statement's default database.
    pub sql: Vec<String>,
    /// Tables tracked after the statement whose shape is read again from the destination.
    pub reread: Vec<Name>,
    /// Tables that are no longer tracked.
    pub gone: Vec<(Name, Gone)>,
    /// Coded warnings (recorded in the metadata and shown by `ferry status`).
    pub warnings: Vec<(&'static Code, String)>,
    /// Run without the statement's default database (CREATE DATABASE: the binlog records the new database as the
    /// statement's default, which the destination does not have yet).
    pub without_default_db: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.sql.is_empty()
            && self.reread.is_empty()
            && self.gone.is_empty()
            && self.warnings.is_empty()
    }
}

impl Scope {
    pub fn tracks(&self, t: &Name) -> bool {
        self.tables.contains(t)
    }

    fn excluded(&self, n: &Name) -> bool {
        let full = format!("{}.{}", n.db, n.name);
        self.exclude
            .iter()
            .any(|p| wildmatch::WildMatch::new(p).matches(&full))
    }

    /// Whether `db` is selected whole or holds a tracked table.
    pub fn covers_db(&self, db: &str) -> bool {
        self.whole(db) || self.tables.iter().any(|t| t.db == db)
    }

    /// For a statement ferry cannot tokenize: whether it may concern the task (its default database is covered,
    /// or its text names a covered database as a qualifier). Such a statement stops the task; any other passes.
    pub fn may_concern(&self, default_db: &str, sql: &str) -> bool {
        let lower = sql.to_ascii_lowercase();
        let dbs = self
            .databases
            .iter()
            .chain(self.tables.iter().map(|t| &t.db));
        self.covers_db(default_db)
            || dbs.into_iter().any(|d| {
                let d = d.to_ascii_lowercase();
                lower.contains(&format!("{d}.")) || lower.contains(&format!("`{d}`."))
            })
    }

    /// Whether `db` is selected whole (by name, or by a pattern: never a system schema or ferry's metadata).
    pub fn whole(&self, db: &str) -> bool {
        self.databases.contains(db)
            || !crate::config::is_system_schema(db)
                && db != self.metadata_schema
                && self.databases.iter().any(|p| {
                    crate::config::is_pattern(p) && wildmatch::WildMatch::new(p).matches(db)
                })
    }

    /// Whether a table by this name belongs to the task when it appears: its database is selected whole, or an
    /// `objects.tables` pattern matches it; and no exclude pattern takes it out. (A table selected by its plain
    /// name is the table that had the name when the task started: another one taking the name later is not it.)
    fn selects(&self, n: &Name) -> bool {
        let full = format!("{}.{}", n.db, n.name);
        (self.whole(&n.db)
            || self.include.iter().any(|p| {
                crate::config::is_pattern(p) && wildmatch::WildMatch::new(p).matches(&full)
            }))
            && !self.excluded(n)
    }

    /// Refuses a table statement that touches a table whose columns the destination renames or leaves out.
    fn refuse_reshaped(&self, ddl: &Ddl, sql: &str) -> Result<()> {
        let touched = ddl
            .names
            .iter()
            .chain(ddl.renames.iter().flat_map(|(a, b)| [a, b]))
            .chain(ddl.like.iter())
            .find(|n| self.reshaped.contains(n));
        match touched {
            Some(n) => Err(Error::definite(
                &codes::CDC_DDL_RESHAPED,
                format!(
                    "{n} has columns renamed or left out on the destination ([mapping] columns / objects.columns): {}",
                    excerpt(sql)
                ),
            )),
            None => Ok(()),
        }
    }

    /// Whether a name the statement mentions is in scope.
    fn concerns(&self, names: &[Name]) -> bool {
        names.iter().any(|n| self.whole(&n.db) || self.tracks(n))
    }

    /// The statement with the task's destination engine imposed, if it sets one.
    fn with_engine(&self, sql: &str) -> Result<String> {
        match &self.engine {
            Some(e) => rewrite::set_engine(sql, e),
            None => Ok(sql.to_string()),
        }
    }

    /// Carries a plan's effect on the tracked tables (after the destination ran it).
    pub fn apply(&mut self, plan: &Plan) {
        for (t, _) in &plan.gone {
            self.tables.remove(t);
        }
        for t in &plan.reread {
            self.tables.insert(t.clone());
        }
    }

    /// The plan for one statement; `Ok(None)` when it does not concern the task.
    pub fn plan(&self, stmt: &Statement, sql: &str, default_db: &str) -> Result<Option<Plan>> {
        let ddl = match stmt {
            Statement::Ignored => return Ok(None),
            Statement::Dml { names } => {
                if self.concerns(names) {
                    return Err(Error::definite(
                        &codes::CDC_UNSUPPORTED_BINLOG,
                        format!(
                            "a row change logged as a statement (binlog_format is not ROW for that session), \
                             default database `{default_db}`: {}",
                            excerpt(sql)
                        ),
                    ));
                }
                return Ok(None);
            }
            Statement::Ddl(d) => d,
        };
        if matches!(ddl.object, Object::Table | Object::Index) {
            self.refuse_reshaped(ddl, sql)?;
        }
        let plan = match ddl.object {
            Object::Table if ddl.verb == Verb::Rename || !ddl.renames.is_empty() => {
                self.renames(ddl, sql)?
            }
            Object::Table | Object::Index => self.table(ddl, sql)?,
            Object::View | Object::Function | Object::Procedure => {
                self.routine_or_view(ddl, sql)?
            }
            Object::Trigger | Object::Event => {
                if !ddl.names.iter().any(|n| self.whole(&n.db)) {
                    return Ok(None);
                }
                Some(Plan {
                    warnings: vec![(
                        &codes::CDC_DDL_SKIPPED,
                        format!(
                            "{} {} not applied while syncing (it would fire or run again for changes the binlog \
                             carries); triggers and events are created when the task is cut over: {}",
                            ddl.object_word,
                            names(&ddl.names),
                            excerpt(sql)
                        ),
                    )],
                    ..Plan::default()
                })
            }
            Object::Database => self.database(ddl, sql)?,
            Object::Other => {
                if !self.whole(default_db) && !self.concerns(&ddl.names) {
                    return Ok(None);
                }
                Some(Plan {
                    warnings: vec![(
                        &codes::CDC_DDL_SKIPPED,
                        format!(
                            "{} statements are not replicated: {}",
                            ddl.object_word,
                            excerpt(sql)
                        ),
                    )],
                    ..Plan::default()
                })
            }
        };
        Ok(plan.filter(|p| !p.is_empty()))
    }

    /// CREATE/ALTER/DROP/TRUNCATE TABLE, CREATE/DROP INDEX.
    fn table(&self, ddl: &Ddl, sql: &str) -> Result<Option<Plan>> {
        if ddl.temporary {
            return Ok(None);
        }
        let mut plan = Plan::default();
        match (ddl.object, ddl.verb) {
            (Object::Table, Verb::Create) => {
                let Some(t) = ddl.names.first() else {
                    return Ok(None);
                };
                if !self.selects(t) && !self.tracks(t) || self.excluded(t) {
                    return Ok(None);
                }
                if let Some(like) = &ddl.like {
                    if !self.tracks(like) {
                        return Err(ddl_error(
                            format!("CREATE TABLE {t} LIKE {like}: {like} is not migrated by this task, so the destination cannot copy its shape"),
                            sql,
                        ));
                    }
                }
                let create = if ddl.opens_transaction {
                    strip_start_transaction(sql)
                } else {
                    sql.to_string()
                };
                // CREATE TABLE ... LIKE copies the destination table's engine, already imposed.
                plan.sql.push(if ddl.like.is_some() {
                    create
                } else {
                    self.with_engine(&create)?
                });
                plan.reread.push(t.clone());
            }
            (Object::Table, Verb::Drop) => {
                let tracked: Vec<&Name> = ddl.names.iter().filter(|n| self.tracks(n)).collect();
                if tracked.is_empty() {
                    return Ok(None);
                }
                plan.sql.push(format!(
                    "DROP TABLE IF EXISTS {}",
                    tracked
                        .iter()
                        .map(|n| n.qualified())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                plan.gone = tracked
                    .into_iter()
                    .map(|n| (n.clone(), Gone::Dropped))
                    .collect();
            }
            _ => {
                // ALTER TABLE, TRUNCATE, CREATE/DROP INDEX: on a tracked table, as written.
                let Some(t) = ddl.names.first() else {
                    return Ok(None);
                };
                if !self.tracks(t) {
                    return Ok(None);
                }
                plan.sql
                    .push(if ddl.verb == Verb::Alter && ddl.object == Object::Table {
                        self.with_engine(sql)?
                    } else {
                        sql.to_string()
                    });
                if ddl.verb != Verb::Truncate {
                    plan.reread.push(t.clone());
                }
            }
        }
        Ok(Some(plan))
    }

    /// RENAME TABLE (any number of pairs, in order) and ALTER TABLE ... RENAME TO.
    fn renames(&self, ddl: &Ddl, sql: &str) -> Result<Option<Plan>> {
        let mut tracked = self.tables.clone();
        let mut plan = Plan::default();
        let mut followed: Vec<(Name, Name)> = Vec::new();
        for (from, to) in &ddl.renames {
            let from_tracked = tracked.contains(from);
            let follow = !self.excluded(to)
                && (self.whole(&to.db) && (self.whole(&from.db) || self.follow_renames)
                    || (self.follow_renames && to.db == from.db)
                    || self.selects(to));
            match (from_tracked, follow) {
                (true, true) => {
                    tracked.remove(from);
                    tracked.insert(to.clone());
                    plan.gone.retain(|(n, _)| n != to);
                    plan.gone.push((from.clone(), Gone::Renamed(to.clone())));
                    followed.push((from.clone(), to.clone()));
                }
                (true, false) => {
                    tracked.remove(from);
                    plan.gone.push((from.clone(), Gone::Detached(to.clone())));
                    plan.warnings.push((
                        &codes::CDC_TABLE_DETACHED,
                        format!(
                            "{from} was renamed to {to} on the source; {} (the destination keeps {from} as it was)",
                            if self.excluded(to) {
                                format!("{to} matches objects.exclude, so the table is no longer migrated")
                            } else if self.whole(&from.db) {
                                format!("{} is outside the task's databases, so the table is no longer migrated", to.db)
                            } else {
                                "the task selected the table by name, so it is no longer migrated".to_string()
                            }
                        ),
                    ));
                }
                (false, _) if self.selects(to) => {
                    return Err(ddl_error(
                        format!("{from} was renamed into the task's database as {to}, but its rows were never copied"),
                        sql,
                    ));
                }
                (false, _) => {}
            }
        }
        // Tables renamed and followed are tracked under their new names; their shapes are read again.
        for (_, to) in &followed {
            if tracked.contains(to) {
                plan.reread.push(to.clone());
            }
        }
        plan.gone.retain(|(n, _)| !tracked.contains(n));
        if !followed.is_empty() {
            if ddl.verb == Verb::Rename || followed.len() != ddl.renames.len() {
                plan.sql.push(format!(
                    "RENAME TABLE {}",
                    followed
                        .iter()
                        .map(|(a, b)| format!("{} TO {}", a.qualified(), b.qualified()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            } else {
                // ALTER TABLE ... RENAME TO with its other clauses, as written.
                plan.sql.push(sql.to_string());
            }
        }
        Ok(Some(plan))
    }

    /// Views and routines: replicated in whole databases, DEFINER removed and SQL SECURITY INVOKER as in the
    /// schema step (users are not copied).
    fn routine_or_view(&self, ddl: &Ddl, sql: &str) -> Result<Option<Plan>> {
        let names: Vec<&Name> = ddl
            .names
            .iter()
            .filter(|n| self.whole(&n.db) && !self.excluded(n))
            .collect();
        if names.is_empty() {
            return Ok(None);
        }
        if ddl.verb != Verb::Drop && crate::schema::reshape::mentions(sql, &self.touched) {
            return Ok(Some(Plan {
                warnings: vec![(
                    &codes::CDC_DDL_SKIPPED,
                    format!(
                        "{} {} uses tables the task renames or reshapes on the destination, so it is not \
                         replicated (create it there by hand under the destination's names): {}",
                        ddl.object_word,
                        self::names(&ddl.names),
                        excerpt(sql)
                    ),
                )],
                ..Plan::default()
            }));
        }
        let mut plan = Plan::default();
        match (ddl.object, ddl.verb) {
            (_, Verb::Drop) => plan.sql.push(sql.to_string()),
            (Object::View, _) => {
                let s = rewrite::strip_definer(sql).map_err(|e| e.context("rewriting the view"))?;
                plan.sql.push(rewrite::view_security_invoker(&s)?);
            }
            (kind, verb) => {
                plan.sql.push(if verb == Verb::Create {
                    rewrite::strip_definer(sql)?
                } else {
                    sql.to_string()
                });
                let word = if kind == Object::Function {
                    "FUNCTION"
                } else {
                    "PROCEDURE"
                };
                for n in names {
                    plan.sql.push(format!(
                        "ALTER {word} {} SQL SECURITY INVOKER",
                        n.qualified()
                    ));
                }
            }
        }
        Ok(Some(plan))
    }

    fn database(&self, ddl: &Ddl, sql: &str) -> Result<Option<Plan>> {
        let Some(db) = ddl.names.first().map(|n| n.db.as_str()) else {
            return Ok(None);
        };
        if !self.covers_db(db) {
            return Ok(None);
        }
        match ddl.verb {
            // A database created later that a `databases` pattern selects: created on the destination too, so
            // the tables created in it next can be.
            Verb::Create if self.whole(db) && !self.databases.contains(db) => Ok(Some(Plan {
                sql: vec![sql.to_string()],
                without_default_db: true,
                ..Plan::default()
            })),
            Verb::Alter => Ok(Some(Plan {
                sql: vec![sql.to_string()],
                ..Plan::default()
            })),
            Verb::Drop => Err(ddl_error(
                format!("the source dropped database {db}, which the task migrates"),
                sql,
            )),
            _ => Ok(None),
        }
    }
}

fn ddl_error(what: String, sql: &str) -> Error {
    Error::definite(&codes::CDC_DDL, format!("{what}: {}", excerpt(sql)))
}

fn names(n: &[Name]) -> String {
    n.iter().map(Name::to_string).collect::<Vec<_>>().join(", ")
}

/// The first 500 characters of a statement, for messages.
pub fn excerpt(sql: &str) -> String {
    let s: String = sql.chars().take(500).collect();
    if s.len() < sql.len() {
        format!("{s}...")
    } else {
        s
    }
}

/// `CREATE TABLE ... START TRANSACTION` (MySQL 8's binlog form of CREATE TABLE ... SELECT) without the suffix.
fn strip_start_transaction(sql: &str) -> String {
    let t = sql.trim_end();
    let upper = t.to_ascii_uppercase();
    match upper.rfind("START") {
        Some(i)
            if upper[i..].split_whitespace().collect::<Vec<_>>() == ["START", "TRANSACTION"] =>
        {
            t[..i].trim_end().to_string()
        }
        _ => sql.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::ddl::classify;
    use super::*;

    fn n(db: &str, t: &str) -> Name {
        Name::new(db, t)
    }

    fn whole_db() -> Scope {
        Scope {
            databases: ["shop".to_string()].into(),
            tables: [n("shop", "t"), n("shop", "orders")].into(),
            follow_renames: false,
            engine: None,
            exclude: vec!["shop.tmp_*".into()],
            ..Scope::default()
        }
    }

    fn by_table(follow: bool) -> Scope {
        Scope {
            databases: BTreeSet::new(),
            tables: [n("crm", "t")].into(),
            follow_renames: follow,
            engine: None,
            exclude: vec![],
            include: vec!["crm.t".into()],
            ..Scope::default()
        }
    }

    fn plan(s: &Scope, sql: &str, db: &str) -> Result<Option<Plan>> {
        s.plan(&classify(sql, db)?, sql, db)
    }

    #[test]
    fn create_alter_drop_in_a_whole_database() {
        let s = whole_db();
        let p = plan(&s, "CREATE TABLE n (id INT PRIMARY KEY)", "shop")
            .expect("ok")
            .expect("plan");
        assert_eq!(p.sql, vec!["CREATE TABLE n (id INT PRIMARY KEY)"]);
        assert_eq!(p.reread, vec![n("shop", "n")]);
        let p = plan(&s, "ALTER TABLE t ADD c INT", "shop")
            .expect("ok")
            .expect("plan");
        assert_eq!(p.reread, vec![n("shop", "t")]);
        let p = plan(&s, "TRUNCATE TABLE orders", "shop")
            .expect("ok")
            .expect("plan");
        assert!(p.reread.is_empty());
        let p = plan(
            &s,
            "DROP TABLE IF EXISTS t, other.x /* generated by server */",
            "shop",
        )
        .expect("ok")
        .expect("plan");
        assert_eq!(p.sql, vec!["DROP TABLE IF EXISTS `shop`.`t`"]);
        assert_eq!(p.gone, vec![(n("shop", "t"), Gone::Dropped)]);
        // Elsewhere: nothing.
        assert_eq!(
            plan(&s, "CREATE TABLE n (id INT)", "other").expect("ok"),
            None
        );
        assert_eq!(
            plan(&s, "ALTER TABLE other.t ADD c INT", "shop").expect("ok"),
            None
        );
        assert_eq!(
            plan(&s, "CREATE TEMPORARY TABLE n (id INT)", "shop").expect("ok"),
            None
        );
        // MySQL 8's CREATE TABLE ... SELECT.
        let p = plan(&s, "CREATE TABLE `c` (`a` int) START TRANSACTION", "shop")
            .expect("ok")
            .expect("plan");
        assert_eq!(p.sql, vec!["CREATE TABLE `c` (`a` int)"]);
    }

    #[test]
    fn the_destination_engine_is_imposed_on_created_and_altered_tables() {
        let mut s = whole_db();
        s.engine = Some("InnoDB".into());
        let p = plan(
            &s,
            "CREATE TABLE n (id INT PRIMARY KEY) ENGINE=MyISAM",
            "shop",
        )
        .expect("ok")
        .expect("plan");
        assert_eq!(
            p.sql,
            vec!["CREATE TABLE n (id INT PRIMARY KEY) ENGINE=InnoDB"]
        );
        let p = plan(&s, "CREATE TABLE m (id INT PRIMARY KEY)", "shop")
            .expect("ok")
            .expect("plan");
        assert_eq!(
            p.sql,
            vec!["CREATE TABLE m (id INT PRIMARY KEY) ENGINE=InnoDB"]
        );
        let p = plan(&s, "ALTER TABLE t ENGINE=Aria", "shop")
            .expect("ok")
            .expect("plan");
        assert_eq!(p.sql, vec!["ALTER TABLE t ENGINE=InnoDB"]);
    }

    #[test]
    fn statements_that_cannot_be_read_concern_the_task_by_their_databases() {
        let s = whole_db();
        assert!(s.may_concern("shop", "ALTER TABLE t \u{1}"));
        assert!(s.may_concern("", "ALTER TABLE `shop`.t \u{1}"));
        assert!(!s.may_concern("other", "ALTER TABLE t \u{1}"));
    }

    #[test]
    fn excluded_names_stay_out_when_created_or_renamed_to() {
        let s = whole_db();
        assert_eq!(
            plan(&s, "CREATE TABLE tmp_1 (a INT)", "shop").expect("ok"),
            None
        );
        assert_eq!(
            plan(&s, "CREATE VIEW tmp_v AS SELECT 1", "shop").expect("ok"),
            None
        );
        let p = plan(&s, "RENAME TABLE t TO tmp_t", "shop")
            .expect("ok")
            .expect("plan");
        assert!(p.sql.is_empty());
        assert_eq!(
            p.gone,
            vec![(n("shop", "t"), Gone::Detached(n("shop", "tmp_t")))]
        );
        assert!(
            p.warnings[0].1.contains("objects.exclude"),
            "{:?}",
            p.warnings
        );
        // Out of an excluded name into the database: its rows were never copied.
        let e = plan(&s, "RENAME TABLE tmp_t TO t2", "shop").expect_err("refused");
        assert_eq!(e.code().id, "FERRY-CDC-009");
    }

    #[test]
    fn renames_follow_in_a_whole_database() {
        let mut s = whole_db();
        s.tables.insert(n("shop", "_t_gho"));
        let p = plan(&s, "RENAME TABLE t TO _t_del, _t_gho TO t", "shop")
            .expect("ok")
            .expect("plan");
        assert_eq!(
            p.sql,
            vec!["RENAME TABLE `shop`.`t` TO `shop`.`_t_del`, `shop`.`_t_gho` TO `shop`.`t`"]
        );
        assert_eq!(p.reread, vec![n("shop", "_t_del"), n("shop", "t")]);
        assert_eq!(
            p.gone,
            vec![(n("shop", "_t_gho"), Gone::Renamed(n("shop", "t")))]
        );
        s.apply(&p);
        assert!(
            s.tracks(&n("shop", "t"))
                && s.tracks(&n("shop", "_t_del"))
                && !s.tracks(&n("shop", "_t_gho"))
        );
        // Out of the databases: detached with a warning; into them from outside: refused.
        let p = plan(&s, "RENAME TABLE orders TO archive.orders", "shop")
            .expect("ok")
            .expect("plan");
        assert!(p.sql.is_empty());
        assert_eq!(
            p.gone,
            vec![(n("shop", "orders"), Gone::Detached(n("archive", "orders")))]
        );
        assert_eq!(p.warnings[0].0.id, "FERRY-CDC-011");
        let e = plan(&s, "RENAME TABLE archive.x TO shop.x", "").expect_err("refused");
        assert_eq!(e.code().id, "FERRY-CDC-009");
        let p = plan(&s, "ALTER TABLE t ADD z INT, RENAME TO t2", "shop")
            .expect("ok")
            .expect("plan");
        assert_eq!(p.sql, vec!["ALTER TABLE t ADD z INT, RENAME TO t2"]);
        assert_eq!(p.reread, vec![n("shop", "t2")]);
    }

    #[test]
    fn renames_of_a_table_selected_by_name() {
        let s = by_table(false);
        let p = plan(&s, "RENAME TABLE t TO t_old, t_new TO t", "crm")
            .expect("ok")
            .expect("plan");
        assert!(p.sql.is_empty(), "{p:?}");
        assert_eq!(
            p.gone,
            vec![(n("crm", "t"), Gone::Detached(n("crm", "t_old")))]
        );
        assert_eq!(p.warnings[0].0.id, "FERRY-CDC-011");
        let s = by_table(true);
        let p = plan(&s, "RENAME TABLE t TO t2", "crm")
            .expect("ok")
            .expect("plan");
        assert_eq!(p.sql, vec!["RENAME TABLE `crm`.`t` TO `crm`.`t2`"]);
        assert_eq!(p.reread, vec![n("crm", "t2")]);
        // A table selected by name: other objects of its database are not migrated.
        assert_eq!(plan(&s, "CREATE TABLE x (a INT)", "crm").expect("ok"), None);
        assert_eq!(
            plan(&s, "CREATE VIEW v AS SELECT 1", "crm").expect("ok"),
            None
        );
    }

    #[test]
    fn views_routines_triggers_databases_other() {
        let s = whole_db();
        let p = plan(
            &s,
            "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `v` AS select 1 AS `a`",
            "shop",
        )
        .expect("ok")
        .expect("plan");
        assert_eq!(
            p.sql,
            vec!["CREATE ALGORITHM=UNDEFINED SQL SECURITY INVOKER VIEW `v` AS select 1 AS `a`"]
        );
        let p = plan(
            &s,
            "CREATE DEFINER=`root`@`localhost` PROCEDURE `p`() BEGIN SELECT 1; END",
            "shop",
        )
        .expect("ok")
        .expect("plan");
        assert_eq!(
            p.sql,
            vec![
                "CREATE PROCEDURE `p`() BEGIN SELECT 1; END".to_string(),
                "ALTER PROCEDURE `shop`.`p` SQL SECURITY INVOKER".to_string()
            ]
        );
        let p = plan(
            &s,
            "CREATE DEFINER=`a`@`%` TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1",
            "shop",
        )
        .expect("ok")
        .expect("plan");
        assert!(p.sql.is_empty());
        assert_eq!(p.warnings[0].0.id, "FERRY-CDC-010");
        let p = plan(&s, "ALTER DATABASE shop CHARACTER SET utf8mb4", "")
            .expect("ok")
            .expect("plan");
        assert_eq!(p.sql.len(), 1);
        assert_eq!(
            plan(&s, "DROP DATABASE shop", "")
                .expect_err("refused")
                .code()
                .id,
            "FERRY-CDC-009"
        );
        assert_eq!(
            plan(&s, "CREATE SEQUENCE sq", "shop")
                .expect("ok")
                .expect("plan")
                .warnings[0]
                .0
                .id,
            "FERRY-CDC-010"
        );
        assert_eq!(plan(&s, "CREATE SEQUENCE sq", "other").expect("ok"), None);
        assert_eq!(
            plan(&s, "GRANT ALL ON shop.* TO x", "shop").expect("ok"),
            None
        );
        assert_eq!(
            plan(&s, "INSERT INTO t VALUES (1)", "shop")
                .expect_err("statement DML")
                .code()
                .id,
            "FERRY-CDC-004"
        );
        assert_eq!(
            plan(&s, "INSERT INTO other.t VALUES (1)", "other").expect("ok"),
            None
        );
    }
}
