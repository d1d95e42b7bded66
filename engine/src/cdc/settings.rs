//! The source settings binlog CDC needs, read from the server and judged before a task writes anything.

use crate::codes;
use crate::error::{Code, Result, ResultExt};
use crate::mysql::conn::Flavor;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use std::collections::HashMap;

/// One setting as the source has it, and whether ferry can read a binlog written with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Setting {
    pub name: &'static str,
    /// None when the server does not have the variable.
    pub value: Option<String>,
    pub ok: bool,
    /// What it must be.
    pub need: &'static str,
    #[serde(skip)]
    pub code: &'static Code,
}

/// The variables `judge` looks at.
const NAMES: &[&str] = &[
    "log_bin",
    "binlog_format",
    "binlog_row_image",
    "binlog_row_metadata",
    "log_bin_compress",
    "binlog_alter_two_phase",
    "binlog_row_value_options",
];

/// Reads the settings from the source.
pub async fn read(conn: &mut Conn, flavor: Flavor) -> Result<Vec<Setting>> {
    let list = NAMES
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows: Vec<(String, String)> = conn
        .query(format!(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ({list})"
        ))
        .await
        .ctx("reading the source's binlog settings")?;
    let vars: HashMap<String, String> = rows
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    Ok(judge(flavor, &vars))
}

/// Judges the settings: ROW format with full images, log on; MariaDB also full row metadata (else unsigned and
/// column names cannot be told) and no compressed events; MySQL no partial JSON updates.
pub fn judge(flavor: Flavor, vars: &HashMap<String, String>) -> Vec<Setting> {
    let get = |n: &str| vars.get(n).cloned();
    let is = |n: &str, want: &str| get(n).is_some_and(|v| v.eq_ignore_ascii_case(want));
    let mut out = vec![
        Setting {
            name: "log_bin",
            value: get("log_bin"),
            ok: is("log_bin", "ON") || is("log_bin", "1"),
            need: "ON",
            code: &codes::CDC_BINLOG_OFF,
        },
        Setting {
            name: "binlog_format",
            value: get("binlog_format"),
            ok: is("binlog_format", "ROW"),
            need: "ROW",
            code: &codes::CDC_UNSUPPORTED_BINLOG,
        },
        Setting {
            name: "binlog_row_image",
            value: get("binlog_row_image"),
            ok: is("binlog_row_image", "FULL"),
            need: "FULL",
            code: &codes::CDC_UNSUPPORTED_BINLOG,
        },
    ];
    match flavor {
        Flavor::MariaDb => {
            out.push(Setting {
                name: "binlog_row_metadata",
                value: get("binlog_row_metadata"),
                // MariaDB before 10.5 has no such variable and no metadata: refused, ferry cannot tell signedness.
                ok: is("binlog_row_metadata", "FULL"),
                need: "FULL",
                code: &codes::CDC_UNSUPPORTED_BINLOG,
            });
            out.push(Setting {
                name: "log_bin_compress",
                value: get("log_bin_compress"),
                ok: get("log_bin_compress").is_none() || is("log_bin_compress", "OFF"),
                need: "OFF",
                code: &codes::CDC_UNSUPPORTED_BINLOG,
            });
            // 10.8+: an ALTER logged twice (START ALTER, then COMMIT or ROLLBACK ALTER), told apart only by GTID
            // event fields ferry does not read: it would be replayed twice, or when the source rolled it back.
            out.push(Setting {
                name: "binlog_alter_two_phase",
                value: get("binlog_alter_two_phase"),
                ok: get("binlog_alter_two_phase").is_none() || is("binlog_alter_two_phase", "OFF"),
                need: "OFF",
                code: &codes::CDC_UNSUPPORTED_BINLOG,
            });
        }
        Flavor::MySql => out.push(Setting {
            name: "binlog_row_value_options",
            value: get("binlog_row_value_options"),
            ok: get("binlog_row_value_options").is_none_or(|v| v.is_empty()),
            need: "'' (empty)",
            code: &codes::CDC_UNSUPPORTED_BINLOG,
        }),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> HashMap<String, String> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn bad(flavor: Flavor, v: &HashMap<String, String>) -> Vec<String> {
        judge(flavor, v)
            .into_iter()
            .filter(|s| !s.ok)
            .map(|s| format!("{} {} {}", s.code.id, s.name, s.value.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn a_mariadb_source_set_up_for_cdc_passes() {
        let v = vars(&[
            ("log_bin", "ON"),
            ("binlog_format", "ROW"),
            ("binlog_row_image", "FULL"),
            ("binlog_row_metadata", "FULL"),
            ("log_bin_compress", "OFF"),
        ]);
        assert!(bad(Flavor::MariaDb, &v).is_empty());
    }

    #[test]
    fn each_wrong_setting_is_named_with_its_code() {
        let v = vars(&[
            ("log_bin", "ON"),
            ("binlog_format", "MIXED"),
            ("binlog_row_image", "MINIMAL"),
            ("binlog_row_metadata", "MINIMAL"),
            ("log_bin_compress", "ON"),
        ]);
        assert_eq!(
            bad(Flavor::MariaDb, &v),
            [
                "FERRY-CDC-004 binlog_format MIXED",
                "FERRY-CDC-004 binlog_row_image MINIMAL",
                "FERRY-CDC-004 binlog_row_metadata MINIMAL",
                "FERRY-CDC-004 log_bin_compress ON"
            ]
        );
        let off = vars(&[
            ("log_bin", "OFF"),
            ("binlog_format", "ROW"),
            ("binlog_row_image", "FULL"),
        ]);
        assert_eq!(bad(Flavor::MySql, &off), ["FERRY-CDC-001 log_bin OFF"]);
        let partial = vars(&[
            ("log_bin", "ON"),
            ("binlog_format", "ROW"),
            ("binlog_row_image", "FULL"),
            ("binlog_row_value_options", "PARTIAL_JSON"),
        ]);
        assert_eq!(
            bad(Flavor::MySql, &partial),
            ["FERRY-CDC-004 binlog_row_value_options PARTIAL_JSON"]
        );
    }
}
