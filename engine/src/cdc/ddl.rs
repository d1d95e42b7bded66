//! What a statement found in the binlog is, read at the token level: its verb, the kind of object, the names.
//!
//! sqlparser's parser rejects many MySQL/MariaDB DDL forms that servers log (ALTER TABLE with ALGORITHM/LOCK and
//! engine options, CREATE PROCEDURE bodies, CREATE OR REPLACE TABLE, MariaDB's IF EXISTS variants), so one
//! token-level reader over sqlparser's tokenizer serves every statement; it only needs the names, never the
//! meaning of the clauses, which the destination server reads itself.

use crate::error::Result;
use crate::schema::rewrite::solid_tokens;
use sqlparser::tokenizer::Token;

/// A database object's name, resolved against the statement's default database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Name {
    pub db: String,
    pub name: String,
}

impl Name {
    pub fn new(db: &str, name: &str) -> Name {
        Name {
            db: db.to_string(),
            name: name.to_string(),
        }
    }

    pub fn qualified(&self) -> String {
        crate::mysql::quote::qualified(&self.db, &self.name)
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.db, self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Create,
    Alter,
    Drop,
    Rename,
    Truncate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Table,
    Index,
    View,
    Function,
    Procedure,
    Trigger,
    Event,
    Database,
    /// SEQUENCE, TABLESPACE, PACKAGE, ...: nothing ferry replicates.
    Other,
}

/// A DDL statement's verb, object and names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ddl {
    pub verb: Verb,
    pub object: Object,
    /// The object keyword as written (for messages).
    pub object_word: String,
    /// The objects the statement acts on: the tables of CREATE/ALTER/DROP/TRUNCATE TABLE, the table of
    /// CREATE/DROP INDEX, the view, routine, trigger, event or database named.
    pub names: Vec<Name>,
    /// RENAME TABLE pairs in order, and ALTER TABLE ... RENAME TO.
    pub renames: Vec<(Name, Name)>,
    pub temporary: bool,
    /// CREATE TABLE ... LIKE source.
    pub like: Option<Name>,
    /// MySQL 8 logs CREATE TABLE ... SELECT as `CREATE TABLE ... START TRANSACTION`, then the rows, then XID.
    pub opens_transaction: bool,
}

/// One statement of the binlog, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    Ddl(Ddl),
    /// A row change logged as a statement (binlog_format STATEMENT or MIXED); the qualified names it mentions.
    Dml {
        names: Vec<Name>,
    },
    /// Accounts, grants, maintenance, transaction control: nothing to replicate.
    Ignored,
}

/// Words that may stand between CREATE/ALTER/DROP and the object keyword.
const OBJECT_WORDS: &[(&str, Object)] = &[
    ("TABLE", Object::Table),
    ("INDEX", Object::Index),
    ("VIEW", Object::View),
    ("FUNCTION", Object::Function),
    ("PROCEDURE", Object::Procedure),
    ("TRIGGER", Object::Trigger),
    ("EVENT", Object::Event),
    ("DATABASE", Object::Database),
    ("SCHEMA", Object::Database),
    ("SEQUENCE", Object::Other),
    ("TABLESPACE", Object::Other),
    ("PACKAGE", Object::Other),
    ("LOGFILE", Object::Other),
    ("SPATIAL", Object::Other),
    ("RESOURCE", Object::Other),
];

/// Objects of CREATE/ALTER/DROP that are never part of a migration (users are not copied).
const IGNORED_OBJECTS: &[&str] = &["USER", "ROLE", "SERVER", "INSTANCE", "UNDO"];

struct Cursor {
    toks: Vec<Token>,
    i: usize,
}

impl Cursor {
    fn word(&self, i: usize) -> Option<String> {
        match self.toks.get(i) {
            Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    }

    fn is(&self, i: usize, w: &str) -> bool {
        self.word(i).as_deref() == Some(w)
    }

    fn eat(&mut self, w: &str) -> bool {
        if self.is(self.i, w) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_token(&mut self, t: &Token) -> bool {
        if self.toks.get(self.i) == Some(t) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn ident(&self, i: usize) -> Option<String> {
        match self.toks.get(i) {
            Some(Token::Word(w)) => Some(w.value.clone()),
            _ => None,
        }
    }

    /// `name` or `db.name`, unqualified names taken to be in `default_db`.
    fn name(&mut self, default_db: &str) -> Option<Name> {
        let first = self.ident(self.i)?;
        if self.toks.get(self.i + 1) == Some(&Token::Period) {
            if let Some(second) = self.ident(self.i + 2) {
                self.i += 3;
                return Some(Name::new(&first, &second));
            }
        }
        self.i += 1;
        Some(Name::new(default_db, &first))
    }

    fn names(&mut self, default_db: &str) -> Vec<Name> {
        let mut out = Vec::new();
        while let Some(n) = self.name(default_db) {
            out.push(n);
            if !self.eat_token(&Token::Comma) {
                break;
            }
        }
        out
    }

    fn if_exists(&mut self) {
        if self.is(self.i, "IF") {
            let save = self.i;
            self.i += 1;
            self.eat("NOT");
            if !self.eat("EXISTS") {
                self.i = save;
            }
        }
    }

    /// The table a DML statement writes: after INSERT/REPLACE [modifiers] [INTO], UPDATE [modifiers],
    /// DELETE [modifiers] FROM, LOAD DATA ... INTO TABLE.
    fn dml_target(&mut self, default_db: &str) -> Option<Name> {
        const MODIFIERS: &[&str] = &[
            "LOW_PRIORITY",
            "DELAYED",
            "HIGH_PRIORITY",
            "IGNORE",
            "QUICK",
            "CONCURRENT",
            "LOCAL",
        ];
        let verb = self.word(0)?;
        self.i = 1;
        if verb == "LOAD" {
            while self.i < self.toks.len()
                && !(self.is(self.i, "INTO") && self.is(self.i + 1, "TABLE"))
            {
                self.i += 1;
            }
            self.i += 2;
        } else {
            while self
                .word(self.i)
                .is_some_and(|w| MODIFIERS.contains(&w.as_str()))
            {
                self.i += 1;
            }
            match verb.as_str() {
                "DELETE" => {
                    while self.i < self.toks.len() && !self.is(self.i, "FROM") {
                        self.i += 1;
                    }
                    self.i += 1;
                }
                "INSERT" | "REPLACE" => {
                    self.eat("INTO");
                }
                _ => {}
            }
        }
        self.name(default_db)
    }

    /// Every `db.name` in the statement (for statements whose target is not at a fixed place).
    fn qualified_names(&self) -> Vec<Name> {
        let mut out = Vec::new();
        for i in 0..self.toks.len() {
            if self.toks.get(i + 1) == Some(&Token::Period) {
                if let (Some(a), Some(b)) = (self.ident(i), self.ident(i + 2)) {
                    out.push(Name::new(&a, &b));
                }
            }
        }
        out
    }
}

/// The table a CREATE TRIGGER statement attaches the trigger to (`... ON tbl FOR EACH ROW`).
pub fn trigger_table(sql: &str, default_db: &str) -> Result<Option<Name>> {
    let mut c = Cursor {
        toks: solid_tokens(sql)?,
        i: 0,
    };
    while c.i < c.toks.len() && !c.is(c.i, "TRIGGER") {
        c.i += 1;
    }
    while c.i < c.toks.len() && !c.is(c.i, "ON") {
        c.i += 1;
    }
    if !c.eat("ON") {
        return Ok(None);
    }
    Ok(c.name(default_db))
}

/// Every `db.name` a statement mentions (views and routines that reach into other databases).
pub fn qualified_names(sql: &str) -> Result<Vec<Name>> {
    let c = Cursor {
        toks: solid_tokens(sql)?,
        i: 0,
    };
    Ok(c.qualified_names())
}

/// Classifies one statement; `default_db` is the database the statement ran in (the QUERY event's schema).
pub fn classify(sql: &str, default_db: &str) -> Result<Statement> {
    let toks = solid_tokens(sql)?;
    let mut c = Cursor { toks, i: 1 };
    let verb = match c.word(0).as_deref() {
        Some("INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "LOAD") => {
            let mut names = c.qualified_names();
            names.extend(c.dml_target(default_db));
            return Ok(Statement::Dml { names });
        }
        Some("CREATE") => Verb::Create,
        Some("ALTER") => Verb::Alter,
        Some("DROP") => Verb::Drop,
        Some("RENAME") => Verb::Rename,
        Some("TRUNCATE") => Verb::Truncate,
        _ => return Ok(Statement::Ignored),
    };
    let mut ddl = Ddl {
        verb,
        object: Object::Table,
        object_word: "TABLE".into(),
        names: Vec::new(),
        renames: Vec::new(),
        temporary: false,
        like: None,
        opens_transaction: false,
    };
    match verb {
        Verb::Rename => {
            if !(c.eat("TABLE") || c.eat("TABLES")) {
                return Ok(Statement::Ignored); // RENAME USER
            }
            c.if_exists();
            while let Some(from) = c.name(default_db) {
                if !c.eat("TO") {
                    break;
                }
                let Some(to) = c.name(default_db) else { break };
                ddl.renames.push((from, to));
                if !c.eat_token(&Token::Comma) {
                    break;
                }
            }
            return Ok(Statement::Ddl(ddl));
        }
        Verb::Truncate => {
            c.eat("TABLE");
            ddl.names = c.name(default_db).into_iter().collect();
            return Ok(Statement::Ddl(ddl));
        }
        _ => {}
    }
    // CREATE [OR REPLACE] [ALGORITHM=..] [DEFINER=..] [SQL SECURITY ..] [TEMPORARY|UNIQUE|ONLINE|...] <object>
    let limit = c.toks.len().min(40);
    let mut found = None;
    for j in 1..limit {
        let Some(w) = c.word(j) else { continue };
        if w == "TEMPORARY" {
            ddl.temporary = true;
        }
        if IGNORED_OBJECTS.contains(&w.as_str()) {
            return Ok(Statement::Ignored);
        }
        // CREATE SPATIAL INDEX: SPATIAL is a modifier there.
        if w == "SPATIAL" && c.is(j + 1, "INDEX") {
            continue;
        }
        if let Some((_, o)) = OBJECT_WORDS.iter().find(|(k, _)| *k == w) {
            found = Some((j, *o, w));
            break;
        }
    }
    let Some((j, object, word)) = found else {
        ddl.object = Object::Other;
        ddl.object_word = c.word(1).unwrap_or_default();
        ddl.names = c.qualified_names();
        return Ok(Statement::Ddl(ddl));
    };
    ddl.object = object;
    ddl.object_word = word;
    c.i = j + 1;
    c.if_exists();
    match (object, verb) {
        (Object::Table, Verb::Drop) => ddl.names = c.names(default_db),
        (Object::Table, Verb::Create) => {
            ddl.names = c.name(default_db).into_iter().collect();
            let paren = c.eat_token(&Token::LParen);
            if c.eat("LIKE") {
                ddl.like = c.name(default_db);
            } else if paren {
                c.i -= 1;
            }
            let n = c.toks.len();
            ddl.opens_transaction = n >= 2 && c.is(n - 2, "START") && c.is(n - 1, "TRANSACTION");
        }
        (Object::Table, _) => {
            let Some(table) = c.name(default_db) else {
                return Ok(Statement::Ddl(ddl));
            };
            ddl.names.push(table.clone());
            // ALTER TABLE t ..., RENAME [TO|AS] t2 (not RENAME COLUMN/INDEX/KEY), at the top level.
            let mut depth = 0i32;
            while c.i < c.toks.len() {
                match &c.toks[c.i] {
                    Token::LParen => depth += 1,
                    Token::RParen => depth -= 1,
                    _ => {}
                }
                if depth == 0
                    && c.is(c.i, "RENAME")
                    && !["COLUMN", "INDEX", "KEY", "CONSTRAINT"]
                        .iter()
                        .any(|w| c.is(c.i + 1, w))
                {
                    c.i += 1;
                    let _ = c.eat("TO") || c.eat("AS");
                    if let Some(to) = c.name(&table.db) {
                        ddl.renames.push((table.clone(), to));
                    }
                    continue;
                }
                c.i += 1;
            }
        }
        (Object::Index, _) => {
            let _index = c.ident(c.i);
            c.i += 1;
            while c.i < c.toks.len() && !c.is(c.i, "ON") {
                c.i += 1;
            }
            if c.eat("ON") {
                ddl.names = c.name(default_db).into_iter().collect();
            }
        }
        (Object::View, Verb::Drop) => ddl.names = c.names(default_db),
        (Object::Database, _) => {
            let option = [
                "CHARACTER",
                "CHARSET",
                "DEFAULT",
                "COLLATE",
                "COMMENT",
                "READ",
                "ENCRYPTION",
                "UPGRADE",
            ]
            .iter()
            .any(|w| c.is(c.i, w));
            ddl.names = match c.ident(c.i) {
                Some(db) if !option => vec![Name::new(&db, "")],
                _ => vec![Name::new(default_db, "")],
            };
        }
        (Object::Trigger, Verb::Create) => {
            ddl.names = c.name(default_db).into_iter().collect();
        }
        _ => ddl.names = c.name(default_db).into_iter().collect(),
    }
    Ok(Statement::Ddl(ddl))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ddl(sql: &str) -> Ddl {
        match classify(sql, "shop").expect("tokenize") {
            Statement::Ddl(d) => d,
            other => panic!("{sql}: {other:?}"),
        }
    }

    fn n(db: &str, t: &str) -> Name {
        Name::new(db, t)
    }

    #[test]
    fn tables() {
        let d = ddl("CREATE TABLE `t1` (id INT PRIMARY KEY)");
        assert_eq!((d.verb, d.object), (Verb::Create, Object::Table));
        assert_eq!(d.names, vec![n("shop", "t1")]);
        let d = ddl("create table if not exists other.`we ird` like shop.t1");
        assert_eq!(d.names, vec![n("other", "we ird")]);
        assert_eq!(d.like, Some(n("shop", "t1")));
        let d = ddl("CREATE TABLE t2 (LIKE t1)");
        assert_eq!(d.like, Some(n("shop", "t1")));
        let d = ddl("CREATE OR REPLACE TEMPORARY TABLE tmp (a int)");
        assert!(d.temporary);
        let d = ddl("CREATE TABLE `x` (`a` int) START TRANSACTION");
        assert!(d.opens_transaction);
        let d = ddl("DROP TABLE IF EXISTS `a`, b.`c` /* generated by server */");
        assert_eq!(
            (d.verb, d.names.clone()),
            (Verb::Drop, vec![n("shop", "a"), n("b", "c")])
        );
        let d = ddl("TRUNCATE shop.orders");
        assert_eq!(
            (d.verb, d.names),
            (Verb::Truncate, vec![n("shop", "orders")])
        );
        let d = ddl("TRUNCATE TABLE `orders`");
        assert_eq!(d.names, vec![n("shop", "orders")]);
    }

    #[test]
    fn alter_and_rename() {
        let d = ddl("ALTER TABLE customers ADD COLUMN nick VARCHAR(20) AFTER name, ALGORITHM=INPLACE, LOCK=NONE");
        assert_eq!(
            (d.verb, d.names.clone(), d.renames.len()),
            (Verb::Alter, vec![n("shop", "customers")], 0)
        );
        let d = ddl("ALTER ONLINE IGNORE TABLE IF EXISTS `shop`.`c` RENAME COLUMN a TO b, RENAME INDEX i TO j");
        assert_eq!(
            (d.names.clone(), d.renames.len()),
            (vec![n("shop", "c")], 0)
        );
        let d = ddl("ALTER TABLE c ADD x INT, RENAME TO c2");
        assert_eq!(d.renames, vec![(n("shop", "c"), n("shop", "c2"))]);
        let d = ddl("ALTER TABLE c RENAME AS other.c");
        assert_eq!(d.renames, vec![(n("shop", "c"), n("other", "c"))]);
        let d = ddl("ALTER TABLE c ADD CHECK (a > 0), COMMENT 'RENAME TO x'");
        assert!(d.renames.is_empty());
        let d = ddl("RENAME TABLE t TO t_old, `_t_gho` TO t");
        assert_eq!(d.verb, Verb::Rename);
        assert_eq!(
            d.renames,
            vec![
                (n("shop", "t"), n("shop", "t_old")),
                (n("shop", "_t_gho"), n("shop", "t"))
            ]
        );
        assert_eq!(
            classify("RENAME USER a TO b", "").expect("ok"),
            Statement::Ignored
        );
    }

    #[test]
    fn indexes_views_routines() {
        let d = ddl("CREATE UNIQUE INDEX u_email ON customers (email)");
        assert_eq!(
            (d.object, d.names),
            (Object::Index, vec![n("shop", "customers")])
        );
        let d = ddl("CREATE SPATIAL INDEX g ON shop.places (pt)");
        assert_eq!(
            (d.object, d.names),
            (Object::Index, vec![n("shop", "places")])
        );
        let d = ddl("DROP INDEX `PRIMARY` ON `t`");
        assert_eq!(
            (d.verb, d.object, d.names),
            (Verb::Drop, Object::Index, vec![n("shop", "t")])
        );
        let d = ddl("CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `v` AS select 1 AS `a`");
        assert_eq!((d.object, d.names), (Object::View, vec![n("shop", "v")]));
        let d = ddl("ALTER DEFINER=`u`@`%` VIEW shop.v AS SELECT 2");
        assert_eq!((d.verb, d.object), (Verb::Alter, Object::View));
        let d = ddl("DROP VIEW IF EXISTS v1, other.v2");
        assert_eq!(d.names, vec![n("shop", "v1"), n("other", "v2")]);
        let d =
            ddl("CREATE DEFINER=`root`@`localhost` PROCEDURE `p`(IN a INT) BEGIN SELECT a; END");
        assert_eq!(
            (d.object, d.names),
            (Object::Procedure, vec![n("shop", "p")])
        );
        let d = ddl(
            "CREATE DEFINER=`root`@`%` FUNCTION f(a INT) RETURNS int DETERMINISTIC RETURN a + 1",
        );
        assert_eq!(
            (d.object, d.names),
            (Object::Function, vec![n("shop", "f")])
        );
        let sql = "CREATE DEFINER=`root`@`%` TRIGGER tr BEFORE INSERT ON orders FOR EACH ROW SET NEW.n = 1";
        let d = ddl(sql);
        assert_eq!(d.object, Object::Trigger);
        assert_eq!(
            trigger_table(sql, "shop").expect("ok"),
            Some(n("shop", "orders"))
        );
        let d = ddl("CREATE DEFINER=`root`@`%` EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t");
        assert_eq!(d.object, Object::Event);
    }

    #[test]
    fn databases_other_and_ignored() {
        let d = ddl("ALTER DATABASE CHARACTER SET utf8mb4");
        assert_eq!((d.object, d.names), (Object::Database, vec![n("shop", "")]));
        let d = ddl("DROP DATABASE `shop`");
        assert_eq!((d.verb, d.names), (Verb::Drop, vec![n("shop", "")]));
        let d = ddl("CREATE SEQUENCE s START WITH 1");
        assert_eq!(d.object, Object::Other);
        for sql in [
            "GRANT SELECT ON shop.* TO u",
            "CREATE USER 'u'@'%' IDENTIFIED BY 'x'",
            "DROP USER u",
            "FLUSH PRIVILEGES",
            "ANALYZE TABLE shop.t",
            "SAVEPOINT a",
            "XA START 'x'",
            "ALTER USER u IDENTIFIED BY 'y'",
        ] {
            assert_eq!(
                classify(sql, "shop").expect(sql),
                Statement::Ignored,
                "{sql}"
            );
        }
        assert_eq!(
            classify("INSERT INTO shop.t VALUES (1)", "").expect("ok"),
            Statement::Dml {
                names: vec![n("shop", "t"), n("shop", "t")]
            }
        );
        for (sql, target) in [
            (
                "INSERT LOW_PRIORITY IGNORE INTO t (a) VALUES (1)",
                n("crm", "t"),
            ),
            ("REPLACE t SELECT * FROM other.x", n("crm", "t")),
            ("UPDATE IGNORE `t` SET a = 1", n("crm", "t")),
            ("DELETE QUICK FROM t WHERE a = 1", n("crm", "t")),
            ("LOAD DATA LOCAL INFILE 'x' INTO TABLE t", n("crm", "t")),
        ] {
            match classify(sql, "crm").expect(sql) {
                Statement::Dml { names } => assert!(names.contains(&target), "{sql}: {names:?}"),
                other => panic!("{sql}: {other:?}"),
            }
        }
    }
}
