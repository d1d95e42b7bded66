//! Precheck items for table and column mapping and column selection, over the schema read from the source:
//! every name they give exists, nothing the destination needs is left out, no two things get one name.

use super::{Item, Outcome};
use crate::codes;
use crate::config::TaskConfig;
use crate::schema::model::{FkRule, NameMap, SourceSchema, Table};
use std::collections::{BTreeMap, BTreeSet};

const NAME: &str = "table and column mapping, column selection";

/// The FERRY-PRE-016 item (pass or failure listing every problem) and, when views, routines, triggers or events
/// are left out because they use renamed or reshaped tables, the FERRY-PRE-017 warning naming them.
pub fn items(cfg: &TaskConfig, schema: &SourceSchema) -> Vec<Item> {
    let names = NameMap::new(cfg);
    if !names.touches_tables() {
        return Vec::new();
    }
    let problems = problems(cfg, &names, schema);
    let mut out = vec![if problems.is_empty() {
        Item::pass(
            NAME,
            format!(
                "{} table(s) renamed or reshaped",
                names.tables_touched().len()
            ),
        )
    } else {
        Item::flagged(
            NAME,
            Outcome::Failure,
            &codes::PRE_MAPPING,
            problems.join("; "),
            "names of selected tables and columns, keys and generated columns kept, destination names unique",
        )
    }];
    if !schema.left_out.is_empty() {
        out.push(Item::flagged(
            "objects using renamed or reshaped tables",
            Outcome::Warning,
            &codes::PRE_LEFT_OUT,
            format!("left out: {}", schema.left_out.join(", ")),
            "views, routines, triggers and events that name only tables kept as they are",
        ));
    }
    out
}

fn problems(cfg: &TaskConfig, names: &NameMap, schema: &SourceSchema) -> Vec<String> {
    let mut out = Vec::new();
    let find = |db: &str, t: &str| schema.tables.iter().find(|x| x.db == db && x.name == t);
    let has_column = |t: &Table, c: &str| t.columns.iter().any(|x| x.name.eq_ignore_ascii_case(c));
    for (db, tables) in &cfg.mapping.tables {
        for t in tables.keys() {
            if find(db, t).is_none() {
                out.push(format!(
                    "mapping.tables names {db}.{t}, which the selection does not have"
                ));
            }
        }
    }
    let column_lists = cfg
        .mapping
        .columns
        .iter()
        .flat_map(|(db, m)| {
            m.iter().map(move |(t, cols)| {
                (
                    "mapping.columns",
                    db,
                    t,
                    cols.keys().cloned().collect::<Vec<_>>(),
                )
            })
        })
        .chain(cfg.objects.columns.iter().flat_map(|(db, m)| {
            m.iter()
                .map(move |(t, cols)| ("objects.columns", db, t, cols.clone()))
        }));
    for (key, db, t, cols) in column_lists {
        let Some(table) = find(db, t) else {
            out.push(format!(
                "{key} names {db}.{t}, which the selection does not have"
            ));
            continue;
        };
        for c in cols.iter().filter(|c| !has_column(table, c)) {
            out.push(format!(
                "{key} names column {db}.{t}.{c}, which the table does not have"
            ));
        }
    }
    let mut destination_tables: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for t in &schema.tables {
        let (db, name) = (t.db.as_str(), t.name.as_str());
        destination_tables
            .entry((names.db(db).to_string(), names.table(db, name).to_string()))
            .or_default()
            .push(t.display_name());
        let dropped = |c: &str| names.drops(db, name, c);
        if let Some(k) = &t.key {
            for &i in &k.columns {
                let c = &t.columns[i].name;
                if dropped(c) {
                    out.push(format!(
                        "{db}.{name}: objects.columns leaves out `{c}` of key {}, which rows are copied, applied and compared by",
                        k.name
                    ));
                }
            }
        }
        for f in &t.followers {
            let cascades = f.on_delete != FkRule::Restrict || f.on_update != FkRule::Restrict;
            let gone = f.referenced.iter().any(|&i| dropped(&t.columns[i].name))
                || f.columns.iter().any(|c| names.drops(&f.db, &f.table, c));
            if cascades && gone {
                out.push(format!(
                    "the cascading foreign key of {}.{} on {db}.{name} uses a column objects.columns leaves out \
                     (the changes it makes on the source could not be made on the destination)",
                    f.db, f.table
                ));
            }
        }
        let mut columns: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for c in t.columns.iter().filter(|c| !dropped(&c.name)) {
            columns
                .entry(names.column(db, name, &c.name).to_ascii_lowercase())
                .or_default()
                .push(&c.name);
        }
        for (to, from) in columns.iter().filter(|(_, f)| f.len() > 1) {
            out.push(format!(
                "{db}.{name}: columns {} all get the name `{to}`",
                from.join(", ")
            ));
        }
        if let Err(e) = crate::schema::reshape::create_table(&t.create_sql, db, name, names) {
            out.push(e.to_string());
        }
    }
    for ((db, t), from) in destination_tables.iter().filter(|(_, f)| f.len() > 1) {
        out.push(format!(
            "tables {} all get the destination name {db}.{t}",
            from.join(", ")
        ));
    }
    let unique: BTreeSet<String> = out.drain(..).collect();
    unique.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::model::{Column, Key};

    fn column(name: &str) -> Column {
        Column {
            name: name.into(),
            data_type: "int".into(),
            column_type: "int(11)".into(),
            charset: None,
            nullable: false,
            generated: false,
        }
    }

    fn table(name: &str, cols: &[&str]) -> Table {
        Table {
            db: "shop".into(),
            name: name.into(),
            columns: cols.iter().map(|c| column(c)).collect(),
            key: Some(Key {
                name: "PRIMARY".into(),
                columns: vec![0],
            }),
            uniques: Vec::new(),
            followers: Vec::new(),
            engine: "InnoDB".into(),
            rows_estimate: 0,
            create_sql: format!(
                "CREATE TABLE `{name}` (\n{},\n  PRIMARY KEY (`{}`)\n)",
                cols.iter()
                    .map(|c| format!("  `{c}` int(11) NOT NULL"))
                    .collect::<Vec<_>>()
                    .join(",\n"),
                cols[0]
            ),
            omitted: Vec::new(),
        }
    }

    fn cfg(extra: &str) -> TaskConfig {
        TaskConfig::parse(&format!(
            "[task]\nname = \"t\"\ntypes = [\"schema\", \"full\"]\n[source]\nhost = \"a\"\nuser = \"u\"\n\
             [destination]\nhost = \"b\"\nuser = \"u\"\n[objects]\ndatabases = [\"shop\"]\n{extra}"
        ))
        .expect("config")
    }

    fn schema() -> SourceSchema {
        SourceSchema {
            tables: vec![
                table("customers", &["id", "email", "name"]),
                table("orders", &["id", "total"]),
            ],
            ..SourceSchema::default()
        }
    }

    fn found(extra: &str) -> String {
        let items = items(&cfg(extra), &schema());
        assert_eq!(items.len(), 1, "{items:?}");
        items[0].found.clone()
    }

    #[test]
    fn a_clean_mapping_passes() {
        let i = items(
            &cfg("[mapping.tables.shop]\ncustomers = \"clients\"\n[mapping.columns.shop.customers]\nemail = \"mail\"\n[objects.columns.shop]\ncustomers = [\"id\", \"email\"]\n"),
            &schema(),
        );
        assert_eq!(i.len(), 1);
        assert_eq!(i[0].outcome, Outcome::Pass, "{:?}", i[0]);
        assert!(items(&cfg(""), &schema()).is_empty());
    }

    #[test]
    fn every_problem_is_listed_with_the_code() {
        let extra = "[mapping.tables.shop]\ncustomers = \"orders\"\nghost = \"g\"\n\
                     [mapping.columns.shop.customers]\nemail = \"name\"\nnope = \"x\"\n\
                     [objects.columns.shop]\norders = [\"total\"]\n";
        let i = items(&cfg(extra), &schema());
        assert_eq!(i[0].outcome, Outcome::Failure);
        assert_eq!(i[0].code, Some(codes::PRE_MAPPING.id));
        let f = found(extra);
        for needle in [
            "mapping.tables names shop.ghost",
            "column shop.customers.nope",
            "columns email, name all get the name `name`",
            "leaves out `id` of key PRIMARY",
            "tables shop.customers, shop.orders all get the destination name shop.orders",
            "primary key column `id` is left out",
        ] {
            assert!(f.contains(needle), "{needle}: {f}");
        }
    }

    #[test]
    fn objects_left_out_are_a_warning() {
        let mut s = schema();
        s.left_out.push("view shop.v".into());
        let i = items(&cfg("[mapping.tables.shop]\ncustomers = \"clients\"\n"), &s);
        assert_eq!(i.len(), 2);
        assert_eq!(i[1].outcome, Outcome::Warning);
        assert_eq!(i[1].code, Some(codes::PRE_LEFT_OUT.id));
        assert!(i[1].found.contains("view shop.v"));
    }
}
