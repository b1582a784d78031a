//! The module boundaries ARCHITECTURE.md promises, checked on every `cargo test`
//! (a tidy test in the manner of rust-analyzer's): it reads src/ as text.
//!
//! - SQL (a string literal holding `SELECT`, `INSERT INTO`, `UPDATE … SET`,
//!   `DELETE FROM`, `CREATE TABLE/INDEX/TRIGGER/VIEW` or `PRAGMA`, upper case)
//!   only in src/db/;
//! - `ureq` only in the HTTP adapters, src/telegram/, src/instagram/ and their
//!   client plumbing src/http/;
//! - `tiny_http` nowhere in the program (the web page is std::net);
//! - `db::timestamp` (a time as stored text) only in src/db/: the rest of the
//!   program hands the store a `DateTime<Utc>` and gets typed times back.
//!
//! A small lexer skips comments and splits code from string literals, so prose
//! may name these words. `#[cfg(test)]` at column 0 followed by a `mod … {` is
//! skipped up to its closing brace: tests may set up and inspect a database
//! with SQL, and fake servers may use tiny_http.

use std::fs;
use std::path::{Path, PathBuf};

#[test]
fn the_program_keeps_its_boundaries() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "src/ not found: {}", src.display());
    let mut violations = Vec::new();
    for path in &files {
        let relative = path
            .strip_prefix(&src)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        let text = fs::read_to_string(path).unwrap();
        violations.extend(check(&relative, &text));
    }
    assert!(
        violations.is_empty(),
        "boundaries crossed (see ARCHITECTURE.md, Invariants):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_check_finds_what_it_looks_for() {
    let program = r##"
//! A module that says SELECT and ureq:: in prose only.
use ureq::Agent;
fn f(conn: &Connection) {
    let c = '"';
    conn.execute("UPDATE chats SET x = 1", []);
    let q = r#"SELECT "a" FROM t"#;
    let s: &'static str = "a"; // tiny_http::Server in a comment
    let server = tiny_http::Server::http("127.0.0.1:0");
    let ok = "Pragma-free words: Select, DELETE key, CREATE a story, UPDATE it";
    let at = crate::db::timestamp(now); // db::timestamp(now) in a comment
    let times = slots.map(db::timestamp);
    let fine = "db::timestamp(now)"; db::timestamps(); my_db::timestamp_of(t);
}
#[cfg(test)]
mod tests {
    fn g() { conn.execute("DELETE FROM chats", []); let _ = ureq::get("x"); }
    fn fixture() -> String { db::timestamp(t) }
}
"##;
    let found = check("daemon.rs", program);
    assert_eq!(
        found,
        [
            "src/daemon.rs:3: `ureq` outside the adapters (telegram/, instagram/, http/)",
            "src/daemon.rs:6: SQL outside src/db/: \"UPDATE chats SET x = 1\"",
            "src/daemon.rs:7: SQL outside src/db/: \"SELECT \\\"a\\\" FROM t\"",
            "src/daemon.rs:9: `tiny_http` in the program (the web page is std::net)",
            "src/daemon.rs:11: `db::timestamp` outside src/db/ (hand the store a DateTime<Utc>)",
            "src/daemon.rs:12: `db::timestamp` outside src/db/ (hand the store a DateTime<Utc>)",
        ],
    );
    assert_eq!(
        check("db/queue.rs", program).len(),
        2,
        "SQL and stored times are the store's"
    );
    assert_eq!(
        check("telegram/mod.rs", program).len(),
        5,
        "ureq is the adapters'"
    );
}

/// Every violation in one file, as "src/<path>:<line>: what".
fn check(relative: &str, text: &str) -> Vec<String> {
    let lexed = lex(text);
    let mut out = Vec::new();
    let in_store = relative.starts_with("db/");
    let adapter = relative.starts_with("telegram/")
        || relative.starts_with("instagram/")
        || relative.starts_with("http/");
    for (line, code) in lexed.code.iter().enumerate() {
        if !adapter && has_word(code, "ureq") {
            out.push(format!(
                "src/{relative}:{}: `ureq` outside the adapters (telegram/, instagram/, http/)",
                line + 1
            ));
        }
        if has_word(code, "tiny_http") {
            out.push(format!(
                "src/{relative}:{}: `tiny_http` in the program (the web page is std::net)",
                line + 1
            ));
        }
        if !in_store && has_word(code, "db::timestamp") {
            out.push(format!(
                "src/{relative}:{}: `db::timestamp` outside src/db/ (hand the store a DateTime<Utc>)",
                line + 1
            ));
        }
    }
    if !in_store {
        for (line, literal) in &lexed.strings {
            if is_sql(literal) {
                out.push(format!(
                    "src/{relative}:{line}: SQL outside src/db/: {:?}",
                    literal.trim()
                ));
            }
        }
    }
    out.sort_by_key(|v| {
        let line = v.split(':').nth(1).and_then(|n| n.parse::<usize>().ok());
        line.unwrap_or(0)
    });
    out
}

fn is_sql(literal: &str) -> bool {
    let words: Vec<&str> = literal
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    words.iter().enumerate().any(|(i, w)| {
        let next = words.get(i + 1).copied().unwrap_or("");
        match *w {
            "SELECT" | "PRAGMA" => true,
            "INSERT" => next == "INTO",
            "DELETE" => next == "FROM",
            "CREATE" => matches!(next, "TABLE" | "INDEX" | "TRIGGER" | "VIEW" | "UNIQUE"),
            "UPDATE" => words.get(i + 2) == Some(&"SET"),
            _ => false,
        }
    })
}

fn has_word(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

/// A file split into its code (per line, literals and comments blanked) and its
/// string literals (with the line each starts on), test modules left out.
struct Lexed {
    code: Vec<String>,
    strings: Vec<(usize, String)>,
}

fn lex(text: &str) -> Lexed {
    let chars: Vec<char> = text.chars().collect();
    let mut code = vec![String::new()];
    let mut strings = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Inside a skipped test module: the brace depth at which it ends.
    let mut skipping: Option<usize> = None;
    let mut depth = 0usize;
    let at_line_start = |i: usize| i == 0 || chars[i - 1] == '\n';
    while i < chars.len() {
        let c = chars[i];
        let rest = |s: &str| {
            chars[i..]
                .iter()
                .take(s.chars().count())
                .copied()
                .eq(s.chars())
        };
        if c == '\n' {
            line += 1;
            code.push(String::new());
            i += 1;
            continue;
        }
        if rest("//") {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if rest("/*") {
            let mut nesting = 0;
            while i < chars.len() {
                if chars[i] == '\n' {
                    line += 1;
                    code.push(String::new());
                }
                if chars[i..].starts_with(&['/', '*']) {
                    nesting += 1;
                    i += 2;
                } else if chars[i..].starts_with(&['*', '/']) {
                    nesting -= 1;
                    i += 2;
                    if nesting == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            continue;
        }
        if skipping.is_none() && at_line_start(i) && rest("#[cfg(test)]") {
            // Followed (after blank lines and attributes) by `mod name {`?
            let after: String = chars[i + "#[cfg(test)]".len()..].iter().collect();
            let next = after
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("#["));
            if next.is_some_and(|l| {
                (l.starts_with("mod ") || l.starts_with("pub mod ")) && l.ends_with('{')
            }) {
                skipping = Some(depth);
            }
        }
        // A string literal: "…", b"…", r"…", r#"…"#, br#"…"#.
        let ident_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        let mut j = i;
        if !ident_before && chars[j] == 'b' {
            j += 1;
        }
        let raw = !ident_before && chars.get(j) == Some(&'r');
        if raw {
            j += 1;
        }
        let mut hashes = 0;
        while raw && chars.get(j) == Some(&'#') {
            hashes += 1;
            j += 1;
        }
        if chars.get(j) == Some(&'"') && (j == i || !ident_before) {
            let start_line = line;
            let mut literal = String::new();
            j += 1;
            while let Some(&ch) = chars.get(j) {
                if ch == '\n' {
                    line += 1;
                    code.push(String::new());
                }
                if !raw && ch == '\\' {
                    if let Some(&escaped) = chars.get(j + 1) {
                        literal.push(escaped);
                        if escaped == '\n' {
                            line += 1;
                            code.push(String::new());
                        }
                    }
                    j += 2;
                    continue;
                }
                if ch == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                literal.push(ch);
                j += 1;
            }
            if skipping.is_none() {
                strings.push((start_line, literal));
            }
            i = j;
            continue;
        }
        // A char literal ('x', '\n', '"', '\u{..}'), not a lifetime.
        if c == '\'' {
            let close = if chars.get(i + 1) == Some(&'\\') {
                (i + 2..chars.len().min(i + 12)).find(|&k| chars[k] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(close) = close {
                i = close + 1;
                continue;
            }
        }
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if skipping == Some(depth) {
                    skipping = None;
                    i += 1;
                    continue;
                }
            }
            _ => {}
        }
        if skipping.is_none() {
            if let Some(current) = code.last_mut() {
                current.push(c);
            }
        }
        i += 1;
    }
    Lexed { code, strings }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
