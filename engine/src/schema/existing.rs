//! Tables of the selection that already exist on the destination (conflict mode ignore_and_proceed), compared
//! with the source's: which source columns the destination lacks, and which destination columns nothing fills.

use super::model::Table;
use crate::error::{Result, ResultExt};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

/// How an existing destination table differs from the source's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Existing {
    pub db: String,
    pub name: String,
    /// Source columns the destination table does not have: not written (common columns only).
    pub missing: Vec<String>,
    /// Destination columns not in the source that are NOT NULL without a default: no row can be written.
    pub unfillable: Vec<String>,
}

/// The selected tables that exist on the destination, with their differences.
pub async fn compare(dst: &mut Conn, tables: &[Table]) -> Result<Vec<Existing>> {
    let mut out = Vec::new();
    for t in tables {
        type Col = (String, String, Option<String>, String);
        let cols: Vec<Col> = dst
            .exec(
                "SELECT COLUMN_NAME, IS_NULLABLE, COLUMN_DEFAULT, EXTRA FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (&t.db, &t.name),
            )
            .await
            .ctx(format!("reading the destination's {}", t.display_name()))?;
        if cols.is_empty() {
            continue;
        }
        out.push(diff(t, &cols));
    }
    Ok(out)
}

fn diff(t: &Table, dest: &[(String, String, Option<String>, String)]) -> Existing {
    let has = |n: &str| dest.iter().any(|(c, ..)| c == n);
    let missing = t
        .columns
        .iter()
        .filter(|c| !c.generated && !has(&c.name))
        .map(|c| c.name.clone())
        .collect();
    let unfillable = dest
        .iter()
        .filter(|(name, nullable, default, extra)| {
            let extra = extra.to_ascii_lowercase();
            !t.columns.iter().any(|c| &c.name == name)
                && nullable == "NO"
                // MariaDB reports a missing default as NULL; a literal NULL default would be 'NULL'.
                && default.is_none()
                && !extra.contains("auto_increment")
                && !extra.contains("generated")
        })
        .map(|(n, ..)| n.clone())
        .collect();
    Existing {
        db: t.db.clone(),
        name: t.name.clone(),
        missing,
        unfillable,
    }
}
