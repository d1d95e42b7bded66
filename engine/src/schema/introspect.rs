//! Reads the selected databases, tables, views, routines, triggers and events from the source.

use super::model::*;
use super::rewrite;
use crate::codes;
use crate::config::{is_pattern, is_system_schema, Objects};
use crate::error::{Error, Result, ResultExt};
use crate::mysql::quote;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use std::collections::{BTreeMap, BTreeSet};

/// The text of column `i`, or None for SQL NULL. information_schema answers in utf8.
pub fn text(row: &Row, i: usize) -> Option<String> {
    match row.as_ref(i)? {
        mysql_async::Value::NULL => None,
        mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        mysql_async::Value::Int(v) => Some(v.to_string()),
        mysql_async::Value::UInt(v) => Some(v.to_string()),
        other => Some(other.as_sql(true)),
    }
}

fn required(row: &Row, i: usize, what: &str) -> Result<String> {
    text(row, i).ok_or_else(|| {
        Error::definite(
            &codes::SCH_INTROSPECT,
            format!("{what}: the server returned NULL (missing privilege?)"),
        )
    })
}

/// The text of the column named `name` (SHOW CREATE ... results are read by column name).
fn named(row: &Row, name: &str) -> Option<String> {
    let i = row
        .columns_ref()
        .iter()
        .position(|c| c.name_str().eq_ignore_ascii_case(name))?;
    text(row, i)
}

/// Reads everything the selection names. With whole databases selected, views, routines, triggers and events
/// come along; with single tables, only those tables.
pub async fn read(conn: &mut Conn, objects: &Objects, meta_schema: &str) -> Result<SourceSchema> {
    read_with(conn, objects, meta_schema, false).await
}

/// What a task migrates: `read_with` over its selection, then the objects that use tables its `[mapping]` or
/// `objects.columns` renames or reshapes left out (`SourceSchema::left_out`).
pub async fn read_task(
    conn: &mut Conn,
    cfg: &crate::config::TaskConfig,
    missing_ok: bool,
) -> Result<SourceSchema> {
    let mut schema = read_with(conn, &cfg.objects, &cfg.metadata.schema, missing_ok).await?;
    schema.leave_out_reshaped(&NameMap::new(cfg));
    Ok(schema)
}

/// As `read`; with `missing_ok`, a selected table that is gone is noted in `skipped` instead of failing (a task
/// in its incremental phase may have seen the table renamed or dropped through the binlog).
pub async fn read_with(
    conn: &mut Conn,
    objects: &Objects,
    meta_schema: &str,
    missing_ok: bool,
) -> Result<SourceSchema> {
    let mut schema = SourceSchema::default();
    let per_db = expand_selection(conn, objects, meta_schema, missing_ok).await?;
    let names = NameMap::from_parts(&Default::default(), &objects.columns);
    for (db, only_tables) in &per_db {
        if is_system_schema(db) || db == meta_schema {
            continue;
        }
        let row: Option<Row> = conn
            .exec_first(
                "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME \
                 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (db,),
            )
            .await
            .ctx(format!("reading database {db}"))?;
        let Some(row) = row else {
            return Err(Error::definite(
                &codes::SCH_NOT_FOUND,
                format!("database `{db}` does not exist on the source"),
            ));
        };
        schema.databases.push(Database {
            name: db.clone(),
            charset: required(&row, 1, "database charset")?,
            collation: required(&row, 2, "database collation")?,
        });
        let tables = read_tables(conn, db, only_tables.as_ref(), &mut schema.skipped).await?;
        if let Some(only) = only_tables {
            for name in only {
                if !tables.iter().any(|t| &t.name == name) {
                    if missing_ok {
                        schema
                            .skipped
                            .push(format!("{db}.{name}: no longer on the source"));
                        continue;
                    }
                    return Err(Error::definite(
                        &codes::SCH_NOT_FOUND,
                        format!("table `{db}`.`{name}` does not exist on the source"),
                    ));
                }
            }
        }
        for mut t in tables {
            if let Some(kept) = names.kept_columns(&t.db, &t.name) {
                t.omitted = t
                    .columns
                    .iter()
                    .filter(|c| !kept.contains(&c.name.to_ascii_lowercase()))
                    .map(|c| c.name.clone())
                    .collect();
            }
            if objects.excluded(&t.db, &t.name) {
                schema
                    .skipped
                    .push(format!("{}: excluded by objects.exclude", t.display_name()));
            } else {
                schema.tables.push(t);
            }
        }
        if only_tables.is_none() {
            let mut found = Vec::new();
            read_objects(conn, db, &mut found).await?;
            for o in found {
                let on_excluded = o.kind == ObjectKind::Trigger
                    && crate::cdc::ddl::trigger_table(&o.create_sql, &o.db)
                        .ok()
                        .flatten()
                        .is_some_and(|t| objects.excluded(&t.db, &t.name));
                if objects.excluded(&o.db, &o.name) || on_excluded {
                    schema.skipped.push(format!(
                        "{} {}.{}: excluded by objects.exclude",
                        o.kind.as_str(),
                        o.db,
                        o.name
                    ));
                } else {
                    schema.objects.push(o);
                }
            }
        }
    }
    Ok(schema)
}

/// The selection with its patterns resolved against the source: database -> None (the whole database) or the
/// tables selected in it. A pattern that matches nothing is an error (a typo would otherwise select nothing),
/// except for a task past its copy (`missing_ok`), where the binlog may have taken the tables away.
async fn expand_selection(
    conn: &mut Conn,
    objects: &Objects,
    meta_schema: &str,
    missing_ok: bool,
) -> Result<BTreeMap<String, Option<BTreeSet<String>>>> {
    let patterned = objects
        .databases
        .iter()
        .chain(objects.tables.iter())
        .any(|p| is_pattern(p));
    let all_dbs: Vec<String> = if patterned {
        conn.query::<String, _>(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
        )
        .await
        .ctx("listing databases")?
        .into_iter()
        .filter(|d| !is_system_schema(d) && d != meta_schema)
        .collect()
    } else {
        Vec::new()
    };
    let not_found = |what: String| Error::definite(&codes::SCH_NOT_FOUND, what);
    let mut per_db: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    for p in &objects.databases {
        if !is_pattern(p) {
            per_db.insert(p.clone(), None);
            continue;
        }
        let m = wildmatch::WildMatch::new(p);
        let hits: Vec<&String> = all_dbs.iter().filter(|d| m.matches(d)).collect();
        if hits.is_empty() && !missing_ok {
            return Err(not_found(format!(
                "objects.databases pattern `{p}` matches no database on the source"
            )));
        }
        for d in hits {
            per_db.insert(d.clone(), None);
        }
    }
    for entry in &objects.tables {
        let Some((dbp, tp)) = entry.split_once('.') else {
            continue;
        };
        let dbs: Vec<String> = if is_pattern(dbp) {
            let m = wildmatch::WildMatch::new(dbp);
            all_dbs.iter().filter(|d| m.matches(d)).cloned().collect()
        } else {
            vec![dbp.to_string()]
        };
        let mut found = false;
        for db in dbs {
            if matches!(per_db.get(&db), Some(None)) {
                found = true; // selected whole already
                continue;
            }
            let names: Vec<String> = if is_pattern(tp) {
                let m = wildmatch::WildMatch::new(tp);
                conn.exec::<String, _, _>(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? \
                     AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
                    (&db,),
                )
                .await
                .ctx(format!("listing tables of {db}"))?
                .into_iter()
                .filter(|t| m.matches(t))
                .collect()
            } else {
                vec![tp.to_string()]
            };
            found |= !names.is_empty();
            if let Some(set) = per_db.entry(db).or_insert_with(|| Some(BTreeSet::new())) {
                set.extend(names);
            }
        }
        if !found && is_pattern(entry) && !missing_ok {
            return Err(not_found(format!(
                "objects.tables pattern `{entry}` matches no table on the source"
            )));
        }
    }
    per_db.retain(|_, v| v.as_ref().is_none_or(|s| !s.is_empty()));
    Ok(per_db)
}

/// The shapes of the named tables as `conn`'s server has them (missing tables are left out).
pub async fn read_table_shapes(
    conn: &mut Conn,
    names: &[crate::cdc::ddl::Name],
) -> Result<Vec<Table>> {
    let mut per_db: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for n in names {
        per_db
            .entry(n.db.as_str())
            .or_default()
            .insert(n.name.clone());
    }
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (db, set) in per_db {
        out.extend(read_tables(conn, db, Some(&set), &mut skipped).await?);
    }
    Ok(out)
}

async fn read_tables(
    conn: &mut Conn,
    db: &str,
    only: Option<&BTreeSet<String>>,
    skipped: &mut Vec<String>,
) -> Result<Vec<Table>> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_ROWS FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
            (db,),
        )
        .await
        .ctx(format!("listing tables of {db}"))?;
    let mut names = Vec::new();
    for r in &rows {
        let name = required(r, 0, "table name")?;
        if only.is_some_and(|o| !o.contains(&name)) {
            continue;
        }
        let ttype = text(r, 1).unwrap_or_default();
        match ttype.as_str() {
            "BASE TABLE" => names.push((
                name,
                text(r, 2).unwrap_or_default(),
                text(r, 3).and_then(|s| s.parse().ok()).unwrap_or(0u64),
            )),
            "VIEW" | "SYSTEM VIEW" => {}
            other => skipped.push(format!("{db}.{name}: {other} is not migrated")),
        }
    }

    let col_rows: Vec<Row> = conn
        .exec(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, EXTRA \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (db,),
        )
        .await
        .ctx(format!("reading columns of {db}"))?;
    let mut columns: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for r in &col_rows {
        let extra = text(r, 6).unwrap_or_default().to_ascii_uppercase();
        columns
            .entry(required(r, 0, "table name")?)
            .or_default()
            .push(Column {
                name: required(r, 1, "column name")?,
                data_type: required(r, 2, "data type")?.to_ascii_lowercase(),
                column_type: required(r, 3, "column type")?,
                nullable: text(r, 4).as_deref() == Some("YES"),
                charset: text(r, 5),
                generated: extra.contains("VIRTUAL GENERATED")
                    || extra.contains("STORED GENERATED")
                    || extra.contains("PERSISTENT GENERATED"),
            });
    }

    let idx_rows: Vec<Row> = conn
        .exec(
            "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
            (db,),
        )
        .await
        .ctx(format!("reading indexes of {db}"))?;
    let mut indexes: BTreeMap<String, Vec<IndexPart>> = BTreeMap::new();
    for r in &idx_rows {
        indexes
            .entry(required(r, 0, "table name")?)
            .or_default()
            .push(IndexPart {
                index: required(r, 1, "index name")?,
                unique: text(r, 2).as_deref() == Some("0"),
                column: text(r, 3),
                prefix: text(r, 4).is_some(),
            });
    }

    // Foreign keys that make child rows follow a parent of this database (one row per FK column).
    type FkRow = (String, String, String, String, String, String, String);
    let fk_rows: Vec<FkRow> = conn
        .exec(
            "SELECT k.REFERENCED_TABLE_NAME, k.CONSTRAINT_NAME, k.TABLE_SCHEMA, k.TABLE_NAME, k.COLUMN_NAME, \
             k.REFERENCED_COLUMN_NAME, CONCAT(r.DELETE_RULE, '/', r.UPDATE_RULE) \
             FROM information_schema.REFERENTIAL_CONSTRAINTS r JOIN information_schema.KEY_COLUMN_USAGE k \
             ON k.CONSTRAINT_SCHEMA = r.CONSTRAINT_SCHEMA AND k.CONSTRAINT_NAME = r.CONSTRAINT_NAME \
             AND k.TABLE_NAME = r.TABLE_NAME \
             WHERE k.REFERENCED_TABLE_SCHEMA = ? \
             AND (r.DELETE_RULE IN ('CASCADE', 'SET NULL') OR r.UPDATE_RULE IN ('CASCADE', 'SET NULL')) \
             ORDER BY k.REFERENCED_TABLE_NAME, k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
            (db,),
        )
        .await
        .ctx(format!("reading foreign keys of {db}"))?;

    // Columns the server sets on every update (ON UPDATE CURRENT_TIMESTAMP), of tables with followed FKs.
    let auto_updated: Vec<(String, String, String)> = conn
        .exec(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS \
             WHERE EXTRA LIKE '%on update%' AND (TABLE_SCHEMA, TABLE_NAME) IN \
             (SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.KEY_COLUMN_USAGE \
              WHERE REFERENCED_TABLE_SCHEMA = ?)",
            (db,),
        )
        .await
        .ctx(format!("reading columns of tables referencing {db}"))?;

    let mut tables = Vec::new();
    for (name, engine, rows_estimate) in names {
        let create: Option<Row> = conn
            .query_first(format!("SHOW CREATE TABLE {}", quote::qualified(db, &name)))
            .await
            .ctx(format!("SHOW CREATE TABLE {db}.{name}"))?;
        let create_sql = create.as_ref().and_then(|r| text(r, 1)).ok_or_else(|| {
            Error::definite(
                &codes::SCH_INTROSPECT,
                format!("SHOW CREATE TABLE {db}.{name}"),
            )
        })?;
        let cols = columns.remove(&name).unwrap_or_default();
        let parts = indexes.get(&name).map(Vec::as_slice).unwrap_or(&[]);
        let key = choose_key(&cols, parts);
        let uniques = other_unique_keys(&cols, parts, key.as_ref());
        let mut followers = followers_of(&name, &cols, &fk_rows);
        for f in &mut followers {
            f.keep = auto_updated
                .iter()
                .filter(|(d, t, _)| *d == f.db && *t == f.table)
                .map(|(_, _, c)| c.clone())
                .collect();
        }
        tables.push(Table {
            db: db.to_string(),
            name,
            columns: cols,
            key,
            uniques,
            followers,
            engine,
            rows_estimate,
            create_sql,
            omitted: Vec::new(),
        });
    }
    Ok(tables)
}

/// The FKs among `rows` (see the query above) that reference `parent`, grouped by constraint.
fn followers_of(
    parent: &str,
    cols: &[Column],
    rows: &[(String, String, String, String, String, String, String)],
) -> Vec<Follower> {
    let mut out: Vec<(String, Follower)> = Vec::new();
    for (referenced_table, constraint, db, table, column, referenced_column, rules) in rows {
        if referenced_table != parent {
            continue;
        }
        let Some(idx) = cols.iter().position(|c| &c.name == referenced_column) else {
            continue;
        };
        let id = format!("{db}.{table}.{constraint}");
        if out.last().map(|(i, _)| i != &id).unwrap_or(true) {
            let (on_delete, on_update) = rules.split_once('/').unwrap_or((rules, ""));
            out.push((
                id,
                Follower {
                    db: db.clone(),
                    table: table.clone(),
                    columns: Vec::new(),
                    referenced: Vec::new(),
                    keep: Vec::new(),
                    on_delete: FkRule::parse(on_delete),
                    on_update: FkRule::parse(on_update),
                },
            ));
        }
        if let Some((_, f)) = out.last_mut() {
            f.columns.push(column.clone());
            f.referenced.push(idx);
        }
    }
    out.into_iter().map(|(_, f)| f).collect()
}

/// One row of information_schema.STATISTICS.
#[derive(Debug, Clone)]
pub struct IndexPart {
    pub index: String,
    pub unique: bool,
    /// None for a functional key part (MySQL 8).
    pub column: Option<String>,
    /// A prefix index (`col(10)`): it cannot identify a row.
    pub prefix: bool,
}

/// Types whose order in an index agrees with comparison against a literal (so key ranges are exact).
fn orderable(data_type: &str) -> bool {
    matches!(
        data_type,
        "tinyint"
            | "smallint"
            | "mediumint"
            | "int"
            | "integer"
            | "bigint"
            | "decimal"
            | "numeric"
            | "char"
            | "varchar"
            | "binary"
            | "varbinary"
            | "date"
            | "datetime"
            | "timestamp"
            | "time"
            | "year"
    )
}

/// The PRIMARY KEY, else the unique key over NOT NULL, orderable, whole columns with the fewest columns.
pub fn choose_key(columns: &[Column], parts: &[IndexPart]) -> Option<Key> {
    let mut by_index: BTreeMap<&str, Vec<&IndexPart>> = BTreeMap::new();
    for p in parts {
        by_index.entry(p.index.as_str()).or_default().push(p);
    }
    let mut candidates: Vec<Key> = Vec::new();
    for (index, parts) in by_index {
        if !parts.iter().all(|p| p.unique && !p.prefix) {
            continue;
        }
        let mut cols = Vec::new();
        for p in &parts {
            let Some(name) = &p.column else { break };
            let Some(i) = columns.iter().position(|c| &c.name == name) else {
                break;
            };
            if columns[i].nullable || !orderable(&columns[i].data_type) {
                break;
            }
            cols.push(i);
        }
        if cols.len() == parts.len() {
            candidates.push(Key {
                name: index.to_string(),
                columns: cols,
            });
        }
    }
    candidates.sort_by_key(|k| (k.name != "PRIMARY", k.columns.len()));
    candidates.into_iter().next()
}

/// Unique indexes other than `key`, over whole columns (a prefix or functional part cannot be checked by value).
pub fn other_unique_keys(columns: &[Column], parts: &[IndexPart], key: Option<&Key>) -> Vec<Key> {
    let mut by_index: BTreeMap<&str, Vec<&IndexPart>> = BTreeMap::new();
    for p in parts {
        by_index.entry(p.index.as_str()).or_default().push(p);
    }
    by_index
        .into_iter()
        .filter(|(name, parts)| {
            Some(*name) != key.map(|k| k.name.as_str())
                && parts.iter().all(|p| p.unique && !p.prefix)
        })
        .filter_map(|(name, parts)| {
            let cols: Option<Vec<usize>> = parts
                .iter()
                .map(|p| {
                    let c = p.column.as_ref()?;
                    columns.iter().position(|x| &x.name == c)
                })
                .collect();
            cols.map(|columns| Key {
                name: name.to_string(),
                columns,
            })
        })
        .collect()
}

async fn read_objects(conn: &mut Conn, db: &str, out: &mut Vec<Object>) -> Result<()> {
    // Functions and procedures first: views may call functions.
    let routines: Vec<Row> = conn
        .exec(
            "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? \
             ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
            (db,),
        )
        .await
        .ctx(format!("listing routines of {db}"))?;
    for r in &routines {
        let name = required(r, 0, "routine name")?;
        let (kind, show, col) = match text(r, 1).as_deref() {
            Some("FUNCTION") => (ObjectKind::Function, "FUNCTION", "Create Function"),
            Some("PROCEDURE") => (ObjectKind::Procedure, "PROCEDURE", "Create Procedure"),
            _ => continue,
        };
        let row: Option<Row> = conn
            .query_first(format!(
                "SHOW CREATE {show} {}",
                quote::qualified(db, &name)
            ))
            .await
            .ctx(format!("SHOW CREATE {show} {db}.{name}"))?;
        let row = row.ok_or_else(|| {
            Error::definite(&codes::SCH_INTROSPECT, format!("{show} {db}.{name}"))
        })?;
        out.push(Object {
            kind,
            db: db.to_string(),
            create_sql: named(&row, col).ok_or_else(|| {
                Error::definite(
                    &codes::SCH_INTROSPECT,
                    format!("the body of {show} {db}.{name} is hidden from ferry's account"),
                )
            })?,
            sql_mode: named(&row, "sql_mode"),
            time_zone: None,
            name,
        });
    }

    let views: Vec<Row> = conn
        .exec(
            "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
            (db,),
        )
        .await
        .ctx(format!("listing views of {db}"))?;
    let mut view_objs = Vec::new();
    for r in &views {
        let name = required(r, 0, "view name")?;
        let row: Option<Row> = conn
            .query_first(format!("SHOW CREATE VIEW {}", quote::qualified(db, &name)))
            .await
            .ctx(format!("SHOW CREATE VIEW {db}.{name}"))?;
        let sql = row
            .as_ref()
            .and_then(|r| named(r, "Create View"))
            .ok_or_else(|| {
                Error::definite(
                    &codes::SCH_INTROSPECT,
                    format!("SHOW CREATE VIEW {db}.{name}"),
                )
            })?;
        view_objs.push(Object {
            kind: ObjectKind::View,
            db: db.to_string(),
            name,
            create_sql: sql,
            sql_mode: None,
            time_zone: None,
        });
    }
    out.extend(rewrite::order_views(view_objs)?);

    let triggers: Vec<Row> = conn
        .exec(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? \
             ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER",
            (db,),
        )
        .await
        .ctx(format!("listing triggers of {db}"))?;
    for r in &triggers {
        let name = required(r, 0, "trigger name")?;
        let row: Option<Row> = conn
            .query_first(format!(
                "SHOW CREATE TRIGGER {}",
                quote::qualified(db, &name)
            ))
            .await
            .ctx(format!("SHOW CREATE TRIGGER {db}.{name}"))?;
        let row = row.ok_or_else(|| {
            Error::definite(&codes::SCH_INTROSPECT, format!("TRIGGER {db}.{name}"))
        })?;
        out.push(Object {
            kind: ObjectKind::Trigger,
            db: db.to_string(),
            create_sql: named(&row, "SQL Original Statement").ok_or_else(|| {
                Error::definite(&codes::SCH_INTROSPECT, format!("TRIGGER {db}.{name}"))
            })?,
            sql_mode: named(&row, "sql_mode"),
            time_zone: None,
            name,
        });
    }

    let events: Vec<Row> = conn
        .exec(
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME",
            (db,),
        )
        .await
        .ctx(format!("listing events of {db}"))?;
    for r in &events {
        let name = required(r, 0, "event name")?;
        let row: Option<Row> = conn
            .query_first(format!("SHOW CREATE EVENT {}", quote::qualified(db, &name)))
            .await
            .ctx(format!("SHOW CREATE EVENT {db}.{name}"))?;
        let row = row
            .ok_or_else(|| Error::definite(&codes::SCH_INTROSPECT, format!("EVENT {db}.{name}")))?;
        out.push(Object {
            kind: ObjectKind::Event,
            db: db.to_string(),
            create_sql: named(&row, "Create Event").ok_or_else(|| {
                Error::definite(&codes::SCH_INTROSPECT, format!("EVENT {db}.{name}"))
            })?,
            sql_mode: named(&row, "sql_mode"),
            time_zone: named(&row, "time_zone"),
            name,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, nullable: bool) -> Column {
        Column {
            name: name.into(),
            data_type: ty.into(),
            column_type: ty.into(),
            charset: None,
            nullable,
            generated: false,
        }
    }

    fn part(index: &str, unique: bool, column: &str) -> IndexPart {
        IndexPart {
            index: index.into(),
            unique,
            column: Some(column.into()),
            prefix: false,
        }
    }

    #[test]
    fn primary_key_wins() {
        let cols = vec![col("a", "int", false), col("b", "varchar", false)];
        let parts = vec![
            part("PRIMARY", true, "a"),
            part("PRIMARY", true, "b"),
            part("u", true, "b"),
        ];
        let k = choose_key(&cols, &parts).expect("a key");
        assert_eq!(k.name, "PRIMARY");
        assert_eq!(k.columns, vec![0, 1]);
    }

    #[test]
    fn unique_not_null_key_is_used_without_pk() {
        let cols = vec![
            col("a", "int", true),
            col("b", "bigint", false),
            col("c", "int", false),
        ];
        let parts = vec![
            part("ua", true, "a"),
            part("ubc", true, "b"),
            part("ubc", true, "c"),
            part("ub", true, "b"),
        ];
        let k = choose_key(&cols, &parts).expect("a key");
        assert_eq!(k.name, "ub");
    }

    #[test]
    fn no_usable_key() {
        let cols = vec![col("a", "double", false), col("b", "int", false)];
        let parts = vec![part("PRIMARY", true, "a"), part("ib", false, "b")];
        assert!(choose_key(&cols, &parts).is_none());
        let prefix = vec![IndexPart {
            index: "PRIMARY".into(),
            unique: true,
            column: Some("b".into()),
            prefix: true,
        }];
        assert!(choose_key(&cols, &prefix).is_none());
    }
}
