//! Instagram accounts and their tokens: which chats may use an account (the
//! chat that connected it, those it is shared with, or every chat for one the
//! operator added without a chat), which account a chat posts to, whether its
//! token is usable, keeping tokens fresh, and the `storyline accounts` command
//! line.
//!
//! Tokens are stored only sealed (`crypto`) under the key file. A missing or
//! different key never crashes anything: the affected accounts read as
//! "reconnect needed". No function here logs, prints or returns a token in an
//! error; the one place a token leaves the process is `GraphRefresh::refresh`.

use std::fmt;
use std::io::Read;

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use log::{info, warn};
use rusqlite::{Connection, TransactionBehavior};

use crate::bot::keyfile;
use crate::config::{Config, Secret};
use crate::crypto::{self, KEY_LEN};
use crate::db;
use crate::domain::markup::plural;

pub use crate::db::accounts::Account;

/// What the command line gives a new token when `--expires-in-days` is left out:
/// Instagram's long-lived tokens last 60 days.
pub const DEFAULT_EXPIRES_IN_DAYS: u32 = 60;
/// A token is refreshed when less than this is left...
const REFRESH_WHEN_LEFT: chrono::TimeDelta = chrono::TimeDelta::days(7);
/// ...and it is older than this (Instagram refuses to refresh younger tokens).
const REFRESH_MIN_AGE: chrono::TimeDelta = chrono::TimeDelta::hours(24);
const SECONDS_PER_DAY: i64 = 86_400;

// ---- which account a chat uses ------------------------------------------------------

/// The account a chat posts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountChoice {
    Account(Account),
    /// Several active accounts and the chat has not picked one (or picked one
    /// that was since deactivated): the chat must choose among these.
    NeedsChoice(Vec<Account>),
    /// No active account at all.
    None,
}

/// Who an account is for, when it is added or connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Added on the command line without `--chat`: every chat may use it.
    Operator,
    /// Connected in this chat (or added with `--chat`): it is the chat's, and
    /// other chats get it only when an admin shares it.
    Chat(i64),
}

/// The account, if it is active and the chat may use it.
pub fn usable_account(conn: &Connection, chat_id: i64, account_id: i64) -> Result<Option<Account>> {
    let Some(account) = db::accounts::account(conn, account_id)?.filter(|a| a.is_active) else {
        return Ok(None);
    };
    Ok(db::accounts::chat_may_use(conn, account_id, chat_id)?.then_some(account))
}

/// The chat's chosen account if it is still active and the chat's to use;
/// else the only such account when there is exactly one (so a chat uses the
/// account it connected, or the operator's only one, without choosing); else
/// the chat has to choose, or there is nothing to choose.
pub fn active_account_for_chat(conn: &Connection, chat_id: i64) -> Result<AccountChoice> {
    if let Some(id) = db::accounts::chat_active_account_id(conn, chat_id)? {
        if let Some(account) = usable_account(conn, chat_id, id)? {
            return Ok(AccountChoice::Account(account));
        }
    }
    let mut active = db::accounts::accounts_for_chat(conn, chat_id)?;
    Ok(match active.len() {
        0 => AccountChoice::None,
        1 => AccountChoice::Account(active.remove(0)),
        _ => AccountChoice::NeedsChoice(active),
    })
}

/// What became of a press on an account in the selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickOutcome {
    /// No such account, or it was deactivated: nothing changed.
    Unavailable,
    /// The chat had already chosen it.
    Unchanged(Account),
    /// `old` is the stored choice before (NULL: none).
    Changed { account: Account, old: Option<i64> },
}

/// Makes `account_id` the chat's account, if it is an active one the chat may
/// use. The caller records the change in settings_history.
pub fn choose_account(
    conn: &Connection,
    chat_id: i64,
    account_id: i64,
    now: DateTime<Utc>,
) -> Result<PickOutcome> {
    let Some(account) = usable_account(conn, chat_id, account_id)? else {
        return Ok(PickOutcome::Unavailable);
    };
    let old = db::accounts::chat_active_account_id(conn, chat_id)?;
    if old == Some(account_id) {
        return Ok(PickOutcome::Unchanged(account));
    }
    db::accounts::set_chat_active_account(conn, chat_id, Some(account_id), now)?;
    info!("chat {chat_id}: Instagram account set to {account_id}");
    Ok(PickOutcome::Changed { account, old })
}

/// The chats that post to this account (`active_account_for_chat`).
pub fn chats_using_account(conn: &Connection, account_id: i64) -> Result<Vec<i64>> {
    let mut chats = Vec::new();
    for chat_id in db::accounts::chat_ids(conn)? {
        if matches!(active_account_for_chat(conn, chat_id)?, AccountChoice::Account(a) if a.id == account_id)
        {
            chats.push(chat_id);
        }
    }
    Ok(chats)
}

// ---- tokens -------------------------------------------------------------------------

/// Whether an account's token can be used now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenState {
    Valid {
        token: Secret,
        days_left: i64,
    },
    Expired,
    /// No token, or one that does not open with the current key file (or has
    /// no expiry on record): the account has to be added or connected again.
    ReconnectNeeded,
}

pub use crate::domain::rows::{token_health_words, ChatAccount, TokenHealth};

impl TokenState {
    pub fn health(&self) -> TokenHealth {
        match self {
            TokenState::Valid { days_left, .. } => TokenHealth::DaysLeft(*days_left),
            TokenState::Expired => TokenHealth::Expired,
            TokenState::ReconnectNeeded => TokenHealth::ReconnectNeeded,
        }
    }
}

/// Whole days left, rounded up: a fresh 60-day token shows 60, and a token
/// with an hour left shows 1 (it is still usable today).
pub fn days_left(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let seconds = (expires_at - now).num_seconds();
    seconds.div_euclid(SECONDS_PER_DAY) + i64::from(seconds.rem_euclid(SECONDS_PER_DAY) != 0)
}

/// The account's access token, opened, if it can be used now.
pub fn usable_token(
    conn: &Connection,
    key: Option<&[u8; KEY_LEN]>,
    account_id: i64,
    now: DateTime<Utc>,
) -> Result<TokenState> {
    let Some(row) = db::accounts::token(conn, account_id)? else {
        return Ok(TokenState::ReconnectNeeded);
    };
    let Some(expires_at) = row.expires_at else {
        return Ok(TokenState::ReconnectNeeded);
    };
    if expires_at <= now {
        return Ok(TokenState::Expired);
    }
    let Some(Ok(token)) = key.map(|key| crypto::open(key, &row.sealed_value)) else {
        return Ok(TokenState::ReconnectNeeded);
    };
    Ok(TokenState::Valid {
        token: Secret::new(token),
        days_left: days_left(expires_at, now),
    })
}

pub fn chat_account(
    conn: &Connection,
    key: Option<&[u8; KEY_LEN]>,
    chat_id: i64,
    now: DateTime<Utc>,
) -> Result<ChatAccount> {
    Ok(match active_account_for_chat(conn, chat_id)? {
        AccountChoice::Account(account) => {
            let token = usable_token(conn, key, account.id, now)?.health();
            ChatAccount::Account { account, token }
        }
        AccountChoice::NeedsChoice(_) => ChatAccount::NeedsChoice,
        AccountChoice::None => ChatAccount::None,
    })
}

/// The accounts the chat may use, with the state of their tokens.
pub fn account_statuses_for_chat(
    conn: &Connection,
    key: Option<&[u8; KEY_LEN]>,
    chat_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<(Account, TokenHealth)>> {
    db::accounts::accounts_for_chat(conn, chat_id)?
        .into_iter()
        .map(|account| {
            let health = usable_token(conn, key, account.id, now)?.health();
            Ok((account, health))
        })
        .collect()
}

/// Adds an account with its token, or, for an Instagram user id already
/// known, updates its name, username and token and makes it active again.
/// A new account is `owner`'s; a chat that brings an account it had not (it
/// logged in as it, or an admin named it) gets it too, shared when another
/// chat owns it. Returns the account and whether it is new.
#[allow(clippy::too_many_arguments)]
pub fn add_or_update_account(
    conn: &Connection,
    key: &[u8; KEY_LEN],
    display_name: &str,
    instagram_user_id: &str,
    username: Option<&str>,
    token: &Secret,
    expires_at: DateTime<Utc>,
    owner: Owner,
    now: DateTime<Utc>,
) -> Result<(Account, bool)> {
    let (id, created) =
        db::accounts::upsert_account(conn, display_name, instagram_user_id, username, now)?;
    match owner {
        Owner::Operator if created => db::accounts::open_to_every_chat(conn, id, now)?,
        Owner::Operator => {}
        Owner::Chat(chat_id) => {
            db::accounts::give_to_chat(conn, id, chat_id, now)?;
        }
    }
    let sealed = crypto::seal(key, token.expose())?;
    db::accounts::store_token(conn, id, &sealed, now, expires_at)?;
    let account = db::accounts::account(conn, id)?
        .ok_or_else(|| anyhow!("account {id} vanished while it was saved"))?;
    Ok((account, created))
}

// ---- refresh ------------------------------------------------------------------------

/// Whether a token is refreshed now: under 7 days left, over 24 hours old, and
/// not yet expired (Instagram refreshes only live tokens).
pub fn refresh_due(
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    expires_at > now && expires_at - now < REFRESH_WHEN_LEFT && now - issued_at > REFRESH_MIN_AGE
}

/// A failed refresh the chats using the account should hear about. At most one
/// per account per UTC day; later failures that day are only stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshReport {
    pub account: Account,
    /// Plain words, never the token.
    pub error: String,
    /// Whole days until the token expires (`days_left`).
    pub days_left: i64,
    /// The chats that post to the account (`chats_using_account`).
    pub chat_ids: Vec<i64>,
}

/// The Graph API's token refresh: its HTTP is `instagram::RefreshClient`, the
/// reading of its answer is `parse_refresh_answer` here.
pub struct GraphRefresh {
    http: crate::instagram::RefreshClient,
}

/// A refreshed token lasting longer than this is taken for a garbled answer.
const MAX_EXPIRES_IN_SECS: i64 = 400 * SECONDS_PER_DAY;

impl GraphRefresh {
    /// `graph_url` as configured (`[instagram] graph_url`).
    pub fn new(graph_url: &str) -> GraphRefresh {
        GraphRefresh {
            http: crate::instagram::RefreshClient::new(graph_url),
        }
    }

    /// Sharing the daemon's Graph client's agent (the same timeouts, one
    /// connection pool).
    pub fn sharing(graph: &crate::instagram::Graph, graph_url: &str) -> GraphRefresh {
        GraphRefresh {
            http: crate::instagram::RefreshClient::sharing(graph, graph_url),
        }
    }

    /// The new token and how many seconds it lasts, or what went wrong in plain
    /// words (never the token).
    pub fn refresh(&self, token: &Secret) -> Result<(Secret, i64), String> {
        let (status, body) = self.http.call(token)?;
        parse_refresh_answer(status, &body, token)
    }
}

/// Reads the refresh answer. Quotes nothing from the body but Instagram's own
/// error message, with `old_token` cut out should it appear there.
pub fn parse_refresh_answer(
    status: u16,
    body: &str,
    old_token: &Secret,
) -> Result<(Secret, i64), String> {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    if let Some(error) = parsed.as_ref().and_then(|v| v.get("error")) {
        let code = error.get("code").and_then(serde_json::Value::as_i64);
        let message = error
            .get("message")
            .and_then(serde_json::Value::as_str)
            .map(|m| quote_message(m, old_token))
            .unwrap_or_default();
        return Err(match code {
            Some(190) => format!(
                "Instagram no longer accepts the token (error 190: {message}); reconnect the account"
            ),
            Some(code) => format!("Instagram refused the refresh (HTTP {status}, error {code}: {message})"),
            None => format!("Instagram refused the refresh (HTTP {status}: {message})"),
        });
    }
    if status != 200 {
        return Err(format!("Instagram answered HTTP {status}"));
    }
    let Some(answer) = parsed else {
        return Err("Instagram's answer was not JSON".to_string());
    };
    let token = answer
        .get("access_token")
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.is_empty() && !t.chars().any(|c| c.is_whitespace() || c.is_control()));
    let expires_in = answer
        .get("expires_in")
        .and_then(serde_json::Value::as_i64)
        .filter(|s| (1..=MAX_EXPIRES_IN_SECS).contains(s));
    match (token, expires_in) {
        (Some(token), Some(expires_in)) => Ok((Secret::new(token), expires_in)),
        (None, _) => Err("Instagram's answer had no usable access_token".to_string()),
        (_, None) => Err("Instagram's answer had no usable expires_in".to_string()),
    }
}

fn quote_message(message: &str, token: &Secret) -> String {
    let message = if token.expose().is_empty() {
        message.to_string()
    } else {
        message.replace(token.expose(), "<token>")
    };
    let mut quoted: String = message
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if message.chars().count() > 200 {
        quoted.push('…');
    }
    quoted
}

/// Refreshes every active account's token that is due (`refresh_due`),
/// storing the new sealed value and dates. Failures are stored in the token's
/// `last_refresh_error` and returned, at most once a day per account, for the
/// caller to tell the chats in `chat_ids`. Does HTTP, one call per due token;
/// meant to run every hour.
pub fn refresh_due_tokens(
    conn: &Connection,
    key: Option<&[u8; KEY_LEN]>,
    client: &GraphRefresh,
    now: DateTime<Utc>,
) -> Result<Vec<RefreshReport>> {
    Ok(refresh_due_tokens_counted(conn, key, client, now)?.reports)
}

/// What one pass of `refresh_due_tokens` did, for its run record.
#[derive(Debug, Default)]
pub struct RefreshPass {
    /// Tokens that were due.
    pub due: usize,
    /// Of those, refreshed and stored.
    pub refreshed: usize,
    /// Of those, failed: (account id, plain words).
    pub failed: Vec<(i64, String)>,
    /// The failures to tell the chats (`refresh_due_tokens`).
    pub reports: Vec<RefreshReport>,
}

/// `refresh_due_tokens`, with what it did.
pub fn refresh_due_tokens_counted(
    conn: &Connection,
    key: Option<&[u8; KEY_LEN]>,
    client: &GraphRefresh,
    now: DateTime<Utc>,
) -> Result<RefreshPass> {
    let mut pass = RefreshPass::default();
    let reports = &mut pass.reports;
    for row in db::accounts::active_account_tokens(conn)? {
        let Some(expires_at) = row.expires_at else {
            continue;
        };
        let issued_at = row.issued_at;
        if !refresh_due(issued_at, expires_at, now) {
            continue;
        }
        let account_id = row.account_id;
        pass.due += 1;
        let refreshed = match key {
            None => Err(
                "the key file is missing or not 32 bytes, so the stored token cannot be read; \
                 reconnect the account"
                    .to_string(),
            ),
            Some(key) => match crypto::open(key, &row.sealed_value) {
                Err(_) => Err("the stored token does not open with the current key file; \
                     reconnect the account"
                    .to_string()),
                Ok(token) => client
                    .refresh(&Secret::new(token))
                    .and_then(|(token, secs)| {
                        crypto::seal(key, token.expose())
                            .map(|sealed| (sealed, secs))
                            .map_err(|e| format!("sealing the new token failed: {e}"))
                    }),
            },
        };
        match refreshed {
            Ok((sealed, expires_in)) => {
                let expires_at = now + chrono::TimeDelta::seconds(expires_in);
                let stored = db::accounts::replace_refreshed_token(
                    conn,
                    account_id,
                    &row.sealed_value,
                    &sealed,
                    now,
                    expires_at,
                )?;
                if stored {
                    pass.refreshed += 1;
                    info!(
                        "account {account_id}: Instagram token refreshed, valid for {}",
                        plural(days_left(expires_at, now), "day", "days")
                    );
                }
            }
            Err(error) => {
                warn!("account {account_id}: Instagram token refresh failed: {error}");
                pass.failed.push((account_id, error.clone()));
                let today = now.date_naive().to_string();
                let tell = row.refresh_reported_on.as_deref() != Some(today.as_str());
                let recorded = db::accounts::record_refresh_error(
                    conn,
                    account_id,
                    &row.sealed_value,
                    &error,
                    tell.then_some(today.as_str()),
                )?;
                if tell && recorded {
                    if let Some(account) = db::accounts::account(conn, account_id)? {
                        reports.push(RefreshReport {
                            chat_ids: chats_using_account(conn, account_id)?,
                            account,
                            error,
                            days_left: days_left(expires_at, now),
                        });
                    }
                }
            }
        }
    }
    Ok(pass)
}

// ---- the command line ---------------------------------------------------------------

pub const ACCOUNTS_HELP: &str = "\
Usage: storyline [--config PATH] accounts add --name NAME --instagram-id ID --username USER
                                          --token TOKEN [--expires-in-days N] [--chat CHAT]
       storyline [--config PATH] accounts list
       storyline [--config PATH] accounts deactivate ID
       storyline [--config PATH] accounts share ID --chat CHAT
       storyline [--config PATH] accounts unshare ID --chat CHAT
       storyline [--config PATH] accounts forget-tokens --yes

Manages the Instagram accounts chats can post to. An account connected with
/connect belongs to that chat: other chats neither list nor use it until it is
shared with them.

  add          Adds an account with its long-lived access token, sealed with the
               key file. An Instagram id already added is updated instead (name,
               username, token) and made active again.
                 --name NAME           what chats see, e.g. \"Main Brand\"
                 --instagram-id ID     the account's Instagram user id (digits)
                 --username USER       the @username (the @ is optional)
                 --token TOKEN         the access token; `--token -` reads it from
                                       stdin, which keeps it out of the shell history
                 --expires-in-days N   days the token stays valid, 1 to 365 (default 60)
                 --chat CHAT           the chat it belongs to, as if connected there;
                                       without it, every chat may use a new account
  list         Every account: id, name, @username, active, days until the token
               expires (\"reconnect needed\" when it cannot be read with the key
               file), and the chats that may use it. Never prints a token.
  deactivate   Soft delete: chats can no longer choose the account; it stays in
               the history. `add` with its Instagram id brings it back.
  share        Lets chat CHAT list and use the account too.
  unshare      Takes a shared account away from chat CHAT (never from the chat it
               belongs to); if CHAT had chosen it, it must choose again.
  forget-tokens
               For a key file that is lost for good: removes every sealed token
               so that the next start can make a new key. The accounts stay;
               connect them again with /connect (or `add`). Needs --yes.
";

/// `storyline accounts …`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountsCommand {
    Add(NewAccount),
    List,
    Deactivate { id: i64 },
    Share { id: i64, chat: i64 },
    Unshare { id: i64, chat: i64 },
    ForgetTokens,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub display_name: String,
    pub instagram_user_id: String,
    /// Without the @.
    pub username: String,
    pub token: TokenSource,
    pub expires_in_days: u32,
    /// `--chat`: the chat it belongs to; None: every chat may use it.
    pub chat: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Given(Secret),
    /// `--token -`: read from stdin when the command runs.
    Stdin,
}

/// Input the command could not use; main exits 2 for it, as for bad usage.
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

pub fn parse_display_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    if name.is_empty() {
        return Err("--name is empty; give the name chats should see, like \"Main Brand\"".into());
    }
    if name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err("--name must be at most 64 characters on one line".into());
    }
    Ok(name.to_string())
}

pub fn parse_instagram_id(text: &str) -> Result<String, String> {
    let id = text.trim();
    if id.is_empty() || id.len() > 30 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "--instagram-id {id:?} is not an Instagram user id: it is a number like 17841400000000000"
        ));
    }
    Ok(id.to_string())
}

/// Instagram usernames: letters, digits, `.` and `_`, at most 30; the @ is dropped.
pub fn parse_username(text: &str) -> Result<String, String> {
    let name = text.trim();
    let name = name.strip_prefix('@').unwrap_or(name);
    if name.is_empty()
        || name.len() > 30
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
    {
        return Err(format!(
            "--username {text:?} is not an Instagram username (letters, digits, . and _, at most 30)"
        ));
    }
    Ok(name.to_string())
}

/// The token, trimmed; never quoted in the error.
pub fn parse_token(text: &str) -> Result<Secret, String> {
    let token = text.trim();
    if token.is_empty() {
        return Err("the token is empty".into());
    }
    if token.len() > 4096 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "the token has spaces or line breaks in it (or is very long); paste exactly the token"
                .into(),
        );
    }
    Ok(Secret::new(token))
}

pub fn parse_expires_in_days(text: &str) -> Result<u32, String> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|d| (1..=365).contains(d))
        .ok_or_else(|| format!("--expires-in-days {text:?}: give a number of days from 1 to 365"))
}

/// Reads a token piped on stdin (`--token -`).
pub fn read_token(input: &mut dyn Read) -> Result<Secret, BadInput> {
    let mut text = String::new();
    input
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| BadInput(format!("reading the token from stdin: {e}")))?;
    parse_token(&text).map_err(|e| BadInput(format!("{e} (read from stdin)")))
}

/// Runs `storyline accounts …`; returns what to print. A `BadInput` error
/// means bad usage (exit 2).
pub fn run_command(config: &Config, command: &AccountsCommand) -> Result<String> {
    let now = Utc::now();
    match command {
        AccountsCommand::Add(new) => {
            let token = match &new.token {
                TokenSource::Given(token) => token.clone(),
                TokenSource::Stdin => {
                    use std::io::IsTerminal;
                    let stdin = std::io::stdin();
                    if stdin.is_terminal() {
                        eprintln!("Paste the access token, then press Enter and Ctrl-D:");
                    }
                    read_token(&mut stdin.lock())?
                }
            };
            add_command(config, new, &token, now)
        }
        AccountsCommand::List => list_command(config, now),
        AccountsCommand::Deactivate { id } => deactivate_command(config, *id, now),
        AccountsCommand::Share { id, chat } => share_command(config, *id, *chat, now),
        AccountsCommand::Unshare { id, chat } => unshare_command(config, *id, *chat),
        AccountsCommand::ForgetTokens => forget_tokens_command(config),
    }
}

fn forget_tokens_command(config: &Config) -> Result<String> {
    let conn = db::open(&config.storage.database)?;
    let removed = db::accounts::forget_tokens(&conn)?;
    Ok(format!(
        "Removed {}. The next start makes a new key if {} \
         is missing; connect the accounts again with /connect in their chats.",
        plural(removed, "sealed Instagram token", "sealed Instagram tokens"),
        config.storage.key_file.display()
    ))
}

fn add_command(
    config: &Config,
    new: &NewAccount,
    token: &Secret,
    now: DateTime<Utc>,
) -> Result<String> {
    let mut conn = db::open(&config.storage.database)?;
    let key = keyfile::load(
        &config.storage.key_file,
        &db::accounts::sealed_values(&conn)?,
    )?;
    if let Some(chat_id) = new.chat {
        known_chat(&conn, chat_id)?;
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let expires_at = now + chrono::TimeDelta::days(i64::from(new.expires_in_days));
    let owner = new.chat.map_or(Owner::Operator, Owner::Chat);
    let (account, created) = add_or_update_account(
        &tx,
        &key,
        &new.display_name,
        &new.instagram_user_id,
        Some(&new.username),
        token,
        expires_at,
        owner,
        now,
    )?;
    let reach = db::accounts::account_reach(&tx, account.id)?;
    tx.commit().context("saving the account")?;
    Ok(format!(
        "{} account {}: {} (@{}), Instagram id {}. The token is stored sealed and expires in {} ({}). \
         Chats that may use it: {}.",
        if created { "Added" } else { "Updated" },
        account.id,
        account.display_name,
        new.username,
        account.instagram_user_id,
        plural(new.expires_in_days, "day", "days"),
        expires_at.format("%Y-%m-%d"),
        reach_words(&reach),
    ))
}

/// Refuses a chat Storyline has no row for: a typo must not give an account away.
fn known_chat(conn: &Connection, chat_id: i64) -> Result<()> {
    if db::chat(conn, chat_id)?.is_none() {
        bail!(
            "Storyline does not know chat {chat_id}: a chat is known once someone wrote to the bot \
             there, or once `storyline run` started with it in allowed_chat_ids"
        );
    }
    Ok(())
}

/// "every chat", or the owner and the chats the account is shared with.
fn reach_words(reach: &db::accounts::AccountReach) -> String {
    if reach.every_chat {
        return "every chat".to_string();
    }
    let mut chats: Vec<String> = reach
        .owner
        .map(|owner| format!("{owner} (owner)"))
        .into_iter()
        .collect();
    chats.extend(reach.shared_with.iter().map(i64::to_string));
    if chats.is_empty() {
        "none".to_string()
    } else {
        chats.join(", ")
    }
}

fn share_command(config: &Config, id: i64, chat_id: i64, now: DateTime<Utc>) -> Result<String> {
    let conn = db::open(&config.storage.database)?;
    let Some(account) = db::accounts::account(&conn, id)? else {
        bail!("there is no account {id}; `storyline accounts list` shows the ids");
    };
    known_chat(&conn, chat_id)?;
    let before = db::accounts::account_reach(&conn, id)?;
    if before.every_chat {
        return Ok(format!(
            "Account {id} ({}) was added without --chat: every chat may use it already.",
            account.display_name
        ));
    }
    let added = db::accounts::give_to_chat(&conn, id, chat_id, now)?;
    let reach = db::accounts::account_reach(&conn, id)?;
    let what = if !added {
        "already had it"
    } else if reach.owner == Some(chat_id) {
        "now owns it (it had no owner)"
    } else {
        "may now list and use it"
    };
    Ok(format!(
        "Account {id} ({}): chat {chat_id} {what}. Chats that may use it: {}.",
        account.display_name,
        reach_words(&reach)
    ))
}

fn unshare_command(config: &Config, id: i64, chat_id: i64) -> Result<String> {
    let conn = db::open(&config.storage.database)?;
    let Some(account) = db::accounts::account(&conn, id)? else {
        bail!("there is no account {id}; `storyline accounts list` shows the ids");
    };
    let reach = db::accounts::account_reach(&conn, id)?;
    if reach.owner == Some(chat_id) {
        bail!(
            "account {id} ({}) belongs to chat {chat_id}, which connected it; it cannot be \
             taken away from it (`storyline accounts deactivate {id}` retires the account)",
            account.display_name
        );
    }
    let used_it =
        matches!(active_account_for_chat(&conn, chat_id)?, AccountChoice::Account(a) if a.id == id);
    if !db::accounts::unshare(&conn, id, chat_id)? {
        let mut text = format!(
            "Account {id} ({}) was not shared with chat {chat_id}; nothing changed.",
            account.display_name
        );
        if reach.every_chat {
            text.push_str(" It was added without --chat, so every chat may use it.");
        }
        return Ok(text);
    }
    let mut text = format!(
        "Account {id} ({}) is no longer shared with chat {chat_id}. Chats that may use it: {}.",
        account.display_name,
        reach_words(&db::accounts::account_reach(&conn, id)?)
    );
    if used_it {
        text.push_str(&format!(" Chat {chat_id} posted to it; "));
        text.push_str(&match active_account_for_chat(&conn, chat_id)? {
            AccountChoice::Account(now_used) => format!(
                "now it posts to account {} ({}).",
                now_used.id, now_used.display_name
            ),
            AccountChoice::NeedsChoice(_) => {
                "now it must choose another account in /settings.".to_string()
            }
            AccountChoice::None => "now it has no Instagram account.".to_string(),
        });
    }
    Ok(text)
}

fn list_command(config: &Config, now: DateTime<Utc>) -> Result<String> {
    let key = keyfile::read(&config.storage.key_file);
    let conn = db::open(&config.storage.database)?;
    let accounts = db::accounts::all_accounts(&conn)?;
    if accounts.is_empty() {
        return Ok("No Instagram accounts yet. Add one with\n  \
             storyline accounts add --name NAME --instagram-id ID --username USER --token -\n"
            .to_string());
    }
    let mut rows = vec![[
        "ID".to_string(),
        "NAME".to_string(),
        "USERNAME".to_string(),
        "ACTIVE".to_string(),
        "TOKEN".to_string(),
        "CHATS".to_string(),
    ]];
    for account in accounts {
        let token = usable_token(&conn, key.as_ref(), account.id, now)?.health();
        let reach = reach_words(&db::accounts::account_reach(&conn, account.id)?);
        rows.push([
            account.id.to_string(),
            account.display_name,
            account
                .username
                .map(|u| format!("@{u}"))
                .unwrap_or_else(|| "-".to_string()),
            if account.is_active { "yes" } else { "no" }.to_string(),
            token_health_words(token),
            reach,
        ]);
    }
    Ok(render_table(&rows))
}

fn render_table<const COLUMNS: usize>(rows: &[[String; COLUMNS]]) -> String {
    let mut widths = [0usize; COLUMNS];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(width - cell.chars().count() + 2));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

fn deactivate_command(config: &Config, id: i64, now: DateTime<Utc>) -> Result<String> {
    let conn = db::open(&config.storage.database)?;
    let Some(account) = db::accounts::account(&conn, id)? else {
        bail!("there is no account {id}; `storyline accounts list` shows the ids");
    };
    if !account.is_active {
        return Ok(format!(
            "Account {id} ({}) was already deactivated.",
            account.display_name
        ));
    }
    let chats = chats_using_account(&conn, id)?;
    db::accounts::deactivate_account(&conn, id, now)?;
    let mut text = format!("Deactivated account {id}: {}.", account.display_name);
    if !chats.is_empty() {
        text.push_str(&format!(
            " {} it and now {} another account (/settings).",
            plural(chats.len(), "chat used", "chats used"),
            if chats.len() == 1 { "needs" } else { "need" }
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Command, Parsed, UsageError};
    use chrono::TimeZone;
    use std::ffi::OsString;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
    }

    #[test]
    fn refresh_is_due_under_seven_days_left_for_tokens_over_a_day_old() {
        // (issued, expires, now, due)
        for (issued, expires, now, due) in [
            (at(1, 0), at(30, 0), at(2, 1), false), // 28 days left
            (at(1, 0), at(8, 0), at(2, 1), true),   // 6 days left, 25 h old
            (at(1, 0), at(8, 0), at(1, 23), false), // 6 days left, only 23 h old
            (at(1, 0), at(8, 0), at(2, 0), false),  // exactly 24 h old
            (at(1, 0), at(9, 0), at(2, 0), false),  // exactly 7 days left
            (at(1, 0), at(9, 1), at(2, 2), true),   // just under 7 days left
            (at(1, 0), at(8, 0), at(8, 0), false),  // expired
            (at(1, 0), at(8, 0), at(9, 0), false),  // long expired
            (at(5, 0), at(4, 0), at(3, 0), false),  // nonsense dates
        ] {
            assert_eq!(
                refresh_due(issued, expires, now),
                due,
                "{issued} {expires} {now}"
            );
        }
    }

    #[test]
    fn days_left_rounds_up() {
        for (expires, now, days) in [
            (at(31, 0), at(1, 0), 30),
            (at(31, 0), at(1, 1), 30),
            (at(2, 0), at(1, 23), 1),
            (at(2, 0), at(2, 0), 0),
            (at(1, 0), at(2, 0), -1),
        ] {
            assert_eq!(days_left(expires, now), days, "{expires} {now}");
        }
    }

    #[test]
    fn inputs_are_validated() {
        assert_eq!(parse_display_name("  Main Brand ").unwrap(), "Main Brand");
        assert!(parse_display_name(" ").is_err());
        assert!(parse_display_name("a\nb").is_err());
        assert!(parse_display_name(&"x".repeat(65)).is_err());
        assert_eq!(parse_instagram_id("1784 ").unwrap(), "1784");
        for bad in ["", "-5", "12a", "1.5", "１２"] {
            assert!(parse_instagram_id(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_username("@brand.main_1").unwrap(), "brand.main_1");
        assert_eq!(parse_username("brand").unwrap(), "brand");
        for bad in ["", "@", "br and", "brand!", "@@brand", &"a".repeat(31)] {
            assert!(parse_username(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_token(" IGQ-abc\n").unwrap().expose(), "IGQ-abc");
        for bad in ["", " \n", "IGQ abc", "a\tb"] {
            let error = parse_token(bad).unwrap_err();
            assert!(!error.contains("IGQ"), "{error}");
        }
        assert_eq!(parse_expires_in_days("60").unwrap(), 60);
        for bad in ["0", "366", "-1", "x", ""] {
            assert!(parse_expires_in_days(bad).is_err(), "{bad}");
        }
        assert_eq!(
            read_token(&mut "  IGQ-from-stdin\n".as_bytes())
                .unwrap()
                .expose(),
            "IGQ-from-stdin"
        );
        assert!(read_token(&mut "\n".as_bytes()).is_err());
    }

    fn parse(args: &[&str]) -> Result<Parsed, UsageError> {
        crate::cli::parse_args(args.iter().map(OsString::from))
    }

    fn parsed(args: &[&str]) -> AccountsCommand {
        match parse(args) {
            Ok(Parsed::Command {
                command: Command::Accounts(command),
                ..
            }) => command,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn command_line() {
        assert_eq!(
            parsed(&[
                "accounts",
                "add",
                "--name",
                "Main",
                "--instagram-id",
                "178",
                "--username",
                "@brand",
                "--token",
                "IGQ-x",
                "--expires-in-days",
                "30",
            ]),
            AccountsCommand::Add(NewAccount {
                display_name: "Main".into(),
                instagram_user_id: "178".into(),
                username: "brand".into(),
                token: TokenSource::Given(Secret::new("IGQ-x")),
                expires_in_days: 30,
                chat: None,
            })
        );
        match parsed(&[
            "accounts",
            "add",
            "--token",
            "-",
            "--username=b",
            "--instagram-id=1",
            "--name=N",
        ]) {
            AccountsCommand::Add(new) => {
                assert_eq!(new.token, TokenSource::Stdin);
                assert_eq!(new.expires_in_days, 60);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parsed(&["accounts", "list"]), AccountsCommand::List);
        assert_eq!(
            parsed(&["accounts", "deactivate", "3", "-c", "x.toml"]),
            AccountsCommand::Deactivate { id: 3 }
        );
        assert_eq!(
            parse(&["accounts", "add", "--help"]).unwrap(),
            Parsed::Print(ACCOUNTS_HELP.into())
        );
        for (args, fragment) in [
            (vec!["accounts"], "accounts add"),
            (vec!["accounts", "frob"], "unknown accounts command"),
            (vec!["accounts", "deactivate"], "needs an account id"),
            (vec!["accounts", "deactivate", "x"], "not an account id"),
            (vec!["accounts", "deactivate", "0"], "not an account id"),
            (vec!["accounts", "deactivate", "1", "2"], "unexpected"),
            (vec!["accounts", "list", "--name", "x"], "invalid option"),
            (
                vec!["accounts", "add", "--name", "x"],
                "--instagram-id, --username, --token",
            ),
            (
                vec![
                    "accounts",
                    "add",
                    "--name=a",
                    "--name=b",
                    "--instagram-id=1",
                    "--username=u",
                    "--token=t",
                ],
                "given twice",
            ),
            (
                vec![
                    "accounts",
                    "add",
                    "--name=a",
                    "--instagram-id=1",
                    "--username=u",
                    "--token=t",
                    "--expires-in-days=400",
                ],
                "1 to 365",
            ),
            (
                vec![
                    "accounts",
                    "add",
                    "--name= ",
                    "--instagram-id=1",
                    "--username=u",
                    "--token=t",
                ],
                "--name is empty",
            ),
        ] {
            match parse(&args) {
                Err(UsageError(message)) => {
                    assert!(message.contains(fragment), "{args:?}: {message}")
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn share_unshare_and_add_with_a_chat_on_the_command_line() {
        assert_eq!(
            parsed(&["accounts", "share", "3", "--chat", "-1001234567890"]),
            AccountsCommand::Share {
                id: 3,
                chat: -1_001_234_567_890
            }
        );
        assert_eq!(
            parsed(&["accounts", "unshare", "--chat=4242", "3"]),
            AccountsCommand::Unshare { id: 3, chat: 4242 }
        );
        match parsed(&[
            "accounts",
            "add",
            "--name=N",
            "--instagram-id=1",
            "--username=u",
            "--token=t",
            "--chat",
            "-5555",
        ]) {
            AccountsCommand::Add(new) => assert_eq!(new.chat, Some(-5555)),
            other => panic!("{other:?}"),
        }
        for (args, fragment) in [
            (vec!["accounts", "share", "3"], "needs --chat CHAT"),
            (
                vec!["accounts", "unshare", "--chat", "5"],
                "needs an account id",
            ),
            (
                vec!["accounts", "share", "3", "--chat", "x"],
                "not a chat id",
            ),
            (
                vec!["accounts", "share", "3", "--chat", "0"],
                "not a chat id",
            ),
            (
                vec!["accounts", "share", "3", "--chat=1", "--chat=2"],
                "given twice",
            ),
            (vec!["accounts", "list", "--chat", "1"], "invalid option"),
            (
                vec!["accounts", "deactivate", "1", "--chat", "1"],
                "invalid option",
            ),
        ] {
            match parse(&args) {
                Err(UsageError(message)) => {
                    assert!(message.contains(fragment), "{args:?}: {message}")
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn refresh_answers() {
        let old = Secret::new("OLD-token");
        let ok = parse_refresh_answer(
            200,
            r#"{"access_token":"NEW-token","token_type":"bearer","expires_in":5183944}"#,
            &old,
        )
        .unwrap();
        assert_eq!((ok.0.expose(), ok.1), ("NEW-token", 5_183_944));
        for (status, body, expected) in [
            (
                400,
                r#"{"error":{"message":"Error validating access token OLD-token","type":"OAuthException","code":190}}"#,
                "Instagram no longer accepts the token (error 190: Error validating access token <token>); reconnect the account",
            ),
            (
                400,
                r#"{"error":{"message":"Too early","code":10}}"#,
                "Instagram refused the refresh (HTTP 400, error 10: Too early)",
            ),
            (502, "<html>Bad gateway</html>", "Instagram answered HTTP 502"),
            (200, "not json NEW-token", "Instagram's answer was not JSON"),
            (
                200,
                r#"{"access_token":"","expires_in":5}"#,
                "no usable access_token",
            ),
            (
                200,
                r#"{"access_token":"NEW-token","expires_in":-5}"#,
                "no usable expires_in",
            ),
            (
                200,
                r#"{"access_token":"NEW-token","expires_in":"5183944"}"#,
                "no usable expires_in",
            ),
        ] {
            let error = parse_refresh_answer(status, body, &old).unwrap_err();
            assert!(error.contains(expected), "{body}: {error}");
            assert!(
                !error.contains("OLD-token") && !error.contains("NEW-token"),
                "{error}"
            );
        }
    }

    // ---- with a database -------------------------------------------------------------

    const KEY: [u8; KEY_LEN] = [3; KEY_LEN];

    fn database() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = db::open(&dir.path().join("s.db")).unwrap();
        (dir, conn)
    }

    fn add(conn: &Connection, instagram_id: &str, username: &str, expires: DateTime<Utc>) -> i64 {
        let (account, _) = add_or_update_account(
            conn,
            &KEY,
            username,
            instagram_id,
            Some(username),
            &Secret::new(format!("TOKEN-{username}")),
            expires,
            Owner::Operator,
            at(1, 0),
        )
        .unwrap();
        account.id
    }

    fn add_chat(conn: &mut Connection, chat_id: i64) {
        let tx = conn.transaction().unwrap();
        db::insert_chat(&tx, chat_id, None, None, at(1, 0)).unwrap();
        tx.commit().unwrap();
    }

    fn chosen(choice: AccountChoice) -> Option<i64> {
        match choice {
            AccountChoice::Account(a) => Some(a.id),
            _ => None,
        }
    }

    #[test]
    fn a_chat_uses_its_choice_or_the_only_account_or_is_asked() {
        let (_dir, mut conn) = database();
        add_chat(&mut conn, 7);
        assert_eq!(
            active_account_for_chat(&conn, 7).unwrap(),
            AccountChoice::None
        );
        let first = add(&conn, "1", "first", at(30, 0));
        assert_eq!(
            chosen(active_account_for_chat(&conn, 7).unwrap()),
            Some(first)
        );
        add_chat(&mut conn, 8);
        assert_eq!(
            chosen(active_account_for_chat(&conn, 8).unwrap()),
            Some(first)
        );
        assert_eq!(chats_using_account(&conn, first).unwrap(), vec![7, 8]);

        let second = add(&conn, "2", "second", at(30, 0));
        match active_account_for_chat(&conn, 7).unwrap() {
            AccountChoice::NeedsChoice(accounts) => assert_eq!(accounts.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(chats_using_account(&conn, first).unwrap().is_empty());
        assert!(matches!(
            choose_account(&conn, 7, second, at(2, 0)).unwrap(),
            PickOutcome::Changed { old: None, .. }
        ));
        assert!(matches!(
            choose_account(&conn, 7, second, at(2, 0)).unwrap(),
            PickOutcome::Unchanged(_)
        ));
        assert_eq!(
            choose_account(&conn, 7, 999, at(2, 0)).unwrap(),
            PickOutcome::Unavailable
        );
        assert_eq!(
            chosen(active_account_for_chat(&conn, 7).unwrap()),
            Some(second)
        );
        assert_eq!(chats_using_account(&conn, second).unwrap(), vec![7]);

        // The chosen account goes away: the only one left takes over.
        db::accounts::deactivate_account(&conn, second, at(3, 0)).unwrap();
        assert_eq!(
            choose_account(&conn, 8, second, at(3, 0)).unwrap(),
            PickOutcome::Unavailable
        );
        assert_eq!(
            chosen(active_account_for_chat(&conn, 7).unwrap()),
            Some(first)
        );
        assert_eq!(chats_using_account(&conn, first).unwrap(), vec![7, 8]);
    }

    #[test]
    fn an_account_connected_in_a_chat_is_that_chats_until_shared() {
        let (_dir, mut conn) = database();
        add_chat(&mut conn, 7);
        add_chat(&mut conn, 8);
        let connect = |chat: i64, instagram_id: &str| {
            add_or_update_account(
                &conn,
                &KEY,
                instagram_id,
                instagram_id,
                None,
                &Secret::new("TOKEN"),
                at(30, 0),
                Owner::Chat(chat),
                at(1, 0),
            )
            .unwrap()
            .0
            .id
        };
        let sevens = connect(7, "1");
        assert_eq!(
            chosen(active_account_for_chat(&conn, 7).unwrap()),
            Some(sevens)
        );
        // Chat 8 neither sees nor picks it, and is not among its users.
        assert_eq!(
            active_account_for_chat(&conn, 8).unwrap(),
            AccountChoice::None
        );
        assert_eq!(
            choose_account(&conn, 8, sevens, at(2, 0)).unwrap(),
            PickOutcome::Unavailable
        );
        assert!(account_statuses_for_chat(&conn, Some(&KEY), 8, at(2, 0))
            .unwrap()
            .is_empty());
        assert_eq!(chats_using_account(&conn, sevens).unwrap(), vec![7]);
        // An account the operator added without a chat is everyone's.
        let operators = add(&conn, "2", "operator", at(30, 0));
        assert_eq!(
            chosen(active_account_for_chat(&conn, 8).unwrap()),
            Some(operators)
        );
        assert!(matches!(
            active_account_for_chat(&conn, 7).unwrap(),
            AccountChoice::NeedsChoice(_)
        ));
        // Chat 8 connects the same Instagram account: it gets it too, shared.
        assert_eq!(connect(8, "1"), sevens);
        let reach = db::accounts::account_reach(&conn, sevens).unwrap();
        assert_eq!((reach.owner, reach.shared_with), (Some(7), vec![8]));
        assert!(matches!(
            choose_account(&conn, 8, sevens, at(2, 0)).unwrap(),
            PickOutcome::Changed { .. }
        ));
        assert_eq!(chats_using_account(&conn, sevens).unwrap(), vec![8]);
        // Unshared, chat 8's choice no longer counts.
        db::accounts::unshare(&conn, sevens, 8).unwrap();
        assert_eq!(
            chosen(active_account_for_chat(&conn, 8).unwrap()),
            Some(operators)
        );
    }

    #[test]
    fn token_states() {
        let (_dir, conn) = database();
        let id = add(&conn, "1", "brand", at(31, 0));
        match usable_token(&conn, Some(&KEY), id, at(1, 0)).unwrap() {
            TokenState::Valid { token, days_left } => {
                assert_eq!(token.expose(), "TOKEN-brand");
                assert_eq!(days_left, 30);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            usable_token(&conn, Some(&[9; KEY_LEN]), id, at(1, 0)).unwrap(),
            TokenState::ReconnectNeeded
        );
        assert_eq!(
            usable_token(&conn, None, id, at(1, 0)).unwrap(),
            TokenState::ReconnectNeeded
        );
        assert_eq!(
            usable_token(&conn, Some(&KEY), id, at(31, 0)).unwrap(),
            TokenState::Expired
        );
        assert_eq!(
            usable_token(&conn, Some(&KEY), 999, at(1, 0)).unwrap(),
            TokenState::ReconnectNeeded
        );
        let sealed: String = conn
            .query_row("SELECT sealed_value FROM api_tokens", [], |r| r.get(0))
            .unwrap();
        assert!(sealed.starts_with("v1:") && !sealed.contains("TOKEN"));
    }

    /// A one-route Graph API: answers each refresh with the next canned reply
    /// and sends the query strings it saw.
    fn fake_graph(
        replies: Vec<(u16, &'static str)>,
    ) -> (GraphRefresh, std::sync::mpsc::Receiver<String>) {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let (seen_tx, seen) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for (status, body) in replies {
                let Ok(request) = server.recv() else { return };
                let _ = seen_tx.send(request.url().to_string());
                let _ = request
                    .respond(tiny_http::Response::from_string(body).with_status_code(status));
            }
        });
        // Configured with the pinned API version, as storyline.toml's graph_url is: the
        // paths the tests expect prove the refresh goes without it.
        (
            GraphRefresh::new(&format!("{url}/{}", crate::instagram::GRAPH_API_VERSION)),
            seen,
        )
    }

    fn token_row(conn: &Connection, id: i64) -> db::accounts::TokenRow {
        db::accounts::token(conn, id).unwrap().unwrap()
    }

    #[test]
    fn refreshes_due_tokens_and_reports_failures_once_a_day() {
        let (_dir, mut conn) = database();
        add_chat(&mut conn, 7);
        // Issued Mar 1; "now" is Mar 5, so due ones expire before Mar 12.
        let due = add(&conn, "1", "due", at(8, 0));
        let fresh = add(&conn, "2", "fresh", at(30, 0));
        let failing = add(&conn, "3", "failing", at(9, 0));
        choose_account(&conn, 7, failing, at(1, 0)).unwrap();
        let now = at(5, 12);
        let (client, seen) = fake_graph(vec![
            (
                200,
                r#"{"access_token":"TOKEN-renewed","token_type":"bearer","expires_in":5184000}"#,
            ),
            (
                400,
                r#"{"error":{"message":"Invalid OAuth access token","type":"OAuthException","code":190}}"#,
            ),
            (500, "oops"),
            (500, "oops"),
        ]);

        let reports = refresh_due_tokens(&conn, Some(&KEY), &client, now).unwrap();
        assert_eq!(
            seen.recv().unwrap(),
            "/refresh_access_token?grant_type=ig_refresh_token&access_token=TOKEN-due"
        );
        assert_eq!(
            seen.recv().unwrap(),
            "/refresh_access_token?grant_type=ig_refresh_token&access_token=TOKEN-failing"
        );
        match usable_token(&conn, Some(&KEY), due, now).unwrap() {
            TokenState::Valid { token, days_left } => {
                assert_eq!(token.expose(), "TOKEN-renewed");
                assert_eq!(days_left, 60);
            }
            other => panic!("{other:?}"),
        }
        let row = token_row(&conn, due);
        assert_eq!(row.issued_at, now);
        assert!(!row.sealed_value.contains("renewed"));
        assert_eq!(token_row(&conn, fresh).issued_at, at(1, 0));

        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].account.id, failing);
        assert_eq!(reports[0].chat_ids, vec![7]);
        assert!(
            reports[0].error.contains("error 190"),
            "{}",
            reports[0].error
        );
        assert!(!reports[0].error.contains("TOKEN"), "{}", reports[0].error);
        let row = token_row(&conn, failing);
        assert_eq!(
            row.last_refresh_error.as_deref(),
            Some(reports[0].error.as_str())
        );
        assert_eq!(row.refresh_reported_on.as_deref(), Some("2026-03-05"));

        // An hour later the due token is fresh; the failing one fails again,
        // stored but not reported twice in a day...
        let later = now + chrono::TimeDelta::hours(1);
        let reports = refresh_due_tokens(&conn, Some(&KEY), &client, later).unwrap();
        assert!(reports.is_empty(), "{reports:?}");
        assert_eq!(
            token_row(&conn, failing).last_refresh_error.as_deref(),
            Some("Instagram answered HTTP 500")
        );
        // ...and is reported again the next day.
        let tomorrow = now + chrono::TimeDelta::days(1);
        let reports = refresh_due_tokens(&conn, Some(&KEY), &client, tomorrow).unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].error, "Instagram answered HTTP 500");
        assert_eq!(seen.try_iter().count(), 2);
    }

    #[test]
    fn a_token_the_key_cannot_open_is_reported_without_a_call() {
        let (_dir, mut conn) = database();
        add_chat(&mut conn, 7);
        let id = add(&conn, "1", "brand", at(8, 0));
        // Nothing listens here: a call would fail with a network error.
        let client = GraphRefresh::new("http://127.0.0.1:9");
        let reports = refresh_due_tokens(&conn, Some(&[9; KEY_LEN]), &client, at(5, 0)).unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].chat_ids, vec![7]);
        assert!(
            reports[0].error.contains("key file"),
            "{}",
            reports[0].error
        );
        let reports = refresh_due_tokens(&conn, None, &client, at(5, 1)).unwrap();
        assert!(reports.is_empty());
        assert!(token_row(&conn, id)
            .last_refresh_error
            .unwrap()
            .contains("key file"));
    }

    #[test]
    fn network_errors_do_not_quote_the_url() {
        let client = GraphRefresh::new("http://127.0.0.1:9");
        let error = client.refresh(&Secret::new("SECRET-in-query")).unwrap_err();
        assert!(!error.contains("SECRET"), "{error}");
        assert!(!error.contains("127.0.0.1"), "{error}");
    }

    #[test]
    fn list_table_aligns_columns() {
        let rows = [
            ["ID", "NAME", "USERNAME", "ACTIVE", "TOKEN"].map(String::from),
            ["1", "Main Brand", "@brand", "yes", "60 days"].map(String::from),
            ["12", "P", "@promo_account", "no", "reconnect needed"].map(String::from),
        ];
        expect_test::expect![[r#"
            ID  NAME        USERNAME        ACTIVE  TOKEN
            1   Main Brand  @brand          yes     60 days
            12  P           @promo_account  no      reconnect needed
        "#]]
        .assert_eq(&render_table(&rows));
    }
}
