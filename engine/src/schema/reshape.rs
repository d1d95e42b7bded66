//! Token-level reshaping of table statements for the destination's names: a table's CREATE statement (the table,
//! the tables its foreign keys reference and its columns renamed by `[mapping]`, the columns `objects.columns`
//! leaves out removed with the indexes and constraints over them) and the table references of DDL from the
//! binlog. Every other byte is kept as the source wrote it.

use super::names::NameMap;
use super::rewrite::{splice, Tokens};
use crate::codes;
use crate::error::{Error, Result};
use crate::mysql::quote::ident;
use sqlparser::tokenizer::Token;
use std::collections::BTreeSet;

/// Words that open a table element other than a column definition.
const ELEMENT_WORDS: &[&str] = &[
    "PRIMARY",
    "KEY",
    "INDEX",
    "UNIQUE",
    "CONSTRAINT",
    "FOREIGN",
    "FULLTEXT",
    "SPATIAL",
    "CHECK",
    "PERIOD",
    "VECTOR",
];

fn reshape_error(db: &str, table: &str, what: String) -> Error {
    Error::definite(&codes::PRE_MAPPING, format!("{db}.{table}: {what}"))
}

/// `sql`, the SHOW CREATE TABLE of source table `db`.`table`, as the destination creates it under `names`.
/// A column left out that the table cannot do without (its primary key, a generated column's expression, the
/// partitioning) is a FERRY-PRE-016 error naming it.
pub fn create_table(sql: &str, db: &str, table: &str, names: &NameMap) -> Result<String> {
    if !names.touches_tables() {
        return Ok(sql.to_string());
    }
    let t = Tokens::new(sql)?;
    let n = t.toks.len();
    let Some(kw) = t.find_word(&["TABLE"]) else {
        return Ok(sql.to_string());
    };
    // The table's name: `t` or `db`.`t` (after IF NOT EXISTS, which SHOW CREATE never prints).
    let mut name = t.next_solid(kw + 1).unwrap_or(n);
    while name < n && ["IF", "NOT", "EXISTS"].iter().any(|w| t.is_word(name, w)) {
        name = t.next_solid(name + 1).unwrap_or(n);
    }
    if name + 2 < n && t.toks[name + 1].0 == Token::Period {
        name += 2;
    }
    if name >= n {
        return Ok(sql.to_string());
    }
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    if names.renames_table(db, table) {
        edits.push(word_edit(&t, name, names.table(db, table)));
    }
    let Some(open) = t
        .next_solid(name + 1)
        .filter(|&i| t.toks[i].0 == Token::LParen)
    else {
        // CREATE TABLE ... LIKE / AS SELECT: not what SHOW CREATE prints; nothing else to reshape.
        return Ok(splice(sql, edits));
    };

    // Paren depth of every token (the element list's own parens at depth 1).
    let mut depth = vec![0usize; n];
    let mut d = 0usize;
    let mut close = n;
    let mut bounds: Vec<(usize, usize)> = Vec::new(); // element token ranges [start, end), end = the comma or ')'
    let mut start = open + 1;
    for (i, (tok, _, _)) in t.toks.iter().enumerate().skip(open) {
        if *tok == Token::LParen {
            d += 1;
        }
        depth[i] = d;
        match tok {
            Token::RParen => {
                d = d.saturating_sub(1);
                if d == 0 && close == n {
                    close = i;
                    bounds.push((start, i));
                }
            }
            Token::Comma if d == 1 && close == n => {
                bounds.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    if close == n {
        return Err(reshape_error(
            db,
            table,
            "CREATE TABLE without a closing parenthesis".into(),
        ));
    }

    let own = |c: &str| names.column(db, table, c).to_string();
    let mut kept: Vec<bool> = Vec::with_capacity(bounds.len());
    let mut element_edits: Vec<Vec<(usize, usize, String)>> = Vec::with_capacity(bounds.len());
    for &(s, e) in &bounds {
        let mut ed = Vec::new();
        let Some(first) = t.next_solid(s).filter(|&f| f < e) else {
            kept.push(true);
            element_edits.push(ed);
            continue;
        };
        let is_column = match &t.toks[first].0 {
            Token::Word(w) => {
                w.quote_style.is_some()
                    || !ELEMENT_WORDS
                        .iter()
                        .any(|k| w.value.eq_ignore_ascii_case(k))
            }
            _ => false,
        };
        if is_column {
            let col = word(&t, first).unwrap_or_default();
            if names.drops(db, table, &col) {
                kept.push(false);
                element_edits.push(ed);
                continue;
            }
            push_rename(&t, first, &own(&col), &col, &mut ed);
            // Backquoted names after the column's own are the columns a generated expression uses.
            for i in first + 1..e {
                if let Some(c) = quoted_word(&t, i) {
                    if names.drops(db, table, &c) {
                        return Err(reshape_error(
                            db,
                            table,
                            format!("generated column `{col}` is computed from `{c}`, which objects.columns leaves out"),
                        ));
                    }
                    push_rename(&t, i, &own(&c), &c, &mut ed);
                }
            }
            kept.push(true);
            element_edits.push(ed);
            continue;
        }
        // An index, key or constraint: its columns are the backquoted names inside its parentheses; after
        // REFERENCES come the referenced table and its columns.
        let refs = (first..e).find(|&i| t.is_word(i, "REFERENCES"));
        let primary = t.is_word(first, "PRIMARY");
        let mut keep = true;
        for (i, _) in depth
            .iter()
            .enumerate()
            .take(refs.unwrap_or(e))
            .skip(first)
            .filter(|(_, &d)| d >= 2)
        {
            if let Some(c) = quoted_word(&t, i) {
                if names.drops(db, table, &c) {
                    if primary {
                        return Err(reshape_error(
                            db,
                            table,
                            format!("primary key column `{c}` is left out by objects.columns"),
                        ));
                    }
                    keep = false;
                }
                push_rename(&t, i, &own(&c), &c, &mut ed);
            }
        }
        if let Some(r) = refs {
            let Some(mut rt) = t.next_solid(r + 1) else {
                return Err(reshape_error(
                    db,
                    table,
                    "REFERENCES without a table".into(),
                ));
            };
            let mut ref_db = db.to_string();
            if rt + 2 < e && t.toks[rt + 1].0 == Token::Period {
                ref_db = word(&t, rt).unwrap_or_default();
                rt += 2;
            }
            let ref_table = word(&t, rt).unwrap_or_default();
            if names.renames_table(&ref_db, &ref_table) {
                ed.push(word_edit(&t, rt, names.table(&ref_db, &ref_table)));
            }
            let mut inside = false;
            for i in rt + 1..e {
                match t.toks[i].0 {
                    Token::LParen => inside = true,
                    Token::RParen if inside => break,
                    _ => {}
                }
                if let Some(c) = quoted_word(&t, i).filter(|_| inside) {
                    if names.drops(&ref_db, &ref_table, &c) {
                        keep = false;
                    }
                    push_rename(&t, i, names.column(&ref_db, &ref_table, &c), &c, &mut ed);
                }
            }
        }
        kept.push(keep);
        element_edits.push(ed);
    }
    if !kept.iter().any(|&k| k) {
        return Err(reshape_error(
            db,
            table,
            "objects.columns leaves no column".into(),
        ));
    }
    // Removals: a leading run of removed elements goes up to the first kept one; any later removed element goes
    // with the comma before it. Neither overlaps the other or a kept element's renames.
    let first_kept = kept.iter().position(|&k| k).unwrap_or(0);
    if first_kept > 0 {
        let from = t.next_solid(bounds[0].0).unwrap_or(bounds[0].0);
        let to = t
            .next_solid(bounds[first_kept].0)
            .unwrap_or(bounds[first_kept].0);
        edits.push((t.toks[from].1, t.toks[to].1, String::new()));
    }
    for (k, &(s, e)) in bounds.iter().enumerate() {
        if kept[k] {
            edits.append(&mut element_edits[k]);
        } else if k > first_kept {
            // From the comma before it to its last token: the whitespace before the next comma or `)` stays.
            let last = (s..e)
                .rev()
                .find(|&i| !matches!(t.toks[i].0, Token::Whitespace(_)))
                .unwrap_or(s);
            edits.push((t.toks[s - 1].1, t.toks[last].2, String::new()));
        }
    }
    // After the list: partitioning and options. Column names there are inside parentheses.
    for (i, _) in depth
        .iter()
        .enumerate()
        .skip(close + 1)
        .filter(|(_, &d)| d > 0)
    {
        if let Some(c) = quoted_word(&t, i) {
            if names.drops(db, table, &c) {
                return Err(reshape_error(
                    db,
                    table,
                    format!("the table is partitioned by `{c}`, which objects.columns leaves out"),
                ));
            }
            push_rename(&t, i, &own(&c), &c, &mut edits);
        }
    }
    Ok(splice(sql, edits))
}

/// A DDL statement from the binlog with every table reference renamed by `names` (table part only; database
/// qualifiers are `rewrite::map_databases`'s): the names after TABLE (ALTER, CREATE, DROP, TRUNCATE, RENAME, WITH
/// TABLE), REFERENCES, LIKE, RENAME TO/AS, `ON` of CREATE/DROP INDEX, and the further names of DROP TABLE and
/// RENAME TABLE lists. Unqualified names resolve in `default_db`. Column names are never touched: a statement on a
/// table whose columns are renamed is refused before it gets here (FERRY-CDC-012).
pub fn map_table_refs(sql: &str, default_db: &str, names: &NameMap) -> Result<String> {
    if !names.touches_tables() {
        return Ok(sql.to_string());
    }
    let t = Tokens::new(sql)?;
    let solid: Vec<usize> = (0..t.toks.len())
        .filter(|&i| !matches!(t.toks[i].0, Token::Whitespace(_)))
        .collect();
    let w = |k: usize, word: &str| k < solid.len() && t.is_word(solid[k], word);
    let index_stmt = (w(0, "CREATE") || w(0, "DROP")) && (1..4).any(|k| w(k, "INDEX"));
    let list_stmt =
        (w(0, "DROP") || w(0, "RENAME")) && (1..3).any(|k| w(k, "TABLE") || w(k, "TABLES"));
    let mut edits = Vec::new();
    // Reads a table reference starting at solid index k; returns the solid index after it.
    let reference = |mut k: usize, edits: &mut Vec<(usize, usize, String)>| -> usize {
        while ["IF", "NOT", "EXISTS", "ONLY"].iter().any(|x| w(k, x)) {
            k += 1;
        }
        let Some(first) = solid.get(k).and_then(|&i| word(&t, i)) else {
            return k;
        };
        let (db, table_at) = if solid
            .get(k + 1)
            .is_some_and(|&i| t.toks[i].0 == Token::Period)
        {
            (first, k + 2)
        } else {
            (default_db.to_string(), k)
        };
        let Some(&ti) = solid.get(table_at) else {
            return table_at;
        };
        if let Some(table) = word(&t, ti) {
            if names.renames_table(&db, &table) {
                edits.push(word_edit(&t, ti, names.table(&db, &table)));
            }
        }
        table_at + 1
    };
    let mut k = 0;
    while k < solid.len() {
        let starts = w(k, "TABLE")
            || w(k, "TABLES") && list_stmt
            || w(k, "REFERENCES")
            || w(k, "LIKE")
            || w(k, "TRUNCATE") && !w(k + 1, "TABLE")
            || (w(k, "TO") || w(k, "AS")) && (k > 0 && w(k - 1, "RENAME") || list_stmt)
            || w(k, "ON") && index_stmt;
        if !starts {
            k += 1;
            continue;
        }
        let mut next = reference(k + 1, &mut edits);
        while list_stmt
            && solid
                .get(next)
                .is_some_and(|&i| t.toks[i].0 == Token::Comma)
        {
            next = reference(next + 1, &mut edits);
        }
        k = next.max(k + 1);
    }
    Ok(splice(sql, edits))
}

/// Whether a statement mentions one of `tables` (lowercase names) as an identifier: a view, routine, trigger or
/// event that does cannot be created on a destination where those tables are renamed or reshaped.
pub fn mentions(sql: &str, tables: &BTreeSet<String>) -> bool {
    match super::rewrite::solid_tokens(sql) {
        Ok(toks) => toks.iter().any(
            |tok| matches!(tok, Token::Word(w) if tables.contains(&w.value.to_ascii_lowercase())),
        ),
        // A statement the tokenizer cannot read is treated as mentioning them: leaving it out is the safe side.
        Err(_) => true,
    }
}

fn word(t: &Tokens, i: usize) -> Option<String> {
    match &t.toks.get(i)?.0 {
        Token::Word(w) => Some(w.value.clone()),
        _ => None,
    }
}

fn quoted_word(t: &Tokens, i: usize) -> Option<String> {
    match &t.toks.get(i)?.0 {
        Token::Word(w) if w.quote_style == Some('`') => Some(w.value.clone()),
        _ => None,
    }
}

fn word_edit(t: &Tokens, i: usize, to: &str) -> (usize, usize, String) {
    (t.toks[i].1, t.toks[i].2, ident(to))
}

fn push_rename(
    t: &Tokens,
    i: usize,
    to: &str,
    from: &str,
    edits: &mut Vec<(usize, usize, String)>,
) {
    if to != from {
        edits.push(word_edit(t, i, to));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const CUSTOMERS: &str = "CREATE TABLE `customers` (\n  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,\n  `email` varchar(120) NOT NULL,\n  `name` varchar(80) DEFAULT NULL COMMENT 'email `x`',\n  `note` text DEFAULT NULL,\n  `upper_email` varchar(120) GENERATED ALWAYS AS (upper(`email`)) VIRTUAL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `email` (`email`),\n  KEY `name_note` (`name`,`note`(10)),\n  CONSTRAINT `chk` CHECK (`name` <> '')\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

    const ORDERS: &str = "CREATE TABLE `orders` (\n  `id` int(11) NOT NULL,\n  `customer_id` int(10) unsigned NOT NULL,\n  PRIMARY KEY (`id`),\n  KEY `fk_c` (`customer_id`),\n  CONSTRAINT `fk_c` FOREIGN KEY (`customer_id`) REFERENCES `customers` (`id`) ON DELETE CASCADE\n) ENGINE=InnoDB";

    fn names(kept: &[&str], renames: &[(&str, &str)], table: Option<&str>) -> NameMap {
        fn one<V>(v: V) -> BTreeMap<String, BTreeMap<String, V>> {
            BTreeMap::from([(
                "shop".to_string(),
                BTreeMap::from([("customers".to_string(), v)]),
            )])
        }
        let mut mapping = crate::config::MappingSection::default();
        if !renames.is_empty() {
            mapping.columns = one(renames
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect());
        }
        if let Some(to) = table {
            mapping.tables = one(to.to_string());
        }
        let kept = if kept.is_empty() {
            BTreeMap::new()
        } else {
            one(kept.iter().map(|s| s.to_string()).collect())
        };
        NameMap::from_parts(&mapping, &kept)
    }

    #[test]
    fn renames_reach_definitions_keys_expressions_and_references() {
        let n = names(
            &[],
            &[("email", "mail"), ("ID", "customer_no")],
            Some("clients"),
        );
        insta::assert_snapshot!(create_table(CUSTOMERS, "shop", "customers", &n).expect("sql"));
        insta::assert_snapshot!(create_table(ORDERS, "shop", "orders", &n).expect("sql"));
    }

    #[test]
    fn columns_left_out_take_their_indexes_and_constraints_along() {
        let n = names(&["id", "email", "upper_email"], &[], None);
        insta::assert_snapshot!(create_table(CUSTOMERS, "shop", "customers", &n).expect("sql"));
        // The first element removed too: no dangling comma.
        let n = names(&["email"], &[], None);
        let err = create_table(CUSTOMERS, "shop", "customers", &n).expect_err("pk");
        assert!(err.to_string().contains("primary key column `id`"), "{err}");
        let err = create_table(
            CUSTOMERS,
            "shop",
            "customers",
            &names(&["id", "upper_email"], &[], None),
        )
        .expect_err("generated");
        assert!(
            err.to_string()
                .contains("`upper_email` is computed from `email`"),
            "{err}"
        );
        let sql = "CREATE TABLE `customers` (\n  `a` int,\n  `b` int,\n  `id` int NOT NULL,\n  PRIMARY KEY (`id`)\n)";
        assert_eq!(
            create_table(sql, "shop", "customers", &names(&["id"], &[], None)).expect("sql"),
            "CREATE TABLE `customers` (\n  `id` int NOT NULL,\n  PRIMARY KEY (`id`)\n)"
        );
    }

    #[test]
    fn a_foreign_key_to_a_column_left_out_is_dropped_with_it() {
        let n = names(&["email", "name"], &[], None);
        // customers.id is left out (the PK; its own table fails), and orders' FK over it goes.
        let out = create_table(ORDERS, "shop", "orders", &n).expect("sql");
        assert!(!out.contains("FOREIGN KEY"), "{out}");
        assert!(out.contains("KEY `fk_c` (`customer_id`)\n)"), "{out}");
    }

    #[test]
    fn partitioning_by_a_column_left_out_is_refused() {
        let sql = "CREATE TABLE `customers` (\n  `id` int NOT NULL,\n  `email` int,\n  PRIMARY KEY (`id`,`email`)\n) PARTITION BY RANGE (`email`) (PARTITION `p0` VALUES LESS THAN (10))";
        let n = names(&["id"], &[], None);
        assert!(create_table(sql, "shop", "customers", &n).is_err());
        let n = names(&[], &[("email", "e")], None);
        let out = create_table(sql, "shop", "customers", &n).expect("sql");
        assert!(
            out.contains("PRIMARY KEY (`id`,`e`)\n) PARTITION BY RANGE (`e`)"),
            "{out}"
        );
    }

    #[test]
    fn ddl_table_references_follow_the_mapping_and_columns_do_not() {
        let n = names(&[], &[], Some("clients"));
        let m = |sql: &str| map_table_refs(sql, "shop", &n).expect("sql");
        assert_eq!(
            m("ALTER TABLE customers ADD COLUMN customers INT, ADD FOREIGN KEY (a) REFERENCES `customers` (id)"),
            "ALTER TABLE `clients` ADD COLUMN customers INT, ADD FOREIGN KEY (a) REFERENCES `clients` (id)"
        );
        assert_eq!(
            m("ALTER TABLE shop.customers RENAME TO customers_old"),
            "ALTER TABLE shop.`clients` RENAME TO customers_old"
        );
        assert_eq!(
            m("RENAME TABLE customers TO _customers_old, _customers_gho TO customers"),
            "RENAME TABLE `clients` TO _customers_old, _customers_gho TO `clients`"
        );
        assert_eq!(
            m("DROP TABLE IF EXISTS a, customers"),
            "DROP TABLE IF EXISTS a, `clients`"
        );
        assert_eq!(m("TRUNCATE customers"), "TRUNCATE `clients`");
        assert_eq!(
            m("TRUNCATE TABLE other.customers"),
            "TRUNCATE TABLE other.customers"
        );
        assert_eq!(
            m("CREATE UNIQUE INDEX customers ON customers (customers)"),
            "CREATE UNIQUE INDEX customers ON `clients` (customers)"
        );
        assert_eq!(m("DROP INDEX i ON customers"), "DROP INDEX i ON `clients`");
        assert_eq!(
            m("CREATE TABLE c2 LIKE customers"),
            "CREATE TABLE c2 LIKE `clients`"
        );
        assert_eq!(
            m("ALTER TABLE orders RENAME COLUMN customers TO buyers, ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES customers (id) ON DELETE CASCADE"),
            "ALTER TABLE orders RENAME COLUMN customers TO buyers, ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES `clients` (id) ON DELETE CASCADE"
        );
    }

    #[test]
    fn mentions_finds_table_identifiers_only() {
        let set = BTreeSet::from(["customers".to_string()]);
        assert!(mentions(
            "CREATE VIEW v AS SELECT * FROM `shop`.`Customers`",
            &set
        ));
        assert!(!mentions("CREATE VIEW v AS SELECT 'customers' AS x", &set));
    }
}
