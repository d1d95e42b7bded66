//! The anchor tools found on PATH (Debian's packages), and the note for each one that is missing.

use std::path::PathBuf;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Tools {
    /// mariadb-dump or mysqldump.
    pub dump: Option<PathBuf>,
    /// mariadb or mysql (the client).
    pub client: Option<PathBuf>,
    pub mydumper: Option<PathBuf>,
    pub myloader: Option<PathBuf>,
    pub pt_table_sync: Option<PathBuf>,
    /// One line per missing tool: what is skipped and how to get it.
    pub missing: Vec<String>,
}

impl Tools {
    pub fn find() -> Tools {
        let on_path = |names: &[&str]| ferry_sim::find_binary(names);
        let mut t = Tools {
            dump: on_path(&["mariadb-dump", "mysqldump"]),
            client: on_path(&["mariadb", "mysql"]),
            mydumper: on_path(&["mydumper"]),
            myloader: on_path(&["myloader"]),
            pt_table_sync: on_path(&["pt-table-sync"]),
            missing: Vec::new(),
        };
        let mut note = |found: bool, what: &str, package: &str| {
            if !found {
                t.missing.push(format!(
                    "{what} skipped: not on PATH (apt-get install {package})"
                ));
            }
        };
        note(
            t.dump.is_some() && t.client.is_some(),
            "mariadb-dump | mariadb, sorted SELECT | sha256sum",
            "mariadb-client",
        );
        note(
            t.mydumper.is_some() && t.myloader.is_some(),
            "mydumper + myloader",
            "mydumper",
        );
        note(
            t.pt_table_sync.is_some(),
            "pt-table-sync",
            "percona-toolkit",
        );
        t
    }
}
