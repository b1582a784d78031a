//! `storyline history` (a chat's settings changes and story outcomes, as text
//! or JSON) and `storyline settings show` (a chat's settings as they were at a
//! moment, from the Type 2 `settings_history`): their arguments and output.
//! Both only read a copy of the database (`ops::read_only_copy`).

use super::SETTINGS_HELP;
use std::path::PathBuf;

use crate::zone::Tz;
use anyhow::{bail, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::{json, Map, Value};

use super::{Command, Parsed, UsageError};
use crate::config::Config;
use crate::db::{self, history::Query};
use crate::domain::history::{
    parse_changes, setting_label, source_words, value_at, value_words, Entry, Narrow, What,
};
use crate::domain::markup::plural;
use crate::domain::settings::{self, ChatRow};

pub const HISTORY_HELP: &str = "\
Usage: storyline [--config PATH] history [--chat ID] [--settings|--posts] [--since DATE] [--json]

Prints what happened in each chat (or in one), newest first: every settings
change (when, who, old -> new, and why: menu, wizard, import, auto-tune, CLI,
a command) and every story's outcome (posted, skipped, rejected, failed,
missed; by whom and how). Times are in each chat's time zone.

  --chat ID     Only this chat
  --settings    Only settings changes
  --posts       Only story outcomes
  --since DATE  From DATE on: YYYY-MM-DD (midnight in the chat's zone),
                YYYY-MM-DDTHH:MM (the chat's zone) or an RFC 3339 time
  --json        One JSON array, an object per entry, with the full changes
";

/// A moment as typed: a day, a wall-clock time, or an exact instant. A day and
/// a wall-clock time are read in the chat's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    Day(NaiveDate),
    Local(NaiveDateTime),
    Instant(DateTime<Utc>),
}

impl Moment {
    pub fn parse(text: &str) -> Option<Moment> {
        let text = text.trim();
        if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
            return Some(Moment::Instant(instant.with_timezone(&Utc)));
        }
        for format in [
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
        ] {
            if let Ok(local) = NaiveDateTime::parse_from_str(text, format) {
                return Some(Moment::Local(local));
            }
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(Moment::Day)
    }

    /// The instant in `tz`; a wall-clock time that a DST change skips is read
    /// an hour later, so every typed time means some instant.
    pub fn in_zone(self, tz: Tz) -> DateTime<Utc> {
        let local = match self {
            Moment::Instant(instant) => return instant,
            Moment::Day(day) => day.and_time(chrono::NaiveTime::MIN),
            Moment::Local(local) => local,
        };
        tz.from_local_datetime(&local)
            .earliest()
            .or_else(|| {
                tz.from_local_datetime(&(local + chrono::Duration::hours(1)))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| local.and_utc())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryArgs {
    pub chat: Option<i64>,
    pub narrow: Narrow,
    pub since: Option<Moment>,
    pub json: bool,
}

/// `--chat`'s value: a chat id, never 0.
pub(super) fn chat_id(text: &str) -> Result<i64, UsageError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id != 0)
        .ok_or_else(|| {
            UsageError(format!(
                "--chat {text:?} is not a chat id (a number like 4242 or -1001234567890)"
            ))
        })
}

fn moment(option: &str, text: &str) -> Result<Moment, UsageError> {
    Moment::parse(text).ok_or_else(|| {
        UsageError(format!(
            "{option} {text:?}: give a date (2026-01-05), a time in the chat's zone \
             (2026-01-05T14:30) or an RFC 3339 time (2026-01-05T13:30:00Z)"
        ))
    })
}

/// Parses what follows `history` on the command line.
pub fn parse_history(
    parser: &mut lexopt::Parser,
    mut config: Option<PathBuf>,
) -> Result<Parsed, UsageError> {
    use lexopt::prelude::*;
    let usage = |e: lexopt::Error| UsageError(e.to_string());
    let mut args = HistoryArgs {
        chat: None,
        narrow: Narrow::All,
        since: None,
        json: false,
    };
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Short('c') | Long("config") => {
                config = Some(PathBuf::from(parser.value().map_err(usage)?));
            }
            Short('h') | Long("help") => return Ok(Parsed::Print(HISTORY_HELP.to_string())),
            Long("chat") => {
                let value = parser.value().map_err(usage)?;
                if args
                    .chat
                    .replace(chat_id(&value.to_string_lossy())?)
                    .is_some()
                {
                    return Err(UsageError("--chat is given twice".to_string()));
                }
            }
            Long(which @ ("settings" | "posts")) => {
                let narrow = if which == "settings" {
                    Narrow::Settings
                } else {
                    Narrow::Posts
                };
                if args.narrow != Narrow::All && args.narrow != narrow {
                    return Err(UsageError(
                        "--settings and --posts exclude each other (give neither for both)"
                            .to_string(),
                    ));
                }
                args.narrow = narrow;
            }
            Long("since") => {
                let value = parser.value().map_err(usage)?;
                args.since = Some(moment("--since", &value.to_string_lossy())?);
            }
            Long("json") => args.json = true,
            other => return Err(UsageError(other.unexpected().to_string())),
        }
    }
    Ok(Parsed::Command {
        config,
        command: Command::History(args),
    })
}

/// Parses what follows `settings` on the command line (`show`).
/// `settings show …`, after `super::parse_settings` read the verb.
pub fn parse_settings(
    parser: &mut lexopt::Parser,
    mut config: Option<PathBuf>,
) -> Result<Parsed, UsageError> {
    use lexopt::prelude::*;
    let usage = |e: lexopt::Error| UsageError(e.to_string());
    let mut chat = None;
    let mut at = None;
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Short('c') | Long("config") => {
                config = Some(PathBuf::from(parser.value().map_err(usage)?));
            }
            Short('h') | Long("help") => return Ok(Parsed::Print(SETTINGS_HELP.to_string())),
            Long("chat") => {
                let value = parser.value().map_err(usage)?;
                if chat.replace(chat_id(&value.to_string_lossy())?).is_some() {
                    return Err(UsageError("--chat is given twice".to_string()));
                }
            }
            Long("at") => {
                let value = parser.value().map_err(usage)?;
                at = Some(moment("--at", &value.to_string_lossy())?);
            }
            other => return Err(UsageError(other.unexpected().to_string())),
        }
    }
    let chat = chat.ok_or_else(|| {
        UsageError(
            "settings show needs --chat ID (the chat's id, as `storyline history` shows it)"
                .to_string(),
        )
    })?;
    Ok(Parsed::Command {
        config,
        command: Command::SettingsShow { chat, at },
    })
}

/// The chat's time zone as it is now (`[defaults]` where it chose none).
fn chat_zone(conn: &rusqlite::Connection, config: &Config, chat_id: i64) -> Result<Tz> {
    let row = db::chat(conn, chat_id)?.unwrap_or_else(|| ChatRow::new(chat_id));
    Ok(settings::resolve(&row, &config.defaults).timezone)
}

/// "2026-01-04 14:32 CET"
fn local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// `storyline history`.
pub fn history(config: &Config, args: &HistoryArgs) -> Result<String> {
    let conn = crate::cli::ops::read_only_copy(&config.storage.database)?;
    let chats = match args.chat {
        Some(id) if db::chat(&conn, id)?.is_none() => {
            bail!("chat {id} is not in the database (see `storyline history` for every chat)")
        }
        Some(id) => vec![id],
        None => db::history::chat_ids(&conn)?,
    };
    let mut text = String::new();
    let mut json_entries = Vec::new();
    for chat_id in chats {
        let tz = chat_zone(&conn, config, chat_id)?;
        let query = Query {
            chat_id: Some(chat_id),
            narrow: args.narrow,
            since: args.since.map(|m| m.in_zone(tz)),
            until: None,
            settings_id_max: None,
            post_id_max: None,
        };
        let entries = db::history::entries(&conn, &query, 0, None)?;
        if args.json {
            json_entries.extend(entries.iter().map(|e| entry_json(e, tz)));
            continue;
        }
        text.push_str(&format!(
            "Chat {chat_id} ({}): {}, newest first\n",
            tz.name(),
            plural(entries.len(), "entry", "entries")
        ));
        for entry in &entries {
            text.push_str(&entry_line(entry, tz));
        }
    }
    if args.json {
        return Ok(format!("{}\n", Value::Array(json_entries)));
    }
    if text.is_empty() {
        text.push_str("No chat is in the database yet.\n");
    }
    Ok(text)
}

/// "  2026-01-04 14:32 CET  settings  @ada: Posts per day 3 → 5 (menu)"
fn entry_line(entry: &Entry, tz: Tz) -> String {
    let why = entry.why_words();
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(" ({why})")
    };
    format!(
        "  {}  {:<8}  {}: {}{why}\n",
        local(entry.at, tz),
        if entry.is_settings() {
            "settings"
        } else {
            "post"
        },
        entry.who_words(),
        entry.what_words()
    )
}

/// One entry for --json: the words the text shows, and the full stored data
/// (changes as recorded, the stored reason, the item's whole path).
fn entry_json(entry: &Entry, tz: Tz) -> Value {
    let mut object = json!({
        "chat_id": entry.chat_id,
        "at": entry.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "local_time": entry.at.with_timezone(&tz).to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        "user_id": entry.user_id,
        "who": entry.who_words(),
        "what": entry.what_words(),
        "why": entry.why_words(),
    });
    let fields = match &entry.what {
        What::Settings { changes, reason } => json!({
            "kind": "settings",
            "changes": changes,
            "reason": reason,
            "source": reason.as_deref().map(source_words),
        }),
        What::Post {
            item,
            outcome,
            method,
            error,
        } => json!({
            "kind": "post",
            "item": item,
            "outcome": outcome.as_str(),
            "method": method.map(|m| m.as_str()),
            "error": error,
        }),
    };
    if let (Some(object), Value::Object(fields)) = (object.as_object_mut(), fields) {
        object.extend(fields);
    }
    object
}

/// The order `settings show` lists a snapshot's keys in; others follow.
const SHOWN_ORDER: &[&str] = &[
    "dry_run_mode",
    "enable_instagram_api",
    "auto_post",
    "is_paused",
    "paused_at",
    "paused_by",
    "posts_per_day",
    "posting_hours_start",
    "posting_hours_end",
    "timezone",
    "posted_lock_days",
    "skipped_lock_days",
    "story_buttons_admins_only",
    "active_account_id",
];

/// `storyline settings show --chat ID [--at TIME]`.
pub fn settings_show(config: &Config, chat_id: i64, at: Option<Moment>) -> Result<String> {
    let conn = crate::cli::ops::read_only_copy(&config.storage.database)?;
    if db::chat(&conn, chat_id)?.is_none() {
        bail!("chat {chat_id} is not in the database (see `storyline history` for every chat)");
    }
    let tz = chat_zone(&conn, config, chat_id)?;
    let moment = at.map(|m| m.in_zone(tz));
    let version = match moment {
        Some(moment) => db::history::version_at(&conn, chat_id, moment)?,
        None => db::history::current_version(&conn, chat_id)?,
    };
    let Some(version) = version else {
        match (moment, db::history::first_version_at(&conn, chat_id)?) {
            (Some(moment), Some(first)) => bail!(
                "chat {chat_id} had no settings yet at {}; its first version is from {}",
                local(moment, tz),
                local(first, tz)
            ),
            _ => bail!("chat {chat_id} has no settings history"),
        }
    };
    let mut text = match moment {
        Some(moment) => format!(
            "Chat {chat_id}: settings at {} ({}):\n",
            local(moment, tz),
            moment.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => format!("Chat {chat_id}: current settings:\n"),
    };
    let by = match version.changed_by {
        Some(id) => db::user_display_name(&conn, id)?,
        None => "Storyline".to_string(),
    };
    let until = match version.valid_to {
        Some(to) => format!("until {}", local(to, tz)),
        None => "still current".to_string(),
    };
    text.push_str(&format!(
        "  version from {}, {until}; by {by} ({})\n",
        local(version.valid_from, tz),
        version
            .reason
            .as_deref()
            .map(source_words)
            .unwrap_or("reason not recorded")
    ));
    let changes = parse_changes(&version.changes);
    if !changes.is_empty() {
        let words: Vec<String> = changes
            .iter()
            .map(crate::domain::history::change_words)
            .collect();
        text.push_str(&format!("  that version changed: {}\n", words.join("; ")));
    }
    let snapshot: Map<String, Value> = serde_json::from_str(&version.snapshot).unwrap_or_default();
    let mut keys: Vec<&String> = snapshot.keys().collect();
    keys.sort_by_key(|k| {
        SHOWN_ORDER
            .iter()
            .position(|s| s == k)
            .unwrap_or(SHOWN_ORDER.len())
    });
    for key in keys {
        text.push_str(&format!(
            "  {}: {}\n",
            snapshot_label(key),
            value_words(key, &snapshot[key])
        ));
    }
    // The mix lives in its own table, so versions hold only its changes.
    let when = moment.unwrap_or(version.valid_from);
    let mix = value_at(
        "category_mix",
        &db::history::all_changes(&conn, chat_id)?,
        when,
    );
    text.push_str(&format!(
        "  {}: {}\n",
        setting_label("category_mix"),
        mix.map(|m| value_words("category_mix", &m))
            .unwrap_or_else(|| "as now (never changed)".to_string())
    ));
    Ok(text)
}

/// A snapshot key's label: the menu's words, for the keys only snapshots have too.
fn snapshot_label(key: &str) -> &str {
    match key {
        "auto_post" => "Auto post",
        "paused_at" => "Paused at",
        "paused_by" => "Paused by (user id)",
        other => setting_label(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn parse(args: &[&str]) -> Result<Parsed, UsageError> {
        super::super::parse_args(args.iter().map(OsString::from))
    }

    fn command(args: &[&str]) -> Command {
        match parse(args) {
            Ok(Parsed::Command { command, .. }) => command,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn arguments() {
        assert_eq!(
            command(&["history"]),
            Command::History(HistoryArgs {
                chat: None,
                narrow: Narrow::All,
                since: None,
                json: false
            })
        );
        assert_eq!(
            command(&[
                "history",
                "--chat",
                "-100123",
                "--posts",
                "--since",
                "2026-01-05",
                "--json"
            ]),
            Command::History(HistoryArgs {
                chat: Some(-100123),
                narrow: Narrow::Posts,
                since: Moment::parse("2026-01-05"),
                json: true
            })
        );
        assert_eq!(
            command(&[
                "settings",
                "show",
                "--chat",
                "4242",
                "--at",
                "2026-01-05T12:00:00Z"
            ]),
            Command::SettingsShow {
                chat: 4242,
                at: Moment::parse("2026-01-05T12:00:00Z")
            }
        );
        assert_eq!(
            command(&["settings", "show", "--chat", "4242"]),
            Command::SettingsShow {
                chat: 4242,
                at: None
            }
        );
        for bad in [
            &["history", "--settings", "--posts"][..],
            &["history", "--chat", "x"],
            &["history", "--chat", "0"],
            &["history", "--since", "yesterday"],
            &["history", "--since"],
            &["history", "extra"],
            &["history", "--at", "2026-01-05"],
            &["settings"],
            &["settings", "show"],
            &["settings", "show", "--chat", "1", "--at", "soon"],
            &["settings", "frob", "--chat", "1"],
            &["settings", "--chat", "1"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse(&["history", "--help"]).unwrap(),
            Parsed::Print(HISTORY_HELP.to_string())
        );
        assert_eq!(
            super::super::help_after_error(&["settings".into(), "show".into()]),
            SETTINGS_HELP
        );
        assert_eq!(
            super::super::help_after_error(&["-c".into(), "x".into(), "history".into()]),
            HISTORY_HELP
        );
    }

    #[test]
    fn moments() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        for (text, expected) in [
            ("2026-01-05", "2026-01-04T23:00:00Z"),
            ("2026-07-05T14:30", "2026-07-05T12:30:00Z"),
            ("2026-07-05 14:30:10", "2026-07-05T12:30:10Z"),
            ("2026-01-05T13:30:00Z", "2026-01-05T13:30:00Z"),
            ("2026-01-05T13:30:00+02:00", "2026-01-05T11:30:00Z"),
            // Skipped by the spring change: an hour later.
            ("2026-03-29T02:30", "2026-03-29T01:30:00Z"),
        ] {
            let moment = Moment::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(
                moment.in_zone(berlin),
                expected.parse::<DateTime<Utc>>().unwrap(),
                "{text}"
            );
        }
        for text in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-01-05T25:00",
            "05.01.2026",
        ] {
            assert_eq!(Moment::parse(text), None, "{text}");
        }
    }
}
