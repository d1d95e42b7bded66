//! Repair SQL: the statement that makes one differing destination row equal to the source (INSERT, UPDATE or
//! DELETE by key), written one per line for review, and applying a repair file to the destination on request.

use crate::diff::{Diff, Kind};
use ferry_engine::codes;
use ferry_engine::error::{Error, Result, ResultExt};
use ferry_engine::mysql::quote::ident;
use ferry_engine::schema::model::{Column, Table};
use ferry_engine::value::Value;
use mysql_async::prelude::Queryable;
use mysql_async::Pool;
use std::io::BufRead;

/// The session a repair runs in (the settings ferry writes rows with, as `Role::Write` sets them); the first
/// statement of a repair file, so that `mysql < repair.sql` applies it as `ferry verify --apply-repair` does.
pub fn session_sql() -> String {
    format!(
        "SET SESSION foreign_key_checks = 0, time_zone = '+00:00', sql_mode = '{}';",
        ferry_engine::mysql::conn::WRITE_SQL_MODE
    )
}

fn literal(v: &Value, c: &Column, out: &mut String) -> Result<()> {
    // A MySQL JSON column compares with a JSON value, not with its text.
    if matches!(v, Value::Json(_)) {
        out.push_str("CAST(");
        v.write_literal(c, out)?;
        out.push_str(" AS JSON)");
        return Ok(());
    }
    v.write_literal(c, out)
}

/// `WHERE` of the row's key, or (keyless) of all its stored columns, NULL-safe.
fn row_where(dest: &Table, row: &[Value], out: &mut String) -> Result<()> {
    let cols: Vec<usize> = match &dest.key {
        Some(k) => k.columns.clone(),
        None => dest.writable_columns().map(|(i, _)| i).collect(),
    };
    out.push_str(" WHERE ");
    for (n, &i) in cols.iter().enumerate() {
        if n > 0 {
            out.push_str(" AND ");
        }
        let c = &dest.columns[i];
        out.push_str(&ident(&c.name));
        out.push_str(if dest.key.is_some() { " = " } else { " <=> " });
        literal(&row[i], c, out)?;
    }
    Ok(())
}

/// The statement that repairs `d` on the destination table `dest` (columns laid out as the diff's rows); None
/// when only generated columns differ (the server computes them: the difference is in an input column or in the
/// generation expression).
pub fn statement(dest: &Table, d: &Diff) -> Result<Option<String>> {
    let mut s = String::new();
    match d.kind {
        Kind::Missing => {
            let row = d.row();
            let cols: Vec<(usize, &Column)> = dest.writable_columns().collect();
            let names: Vec<String> = cols.iter().map(|(_, c)| ident(&c.name)).collect();
            s.push_str(&format!(
                "INSERT INTO {} ({}) VALUES (",
                dest.qualified(),
                names.join(", ")
            ));
            for (n, (i, c)) in cols.iter().enumerate() {
                if n > 0 {
                    s.push_str(", ");
                }
                literal(&row[*i], c, &mut s)?;
            }
            s.push(')');
        }
        Kind::Extra => {
            s.push_str(&format!("DELETE FROM {}", dest.qualified()));
            row_where(dest, d.row(), &mut s)?;
            if dest.key.is_none() {
                s.push_str(" LIMIT 1");
            }
        }
        Kind::Different => {
            let Some(src) = d.source.as_deref() else {
                return Ok(None);
            };
            let set: Vec<usize> = d
                .columns
                .iter()
                .copied()
                .filter(|&i| dest.writable_columns().any(|(j, _)| j == i))
                .collect();
            if set.is_empty() {
                return Ok(None);
            }
            s.push_str(&format!("UPDATE {} SET ", dest.qualified()));
            for (n, &i) in set.iter().enumerate() {
                if n > 0 {
                    s.push_str(", ");
                }
                s.push_str(&ident(&dest.columns[i].name));
                s.push_str(" = ");
                literal(&src[i], &dest.columns[i], &mut s)?;
            }
            row_where(dest, src, &mut s)?;
        }
    }
    s.push(';');
    Ok(Some(s))
}

/// What applying a repair file did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Applied {
    pub statements: u64,
    pub rows: u64,
}

/// Applies the repair file at `path` to the task's destination (see `apply_file`).
pub async fn apply(
    cfg: &ferry_engine::config::TaskConfig,
    path: &std::path::Path,
) -> Result<Applied> {
    let destination =
        ferry_engine::mysql::conn::Server::connect(&cfg.destination, "destination").await?;
    let pool = destination.pool(ferry_engine::mysql::conn::Role::Write, 1);
    let r = apply_file(&pool, path).await;
    let _ = pool.disconnect().await;
    r
}

/// The table a repair statement writes and the trigger event it fires there: `INSERT INTO `d`.`t` ...`,
/// `UPDATE `d`.`t` SET ...`, `DELETE FROM `d`.`t` ...` (as `statement` writes them); None for anything else.
pub fn statement_target(sql: &str) -> Option<(String, String, &'static str)> {
    let (event, rest) = if let Some(r) = sql.strip_prefix("INSERT INTO ") {
        ("INSERT", r)
    } else if let Some(r) = sql.strip_prefix("UPDATE ") {
        ("UPDATE", r)
    } else if let Some(r) = sql.strip_prefix("DELETE FROM ") {
        ("DELETE", r)
    } else {
        return None;
    };
    let (db, rest) = quoted(rest)?;
    let (table, _) = quoted(rest.strip_prefix('.')?)?;
    Some((db, table, event))
}

/// One backquoted identifier at the start of `s` (a doubled backquote inside is one), and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('`')?.char_indices().peekable();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        if c == '`' {
            if chars.peek().map(|&(_, c)| c) == Some('`') {
                chars.next();
                out.push('`');
                continue;
            }
            return Some((out, &s[i + 2..]));
        }
        out.push(c);
    }
    None
}

/// The statements of a repair file (comments and the session line left out), with their line numbers.
fn read_statements(path: &std::path::Path) -> Result<Vec<(usize, String)>> {
    let io = |e: std::io::Error| {
        Error::definite(
            &codes::VERIFY_OUTPUT,
            format!("reading {}: {e}", path.display()),
        )
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        let sql = line.trim();
        if sql.is_empty() || sql.starts_with("--") || sql.starts_with("SET SESSION") {
            continue;
        }
        out.push((n + 1, sql.to_string()));
    }
    Ok(out)
}

/// The destination's triggers that the statements would fire: `db.table: name (BEFORE INSERT), ...` per table,
/// empty when none would. Only a trigger on the table a statement writes, for that statement's event, can fire:
/// ferry's repair statements are plain INSERT / UPDATE / DELETE, and foreign key actions fire no triggers.
async fn triggers_fired(
    conn: &mut mysql_async::Conn,
    statements: &[(usize, String)],
) -> Result<Vec<String>> {
    let mut events: std::collections::BTreeMap<(String, String), std::collections::BTreeSet<&str>> =
        Default::default();
    for (_, sql) in statements {
        if let Some((db, t, event)) = statement_target(sql) {
            events.entry((db, t)).or_default().insert(event);
        }
    }
    let mut out = Vec::new();
    for ((db, t), wanted) in &events {
        let rows: Vec<(String, String, String)> = conn
            .exec(
                "SELECT TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION FROM information_schema.TRIGGERS \
                 WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? ORDER BY ACTION_ORDER, TRIGGER_NAME",
                (db, t),
            )
            .await
            .ctx("reading the destination's triggers")?;
        let fired: Vec<String> = rows
            .into_iter()
            .filter(|(_, _, event)| wanted.contains(event.as_str()))
            .map(|(name, timing, event)| format!("{name} ({timing} {event})"))
            .collect();
        if !fired.is_empty() {
            out.push(format!("{db}.{t}: {}", fired.join(", ")));
        }
    }
    Ok(out)
}

fn refused(path: &std::path::Path, tables: &[String]) -> Error {
    Error::definite(
        &codes::VERIFY_REPAIR_TRIGGERS,
        format!(
            "{}: the repair's statements would fire these triggers, and the rows they write would then not be \
             the source's: {}",
            path.display(),
            tables.join("; ")
        ),
    )
}

/// Applies a repair file (one statement per line, `--` comments) to the destination in one transaction; a
/// statement that fails, or an UPDATE/DELETE that touches no row (the destination changed since the verification),
/// rolls everything back with FERRY-VER-005.
///
/// A table with a trigger that one of its statements would fire is refused with FERRY-VER-007 before anything is
/// written: statements fire triggers (row-based replication does not), and no session setting stops them. The
/// triggers are read again before COMMIT: one created meanwhile (CREATE TRIGGER waits for the transaction once it
/// has written the table) rolls everything back, the trigger's own writes included.
pub async fn apply_file(pool: &Pool, path: &std::path::Path) -> Result<Applied> {
    let statements = read_statements(path)?;
    if let Some((n, sql)) = statements
        .iter()
        .find(|(_, sql)| statement_target(sql).is_none())
    {
        return Err(Error::definite(
            &codes::VERIFY_REPAIR,
            format!(
                "{}:{n}: not an INSERT INTO / UPDATE / DELETE FROM `db`.`table` statement, so the triggers it would \
                 fire cannot be checked: {}",
                path.display(),
                excerpt(sql)
            ),
        ));
    }
    // `pool` is a `Role::Write` pool: its sessions are set up as `session_sql` says.
    let mut conn = pool.get_conn().await.ctx("destination")?;
    let fired = triggers_fired(&mut conn, &statements).await?;
    if !fired.is_empty() {
        return Err(refused(path, &fired));
    }
    conn.query_drop("START TRANSACTION").await.ctx("repair")?;
    let mut out = Applied::default();
    for (n, sql) in &statements {
        let failed = |why: String| {
            Error::definite(
                &codes::VERIFY_REPAIR,
                format!("{}:{n}: {why}: {}", path.display(), excerpt(sql)),
            )
        };
        let affected = match conn.query_iter(sql.trim_end_matches(';')).await {
            Ok(r) => r.affected_rows(),
            Err(e) => {
                let _ = conn.query_drop("ROLLBACK").await;
                return Err(failed(e.to_string()));
            }
        };
        if affected == 0 && !sql.starts_with("INSERT") {
            let _ = conn.query_drop("ROLLBACK").await;
            return Err(failed(
                "the row is no longer as verified (0 rows changed)".into(),
            ));
        }
        out.statements += 1;
        out.rows += affected;
    }
    let fired = match triggers_fired(&mut conn, &statements).await {
        Ok(f) => f,
        Err(e) => {
            let _ = conn.query_drop("ROLLBACK").await;
            return Err(e);
        }
    };
    if !fired.is_empty() {
        let _ = conn.query_drop("ROLLBACK").await;
        return Err(refused(path, &fired));
    }
    conn.query_drop("COMMIT")
        .await
        .ctx("committing the repair")?;
    Ok(out)
}

fn excerpt(sql: &str) -> String {
    if sql.len() <= 200 {
        return sql.to_string();
    }
    let mut end = 200;
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &sql[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_engine::schema::model::Key;

    fn table(key: bool) -> Table {
        let col = |n: &str, t: &str, generated: bool| Column {
            name: n.into(),
            data_type: t.into(),
            column_type: t.into(),
            charset: (t == "varchar").then(|| "utf8mb4".into()),
            nullable: true,
            generated,
        };
        Table {
            db: "d2".into(),
            name: "t2".into(),
            columns: vec![
                col("id", "int", false),
                col("s", "varchar", false),
                col("g", "int", true),
            ],
            key: key.then(|| Key {
                name: "PRIMARY".into(),
                columns: vec![0],
            }),
            uniques: vec![],
            followers: vec![],
            engine: "InnoDB".into(),
            rows_estimate: 0,
            create_sql: String::new(),
            omitted: vec![],
        }
    }

    fn row(id: i64, s: Option<&str>) -> Vec<Value> {
        vec![
            Value::Int(id),
            s.map(|s| Value::Bytes(s.into())).unwrap_or(Value::Null),
            Value::Int(id * 2),
        ]
    }

    #[test]
    fn each_kind_has_its_statement() {
        let t = table(true);
        let missing = Diff {
            kind: Kind::Missing,
            source: Some(row(1, Some("a"))),
            destination: None,
            columns: vec![],
        };
        let extra = Diff {
            kind: Kind::Extra,
            source: None,
            destination: Some(row(2, None)),
            columns: vec![],
        };
        let different = Diff {
            kind: Kind::Different,
            source: Some(row(3, None)),
            destination: Some(row(3, Some(""))),
            columns: vec![1, 2],
        };
        let only_generated = Diff {
            columns: vec![2],
            ..different.clone()
        };
        let sql = |d: &Diff| statement(&t, d).expect("statement");
        assert_eq!(
            sql(&missing).as_deref(),
            Some("INSERT INTO `d2`.`t2` (`id`, `s`) VALUES (1, _utf8mb4 X'61');")
        );
        assert_eq!(
            sql(&extra).as_deref(),
            Some("DELETE FROM `d2`.`t2` WHERE `id` = 2;")
        );
        assert_eq!(
            sql(&different).as_deref(),
            Some("UPDATE `d2`.`t2` SET `s` = NULL WHERE `id` = 3;")
        );
        assert_eq!(sql(&only_generated), None);
    }

    #[test]
    fn each_statement_names_its_table_and_event() {
        assert_eq!(
            statement_target("INSERT INTO `d2`.`t``x` (`id`) VALUES (1);"),
            Some(("d2".into(), "t`x".into(), "INSERT"))
        );
        assert_eq!(
            statement_target("UPDATE `a.b`.`t` SET `s` = NULL WHERE `id` = 3;"),
            Some(("a.b".into(), "t".into(), "UPDATE"))
        );
        assert_eq!(
            statement_target("DELETE FROM `d`.`t` WHERE `id` = 2;"),
            Some(("d".into(), "t".into(), "DELETE"))
        );
        assert_eq!(statement_target("DELETE FROM `d`"), None);
        assert_eq!(statement_target("SELECT 1"), None);
    }

    #[test]
    fn keyless_rows_are_deleted_one_at_a_time_by_all_stored_columns() {
        let t = table(false);
        let extra = Diff {
            kind: Kind::Extra,
            source: None,
            destination: Some(row(2, None)),
            columns: vec![],
        };
        assert_eq!(
            statement(&t, &extra).expect("statement").as_deref(),
            Some("DELETE FROM `d2`.`t2` WHERE `id` <=> 2 AND `s` <=> NULL LIMIT 1;")
        );
    }
}
