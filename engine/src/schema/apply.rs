//! Creates the source's objects on the destination, recording each one so a restarted task neither repeats nor
//! clobbers: an object that exists but that this task did not create is a name conflict.

use super::model::{Object, ObjectKind, SourceSchema, Table};
use super::rewrite;
use crate::codes;
use crate::error::{Error, Result, ResultExt};
use crate::meta::Meta;
use crate::mysql::conn::WRITE_SQL_MODE;
use crate::mysql::quote::{ident, qualified, string};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tracing::info;

/// What a schema step created and found already created.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ApplyReport {
    pub created: Vec<String>,
    pub already_created: Vec<String>,
    /// Objects that existed on the destination and are used as they are (ignore_and_proceed).
    pub adopted: Vec<String>,
}

/// Databases, tables (with FKs), functions, procedures and views.
pub async fn pre_data(
    conn: &mut Conn,
    meta: &Meta,
    schema: &SourceSchema,
    adopt: bool,
) -> Result<ApplyReport> {
    let mut report = ApplyReport::default();
    if !adopt {
        check_conflicts(conn, meta, schema).await?;
    }
    for db in &schema.databases {
        conn.query_drop(format!(
            "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET {} COLLATE {}",
            ident(&db.name),
            ident(&db.charset),
            ident(&db.collation)
        ))
        .await
        .map_err(|e| create_failed(e, &format!("database {}", db.name)))?;
    }
    for t in &schema.tables {
        create_one(conn, meta, Item::Table(t), &mut report, adopt).await?;
    }
    for o in schema.objects.iter().filter(|o| !o.kind.is_post_data()) {
        create_one(conn, meta, Item::Object(o), &mut report, adopt).await?;
    }
    Ok(report)
}

/// Triggers (in action order) and events (disabled until cutover).
pub async fn post_data(conn: &mut Conn, meta: &Meta, schema: &SourceSchema) -> Result<ApplyReport> {
    let mut report = ApplyReport::default();
    for o in schema.objects.iter().filter(|o| o.kind.is_post_data()) {
        create_one(conn, meta, Item::Object(o), &mut report, false).await?;
    }
    Ok(report)
}

/// How many conflicting names one error lists.
const CONFLICTS_LISTED_MAX: usize = 20;

/// Refuses, before anything is written, when any object the task would create (post-data ones included) already
/// exists on the destination without this task having created it. Existing databases are adopted.
async fn check_conflicts(conn: &mut Conn, meta: &Meta, schema: &SourceSchema) -> Result<()> {
    let (total, found) = conflicts(conn, meta, schema, true).await?;
    if total == 0 {
        return Ok(());
    }
    Err(Error::definite(
        &codes::SCH_NAME_CONFLICT,
        format!(
            "{}; no object was created",
            describe_conflicts(total, &found)
        ),
    ))
}

/// The objects the task would create that exist on the destination and were not created by it: how many, and
/// the first few as `kind db.name`. `has_meta`: the task's metadata schema exists (else nothing is the task's).
pub async fn conflicts(
    conn: &mut Conn,
    meta: &Meta,
    schema: &SourceSchema,
    has_meta: bool,
) -> Result<(usize, Vec<String>)> {
    let items = schema
        .tables
        .iter()
        .map(|t| (ObjectKind::Table, t.db.as_str(), t.name.as_str()))
        .chain(
            schema
                .objects
                .iter()
                .map(|o| (o.kind, o.db.as_str(), o.name.as_str())),
        );
    let mut found = Vec::new();
    let mut total = 0usize;
    for (kind, db, name) in items {
        if exists(conn, kind, db, name).await?
            && (!has_meta || meta.object_state(conn, kind, db, name).await?.is_none())
        {
            total += 1;
            if found.len() < CONFLICTS_LISTED_MAX {
                found.push(format!("{} {db}.{name}", kind.as_str()));
            }
        }
    }
    Ok((total, found))
}

/// `N object(s) exist on the destination and were not created by this task: a, b and K more`.
pub fn describe_conflicts(total: usize, found: &[String]) -> String {
    let more = if total > found.len() {
        format!(" and {} more", total - found.len())
    } else {
        String::new()
    };
    format!(
        "{total} object(s) exist on the destination and were not created by this task: {}{more}",
        found.join(", ")
    )
}

/// One thing to create.
enum Item<'a> {
    Table(&'a Table),
    Object(&'a Object),
}

async fn create_one(
    conn: &mut Conn,
    meta: &Meta,
    item: Item<'_>,
    report: &mut ApplyReport,
    adopt: bool,
) -> Result<()> {
    let (kind, db, name) = match &item {
        Item::Table(t) => (ObjectKind::Table, t.db.as_str(), t.name.as_str()),
        Item::Object(o) => (o.kind, o.db.as_str(), o.name.as_str()),
    };
    let label = format!("{} {db}.{name}", kind.as_str());
    let state = meta.object_state(conn, kind, db, name).await?;
    let exists = exists(conn, kind, db, name).await?;
    match (state.as_deref(), exists) {
        (Some("created"), true) | (Some("creating"), true) => {
            if state.as_deref() == Some("creating") {
                meta.set_object_state(conn, kind, db, name, "created")
                    .await?;
            }
            report.already_created.push(label);
            return Ok(());
        }
        (Some("adopted"), true) => {
            report.already_created.push(label);
            return Ok(());
        }
        (_, true) if adopt => {
            // ignore_and_proceed: the destination's object is used as it is.
            meta.set_object_state(conn, kind, db, name, "adopted")
                .await?;
            info!(object = %label, "adopted (exists on the destination)");
            report.adopted.push(label);
            return Ok(());
        }
        (_, true) => {
            return Err(Error::definite(
                &codes::SCH_NAME_CONFLICT,
                format!("{label} exists on the destination and was not created by this task"),
            ))
        }
        _ => {}
    }
    meta.set_object_state(conn, kind, db, name, "creating")
        .await?;
    match item {
        Item::Table(t) => create_table(conn, t).await?,
        Item::Object(o) => create_object(conn, o).await?,
    }
    meta.set_object_state(conn, kind, db, name, "created")
        .await?;
    info!(object = %label, "created");
    report.created.push(label);
    Ok(())
}

async fn exists(conn: &mut Conn, kind: ObjectKind, db: &str, name: &str) -> Result<bool> {
    let sql = match kind {
        ObjectKind::Database => "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ? AND ? IS NOT NULL",
        ObjectKind::Table | ObjectKind::View => {
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?"
        }
        ObjectKind::Function => {
            "SELECT 1 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = ? AND ROUTINE_TYPE = 'FUNCTION'"
        }
        ObjectKind::Procedure => {
            "SELECT 1 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = ? AND ROUTINE_TYPE = 'PROCEDURE'"
        }
        ObjectKind::Trigger => "SELECT 1 FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME = ?",
        ObjectKind::Event => "SELECT 1 FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? AND EVENT_NAME = ?",
    };
    let found: Option<u8> = conn
        .exec_first(sql, (db, name))
        .await
        .ctx("checking the destination")?;
    Ok(found.is_some())
}

fn create_failed(e: mysql_async::Error, what: &str) -> Error {
    match Error::from(e) {
        Error::Definite { detail, .. } => {
            Error::definite(&codes::SCH_CREATE_FAILED, format!("{what}: {detail}"))
        }
        transient => transient.context(what),
    }
}

async fn create_table(conn: &mut Conn, t: &Table) -> Result<()> {
    conn.query_drop(format!("USE {}", ident(&t.db)))
        .await
        .ctx("USE")?;
    conn.query_drop(&t.create_sql).await.map_err(|e| {
        create_failed(
            e,
            &format!("CREATE TABLE {} ({})", t.display_name(), t.create_sql),
        )
    })
}

async fn create_object(conn: &mut Conn, o: &Object) -> Result<()> {
    let sql = rewrite::destination_sql(o)?;
    conn.query_drop(format!("USE {}", ident(&o.db)))
        .await
        .ctx("USE")?;
    let mode = o.sql_mode.as_deref().unwrap_or(WRITE_SQL_MODE);
    conn.query_drop(format!("SET SESSION sql_mode = {}", string(mode)))
        .await
        .ctx("sql_mode")?;
    if let Some(tz) = &o.time_zone {
        conn.query_drop(format!("SET SESSION time_zone = {}", string(tz)))
            .await
            .ctx("time_zone")?;
    }
    let what = format!("{} {}.{}", o.kind.as_str(), o.db, o.name);
    let result = conn
        .query_drop(&sql)
        .await
        .map_err(|e| create_failed(e, &format!("{what} ({sql})")));
    // Routines run with the caller's rights: users are not migrated, so a DEFINER would not exist.
    let result = match (result, o.kind) {
        (Ok(()), ObjectKind::Function | ObjectKind::Procedure) => conn
            .query_drop(format!(
                "ALTER {} {} SQL SECURITY INVOKER",
                if o.kind == ObjectKind::Function {
                    "FUNCTION"
                } else {
                    "PROCEDURE"
                },
                qualified(&o.db, &o.name)
            ))
            .await
            .map_err(|e| create_failed(e, &format!("{what}: SQL SECURITY INVOKER"))),
        (r, _) => r,
    };
    conn.query_drop(format!(
        "SET SESSION sql_mode = {}, time_zone = '+00:00'",
        string(WRITE_SQL_MODE)
    ))
    .await
    .ctx("restoring session")?;
    result
}
