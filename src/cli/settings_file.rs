//! `storyline settings export|import` on the command line: a chat's settings
//! file to stdout, and a file read, its differences printed and (unless
//! `--dry-run`) applied as one settings version with the reason "import (CLI)".
//! Planning and applying are `bot::settings_file`'s, as for the bot's import.

use super::SETTINGS_HELP;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::{Command, Parsed, UsageError};
use crate::bot::settings_file::{self, CLI_IMPORT_REASON};
use crate::config::Config;
use crate::domain::markup::plural;
use crate::domain::settings_file::MAX_FILE_BYTES;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsCommand {
    Export {
        chat: Option<i64>,
    },
    Import {
        chat: Option<i64>,
        file: PathBuf,
        dry_run: bool,
    },
}

/// A file the import refuses (exit code 2, like a bad argument).
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Parses what follows `settings` on the command line.
/// `settings export|import …`, after `super::parse_settings` read the verb.
pub fn parse_args(
    parser: &mut lexopt::Parser,
    mut config: Option<PathBuf>,
    import: bool,
) -> Result<Parsed, UsageError> {
    use lexopt::prelude::*;
    let usage = |e: lexopt::Error| UsageError(e.to_string());
    let mut chat: Option<i64> = None;
    let mut file: Option<PathBuf> = None;
    let mut dry_run = false;
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Short('c') | Long("config") => {
                config = Some(PathBuf::from(parser.value().map_err(usage)?));
            }
            Short('h') | Long("help") => return Ok(Parsed::Print(SETTINGS_HELP.to_string())),
            Long("chat") => {
                let value = parser.value().map_err(usage)?;
                let text = value.to_string_lossy();
                let id = text.trim().parse::<i64>().ok().filter(|id| *id != 0);
                let id =
                    id.ok_or_else(|| UsageError(format!("--chat {text:?} is not a chat id")))?;
                if chat.replace(id).is_some() {
                    return Err(UsageError("--chat is given twice".to_string()));
                }
            }
            Long("dry-run") if import => dry_run = true,
            Value(path) if import && file.is_none() => {
                file = Some(PathBuf::from(path));
            }
            other => return Err(UsageError(other.unexpected().to_string())),
        }
    }
    let command = if import {
        SettingsCommand::Import {
            chat,
            file: file
                .ok_or_else(|| UsageError("settings import needs the FILE to read".to_string()))?,
            dry_run,
        }
    } else {
        SettingsCommand::Export { chat }
    };
    Ok(Parsed::Command {
        config,
        command: Command::Settings(command),
    })
}

/// Runs `settings export|import`; returns what to print.
pub fn run(config: &Config, command: &SettingsCommand) -> Result<String> {
    let mut conn = crate::db::open(&config.storage.database)?;
    let now = crate::clock::now();
    match command {
        SettingsCommand::Export { chat } => {
            let chat_id = super::one_chat(&mut conn, config, *chat)?;
            settings_file::export_text(&conn, config, chat_id, now)
        }
        SettingsCommand::Import {
            chat,
            file,
            dry_run,
        } => {
            let text = read_file(file)?;
            let chat_id = super::one_chat(&mut conn, config, *chat)?;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let plan = match settings_file::plan(&tx, config, chat_id, &text, None, now)? {
                Ok(plan) => plan,
                Err(refusal) => {
                    return Err(Refused(format!(
                        "{}: {refusal}; nothing was changed",
                        file.display()
                    ))
                    .into())
                }
            };
            if plan.is_empty() {
                return Ok(format!(
                    "Chat {chat_id}: the file holds the chat's current settings; nothing to change."
                ));
            }
            let mut out = format!(
                "Chat {chat_id}: {} {}:\n",
                plural(plan.differences.len(), "setting", "settings"),
                if *dry_run { "would change" } else { "changed" }
            );
            for d in &plan.differences {
                out.push_str(&format!("  {}: {} -> {}\n", d.label, d.old, d.new));
            }
            if *dry_run {
                out.push_str("Dry run: nothing was changed.\n");
                return Ok(out);
            }
            settings_file::apply(&tx, config, chat_id, &plan, None, CLI_IMPORT_REASON, now)?;
            tx.commit()?;
            Ok(out)
        }
    }
}

/// The file's text, refused when it cannot be a settings file.
fn read_file(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: reading", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Refused(format!(
            "{}: file: is larger than {} KB; nothing was changed",
            path.display(),
            MAX_FILE_BYTES / 1024
        ))
        .into());
    }
    String::from_utf8(bytes).map_err(|_| {
        Refused(format!(
            "{}: file: is not text (UTF-8), so not a settings file; nothing was changed",
            path.display()
        ))
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn parse(args: &[&str]) -> Result<Parsed, UsageError> {
        crate::cli::parse_args(args.iter().map(OsString::from))
    }

    fn command(args: &[&str]) -> SettingsCommand {
        match parse(args) {
            Ok(Parsed::Command {
                command: Command::Settings(c),
                ..
            }) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn arguments() {
        assert_eq!(
            command(&["settings", "export", "--chat", "-100"]),
            SettingsCommand::Export { chat: Some(-100) }
        );
        assert_eq!(
            command(&[
                "-c",
                "s.toml",
                "settings",
                "import",
                "--chat",
                "5",
                "f.json",
                "--dry-run"
            ]),
            SettingsCommand::Import {
                chat: Some(5),
                file: "f.json".into(),
                dry_run: true
            }
        );
        assert_eq!(
            command(&["settings", "import", "f.json"]),
            SettingsCommand::Import {
                chat: None,
                file: "f.json".into(),
                dry_run: false
            }
        );
        for bad in [
            &["settings"][..],
            &["settings", "show"],
            &["settings", "import"],
            &["settings", "export", "--dry-run"],
            &["settings", "import", "a", "b"],
            &["settings", "export", "--chat", "x"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse(&["settings", "--help"]).unwrap(),
            Parsed::Print(SETTINGS_HELP.into())
        );
    }
}
