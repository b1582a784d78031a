//! `storyline accounts …` on the command line: its arguments, parsed into an
//! `accounts::AccountsCommand` (the command runs in `accounts`).

use std::ffi::OsString;
use std::path::PathBuf;

use super::{Command, Parsed, UsageError};
use crate::bot::accounts::{
    parse_display_name, parse_expires_in_days, parse_instagram_id, parse_token, parse_username,
    AccountsCommand, NewAccount, TokenSource, ACCOUNTS_HELP, DEFAULT_EXPIRES_IN_DAYS,
};

/// Parses what follows `accounts` on the command line.
pub fn parse_args(
    parser: &mut lexopt::Parser,
    mut config: Option<PathBuf>,
) -> Result<Parsed, UsageError> {
    use lexopt::prelude::*;
    let usage = |e: lexopt::Error| UsageError(e.to_string());
    let mut verb: Option<String> = None;
    let mut id: Option<i64> = None;
    let mut name = None;
    let mut instagram_id = None;
    let mut username = None;
    let mut token = None;
    let mut days = None;
    let mut chat: Option<i64> = None;
    let mut confirmed = false;
    while let Some(arg) = parser.next().map_err(usage)? {
        let adding = verb.as_deref() == Some("add");
        let names_chats = matches!(verb.as_deref(), Some("add" | "share" | "unshare"));
        match arg {
            Short('c') | Long("config") => {
                config = Some(PathBuf::from(parser.value().map_err(usage)?));
            }
            Short('h') | Long("help") => return Ok(Parsed::Print(ACCOUNTS_HELP.to_string())),
            Long(option @ ("name" | "instagram-id" | "username" | "token" | "expires-in-days"))
                if adding =>
            {
                let option = option.to_string();
                let value = option_text(&option, parser.value().map_err(usage)?)?;
                let slot = match option.as_str() {
                    "name" => &mut name,
                    "instagram-id" => &mut instagram_id,
                    "username" => &mut username,
                    "token" => &mut token,
                    _ => &mut days,
                };
                if slot.replace(value).is_some() {
                    return Err(UsageError(format!("--{option} is given twice")));
                }
            }
            Long("chat") if names_chats => {
                let text = option_text("chat", parser.value().map_err(usage)?)?;
                let id = text.trim().parse::<i64>().ok().filter(|id| *id != 0);
                let id = id.ok_or_else(|| {
                    UsageError(format!(
                        "--chat {text:?} is not a chat id (a number like 4242 or -1001234567890)"
                    ))
                })?;
                if chat.replace(id).is_some() {
                    return Err(UsageError("--chat is given twice".to_string()));
                }
            }
            Long("yes") if verb.as_deref() == Some("forget-tokens") => confirmed = true,
            Value(word) if verb.is_none() => {
                let word = word.to_string_lossy().into_owned();
                if ![
                    "add",
                    "list",
                    "deactivate",
                    "share",
                    "unshare",
                    "forget-tokens",
                ]
                .contains(&word.as_str())
                {
                    return Err(UsageError(format!(
                        "unknown accounts command {word:?} (expected add, list, deactivate, share, unshare or forget-tokens)"
                    )));
                }
                verb = Some(word);
            }
            Value(word)
                if matches!(verb.as_deref(), Some("deactivate" | "share" | "unshare"))
                    && id.is_none() =>
            {
                let text = word.to_string_lossy();
                id = Some(text.parse().ok().filter(|id| *id > 0).ok_or_else(|| {
                    UsageError(format!(
                        "{text:?} is not an account id (see `storyline accounts list`)"
                    ))
                })?);
            }
            other => return Err(UsageError(other.unexpected().to_string())),
        }
    }
    let command = match verb.as_deref() {
        Some("list") => AccountsCommand::List,
        Some("forget-tokens") if confirmed => AccountsCommand::ForgetTokens,
        Some("forget-tokens") => {
            return Err(UsageError(
                "accounts forget-tokens removes every sealed Instagram token for good; \
                 add --yes to do it"
                    .to_string(),
            ))
        }
        Some("deactivate") => AccountsCommand::Deactivate {
            id: id.ok_or_else(|| UsageError("accounts deactivate needs an account id".into()))?,
        },
        Some(verb @ ("share" | "unshare")) => {
            let id =
                id.ok_or_else(|| UsageError(format!("accounts {verb} needs an account id")))?;
            let chat = chat.ok_or_else(|| {
                UsageError(format!(
                    "accounts {verb} needs --chat CHAT, the id of the chat (as /status or \
                     `storyline queue` shows it)"
                ))
            })?;
            if verb == "share" {
                AccountsCommand::Share { id, chat }
            } else {
                AccountsCommand::Unshare { id, chat }
            }
        }
        Some(_) => {
            let missing: Vec<&str> = [
                ("--name", name.is_none()),
                ("--instagram-id", instagram_id.is_none()),
                ("--username", username.is_none()),
                ("--token", token.is_none()),
            ]
            .into_iter()
            .filter_map(|(option, absent)| absent.then_some(option))
            .collect();
            if !missing.is_empty() {
                return Err(UsageError(format!(
                    "accounts add needs {}",
                    missing.join(", ")
                )));
            }
            let bad = |e: String| UsageError(e);
            let token = token.unwrap_or_default();
            AccountsCommand::Add(NewAccount {
                display_name: parse_display_name(&name.unwrap_or_default()).map_err(bad)?,
                instagram_user_id: parse_instagram_id(&instagram_id.unwrap_or_default())
                    .map_err(bad)?,
                username: parse_username(&username.unwrap_or_default()).map_err(bad)?,
                token: if token == "-" {
                    TokenSource::Stdin
                } else {
                    TokenSource::Given(parse_token(&token).map_err(bad)?)
                },
                expires_in_days: match days {
                    Some(days) => parse_expires_in_days(&days).map_err(bad)?,
                    None => DEFAULT_EXPIRES_IN_DAYS,
                },
                chat,
            })
        }
        None => {
            return Err(UsageError(
                "use `accounts add`, `accounts list` or `accounts deactivate ID`".to_string(),
            ))
        }
    };
    Ok(Parsed::Command {
        config,
        command: Command::Accounts(command),
    })
}

fn option_text(option: &str, value: OsString) -> Result<String, UsageError> {
    value
        .into_string()
        .map_err(|_| UsageError(format!("--{option} is not valid UTF-8")))
}
