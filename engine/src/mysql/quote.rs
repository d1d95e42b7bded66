//! Quoting of identifiers and plain string literals for SQL text that ferry builds.

/// `` `name` `` with embedded backticks doubled.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `` `db`.`name` ``.
pub fn qualified(db: &str, name: &str) -> String {
    format!("{}.{}", ident(db), ident(name))
}

/// A string literal safe under every sql_mode (hex-encoded with an explicit utf8mb4 introducer).
pub fn string(s: &str) -> String {
    if s.is_empty() {
        "''".to_string()
    } else {
        format!("_utf8mb4 X'{}'", hex::encode_upper(s.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backticks_are_doubled() {
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(qualified("d", "t"), "`d`.`t`");
        assert_eq!(string("it's"), "_utf8mb4 X'69742773'");
        assert_eq!(string(""), "''");
    }
}
