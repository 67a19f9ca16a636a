//! The portable dialect's one rewrite: SQLite's numbered placeholders `?N` become PostgreSQL's
//! `$N`, outside string literals, quoted identifiers and comments.

use std::borrow::Cow;

use super::SqlError;

/// Rewrites `?1, ?2, ...` to `$1, $2, ...`, leaving `'...'` literals (with `''` inside),
/// `"..."` identifiers, `-- ...` and `/* ... */` comments as they are. Refuses a bare `?` (its
/// number would depend on its position, and PostgreSQL has no such form), `?0` and an
/// unterminated literal, identifier or comment. Text without `?` comes back borrowed.
///
/// The portable dialect has no `E'...'` strings and no `$tag$` quoting (SQLite has neither),
/// so with PostgreSQL's `standard_conforming_strings` (on by default) `''` is the only escape.
pub fn to_postgres_placeholders(sql: &str) -> Result<Cow<'_, str>, SqlError> {
    if !sql.contains('?') {
        return Ok(Cow::Borrowed(sql));
    }
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut i = 0;
    // Start of the text not yet copied to `out`.
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"') => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(SqlError::Dialect("unterminated quoted text")),
                        Some(&b) if b == quote => {
                            if bytes.get(i + 1) == Some(&quote) {
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                // PostgreSQL nests block comments; SQLite does not, so nesting is refused.
                i += 2;
                loop {
                    if i + 1 >= bytes.len() {
                        return Err(SqlError::Dialect("unterminated block comment"));
                    }
                    if bytes[i] == b'/' && bytes[i + 1] == b'*' {
                        return Err(SqlError::Dialect("nested block comment"));
                    }
                    if bytes[i] == b'*' && bytes[i + 1] == b'/' {
                        i += 2;
                        break;
                    }
                    i += 1;
                }
            }
            b'?' => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
                if end == start {
                    return Err(SqlError::Dialect(
                        "a bare ? placeholder: number them (?1, ?2, ...)",
                    ));
                }
                if bytes[start] == b'0' {
                    return Err(SqlError::Dialect("placeholders are numbered from ?1"));
                }
                out.push_str(&sql[copied..i]);
                out.push('$');
                out.push_str(&sql[start..end]);
                copied = end;
                i = end;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    Ok(Cow::Owned(out))
}
