//! Part `cli/`: every command but `run` (which is `runtime`'s) — argv, help,
//! `accounts`, `backup`, `doctor` (`ops`), `scan`, `plan`. Commands return an exit
//! code; nothing here runs in the daemon.
//!
//! The command line: `storyline [--config PATH] [COMMAND]` parsed with lexopt
//! into a `Command` (the help texts live here too), and the small commands;
//! `dispatch` runs a parsed command and gives its exit code.

mod accounts;
pub mod dispatch;
pub mod health;
pub mod history;
pub mod insights;
pub mod ops;
pub mod settings_file;

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;

use crate::config::{self, Config};
use crate::domain::markup::plural;

pub const USAGE: &str = "\
storyline — Instagram Stories scheduler driven from Telegram

Usage: storyline [--config PATH] [COMMAND]

Commands:
  run                  Run the bot (the default)
  check                Validate the configuration and print it, secrets masked
  migrate              Apply database migrations and exit
  scan                 Scan the media folder now and print what changed
  queue [--chat ID]    The next slots of each chat and their stories
  plan [--days N] [--chat ID]
                       Preview the schedule (works without a bot token)
  categories show|set [--chat ID] [NAME=WEIGHT ...]
                       Show or set a chat's category mix
  accounts add|list|deactivate
                       Manage Instagram accounts and their tokens
  history [--chat ID] [--settings|--posts] [--since DATE] [--json]
                       Settings changes and story outcomes, newest first
  insights [--chat ID] [--days N] [--json] | insights fetch
                       Story results per category; read insights now
  settings show --chat ID [--at TIME]
                       A chat's settings, now or as they were at TIME
  settings export|import [--chat ID] [FILE] [--dry-run]
                       Print a chat's settings file, or import one
  backup PATH [--force]
                       Copy the live database to PATH and check the copy
  doctor [--fix]       Check config, database, key file, media, Telegram, ...
  runs [--since DATE] [--json]
                       The background runs recorded: scans, publishes, ...
  chats list|disable|enable ID
                       List the chats; switch one off or on again

Options:
  -c, --config PATH  Configuration file (default: ./storyline.toml, then
                     /etc/storyline/storyline.toml)
  -h, --help         Show help (also after a command)
  -V, --version      Show the version
";

const RUN_HELP: &str = "\
Usage: storyline [--config PATH] run

Runs the bot: polls Telegram, answers commands in the allowed chats.
Needs telegram.bot_token in the config or STORYLINE_TELEGRAM_BOT_TOKEN.
With no admin and no chat yet, prints a one-time pairing code: send
/start CODE to the bot within the hour and you become its admin.
Stops cleanly on SIGTERM or SIGINT.
";

const CHECK_HELP: &str = "\
Usage: storyline [--config PATH] check

Validates the configuration and prints every resolved key; secrets are masked.
Then lists the admins and served chats, configured or paired, or says that
pairing is pending (the database is only read). Exit code 0 when valid, 2 when
not (a bot token that cannot be one is not valid).
";

const MIGRATE_HELP: &str = "\
Usage: storyline [--config PATH] migrate

Creates the database if needed, applies pending migrations and exits.
";

const SCAN_HELP: &str = "\
Usage: storyline [--config PATH] scan

Scans the media folder (top-level folders are categories), hashing new and
changed files, and prints what changed. Shows progress on a terminal.
";

const QUEUE_HELP: &str = "\
Usage: storyline [--config PATH] queue [--chat ID]

Prints the next slots of each served chat (or of one) with their stories.
";

const PLAN_HELP: &str = "\
Usage: storyline [--config PATH] plan [--days N] [--chat ID]

Previews the schedule for the next N days (default 3, at most 14): slot times
and the stories planning would pick. Scans the media folder first. Works
without a bot token; with no chat set up yet it previews a new chat with
[defaults]. A preview only: the database is read, never created or changed.
";

const CATEGORIES_HELP: &str = "\
Usage: storyline [--config PATH] categories show [--chat ID]
       storyline [--config PATH] categories set [--chat ID] NAME=WEIGHT...
       storyline [--config PATH] categories set [--chat ID] reset

Shows or sets a chat's category mix: relative weights per category folder
(quotes=50 products=50); a category left out is not posted; `reset` makes
every category alike. --chat is needed when more than one chat is served.
";

const BACKUP_HELP: &str = "\
Usage: storyline [--config PATH] backup PATH [--force]

Copies the database with SQLite's online backup (safe while the bot runs), runs
integrity_check on the copy and keeps it, mode 0600, as PATH (or in PATH, named
storyline-DATE-TIME.db, when PATH is a folder). An existing file is only
replaced with --force. Back up the key file (storage.key_file) with it.
";

const DOCTOR_HELP: &str = "\
Usage: storyline [--config PATH] doctor [--fix]

Checks the configuration (and warns when it holds a secret others can read),
the database (opens, migrations current), who the admins and served chats are
(or that pairing is pending), the key file (32 bytes, mode 0600), the media
folder, Telegram (a token, getMe with it, and no webhook blocking polling), the
public URL and the Instagram app settings; prints one line for each with what to
do. Reads secrets from the `env` file beside the configuration too, as the
systemd unit does. Exit code 0 when nothing failed, 1 otherwise.

  --fix   Remove a webhook set on the bot token (Telegram refuses polling while
          one is set); the updates Telegram holds are kept.
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run,
    Check,
    Migrate,
    Scan,
    Queue {
        chat: Option<i64>,
    },
    Plan {
        days: u32,
        chat: Option<i64>,
    },
    CategoriesShow {
        chat: Option<i64>,
    },
    CategoriesSet {
        chat: Option<i64>,
        mix: String,
    },
    Backup {
        path: PathBuf,
        force: bool,
    },
    Doctor {
        fix: bool,
    },
    Accounts(crate::bot::accounts::AccountsCommand),
    Runs {
        since: Option<chrono::DateTime<chrono::Utc>>,
        json: bool,
    },
    Chats(health::ChatsCommand),
    History(history::HistoryArgs),
    Insights(insights::InsightsArgs),
    SettingsShow {
        chat: i64,
        at: Option<history::Moment>,
    },
    Settings(settings_file::SettingsCommand),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Command {
        config: Option<PathBuf>,
        command: Command,
    },
    /// Text to print to stdout, then exit 0.
    Print(String),
}

/// The help of a command by name; the overview for none or an unknown one.
fn help_text(command: Option<&str>) -> &'static str {
    match command {
        Some("run") => RUN_HELP,
        Some("check") => CHECK_HELP,
        Some("migrate") => MIGRATE_HELP,
        Some("scan") => SCAN_HELP,
        Some("queue") => QUEUE_HELP,
        Some("plan") => PLAN_HELP,
        Some("categories") => CATEGORIES_HELP,
        Some("backup") => BACKUP_HELP,
        Some("doctor") => DOCTOR_HELP,
        Some("accounts") => crate::bot::accounts::ACCOUNTS_HELP,
        Some("runs") => health::RUNS_HELP,
        Some("chats") => health::CHATS_HELP,
        Some("history") => history::HISTORY_HELP,
        Some("insights") => insights::INSIGHTS_HELP,
        Some("settings") => SETTINGS_HELP,
        _ => USAGE,
    }
}

/// The help to show after a usage error in `args`: the command's own when the
/// arguments name one (`accounts add` with a bad option shows the accounts help,
/// not the overview of every command).
pub fn help_after_error(args: &[OsString]) -> &'static str {
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.to_str() {
            Some("-c" | "--config") => {
                words.next();
            }
            Some(option) if option.starts_with('-') => {}
            Some(command) => return help_text(Some(command)),
            None => break,
        }
    }
    USAGE
}

/// A usage error; main prints it with the command's help and exits 2.
#[derive(Debug)]
pub struct UsageError(pub String);

pub const SETTINGS_HELP: &str = "\
Usage: storyline [--config PATH] settings show --chat ID [--at TIME]
       storyline [--config PATH] settings export [--chat ID]
       storyline [--config PATH] settings import [--chat ID] FILE [--dry-run]

show    Prints a chat's settings as they were at TIME, read from the settings history
        (each version is valid from its change until the next), with who made that
        version and why; without --at, the current ones. TIME is YYYY-MM-DD
        (midnight), YYYY-MM-DDTHH:MM[:SS] in the chat's time zone, or an RFC 3339
        time such as 2026-01-05T12:00:00Z.

export  Prints the chat's settings file (JSON, as /settings export sends it):
        settings, lock lengths, category mix and the chosen Instagram account
        by username; never a token.
import  Reads FILE (such a file; fields left out keep their value), checks
        it as the /settings menu checks its values, prints what changes
        (old -> new) and applies it as one settings version (reason
        \"import (CLI)\"). A bad file changes nothing and names the field.
        --dry-run only prints the differences.

--chat is needed when more than one chat is served. Exit code 2 when the file
is refused.
";

/// `storyline settings show|export|import …`: the verb picks the command.
fn parse_settings(
    parser: &mut lexopt::Parser,
    mut config: Option<PathBuf>,
) -> Result<Parsed, UsageError> {
    use lexopt::prelude::*;
    let usage = |e: lexopt::Error| UsageError(e.to_string());
    loop {
        match parser.next().map_err(usage)? {
            Some(Short('c') | Long("config")) => {
                config = Some(PathBuf::from(parser.value().map_err(usage)?));
            }
            Some(Short('h') | Long("help")) => return Ok(Parsed::Print(SETTINGS_HELP.to_string())),
            Some(Value(word)) => {
                let verb = word.to_string_lossy().into_owned();
                return match verb.as_str() {
                    "show" => history::parse_settings(parser, config),
                    "export" => settings_file::parse_args(parser, config, false),
                    "import" => settings_file::parse_args(parser, config, true),
                    _ => Err(UsageError(format!(
                        "unknown settings command {verb:?} (expected show, export or import)"
                    ))),
                };
            }
            Some(other) => return Err(UsageError(other.unexpected().to_string())),
            None => {
                return Err(UsageError(
                    "settings needs a command: show, export or import".to_string(),
                ))
            }
        }
    }
}

pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, UsageError> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut config = None;
    let mut command: Option<String> = None;
    let usage = |e: lexopt::Error| UsageError(e.to_string());
    let mut chat: Option<i64> = None;
    let mut days: Option<u32> = None;
    let mut words: Vec<String> = Vec::new();
    let mut backup_path: Option<PathBuf> = None;
    let mut force = false;
    let mut fix = false;
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Short('c') | Long("config") => {
                config = Some(PathBuf::from(parser.value().map_err(usage)?));
            }
            Short('h') | Long("help") => {
                return Ok(Parsed::Print(help_text(command.as_deref()).to_string()));
            }
            Short('V') | Long("version") => {
                return Ok(Parsed::Print(format!(
                    "storyline {}\n",
                    env!("CARGO_PKG_VERSION")
                )));
            }
            Long("chat") if matches!(command.as_deref(), Some("queue" | "plan" | "categories")) => {
                let value = parser.value().map_err(usage)?;
                let text = value.to_string_lossy();
                chat = Some(
                    text.parse()
                        .map_err(|_| UsageError(format!("--chat {text:?} is not a chat id")))?,
                );
            }
            Long("days") if command.as_deref() == Some("plan") => {
                let value = parser.value().map_err(usage)?;
                let text = value.to_string_lossy();
                days = Some(
                    text.parse::<u32>()
                        .ok()
                        .filter(|d| (1..=14).contains(d))
                        .ok_or_else(|| {
                            UsageError(format!(
                                "--days {text:?}: give a number of days from 1 to 14"
                            ))
                        })?,
                );
            }
            Value(word) if command.is_none() && word == "accounts" => {
                return accounts::parse_args(&mut parser, config);
            }
            Value(word) if command.is_none() && word == "runs" => {
                return health::parse_runs(&mut parser, config);
            }
            Value(word) if command.is_none() && word == "chats" => {
                return health::parse_chats(&mut parser, config);
            }
            Value(word) if command.is_none() && word == "history" => {
                return history::parse_history(&mut parser, config);
            }
            Value(word) if command.is_none() && word == "insights" => {
                return insights::parse_insights(&mut parser, config);
            }
            Value(word) if command.is_none() && word == "settings" => {
                return parse_settings(&mut parser, config);
            }
            // `storyline help [COMMAND]`, as people type it.
            Value(word) if command.is_none() && word == "help" => {
                let topic = parser.values().ok().and_then(|mut v| v.next());
                let topic = topic.as_ref().and_then(|t| t.to_str());
                return Ok(Parsed::Print(help_text(topic).to_string()));
            }
            Long("force") if command.as_deref() == Some("backup") => force = true,
            Long("fix") if command.as_deref() == Some("doctor") => fix = true,
            Value(path) if command.as_deref() == Some("backup") && backup_path.is_none() => {
                backup_path = Some(PathBuf::from(path));
            }
            Value(word) if command.is_none() => {
                let word = word.to_string_lossy().into_owned();
                if ![
                    "run",
                    "check",
                    "migrate",
                    "scan",
                    "queue",
                    "plan",
                    "categories",
                    "backup",
                    "doctor",
                ]
                .contains(&word.as_str())
                {
                    return Err(UsageError(format!(
                        "unknown command {word:?} (expected run, check, migrate, scan, queue, plan, categories, accounts, history, settings, backup, doctor, runs or chats)"
                    )));
                }
                command = Some(word);
            }
            Value(word) if command.as_deref() == Some("categories") => {
                words.push(word.to_string_lossy().into_owned());
            }
            other => return Err(UsageError(other.unexpected().to_string())),
        }
    }
    let command = match command.as_deref() {
        None | Some("run") => Command::Run,
        Some("check") => Command::Check,
        Some("migrate") => Command::Migrate,
        Some("scan") => Command::Scan,
        Some("queue") => Command::Queue { chat },
        Some("backup") => Command::Backup {
            path: backup_path.ok_or_else(|| {
                UsageError("backup needs a PATH to write the copy to".to_string())
            })?,
            force,
        },
        Some("doctor") => Command::Doctor { fix },
        Some("plan") => Command::Plan {
            days: days.unwrap_or(3),
            chat,
        },
        Some(_) => match words.split_first() {
            Some((verb, rest)) if verb == "show" && rest.is_empty() => {
                Command::CategoriesShow { chat }
            }
            Some((verb, rest)) if verb == "set" && !rest.is_empty() => Command::CategoriesSet {
                chat,
                mix: rest.join(" "),
            },
            _ => {
                return Err(UsageError(
                    "use `categories show` or `categories set NAME=WEIGHT...`".to_string(),
                ))
            }
        },
    };
    Ok(Parsed::Command { config, command })
}
/// `storyline check`: the resolved configuration with secrets masked, then who
/// the bot answers to (read from the database, which is neither created nor
/// changed).
pub fn check(config: &Config) -> String {
    let mut text = config.render_masked();
    if config.telegram.bot_token.is_none() {
        text.push_str(
            "\n# Note: no bot token; `storyline run` needs telegram.bot_token or STORYLINE_TELEGRAM_BOT_TOKEN.\n",
        );
    }
    let access = crate::cli::ops::read_only_copy(&config.storage.database)
        .and_then(|conn| crate::bot::pairing::Access::read(&conn, config, chrono::Utc::now()));
    text.push_str("\n# Access\n");
    match access {
        Ok(access) => {
            for line in access.lines() {
                text.push_str(&format!("# {line}\n"));
            }
        }
        Err(e) => text.push_str(&format!("# could not read the database: {e:#}\n")),
    }
    text
}

/// `storyline scan`: scans, brings every chat's view up to date, returns the
/// summary with what is not posted and why.
pub fn scan(config: &Config) -> Result<String> {
    let report = crate::media::run_scan_command(config)?;
    let conn = crate::db::open(&config.storage.database)?;
    crate::db::queue::sync_content(&conn, &report.touched_content)?;
    Ok(crate::domain::ui::scan_text(
        &report.summary(),
        &report.unsupported,
        &report.broken,
    ))
}

/// The chat a command is about: the one given, else the only served chat.
fn pick_chat(
    conn: &mut rusqlite::Connection,
    config: &Config,
    chat: Option<i64>,
) -> Result<Vec<(i64, crate::domain::settings::ChatSettings)>> {
    crate::bot::add_allowed_chats(conn, config, chrono::Utc::now())?;
    let served = crate::bot::posting::served_chats(conn, config)?;
    match chat {
        Some(id) => match served.into_iter().find(|(c, _)| *c == id) {
            Some(found) => Ok(vec![found]),
            None => anyhow::bail!(
                "chat {id} is not served (not in allowed_chat_ids and not set up with /start)"
            ),
        },
        None => Ok(served),
    }
}

/// `storyline queue`: every served chat's next slots.
pub fn queue(config: &Config, chat: Option<i64>) -> Result<String> {
    let mut conn = crate::db::open(&config.storage.database)?;
    let mut text = String::new();
    let chats = pick_chat(&mut conn, config, chat)?;
    if chats.is_empty() {
        text.push_str("No chat is served yet: add one to [access] allowed_chat_ids, or /start the bot as an admin.\n");
    }
    for (chat_id, s) in chats {
        text.push_str(&format!("Chat {chat_id} ({}):\n", s.timezone.name()));
        let lines = crate::bot::posting::queue_lines(&conn, chat_id, &s, 50)?;
        if lines.is_empty() {
            text.push_str("  nothing queued\n");
        }
        for line in lines {
            text.push_str(&format!("  {}\n", strip_html(&line)));
        }
    }
    Ok(text)
}

/// `storyline plan`: the schedule preview, after a scan. A preview only: it
/// plans in a copy of the database in memory, so the file is neither created
/// nor changed.
pub fn plan(config: &Config, days: u32, chat: Option<i64>) -> Result<String> {
    let mut conn = crate::cli::ops::read_only_copy(&config.storage.database)?;
    let report = crate::media::scan_showing_progress(&mut conn, &config.media.dir)?;
    crate::db::queue::sync_content(&conn, &report.touched_content)?;
    let mut text = format!(
        "Media: {}\n",
        report.summary().lines().next().unwrap_or_default()
    );
    let now = chrono::Utc::now();
    let chats = pick_chat(&mut conn, config, chat)?;
    let targets: Vec<(Option<i64>, crate::domain::settings::ChatSettings)> = if chats.is_empty() {
        text.push_str(
            "No chat is set up yet; this is what a new chat with [defaults] would get.\n",
        );
        let row = crate::domain::settings::ChatRow::new(0);
        vec![(
            None,
            crate::domain::settings::resolve(&row, &config.defaults),
        )]
    } else {
        chats.into_iter().map(|(id, s)| (Some(id), s)).collect()
    };
    for (chat_id, s) in targets {
        let weights = match chat_id {
            Some(id) => crate::db::queue::category_weights(&conn, id)?,
            None => Default::default(),
        };
        if let Some(id) = chat_id {
            text.push_str(&format!(
                "\nChat {id}, {}:\n",
                plural(s.posts_per_day, "post a day", "posts a day")
            ));
        }
        let days = crate::bot::posting::preview(&conn, chat_id, &s, &weights, now, days)?;
        text.push_str(&strip_html(&crate::domain::ui::schedule_text(
            &days,
            s.timezone,
            s.is_paused,
        )));
        text.push('\n');
    }
    Ok(text)
}

/// The one chat a command is about: `chat`, or the only served chat; else says
/// which chats there are to choose from.
fn one_chat(conn: &mut rusqlite::Connection, config: &Config, chat: Option<i64>) -> Result<i64> {
    let chats = pick_chat(conn, config, chat)?;
    match chats.as_slice() {
        [(chat_id, _)] => Ok(*chat_id),
        [] => anyhow::bail!("no chat is served yet"),
        _ => anyhow::bail!(
            "{} chats are served; say which with --chat ({})",
            chats.len(),
            chats
                .iter()
                .map(|(id, _)| id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `storyline categories show|set`.
pub fn categories(config: &Config, chat: Option<i64>, mix: Option<&str>) -> Result<String> {
    let mut conn = crate::db::open(&config.storage.database)?;
    let chat_id = one_chat(&mut conn, config, chat)?;
    let present = crate::db::media::active_categories(&conn)?;
    if let Some(mix) = mix {
        let known: Vec<String> = present.iter().map(|(c, _)| c.clone()).collect();
        let weights =
            crate::domain::picker::parse_mix(mix, &known).map_err(|e| anyhow::anyhow!(e))?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // The operator on the command line: by nobody in the chat, reason "CLI".
        crate::bot::settings_file::set_mix(
            &tx,
            config,
            chat_id,
            weights,
            None,
            crate::bot::settings_file::CLI_REASON,
            crate::clock::now(),
        )?;
        tx.commit()?;
    }
    let weights = crate::db::queue::category_weights(&conn, chat_id)?;
    let mut text = format!(
        "Chat {chat_id}: {}\n",
        crate::domain::picker::format_mix(&weights)
    );
    for (category, count) in present {
        text.push_str(&format!(
            "  {category}: {}\n",
            plural(count, "item", "items")
        ));
    }
    Ok(text)
}

/// Telegram HTML to plain text for the terminal.
fn strip_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// `storyline migrate`: returns what it applied.
pub fn migrate(config: &Config) -> Result<Vec<String>> {
    let mut conn = crate::db::open_without_migrating(&config.storage.database)?;
    crate::db::migrate(&mut conn)
}

pub fn load_config(explicit: Option<&std::path::Path>) -> Result<Config, config::ConfigError> {
    let path = config::locate(explicit)?;
    config::load(&path, &|key| std::env::var(key).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, UsageError> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn arguments() {
        assert_eq!(
            parse(&[]).unwrap(),
            Parsed::Command {
                config: None,
                command: Command::Run
            }
        );
        assert_eq!(
            parse(&["--config", "/x.toml", "check"]).unwrap(),
            Parsed::Command {
                config: Some("/x.toml".into()),
                command: Command::Check
            }
        );
        assert_eq!(
            parse(&["migrate", "-c", "y.toml"]).unwrap(),
            Parsed::Command {
                config: Some("y.toml".into()),
                command: Command::Migrate
            }
        );
        assert_eq!(
            parse(&["check", "--help"]).unwrap(),
            Parsed::Print(CHECK_HELP.into())
        );
        assert!(parse(&["frobnicate"]).is_err());
        assert!(parse(&["run", "extra"]).is_err());
        assert_eq!(
            parse(&["plan", "--days", "7"]).unwrap(),
            Parsed::Command {
                config: None,
                command: Command::Plan {
                    days: 7,
                    chat: None
                }
            }
        );
        assert!(parse(&["plan", "--days", "0"]).is_err());
        assert!(parse(&["plan", "--days", "15"]).is_err());
        assert!(parse(&["queue", "--chat", "x"]).is_err());
        assert!(parse(&["run", "--chat", "5"]).is_err());
        assert_eq!(
            parse(&[
                "categories",
                "set",
                "--chat",
                "-5",
                "quotes=50",
                "products=50"
            ])
            .unwrap(),
            Parsed::Command {
                config: None,
                command: Command::CategoriesSet {
                    chat: Some(-5),
                    mix: "quotes=50 products=50".into()
                }
            }
        );
        assert!(parse(&["categories", "set"]).is_err());
        assert_eq!(
            parse(&["backup", "/mnt/usb/s.db", "--force"]).unwrap(),
            Parsed::Command {
                config: None,
                command: Command::Backup {
                    path: "/mnt/usb/s.db".into(),
                    force: true
                }
            }
        );
        assert!(parse(&["backup"]).is_err());
        assert!(parse(&["backup", "a", "b"]).is_err());
        assert!(parse(&["doctor", "--force"]).is_err());
        assert_eq!(
            parse(&["doctor", "--fix"]).unwrap(),
            Parsed::Command {
                config: None,
                command: Command::Doctor { fix: true }
            }
        );
        assert!(parse(&["backup", "x", "--fix"]).is_err());
        assert_eq!(
            parse(&["doctor", "--help"]).unwrap(),
            Parsed::Print(DOCTOR_HELP.into())
        );
        assert!(parse(&["categories", "frob"]).is_err());
        assert!(parse(&["--config"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}
