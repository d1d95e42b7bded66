//! Precheck items about the selected objects: found on the source, a key on every table, transactional engines,
//! foreign keys that stay inside the selection, and no name already taken on the destination.

use super::{Item, Outcome};
use crate::codes;
use crate::config::{is_system_schema, ConflictMode, MigrationType, TaskConfig};
use crate::error::{Result, ResultExt};
use crate::meta::Meta;
use crate::mysql::conn::{Role, Server};
use crate::schema::{apply, introspect};
use mysql_async::prelude::Queryable;
use std::collections::BTreeSet;

/// Names listed in one item, at most.
const LISTED_MAX: usize = 20;

fn listed(names: &[String]) -> String {
    let mut s = names
        .iter()
        .take(LISTED_MAX)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > LISTED_MAX {
        s.push_str(&format!(" and {} more", names.len() - LISTED_MAX));
    }
    s
}

/// The collations in `used` that `known` lacks.
fn unknown_collations(used: &BTreeSet<String>, known: &BTreeSet<String>) -> Vec<String> {
    used.iter()
        .filter(|c| !known.contains(*c))
        .cloned()
        .collect()
}

/// `user@host` of the `DEFINER = ...` clause of a CREATE statement, if any.
fn definer(create_sql: &str) -> Option<String> {
    let upper = create_sql.to_ascii_uppercase();
    let at = upper
        .find("DEFINER=")
        .map(|i| i + 8)
        .or_else(|| upper.find("DEFINER = ").map(|i| i + 10))?;
    let rest = &create_sql[at..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let d = &rest[..end];
    d.contains('@').then(|| d.to_string())
}

pub async fn check(
    items: &mut Vec<Item>,
    cfg: &TaskConfig,
    source: &Server,
    destination: &Server,
) -> Result<()> {
    let (sp, dp) = (
        source.pool(Role::Introspect, 1),
        destination.pool(Role::Write, 1),
    );
    let res = run(items, cfg, &sp, &dp).await;
    let _ = sp.disconnect().await;
    let _ = dp.disconnect().await;
    res
}

async fn run(
    items: &mut Vec<Item>,
    cfg: &TaskConfig,
    sp: &mysql_async::Pool,
    dp: &mysql_async::Pool,
) -> Result<()> {
    let mut src = sp.get_conn().await.ctx("source")?;
    let mut dst = dp.get_conn().await.ctx("destination")?;
    let meta = Meta::new(&cfg.metadata.schema, &cfg.task.name);
    let state = meta.load(&mut dst).await?;
    // Once copied, selected tables may have been renamed or dropped through the binlog.
    let schema = match introspect::read_task(&mut src, cfg, state.full_done).await {
        Ok(s) => {
            items.push(Item::pass(
                "selected objects",
                format!(
                    "{} table(s), {} other object(s){}",
                    s.tables.len(),
                    s.objects.len(),
                    if s.skipped.is_empty() {
                        String::new()
                    } else {
                        format!("; left out: {}", s.skipped.join("; "))
                    }
                ),
            ));
            s
        }
        Err(e) => {
            items.push(Item::failure("selected objects", &e));
            return Ok(());
        }
    };

    items.extend(super::mapping::items(cfg, &schema));

    // Tables selected by name: the other objects of their databases are not migrated; say which.
    let by_name: BTreeSet<String> = cfg
        .objects
        .tables
        .iter()
        .filter_map(|t| t.split_once('.').map(|(d, _)| d.to_string()))
        .filter(|d| !crate::config::is_pattern(d) && !cfg.objects.selects_db(d))
        .collect();
    let mut left_out = Vec::new();
    for db in &by_name {
        let rows: Vec<(String, String)> = src
            .exec(
                "SELECT 'view', TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? \
                 UNION ALL SELECT LOWER(ROUTINE_TYPE), ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? \
                 UNION ALL SELECT 'trigger', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? \
                 UNION ALL SELECT 'event', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?",
                (db, db, db, db),
            )
            .await
            .ctx("listing objects left out")?;
        left_out.extend(rows.into_iter().map(|(k, n)| format!("{k} {db}.{n}")));
    }
    if !left_out.is_empty() {
        items.push(Item::pass(
            "objects left out (tables selected by name)",
            format!("not migrated: {}", listed(&left_out)),
        ));
    }

    let keyless: Vec<String> = schema
        .tables
        .iter()
        .filter(|t| t.key.is_none())
        .map(|t| t.display_name())
        .collect();
    items.push(if keyless.is_empty() {
        Item::pass(
            "a key on every table",
            format!("{} table(s)", schema.tables.len()),
        )
    } else {
        Item::flagged(
            "a key on every table",
            Outcome::Warning,
            &codes::PRE_NO_KEY,
            format!(
                "without a primary or NOT NULL unique key: {}",
                listed(&keyless)
            ),
            "a primary key or a unique key over NOT NULL columns",
        )
    });

    let other_engines: Vec<String> = schema
        .tables
        .iter()
        .filter(|t| !t.engine.eq_ignore_ascii_case("InnoDB"))
        .map(|t| format!("{} ({})", t.display_name(), t.engine))
        .collect();
    items.push(if other_engines.is_empty() {
        Item::pass("transactional engines", "every table is InnoDB")
    } else {
        Item::flagged(
            "transactional engines",
            Outcome::Warning,
            &codes::PRE_ENGINE,
            listed(&other_engines),
            "InnoDB",
        )
    });

    // Foreign keys from selected tables to tables outside the selection.
    let selected: BTreeSet<(String, String)> = schema
        .tables
        .iter()
        .map(|t| (t.db.clone(), t.name.clone()))
        .collect();
    let dbs: Vec<String> = selected
        .iter()
        .map(|(d, _)| d.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut outside = Vec::new();
    for db in &dbs {
        let fks: Vec<(String, String, String, String)> = src
            .exec(
                "SELECT DISTINCT TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME \
                 FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME IS NOT NULL \
                 ORDER BY TABLE_NAME, CONSTRAINT_NAME",
                (db,),
            )
            .await
            .ctx("reading foreign keys")?;
        for (t, c, rdb, rt) in fks {
            if selected.contains(&(db.clone(), t.clone()))
                && !selected.contains(&(rdb.clone(), rt.clone()))
            {
                outside.push(format!("{db}.{t} ({c}) -> {rdb}.{rt}"));
            }
        }
    }
    items.push(if outside.is_empty() {
        Item::pass("foreign keys inside the selection", "none point outside")
    } else {
        Item::flagged(
            "foreign keys inside the selection",
            Outcome::Warning,
            &codes::PRE_FK_OUTSIDE,
            listed(&outside),
            "every referenced table selected too",
        )
    });

    // Views and routines that reach into databases the task does not migrate.
    let selected_dbs: BTreeSet<&str> = schema.databases.iter().map(|d| d.name.as_str()).collect();
    // `a.b` is a database reference only when `a` is a database (else it is `table.column` or `alias.column`).
    let databases: BTreeSet<String> = src
        .query::<String, _>("SHOW DATABASES")
        .await
        .ctx("listing the source's databases")?
        .into_iter()
        .collect();
    let mut reaching = Vec::new();
    for o in &schema.objects {
        let names = crate::cdc::ddl::qualified_names(&o.create_sql).unwrap_or_default();
        let mut other: Vec<String> = names
            .iter()
            .filter(|n| {
                databases.contains(&n.db)
                    && !selected_dbs.contains(n.db.as_str())
                    && !is_system_schema(&n.db)
            })
            .map(|n| n.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !other.is_empty() {
            other.truncate(5);
            reaching.push(format!(
                "{} {}.{} -> {}",
                o.kind.as_str(),
                o.db,
                o.name,
                other.join(", ")
            ));
        }
    }
    items.push(if reaching.is_empty() {
        Item::pass(
            "objects reference only selected databases",
            format!("{} object(s)", schema.objects.len()),
        )
    } else {
        Item::flagged(
            "objects reference only selected databases",
            Outcome::Warning,
            &codes::PRE_REFERENCES_OUTSIDE,
            listed(&reaching),
            "views and routines that use only migrated databases",
        )
    });

    // DEFINER accounts: ferry removes DEFINER (objects run as the invoker), so the accounts that own them on the
    // source are only reported when the destination lacks them.
    let mut definers: BTreeSet<String> = BTreeSet::new();
    for o in &schema.objects {
        if let Some(d) = definer(&o.create_sql) {
            definers.insert(d);
        }
    }
    let mut missing = Vec::new();
    let mut unknown = false;
    for d in &definers {
        let Some((user, host)) = d.split_once('@') else {
            continue;
        };
        let q: std::result::Result<Option<u64>, _> = dst
            .exec_first(
                "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?",
                (user.trim_matches('`'), host.trim_matches('`')),
            )
            .await;
        match q {
            Ok(Some(0)) => missing.push(d.clone()),
            Ok(_) => {}
            Err(_) => unknown = true,
        }
    }
    let name = "definer accounts on the destination";
    items.push(if !missing.is_empty() {
        Item::flagged(
            name,
            Outcome::Warning,
            &codes::PRE_DEFINER,
            format!("not on the destination: {}", listed(&missing)),
            "the accounts that use these objects (they run with the invoker's rights there)",
        )
    } else if unknown {
        Item::pass(
            name,
            "not checked: the destination account cannot read mysql.user",
        )
    } else {
        Item::pass(
            name,
            format!(
                "{} definer account(s), all on the destination",
                definers.len()
            ),
        )
    });

    // Character sets and collations the selection uses that the destination does not know.
    let mut used: BTreeSet<String> = BTreeSet::new();
    for db in &dbs {
        let rows: Vec<Option<String>> = src
            .exec(
                "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ? \
                 UNION SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? \
                 UNION SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?",
                (db, db, db),
            )
            .await
            .ctx("reading the collations the selection uses")?;
        used.extend(rows.into_iter().flatten());
    }
    let known: BTreeSet<String> = dst
        .query::<String, _>("SELECT COLLATION_NAME FROM information_schema.COLLATIONS")
        .await
        .ctx("reading the destination's collations")?
        .into_iter()
        .collect();
    let unknown = unknown_collations(&used, &known);
    items.push(if unknown.is_empty() {
        Item::pass(
            "collations known to the destination",
            format!("{} collation(s) used", used.len()),
        )
    } else {
        Item::flagged(
            "collations known to the destination",
            Outcome::Failure,
            &codes::PRE_COLLATION,
            listed(&unknown),
            "every collation of the selection available on the destination",
        )
    });

    if let Some(engine) = &cfg.schema.destination_engine {
        let engines: Vec<mysql_async::Row> = dst.query("SHOW ENGINES").await.ctx("SHOW ENGINES")?;
        let usable = engines.iter().any(|r| {
            r.get_opt::<String, _>("Engine")
                .and_then(|x| x.ok())
                .is_some_and(|e| e.eq_ignore_ascii_case(engine))
                && r.get_opt::<String, _>("Support")
                    .and_then(|x| x.ok())
                    .is_some_and(|s| s == "YES" || s == "DEFAULT")
        });
        let name = "destination engine available";
        items.push(if usable {
            Item::pass(name, engine.clone())
        } else {
            Item::flagged(
                name,
                Outcome::Failure,
                &codes::PRE_ENGINE_MISSING,
                format!("{engine} is not enabled on the destination"),
                "an engine SHOW ENGINES lists as YES or DEFAULT",
            )
        });
    }

    let has_meta: Option<String> = dst
        .exec_first(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'objects'",
            (&cfg.metadata.schema,),
        )
        .await
        .ctx("destination")?;
    // Names on the destination (`[mapping]`).
    let on_destination = schema.mapped(&crate::schema::model::NameMap::new(cfg));
    if !cfg.has(MigrationType::Schema) {
        // The task creates nothing: the destination must already have every selected table.
        let mut absent = Vec::new();
        for t in &on_destination.tables {
            let n: Option<String> = dst
                .exec_first(
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                    (&t.db, &t.name),
                )
                .await
                .ctx("destination")?;
            if n.is_none() {
                absent.push(t.display_name());
            }
        }
        items.push(if absent.is_empty() {
            Item::pass("selected tables on the destination", format!("{} table(s)", schema.tables.len()))
        } else {
            Item::flagged(
                "selected tables on the destination",
                Outcome::Failure,
                &codes::PRE_TABLE_ABSENT,
                format!("missing: {}", listed(&absent)),
                "every selected table on the destination (types has no `schema`, so ferry creates none)",
            )
        });
        return Ok(());
    }
    // A task past its schema step creates no more tables, views or routines of the selection: those on the
    // destination are its own (created by the schema step, or later by DDL replicated in sync, which a crash can
    // leave on the destination before its checkpoint records them). Triggers and events still to come count.
    let mut on_destination = on_destination;
    if has_meta.is_some() {
        let row = meta.load(&mut dst).await?;
        if row.schema_pre_done {
            on_destination.tables.clear();
            on_destination
                .objects
                .retain(|o| o.kind.is_post_data() && !row.schema_post_done);
        }
    }
    let (total, found) =
        apply::conflicts(&mut dst, &meta, &on_destination, has_meta.is_some()).await?;
    if cfg.schema.conflict_mode == ConflictMode::IgnoreAndProceed {
        items.push(Item::pass(
            "names free on the destination",
            if total == 0 {
                "no object the task creates exists there".to_string()
            } else {
                format!(
                    "ignore_and_proceed: {}; they are used as they are",
                    apply::describe_conflicts(total, &found)
                )
            },
        ));
        let existing = crate::schema::existing::compare(&mut dst, &on_destination.tables).await?;
        let partial: Vec<String> = existing
            .iter()
            .filter(|e| !e.missing.is_empty())
            .map(|e| format!("{}.{} lacks {}", e.db, e.name, e.missing.join(", ")))
            .collect();
        items.push(if partial.is_empty() {
            Item::pass(
                "existing tables have the source's columns",
                format!("{} existing table(s)", existing.len()),
            )
        } else {
            Item::flagged(
                "existing tables have the source's columns",
                Outcome::Warning,
                &codes::PRE_COMMON_COLUMNS,
                listed(&partial),
                "every source column on the destination (else only the common columns are written)",
            )
        });
        let unfillable: Vec<String> = existing
            .iter()
            .filter(|e| !e.unfillable.is_empty())
            .map(|e| format!("{}.{}: {}", e.db, e.name, e.unfillable.join(", ")))
            .collect();
        items.push(if unfillable.is_empty() {
            Item::pass(
                "existing tables can take the source's rows",
                "every destination column can be filled",
            )
        } else {
            Item::flagged(
                "existing tables can take the source's rows",
                Outcome::Failure,
                &codes::PRE_UNFILLABLE,
                format!(
                    "NOT NULL columns without a default that the source does not have: {}",
                    listed(&unfillable)
                ),
                "destination columns that are in the source, nullable, or have a default",
            )
        });
        return Ok(());
    }
    items.push(if total == 0 {
        Item::pass(
            "names free on the destination",
            "no object the task creates exists there",
        )
    } else {
        Item::flagged(
            "names free on the destination",
            Outcome::Failure,
            &codes::SCH_NAME_CONFLICT,
            apply::describe_conflicts(total, &found),
            "no table, view, routine, trigger or event of the selection on the destination",
        )
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collations_the_destination_lacks_are_listed() {
        let used: BTreeSet<String> = ["utf8mb4_0900_ai_ci", "utf8mb4_general_ci"]
            .map(String::from)
            .into();
        let maria: BTreeSet<String> = ["utf8mb4_general_ci", "latin1_swedish_ci"]
            .map(String::from)
            .into();
        assert_eq!(unknown_collations(&used, &maria), ["utf8mb4_0900_ai_ci"]);
        assert!(unknown_collations(&maria, &maria).is_empty());
    }

    #[test]
    fn definers_are_read_from_create_statements() {
        assert_eq!(
            definer("CREATE ALGORITHM=UNDEFINED DEFINER=`app`@`%` SQL SECURITY DEFINER VIEW `v` AS select 1"),
            Some("`app`@`%`".into())
        );
        assert_eq!(
            definer("CREATE DEFINER = `root`@`localhost` PROCEDURE p() BEGIN END"),
            Some("`root`@`localhost`".into())
        );
        assert_eq!(definer("CREATE VIEW v AS SELECT 1"), None);
    }
}
