//! `storyline runs [--since DATE] [--json]` (the background runs recorded in
//! `runs`), `storyline chats list|disable|enable ID` (an admin switches a chat
//! off and on: `bot::health::switch_chat`), and the backup's own run record.

use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};

use super::{Command, Parsed, UsageError};
use crate::config::Config;
use crate::db::runs::RunRow;
use crate::domain::status::RunKind;

pub const RUNS_HELP: &str = "\
Usage: storyline [--config PATH] runs [--since DATE] [--json]

Lists the background runs the daemon recorded (scans, publishes, token
refreshes, daily summaries, backups), oldest first: when each started (UTC), what
it was, the chat it was for, its outcome (ok, failed, interrupted; `running`
while it runs), how long it took, its counts and its error. Without --since, the
last 100. Runs are kept 90 days.

  --since DATE  Only runs started at or after DATE (2026-03-01 or an RFC 3339 time)
  --json        One JSON array instead of lines
";

pub const CHATS_HELP: &str = "\
Usage: storyline [--config PATH] chats list
       storyline [--config PATH] chats disable ID
       storyline [--config PATH] chats enable ID

Lists the chats the database knows and whether each is served; switches a chat
off (disable) or on again (enable). A chat switched off keeps its settings,
queue and history but gets no plan and no stories; its commands get one notice
an hour. The chat is told once when switched off and once when switched on (the
running bot sends it; otherwise the next `storyline run` does).
";

/// What `chats` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatsCommand {
    List,
    Disable(i64),
    Enable(i64),
}

/// Parses what follows `runs`.
pub fn parse_runs(
    parser: &mut lexopt::Parser,
    mut config: Option<PathBuf>,
) -> Result<Parsed, UsageError> {
    use lexopt::prelude::*;
    let usage = |e: lexopt::Error| UsageError(e.to_string());
    let mut since = None;
    let mut json = false;
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Short('c') | Long("config") => {
                config = Some(PathBuf::from(parser.value().map_err(usage)?));
            }
            Short('h') | Long("help") => return Ok(Parsed::Print(RUNS_HELP.to_string())),
            Long("json") => json = true,
            Long("since") => {
                let value = parser.value().map_err(usage)?;
                let text = value.to_string_lossy();
                since = Some(parse_since(&text).ok_or_else(|| {
                    UsageError(format!(
                        "--since {text:?}: give a date (2026-03-01) or an RFC 3339 time"
                    ))
                })?);
            }
            other => return Err(UsageError(other.unexpected().to_string())),
        }
    }
    Ok(Parsed::Command {
        config,
        command: Command::Runs { since, json },
    })
}

/// A date (midnight UTC) or an RFC 3339 time.
fn parse_since(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses what follows `chats`. A chat id may be negative (groups are), so it
/// is read as it is, before it could be taken for an option.
pub fn parse_chats(
    parser: &mut lexopt::Parser,
    mut config: Option<PathBuf>,
) -> Result<Parsed, UsageError> {
    use lexopt::prelude::*;
    let usage = |e: lexopt::Error| UsageError(e.to_string());
    let mut verb: Option<String> = None;
    let mut id: Option<i64> = None;
    loop {
        if matches!(verb.as_deref(), Some("disable" | "enable")) && id.is_none() {
            if let Ok(mut raw) = parser.raw_args() {
                let number = raw
                    .peek()
                    .and_then(|word| word.to_str())
                    .and_then(|word| word.trim().parse::<i64>().ok());
                if let Some(number) = number {
                    raw.next();
                    id = Some(number);
                    continue;
                }
            }
        }
        let Some(arg) = parser.next().map_err(usage)? else {
            break;
        };
        match arg {
            Short('c') | Long("config") => {
                config = Some(PathBuf::from(parser.value().map_err(usage)?));
            }
            Short('h') | Long("help") => return Ok(Parsed::Print(CHATS_HELP.to_string())),
            Value(word) if verb.is_none() => {
                let word = word.to_string_lossy().into_owned();
                if !["list", "disable", "enable"].contains(&word.as_str()) {
                    return Err(UsageError(format!(
                        "unknown chats command {word:?} (expected list, disable or enable)"
                    )));
                }
                verb = Some(word);
            }
            Value(word) if id.is_none() && verb.as_deref() != Some("list") => {
                return Err(UsageError(format!(
                    "{:?} is not a chat id (a number like 4242 or -1001234567890)",
                    word.to_string_lossy()
                )));
            }
            other => return Err(UsageError(other.unexpected().to_string())),
        }
    }
    let command = match (verb.as_deref(), id) {
        (Some("list"), _) => ChatsCommand::List,
        (Some("disable"), Some(id)) => ChatsCommand::Disable(id),
        (Some("enable"), Some(id)) => ChatsCommand::Enable(id),
        (Some(verb), None) => {
            return Err(UsageError(format!("chats {verb} needs the chat's ID")));
        }
        _ => {
            return Err(UsageError(
                "use `chats list`, `chats disable ID` or `chats enable ID`".to_string(),
            ))
        }
    };
    Ok(Parsed::Command {
        config,
        command: Command::Chats(command),
    })
}

/// `storyline runs`: returns what to print.
pub fn runs(config: &Config, since: Option<DateTime<Utc>>, json: bool) -> Result<String> {
    let conn = crate::cli::ops::read_only_copy(&config.storage.database)?;
    let limit = if since.is_some() { 100_000 } else { 100 };
    let rows = crate::db::runs::runs_since(&conn, since, limit)?;
    if json {
        let list: Vec<serde_json::Value> = rows.iter().map(run_json).collect();
        return Ok(format!("{}\n", serde_json::Value::Array(list)));
    }
    if rows.is_empty() {
        return Ok("No background runs recorded yet.\n".to_string());
    }
    Ok(rows.iter().map(run_line).collect())
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn run_json(run: &RunRow) -> serde_json::Value {
    let counts: serde_json::Map<String, serde_json::Value> = run
        .counts
        .iter()
        .map(|(name, value)| (name.clone(), (*value).into()))
        .collect();
    serde_json::json!({
        "id": run.id,
        "kind": run.kind.as_str(),
        "chat_id": run.chat_id,
        "started_at": stamp(run.started_at),
        "finished_at": run.finished_at.map(stamp),
        "duration_ms": run.duration_ms,
        "outcome": run.outcome.map(|o| o.as_str()),
        "counts": counts,
        "error": run.error,
    })
}

/// "2026-03-01T09:00:00Z  scan           -              ok           0.21 s  new 3, gone 0 — error"
fn run_line(run: &RunRow) -> String {
    let chat = run
        .chat_id
        .map_or_else(|| "-".to_string(), |id| format!("chat {id}"));
    let outcome = run.outcome.map_or("running", |o| o.as_str());
    let duration = run.duration_ms.map_or_else(
        || "-".to_string(),
        |ms| format!("{:.2} s", ms as f64 / 1000.0),
    );
    let mut line = format!(
        "{}  {:<13}  {:<19}  {:<11}  {:>9}",
        stamp(run.started_at),
        run.kind.as_str(),
        chat,
        outcome,
        duration
    );
    let counts: Vec<String> = run
        .counts
        .iter()
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    if !counts.is_empty() {
        line.push_str("  ");
        line.push_str(&counts.join(", "));
    }
    if let Some(error) = &run.error {
        line.push_str(" — ");
        line.push_str(&error.replace('\n', " "));
    }
    line.push('\n');
    line
}

/// `storyline chats …`: returns what to print.
pub fn chats(config: &Config, command: &ChatsCommand) -> Result<String> {
    let mut conn = crate::db::open(&config.storage.database)?;
    let now = crate::clock::now();
    match *command {
        ChatsCommand::List => {
            crate::bot::add_allowed_chats(&mut conn, config, now)?;
            let rows = crate::db::health::chat_list(&conn)?;
            if rows.is_empty() {
                return Ok("No chats yet.\n".to_string());
            }
            let mut text = String::new();
            for row in rows {
                let state = if let Some(at) = row.disabled_at {
                    format!("switched off since {}", stamp(at))
                } else if let Some(to) = row.migrated_to {
                    format!("moved to supergroup {to}")
                } else if !crate::bot::is_served(&conn, config, row.chat_id)? {
                    "not served".to_string()
                } else if let Some(at) = row.inactive_since {
                    format!("served, inactive since {} (Telegram refuses it)", stamp(at))
                } else {
                    "served".to_string()
                };
                text.push_str(&format!(
                    "{:<16}  {:<40}  {}\n",
                    row.chat_id,
                    state,
                    row.title.as_deref().unwrap_or("")
                ));
            }
            Ok(text)
        }
        ChatsCommand::Disable(id) | ChatsCommand::Enable(id) => {
            let off = matches!(command, ChatsCommand::Disable(_));
            let word = if off { "off" } else { "on" };
            if crate::bot::health::switch_chat(&mut conn, id, off, now)? {
                Ok(format!(
                    "Chat {id} switched {word}; it will be told so (by the running bot, or the next `storyline run`).\n"
                ))
            } else {
                Ok(format!("Chat {id} was already switched {word}.\n"))
            }
        }
    }
}

/// `storyline backup`, recorded as a run in the live database once it ends (a
/// row written before would be copied half-done).
pub fn backup(config: &Config, dest: &Path, force: bool) -> Result<String> {
    let run = crate::db::runs::begin(RunKind::Backup, None, crate::clock::now());
    let result = crate::cli::ops::backup(config, dest, force);
    if config.storage.database.is_file() {
        match crate::db::open_without_migrating(&config.storage.database) {
            Ok(conn) => {
                let error = result.as_ref().err().map(|e| format!("{e:#}"));
                run.finish(
                    &conn,
                    error.as_deref().map_or(Ok(()), Err),
                    crate::clock::now(),
                );
            }
            Err(e) => log::warn!("recording the backup: {e:#}"),
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, UsageError> {
        crate::cli::parse_args(args.iter().map(std::ffi::OsString::from))
    }

    fn command(args: &[&str]) -> Command {
        match parse(args) {
            Ok(Parsed::Command { command, .. }) => command,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn runs_and_chats_parse_negative_ids_dates_and_refuse_the_rest() {
        assert_eq!(
            command(&["runs"]),
            Command::Runs {
                since: None,
                json: false
            }
        );
        assert_eq!(
            command(&["runs", "--since", "2026-03-01", "--json"]),
            Command::Runs {
                since: Some("2026-03-01T00:00:00Z".parse().unwrap()),
                json: true
            }
        );
        assert!(parse(&["runs", "--since", "yesterday"]).is_err());
        assert!(parse(&["runs", "extra"]).is_err());
        assert_eq!(
            command(&["chats", "list"]),
            Command::Chats(ChatsCommand::List)
        );
        assert_eq!(
            command(&["chats", "disable", "-1001234567890"]),
            Command::Chats(ChatsCommand::Disable(-1_001_234_567_890))
        );
        assert_eq!(
            command(&["--config", "x.toml", "chats", "enable", "4242"]),
            Command::Chats(ChatsCommand::Enable(4242))
        );
        assert!(parse(&["chats", "disable"]).is_err());
        assert!(parse(&["chats", "disable", "abc"]).is_err());
        assert!(parse(&["chats", "remove", "1"]).is_err());
        assert!(parse(&["chats"]).is_err());
        assert!(matches!(parse(&["chats", "--help"]), Ok(Parsed::Print(t)) if t == CHATS_HELP));
    }

    #[test]
    fn a_run_line_has_time_kind_chat_outcome_duration_counts_and_error() {
        let run = RunRow {
            id: 1,
            kind: RunKind::Publish,
            chat_id: Some(-100),
            started_at: "2026-03-01T09:00:00Z".parse().unwrap(),
            finished_at: Some("2026-03-01T09:00:02Z".parse().unwrap()),
            duration_ms: Some(2150),
            outcome: Some(crate::domain::status::RunOutcome::Failed),
            counts: vec![("published".to_string(), 0)],
            error: Some("container\nERROR".to_string()),
        };
        expect_test::expect![[r#"
            2026-03-01T09:00:00Z  publish        chat -100            failed          2.15 s  published 0 — container ERROR
        "#]].assert_eq(&run_line(&run));
        expect_test::expect![[r#"{"chat_id":-100,"counts":{"published":0},"duration_ms":2150,"error":"container\nERROR","finished_at":"2026-03-01T09:00:02Z","id":1,"kind":"publish","outcome":"failed","started_at":"2026-03-01T09:00:00Z"}"#]].assert_eq(&run_json(&run).to_string());
    }
}
