//! Token-level rewriting of CREATE statements (DEFINER removed, SQL SECURITY INVOKER, events disabled), keeping
//! every other byte of the statement as the source printed it, plus the dependency order of views.

use super::model::{Object, ObjectKind};
use crate::codes;
use crate::error::{Error, Result};
use sqlparser::dialect::MySqlDialect;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};
use std::collections::{BTreeMap, BTreeSet};

/// Tokens with byte ranges into the statement.
pub(super) struct Tokens {
    pub(super) toks: Vec<(Token, usize, usize)>,
}

impl Tokens {
    pub(super) fn new(sql: &str) -> Result<Tokens> {
        let dialect = MySqlDialect {};
        let spans: Vec<TokenWithSpan> = Tokenizer::new(&dialect, sql)
            .tokenize_with_location()
            .map_err(|e| {
                Error::definite(
                    &codes::SCH_CREATE_FAILED,
                    format!("cannot tokenize statement: {e}"),
                )
            })?;
        let lines = line_starts(sql);
        let toks = spans
            .into_iter()
            .filter(|t| t.token != Token::EOF)
            .map(|t| {
                let start = offset(sql, &lines, t.span.start);
                let end = offset(sql, &lines, t.span.end);
                (t.token, start, end)
            })
            .collect();
        Ok(Tokens { toks })
    }

    /// Index of the next non-whitespace token at or after `i`.
    pub(super) fn next_solid(&self, mut i: usize) -> Option<usize> {
        while i < self.toks.len() {
            if !matches!(self.toks[i].0, Token::Whitespace(_)) {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    pub(super) fn is_word(&self, i: usize, w: &str) -> bool {
        matches!(&self.toks[i].0, Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
    }

    /// First unquoted word among `words`, at top level before the body.
    pub(super) fn find_word(&self, words: &[&str]) -> Option<usize> {
        (0..self.toks.len()).find(|&i| words.iter().any(|w| self.is_word(i, w)))
    }
}

/// The statement's tokens without whitespace and comments (for classifying a statement, not rewriting it).
pub fn solid_tokens(sql: &str) -> Result<Vec<Token>> {
    let dialect = MySqlDialect {};
    let toks = Tokenizer::new(&dialect, sql)
        .tokenize()
        .map_err(|e| Error::definite(&codes::CDC_DDL, format!("cannot tokenize statement: {e}")))?;
    Ok(toks
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_) | Token::EOF))
        .collect())
}

fn line_starts(sql: &str) -> Vec<usize> {
    let mut v = vec![0];
    v.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
    v
}

/// Converts a 1-based line/column (in chars) to a byte offset.
fn offset(sql: &str, lines: &[usize], loc: Location) -> usize {
    let line = (loc.line.max(1) - 1) as usize;
    let Some(&start) = lines.get(line) else {
        return sql.len();
    };
    let col = (loc.column.max(1) - 1) as usize;
    sql[start..]
        .char_indices()
        .nth(col)
        .map(|(i, _)| start + i)
        .unwrap_or(sql.len())
}

/// Applies byte-range replacements (non-overlapping, any order).
pub(super) fn splice(sql: &str, mut edits: Vec<(usize, usize, String)>) -> String {
    edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for (s, e, text) in edits {
        out.push_str(&sql[at..s]);
        out.push_str(&text);
        at = e;
    }
    out.push_str(&sql[at..]);
    out
}

/// The keyword that names the object type in a CREATE statement; nothing after it is rewritten.
const OBJECT_WORDS: &[&str] = &["VIEW", "PROCEDURE", "FUNCTION", "TRIGGER", "EVENT", "TABLE"];

/// Removes `DEFINER = user@host` from a CREATE statement (the object is then owned by ferry's destination account).
pub fn strip_definer(sql: &str) -> Result<String> {
    let t = Tokens::new(sql)?;
    let stop = t.find_word(OBJECT_WORDS).unwrap_or(t.toks.len());
    let Some(d) = (0..stop).find(|&i| {
        t.is_word(i, "DEFINER")
            && t.next_solid(i + 1)
                .is_some_and(|j| t.toks[j].0 == Token::Eq)
    }) else {
        return Ok(sql.to_string());
    };
    let eq = t.next_solid(d + 1).unwrap_or(d);
    let Some(first) = t.next_solid(eq + 1) else {
        return Ok(sql.to_string());
    };
    // The account runs up to the next whitespace: `root`@`localhost`, 'a'@'%', CURRENT_USER, CURRENT_USER().
    let mut end = first;
    while end < t.toks.len() && !matches!(t.toks[end].0, Token::Whitespace(_)) {
        end += 1;
    }
    // Swallow the whitespace after the clause so no double space is left.
    let cut_end = if end < t.toks.len() {
        t.toks[end].2
    } else {
        sql.len()
    };
    Ok(splice(sql, vec![(t.toks[d].1, cut_end, String::new())]))
}

/// `SQL SECURITY INVOKER` for a CREATE VIEW statement, replacing DEFINER or adding the clause.
pub fn view_security_invoker(sql: &str) -> Result<String> {
    let t = Tokens::new(sql)?;
    let Some(view) = t.find_word(&["VIEW"]) else {
        return Err(Error::definite(
            &codes::SCH_CREATE_FAILED,
            format!("not a CREATE VIEW: {sql}"),
        ));
    };
    for i in 0..view {
        if t.is_word(i, "SQL") {
            if let Some(j) = t.next_solid(i + 1).filter(|&j| t.is_word(j, "SECURITY")) {
                if let Some(k) = t.next_solid(j + 1) {
                    return Ok(splice(
                        sql,
                        vec![(t.toks[k].1, t.toks[k].2, "INVOKER".into())],
                    ));
                }
            }
        }
    }
    Ok(splice(
        sql,
        vec![(
            t.toks[view].1,
            t.toks[view].1,
            "SQL SECURITY INVOKER ".into(),
        )],
    ))
}

/// A CREATE EVENT statement that creates the event DISABLEd (enabled at cutover).
pub fn disable_event(sql: &str) -> Result<String> {
    let t = Tokens::new(sql)?;
    let Some(body) = t.find_word(&["DO"]) else {
        return Err(Error::definite(
            &codes::SCH_CREATE_FAILED,
            format!("not a CREATE EVENT: {sql}"),
        ));
    };
    for i in 0..body {
        if t.is_word(i, "ENABLE") {
            return Ok(splice(
                sql,
                vec![(t.toks[i].1, t.toks[i].2, "DISABLE".into())],
            ));
        }
        if t.is_word(i, "DISABLE") {
            // DISABLE ON SLAVE (MariaDB) / DISABLE ON REPLICA: make it plainly DISABLE.
            if let Some(on) = t.next_solid(i + 1).filter(|&j| t.is_word(j, "ON")) {
                if let Some(who) = t
                    .next_solid(on + 1)
                    .filter(|&k| t.is_word(k, "SLAVE") || t.is_word(k, "REPLICA"))
                {
                    return Ok(splice(
                        sql,
                        vec![(t.toks[i].2, t.toks[who].2, String::new())],
                    ));
                }
            }
            return Ok(sql.to_string());
        }
    }
    Ok(splice(
        sql,
        vec![(t.toks[body].1, t.toks[body].1, "DISABLE ".into())],
    ))
}

/// A statement with every database qualifier (`` `db`. ``, `db.`) of a mapped database renamed; everything else
/// kept byte for byte. Unqualified names stay unqualified (they resolve in the statement's default database).
pub fn map_databases(
    sql: &str,
    map: &std::collections::BTreeMap<String, String>,
) -> Result<String> {
    if map.is_empty() {
        return Ok(sql.to_string());
    }
    let t = Tokens::new(sql)?;
    let mut edits = Vec::new();
    for i in 0..t.toks.len() {
        let Token::Word(w) = &t.toks[i].0 else {
            continue;
        };
        if t.toks.get(i + 1).map(|x| &x.0) != Some(&Token::Period) {
            continue;
        }
        // `a.b.c` is db.table.column; `a.b` may be table.column: only a mapped database name is renamed, and only
        // where a name follows the period.
        let Some(to) = map.get(&w.value) else {
            continue;
        };
        if !matches!(
            t.toks.get(i + 2).map(|x| &x.0),
            Some(Token::Word(_)) | Some(Token::Mul)
        ) {
            continue;
        }
        let quoted = crate::mysql::quote::ident(to);
        let text = if w.quote_style.is_some() {
            quoted
        } else {
            to.clone()
        };
        edits.push((t.toks[i].1, t.toks[i].2, text));
    }
    Ok(splice(sql, edits))
}

/// A CREATE or ALTER TABLE statement with every `ENGINE = x` (the table's and its partitions') set to `engine`;
/// a CREATE TABLE without one gets it appended.
pub fn set_engine(sql: &str, engine: &str) -> Result<String> {
    let t = Tokens::new(sql)?;
    let mut edits = Vec::new();
    for i in 0..t.toks.len() {
        if !t.is_word(i, "ENGINE") {
            continue;
        }
        let Some(eq) = t.next_solid(i + 1) else {
            continue;
        };
        let value = if t.toks[eq].0 == Token::Eq {
            t.next_solid(eq + 1)
        } else {
            Some(eq)
        };
        if let Some(v) = value.filter(|&v| matches!(t.toks[v].0, Token::Word(_))) {
            edits.push((t.toks[v].1, t.toks[v].2, engine.to_string()));
        }
    }
    if edits.is_empty() {
        let create_table = t
            .toks
            .iter()
            .filter(|x| !matches!(x.0, Token::Whitespace(_)))
            .take(3)
            .filter(|x| matches!(&x.0, Token::Word(w) if w.value.eq_ignore_ascii_case("TABLE")))
            .count()
            > 0;
        if create_table && t.is_word(t.next_solid(0).unwrap_or(0), "CREATE") {
            return Ok(format!("{} ENGINE={engine}", sql.trim_end()));
        }
        return Ok(sql.to_string());
    }
    Ok(splice(sql, edits))
}

/// The statement that creates `o` on the destination.
pub fn destination_sql(o: &Object) -> Result<String> {
    let sql = strip_definer(&o.create_sql)?;
    match o.kind {
        ObjectKind::View => view_security_invoker(&sql),
        ObjectKind::Event => disable_event(&sql),
        _ => Ok(sql),
    }
}

/// Orders views so each comes after the views it selects from. A view depends on another when the other's name
/// appears as an identifier in its definition (over-approximate: it can only add order, never drop a needed one).
pub fn order_views(views: Vec<Object>) -> Result<Vec<Object>> {
    let names: BTreeSet<(String, String)> = views
        .iter()
        .map(|v| (v.db.clone(), v.name.clone()))
        .collect();
    let mut deps: BTreeMap<(String, String), BTreeSet<(String, String)>> = BTreeMap::new();
    for v in &views {
        let t = Tokens::new(&v.create_sql)?;
        let mut d = BTreeSet::new();
        for (tok, _, _) in &t.toks {
            if let Token::Word(w) = tok {
                for (db, name) in &names {
                    if db == &v.db && name == &w.value && name != &v.name {
                        d.insert((db.clone(), name.clone()));
                    }
                }
            }
        }
        deps.insert((v.db.clone(), v.name.clone()), d);
    }
    let mut by_key: BTreeMap<(String, String), Object> = views
        .into_iter()
        .map(|v| ((v.db.clone(), v.name.clone()), v))
        .collect();
    let mut out = Vec::new();
    let mut done: BTreeSet<(String, String)> = BTreeSet::new();
    while !by_key.is_empty() {
        let ready: Vec<(String, String)> = by_key
            .keys()
            .filter(|k| {
                deps.get(*k)
                    .is_none_or(|d| d.iter().all(|x| done.contains(x)))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            let left: Vec<String> = by_key.keys().map(|(d, n)| format!("{d}.{n}")).collect();
            return Err(Error::definite(&codes::SCH_VIEW_CYCLE, left.join(", ")));
        }
        for k in ready {
            if let Some(v) = by_key.remove(&k) {
                out.push(v);
            }
            done.insert(k);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_qualifiers_are_mapped() {
        let map: std::collections::BTreeMap<String, String> =
            [("shop".to_string(), "shop_v2".to_string())].into();
        assert_eq!(
            map_databases("CREATE VIEW `shop`.`v` AS select `shop`.`t`.`a` AS `a` from `shop`.`t` join other.x", &map).expect("sql"),
            "CREATE VIEW `shop_v2`.`v` AS select `shop_v2`.`t`.`a` AS `a` from `shop_v2`.`t` join other.x"
        );
        assert_eq!(
            map_databases(
                "ALTER TABLE shop.t ADD c INT COMMENT 'shop.t', ADD KEY (c)",
                &map
            )
            .expect("sql"),
            "ALTER TABLE shop_v2.t ADD c INT COMMENT 'shop.t', ADD KEY (c)"
        );
        assert_eq!(
            map_databases("GRANT ALL ON shop.* TO u", &map).expect("sql"),
            "GRANT ALL ON shop_v2.* TO u"
        );
    }

    #[test]
    fn engines_are_set_on_the_table_and_its_partitions() {
        insta::assert_snapshot!(
            set_engine("CREATE TABLE `t` (\n  `engine` int\n) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4 COMMENT='ENGINE=x'", "InnoDB").expect("sql"),
            @r"
        CREATE TABLE `t` (
          `engine` int
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='ENGINE=x'
        "
        );
        assert_eq!(
            set_engine("CREATE TABLE p (a int) ENGINE=Aria PARTITION BY RANGE (a) (PARTITION p0 VALUES LESS THAN (10) ENGINE = Aria)", "InnoDB").expect("sql"),
            "CREATE TABLE p (a int) ENGINE=InnoDB PARTITION BY RANGE (a) (PARTITION p0 VALUES LESS THAN (10) ENGINE = InnoDB)"
        );
        assert_eq!(
            set_engine("CREATE TABLE x (a int)", "InnoDB").expect("sql"),
            "CREATE TABLE x (a int) ENGINE=InnoDB"
        );
        assert_eq!(
            set_engine("ALTER TABLE x ENGINE MyISAM", "InnoDB").expect("sql"),
            "ALTER TABLE x ENGINE InnoDB"
        );
        assert_eq!(
            set_engine("ALTER TABLE x ADD c INT", "InnoDB").expect("sql"),
            "ALTER TABLE x ADD c INT"
        );
    }

    #[test]
    fn definer_forms_are_removed() {
        insta::assert_snapshot!(
            strip_definer("CREATE DEFINER=`root`@`localhost` PROCEDURE `p`(IN a INT)\nBEGIN SELECT 'DEFINER=x'; END").unwrap(),
            @"
        CREATE PROCEDURE `p`(IN a INT)
        BEGIN SELECT 'DEFINER=x'; END
        "
        );
        insta::assert_snapshot!(
            strip_definer("CREATE DEFINER = 'app'@'%' TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET NEW.a = 1").unwrap(),
            @"CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET NEW.a = 1"
        );
        insta::assert_snapshot!(
            strip_definer("CREATE DEFINER=CURRENT_USER FUNCTION f() RETURNS INT RETURN 1").unwrap(),
            @"CREATE FUNCTION f() RETURNS INT RETURN 1"
        );
        // No DEFINER: unchanged, byte for byte (comments, odd spacing, non-ASCII kept).
        let s = "CREATE  FUNCTION f() RETURNS VARCHAR(3) /* ok */ RETURN 'é'";
        assert_eq!(strip_definer(s).unwrap(), s);
    }

    #[test]
    fn views_become_invoker() {
        let sakila = "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `actor_info` AS select `a`.`actor_id` AS `actor_id` from `sakila`.`actor` `a`";
        insta::assert_snapshot!(
            view_security_invoker(&strip_definer(sakila).unwrap()).unwrap(),
            @"CREATE ALGORITHM=UNDEFINED SQL SECURITY INVOKER VIEW `actor_info` AS select `a`.`actor_id` AS `actor_id` from `sakila`.`actor` `a`"
        );
        insta::assert_snapshot!(
            view_security_invoker("CREATE VIEW v AS SELECT 1").unwrap(),
            @"CREATE SQL SECURITY INVOKER VIEW v AS SELECT 1"
        );
    }

    #[test]
    fn events_are_created_disabled() {
        let e = "CREATE DEFINER=`root`@`localhost` EVENT `purge` ON SCHEDULE EVERY 1 HOUR STARTS '2026-01-01 00:00:00' ON COMPLETION NOT PRESERVE ENABLE DO DELETE FROM t WHERE enabled = 0";
        insta::assert_snapshot!(
            disable_event(&strip_definer(e).unwrap()).unwrap(),
            @"CREATE EVENT `purge` ON SCHEDULE EVERY 1 HOUR STARTS '2026-01-01 00:00:00' ON COMPLETION NOT PRESERVE DISABLE DO DELETE FROM t WHERE enabled = 0"
        );
        insta::assert_snapshot!(
            disable_event("CREATE EVENT e ON SCHEDULE EVERY 1 DAY DISABLE ON SLAVE DO SELECT 1").unwrap(),
            @"CREATE EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1"
        );
        insta::assert_snapshot!(
            disable_event("CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1").unwrap(),
            @"CREATE EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1"
        );
    }

    fn view(name: &str, sql: &str) -> Object {
        Object {
            kind: ObjectKind::View,
            db: "d".into(),
            name: name.into(),
            create_sql: sql.into(),
            sql_mode: None,
            time_zone: None,
        }
    }

    #[test]
    fn views_come_after_their_dependencies() {
        let v = vec![
            view("a_top", "CREATE VIEW `a_top` AS select * from `d`.`m_mid`"),
            view(
                "m_mid",
                "CREATE VIEW `m_mid` AS select * from `d`.`z_base` join t",
            ),
            view("z_base", "CREATE VIEW `z_base` AS select 1 AS x"),
        ];
        let order: Vec<String> = order_views(v)
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(order, ["z_base", "m_mid", "a_top"]);
    }

    #[test]
    fn view_cycles_are_reported() {
        let v = vec![
            view("a", "CREATE VIEW a AS select * from b"),
            view("b", "CREATE VIEW b AS select * from a"),
        ];
        assert_eq!(order_views(v).unwrap_err().code().id, "FERRY-SCH-005");
    }
}
