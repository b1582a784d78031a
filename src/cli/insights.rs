//! `storyline insights [--chat ID] [--days N] [--json]`: each chat's story
//! results per category over the last days; `storyline insights fetch`: reads
//! every story still inside its 24 hours now (`bot::insights::run_due`).

use std::path::PathBuf;

use anyhow::{bail, Result};

use super::{Command, Parsed, UsageError};
use crate::config::Config;
use crate::db;
use crate::domain::insights;
use crate::domain::settings::{self, ChatRow};
use crate::domain::ui;

pub const INSIGHTS_HELP: &str = "\
Usage: storyline [--config PATH] insights [--chat ID] [--days N] [--json]
       storyline [--config PATH] insights fetch

Shows each chat's story results per category over the last N days (7 by
default, 1 to 365): stories, average reach, completion (the share of viewers who
neither left nor swiped on), replies, shares and follows, with the best and the
worst story. Numbers come from Instagram's insights, which Storyline reads
twice in each story's 24 hours (for stories it published, and for stories
marked Posted in a chat that has an Instagram account).

`fetch` reads every story still inside its 24 hours now, and prints what it did.

  --chat ID  Only this chat
  --days N   The last N days (default 7)
  --json     One JSON array of reports instead of text
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsightsArgs {
    Show {
        chat: Option<i64>,
        days: u32,
        json: bool,
    },
    Fetch,
}

/// Parses what follows `insights`.
pub fn parse_insights(
    parser: &mut lexopt::Parser,
    mut config: Option<PathBuf>,
) -> Result<Parsed, UsageError> {
    use lexopt::prelude::*;
    let usage = |e: lexopt::Error| UsageError(e.to_string());
    let mut chat = None;
    let mut days = 7;
    let mut json = false;
    let mut fetch = false;
    let mut options = false;
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Short('c') | Long("config") => {
                config = Some(PathBuf::from(parser.value().map_err(usage)?));
            }
            Short('h') | Long("help") => return Ok(Parsed::Print(INSIGHTS_HELP.to_string())),
            Long("json") => {
                json = true;
                options = true;
            }
            Long("chat") => {
                let value = parser.value().map_err(usage)?;
                let id = super::history::chat_id(&value.to_string_lossy())?;
                if chat.replace(id).is_some() {
                    return Err(UsageError("--chat is given twice".to_string()));
                }
                options = true;
            }
            Long("days") => {
                let value = parser.value().map_err(usage)?;
                let text = value.to_string_lossy();
                days = text
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|d| (1..=insights::MAX_DAYS).contains(d))
                    .ok_or_else(|| {
                        UsageError(format!(
                            "--days {text:?}: give a number of days from 1 to {}",
                            insights::MAX_DAYS
                        ))
                    })?;
                options = true;
            }
            Value(word) if word == "fetch" && !fetch => fetch = true,
            other => return Err(UsageError(other.unexpected().to_string())),
        }
    }
    if fetch && options {
        return Err(UsageError(
            "`insights fetch` takes no --chat, --days or --json".to_string(),
        ));
    }
    let command = if fetch {
        InsightsArgs::Fetch
    } else {
        InsightsArgs::Show { chat, days, json }
    };
    Ok(Parsed::Command {
        config,
        command: Command::Insights(command),
    })
}

pub fn run(config: &Config, args: &InsightsArgs) -> Result<String> {
    match *args {
        InsightsArgs::Show { chat, days, json } => show(config, chat, days, json),
        InsightsArgs::Fetch => fetch(config),
    }
}

fn show(config: &Config, chat: Option<i64>, days: u32, json: bool) -> Result<String> {
    let conn = crate::cli::ops::read_only_copy(&config.storage.database)?;
    let now = crate::clock::now();
    let (since, until) = insights::last_days(now, days);
    let chats = match chat {
        Some(id) if db::chat(&conn, id)?.is_none() => {
            bail!("chat {id} is not in the database (see `storyline chats list`)")
        }
        Some(id) => vec![id],
        None => db::insights::chats_since(&conn, since)?,
    };
    let mut text = String::new();
    let mut reports = Vec::new();
    for chat_id in chats {
        let row = db::chat(&conn, chat_id)?.unwrap_or_else(|| ChatRow::new(chat_id));
        let tz = settings::resolve(&row, &config.defaults).timezone;
        let stories = db::insights::results(&conn, chat_id, since, until)?;
        let report = insights::report(&stories, since, until);
        if json {
            reports.push(serde_json::json!({ "chat_id": chat_id, "report": report }));
            continue;
        }
        text.push_str(&format!("Chat {chat_id} ({}):\n", tz.name()));
        text.push_str(&ui::insights::insights_plain(&report, tz));
        text.push('\n');
    }
    if json {
        return Ok(format!("{}\n", serde_json::Value::Array(reports)));
    }
    if text.is_empty() {
        text.push_str(&format!(
            "No chat has a story with insights in the last {}.\n",
            crate::domain::markup::plural(days, "day", "days")
        ));
    }
    Ok(text)
}

fn fetch(config: &Config) -> Result<String> {
    let conn = db::open(&config.storage.database)?;
    let key = crate::bot::keyfile::read(&config.storage.key_file);
    let graph =
        crate::instagram::Graph::new(&config.instagram.graph_url, &config.instagram.api_url);
    let now = crate::clock::now();
    let pass = crate::bot::insights::run_due(&conn, &graph, key.as_ref(), true, now)?;
    if !pass.out.is_empty() {
        crate::bot::chats::enqueue_all(&conn, &pass.out, now)?;
    }
    Ok(format!(
        "{} inside their 24 hours: {} read, {} matched, {} failed (tried again later), {} closed.\n",
        crate::domain::markup::plural(pass.due, "story", "stories"),
        pass.read,
        pass.matched,
        pass.failed,
        pass.closed
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn parse(args: &[&str]) -> Result<Parsed, UsageError> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        crate::cli::parse_args(args)
    }

    fn command(args: &[&str]) -> Command {
        match parse(args) {
            Ok(Parsed::Command { command, .. }) => command,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn insights_arguments() {
        assert_eq!(
            command(&["insights"]),
            Command::Insights(InsightsArgs::Show {
                chat: None,
                days: 7,
                json: false
            })
        );
        assert_eq!(
            command(&["insights", "--chat", "-100", "--days", "30", "--json"]),
            Command::Insights(InsightsArgs::Show {
                chat: Some(-100),
                days: 30,
                json: true
            })
        );
        assert_eq!(
            command(&["insights", "fetch"]),
            Command::Insights(InsightsArgs::Fetch)
        );
        for bad in [
            &["insights", "--days", "0"][..],
            &["insights", "--days", "366"],
            &["insights", "--days", "x"],
            &["insights", "--chat", "abc"],
            &["insights", "--chat", "0"],
            &["insights", "--chat", "-100", "--chat", "-200"],
            &["insights", "fetch", "--json"],
            &["insights", "fetch", "fetch"],
            &["insights", "other"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(
            matches!(parse(&["insights", "--help"]), Ok(Parsed::Print(text)) if text == INSIGHTS_HELP)
        );
    }
}
