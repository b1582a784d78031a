//! The command line: `storyline [--config PATH] [run|check|migrate]`, parsed with
//! lexopt into a `Command`, and the three commands of this foundation.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;

use crate::config::{self, Config};

pub const USAGE: &str = "\
storyline — Instagram Stories scheduler driven from Telegram

Usage: storyline [--config PATH] [COMMAND]

Commands:
  run       Run the bot (the default)
  check     Validate the configuration and print it, secrets masked
  migrate   Apply database migrations and exit

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
Stops cleanly on SIGTERM or SIGINT.
";

const CHECK_HELP: &str = "\
Usage: storyline [--config PATH] check

Validates the configuration and prints every resolved key; secrets are masked.
Exit code 0 when valid, 2 when not.
";

const MIGRATE_HELP: &str = "\
Usage: storyline [--config PATH] migrate

Creates the database if needed, applies pending migrations and exits.
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Run,
    Check,
    Migrate,
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

/// A usage error; main prints it with the usage hint and exits 2.
#[derive(Debug)]
pub struct UsageError(pub String);

pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, UsageError> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut config = None;
    let mut command = None;
    let usage = |e: lexopt::Error| UsageError(e.to_string());
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Short('c') | Long("config") => {
                config = Some(PathBuf::from(parser.value().map_err(usage)?));
            }
            Short('h') | Long("help") => {
                let text = match command {
                    Some(Command::Run) => RUN_HELP,
                    Some(Command::Check) => CHECK_HELP,
                    Some(Command::Migrate) => MIGRATE_HELP,
                    None => USAGE,
                };
                return Ok(Parsed::Print(text.to_string()));
            }
            Short('V') | Long("version") => {
                return Ok(Parsed::Print(format!(
                    "storyline {}\n",
                    env!("CARGO_PKG_VERSION")
                )));
            }
            Value(word) if command.is_none() => {
                command = Some(match word.to_str() {
                    Some("run") => Command::Run,
                    Some("check") => Command::Check,
                    Some("migrate") => Command::Migrate,
                    _ => {
                        return Err(UsageError(format!(
                            "unknown command {:?} (expected run, check or migrate)",
                            word.to_string_lossy()
                        )))
                    }
                });
            }
            other => return Err(UsageError(other.unexpected().to_string())),
        }
    }
    Ok(Parsed::Command {
        config,
        command: command.unwrap_or(Command::Run),
    })
}

/// `storyline check`: the resolved configuration with secrets masked.
pub fn check(config: &Config) -> String {
    let mut text = config.render_masked();
    if config.telegram.bot_token.is_none() {
        text.push_str(
            "\n# Note: no bot token; `storyline run` needs telegram.bot_token or STORYLINE_TELEGRAM_BOT_TOKEN.\n",
        );
    }
    text
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
        assert!(parse(&["--config"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}
