//! Part `bot/`: what Storyline does for a chat, one decision at a time, on the core
//! loop inside one transaction — an update (commands, the /settings menu and its
//! prompts, button presses, /connect), a due slot (`posting`), a story's route to
//! Instagram or to people (`publish`), a chat's life (`chats`), accounts and tokens
//! (`accounts`), the OAuth pages (`oauth`). It returns what must happen after the
//! commit as values (outbox rows, `FollowUp`); it never starts threads, never sleeps
//! and makes no HTTP call of its own on the core thread. Uses `domain`, `db` and the
//! adapters; never `runtime` or `cli`.
//!
//! Handling one Telegram update: access control (served chats; in a group, who
//! may administer it, `roles`), commands, the /settings menu and the values it
//! asks for. Runs on the core loop inside the update's transaction:
//! reads and writes go through `db`, words and keyboards come from `ui`, and the
//! replies are returned as `Outgoing` calls that the caller stores in the outbox
//! in that same transaction.

use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use log::info;
use rusqlite::Transaction;

use crate::config::Config;
use crate::db::{self, PendingInput};
use crate::domain::callback::{self, Ask, Callback};
use crate::domain::picker;
use crate::domain::settings::{self, Change, ChatRow, ChatSettings, Toggle};
use crate::domain::status::SettingsPrompt;
use crate::domain::ui;
use crate::telegram::{self, CallbackQuery, Message, Outgoing, Update};
use accounts::PickOutcome;
/// The one rule for "is this chat served" (`chats::is_served`).
pub use chats::is_served;
use chats::settings_snapshot;
use publish::Route;
use roles::{Roles, Verdict};

pub mod accounts;
pub mod chats;
pub mod health;
mod history;
pub mod insights;
pub mod keyfile;
pub mod limits;
pub mod oauth;
pub mod pairing;
pub mod posting;
pub mod publish;
pub mod roles;
pub mod settings_file;
mod setup;
pub mod summary;
mod tune;

/// Settings whose change moves the chat's slots.
const SCHEDULE_SETTINGS: &[&str] = &[
    "posts_per_day",
    "posting_hours_start",
    "posting_hours_end",
    "timezone",
];

/// How long a prompt waits for its answer.
const PROMPT_TTL_MINUTES: i64 = 10;
/// A refused chat hears from us at most this often.
const REFUSAL_INTERVAL_SECS: i64 = 3600;

pub struct Context<'a> {
    pub config: &'a Config,
    /// What Telegram said about the batch's senders (asked by the poller).
    pub roles: &'a Roles,
    pub now: DateTime<Utc>,
    pub uptime: Duration,
    /// Seconds since the poller's last successful getUpdates (/status).
    pub last_poll_secs_ago: Option<i64>,
    /// The bot's own username, once getMe answered; commands addressed to
    /// another bot (`/settings@other_bot`) are then ignored.
    pub bot_username: Option<&'a str>,
    /// The key file's bytes, for opening account tokens; None when unusable.
    pub key: Option<&'a [u8; 32]>,
}

/// What must follow an update's commit, outside its transaction: the caller
/// (the daemon) acts on it once the update is stored.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FollowUp {
    /// /scan: the chat to tell when the scan (run by the scanner thread) is done.
    pub scan_requested: Option<i64>,
    /// A pasted /connect URL or code: `(state, code)`, exchanged off the core
    /// thread (it is HTTP).
    pub oauth_paste: Option<(String, String)>,
}

impl Context<'_> {
    /// Configured or paired: `chats::is_admin`, the one rule.
    fn is_admin(&self, tx: &Transaction<'_>, user_id: i64) -> Result<bool> {
        chats::is_admin(tx, self.config, user_id)
    }

    /// Whether the user may administer the chat (settings, accounts, set-up).
    fn verdict(
        &self,
        tx: &Transaction<'_>,
        chat: &telegram::Chat,
        user_id: i64,
    ) -> Result<Verdict> {
        Ok(roles::decide(
            self.is_admin(tx, user_id)?,
            chat.is_private(),
            self.roles.get(chat.id, user_id),
        ))
    }

    fn chat_account(&self, tx: &Transaction<'_>, chat_id: i64) -> Result<accounts::ChatAccount> {
        accounts::chat_account(tx, self.key, chat_id, self.now)
    }
}

pub fn handle_update(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    update: &Update,
    out: &mut Vec<Outgoing>,
) -> Result<FollowUp> {
    let mut follow_up = FollowUp::default();
    let from_chat = match (&update.message, &update.callback_query) {
        (Some(message), _) => Some(message.chat.id),
        (None, Some(query)) => query.message.as_ref().map(|m| m.chat.id),
        (None, None) => None,
    };
    if let Some(chat_id) = from_chat {
        if let Some(new_id) = db::chats::migrated_to(tx, chat_id)? {
            // Sent before the group became a supergroup, handled after its data
            // moved: handling it would bring back a chat under the old id.
            info!("chat {chat_id}: ignoring an update from before it became supergroup {new_id}");
            if let Some(query) = &update.callback_query {
                out.push(telegram::answer_callback(
                    &query.id,
                    &ui::chat_moved_alert(),
                    true,
                ));
            }
            return Ok(follow_up);
        }
        chats::came_back(tx, chat_id)?;
    }
    if let Some(query) = &update.callback_query {
        handle_callback(tx, ctx, update.update_id, query, out)?;
    } else if let Some(message) = &update.message {
        handle_message(tx, ctx, update.update_id, message, out, &mut follow_up)?;
    }
    Ok(follow_up)
}

/// A command's name (lowercase, without the slash and @bot) and its arguments;
/// `None` for plain text or a command meant for another bot.
pub fn parse_command<'t>(text: &'t str, bot_username: Option<&str>) -> Option<(String, &'t str)> {
    let rest = text.strip_prefix('/')?;
    let (word, args) = match rest.split_once(char::is_whitespace) {
        Some((w, a)) => (w, a.trim()),
        None => (rest, ""),
    };
    let (name, addressee) = match word.split_once('@') {
        Some((n, a)) => (n, Some(a)),
        None => (word, None),
    };
    if let (Some(to), Some(me)) = (addressee, bot_username) {
        if !to.eq_ignore_ascii_case(me) {
            return None;
        }
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((name.to_ascii_lowercase(), args))
}

fn handle_message(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    update_id: i64,
    message: &Message,
    out: &mut Vec<Outgoing>,
    follow_up: &mut FollowUp,
) -> Result<()> {
    // Telegram's service messages of a group becoming a supergroup, one in
    // each chat; the first to arrive moves the chat (unless a refused call did).
    if let Some(to) = message.migrate_to_chat_id {
        out.extend(chats::migrate(tx, message.chat.id, to, ctx.now)?);
        return Ok(());
    }
    if let Some(from) = message.migrate_from_chat_id {
        out.extend(chats::migrate(tx, from, message.chat.id, ctx.now)?);
        return Ok(());
    }
    let Some(from) = &message.from else {
        return Ok(());
    };
    if from.is_bot {
        return Ok(());
    }
    let chat_id = message.chat.id;
    let text = message.text.as_deref().unwrap_or("");
    let command = parse_command(text, ctx.bot_username);
    let now = ctx.now;

    if !is_served(tx, ctx.config, chat_id)? {
        if health::is_switched_off(tx, chat_id)? {
            if command.is_some() {
                health::notice_switched_off(tx, chat_id, now, out)?;
            }
            return Ok(());
        }
        let start_args = match &command {
            Some((name, args)) if name == "start" => Some(*args),
            _ => None,
        };
        let admin = ctx.is_admin(tx, from.id)?;
        // `/start CODE` with the code `storyline run` printed: the sender becomes
        // an admin, then the chat is enabled as an admin's /start enables it.
        let paired = match start_args {
            Some(args) if !admin && !args.is_empty() => {
                crate::bot::pairing::redeem(tx, ctx.config, args, from.id, chat_id, ctx.now)?
            }
            _ => false,
        };
        if start_args.is_some() && (admin || paired) {
            db::insert_chat(tx, chat_id, message.chat.name(), Some(from.id), now)?;
            db::authorize_chat(tx, chat_id, from.id, now)?;
            record_initial_version(tx, ctx.config, ctx.now, chat_id, Some(from.id))?;
            remember_user(tx, ctx, from)?;
            db::log_interaction(
                tx,
                update_id,
                chat_id,
                Some(from.id),
                "command",
                "start",
                now,
            )?;
            info!("chat {chat_id}: enabled by admin {}", from.id);
            let text = if paired {
                ui::paired_text()
            } else {
                ui::welcome_text(true)
            };
            out.push(telegram::send_message(chat_id, &text, None));
        } else if !(admin
            && setup::admin_message_in_unserved_chat(
                tx,
                ctx,
                update_id,
                message,
                command.as_ref(),
                out,
            )?)
        {
            refuse(tx, ctx, chat_id, out)?;
        }
        return Ok(());
    }

    ensure_chat(tx, ctx, chat_id, message.chat.name())?;
    remember_user(tx, ctx, from)?;

    if let Some((name, args)) = command {
        db::log_interaction(tx, update_id, chat_id, Some(from.id), "command", &name, now)?;
        let verdict = ctx.verdict(tx, &message.chat, from.id)?;
        if verdict != Verdict::Allowed {
            if roles::command_is_for_admins(&name) {
                info!(
                    "chat {chat_id}: refused /{name} to user {} ({verdict:?})",
                    from.id
                );
                let text = match verdict {
                    Verdict::Unknown => ui::role_unknown_text(),
                    _ => ui::admins_only_text(&name),
                };
                out.push(telegram::send_message(chat_id, &text, None));
                return Ok(());
            }
            if name == "start" {
                // The set-up is for administrators; everyone else gets the welcome.
                out.push(telegram::send_message(
                    chat_id,
                    &ui::welcome_text(false),
                    None,
                ));
                return Ok(());
            }
        }
        *follow_up = run_command(tx, ctx, chat_id, from.id, &name, args, out)?;
        return Ok(());
    }
    if settings_file::document_message(tx, ctx, update_id, message, from, out)? {
        return Ok(());
    }
    if let Some(state) = crate::bot::oauth::live_state_of(tx, chat_id, from.id, ctx.now)? {
        if let Some((pasted_state, code)) = crate::bot::oauth::parse_pasted(text) {
            db::log_interaction(
                tx,
                update_id,
                chat_id,
                Some(from.id),
                "message",
                "oauth_paste",
                now,
            )?;
            let state = pasted_state.unwrap_or(state);
            // A pasted URL must carry a state of this chat; anything else is refused.
            if crate::bot::oauth::live_state(tx, &state, ctx.now)?
                .is_some_and(|r| r.chat_id == chat_id)
            {
                follow_up.oauth_paste = Some((state, code));
                out.push(telegram::send_message(
                    chat_id,
                    "⏳ Connecting Instagram…",
                    None,
                ));
            } else {
                out.push(telegram::send_message(
                    chat_id,
                    "That login link belongs to another /connect or has expired. Send /connect for a new one.",
                    None,
                ));
            }
            return Ok(());
        }
    }
    if let Some(pending) = db::pending_input(tx, chat_id, from.id, now)? {
        db::log_interaction(
            tx,
            update_id,
            chat_id,
            Some(from.id),
            "message",
            &pending.field,
            now,
        )?;
        return answer_prompt(tx, ctx, chat_id, from.id, &pending, text, out);
    }
    // Ordinary conversation in a group is none of the bot's business.
    Ok(())
}

fn refuse(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let recently = db::last_refusal(tx, chat_id)?
        .is_some_and(|t| (ctx.now - t).num_seconds() < REFUSAL_INTERVAL_SECS);
    if recently {
        return Ok(());
    }
    db::record_refusal(tx, chat_id, ctx.now)?;
    info!("chat {chat_id}: not served; told it its id");
    out.push(telegram::send_message(
        chat_id,
        &ui::refusal_text(chat_id),
        None,
    ));
    Ok(())
}

fn remember_user(tx: &Transaction<'_>, ctx: &Context<'_>, user: &telegram::User) -> Result<()> {
    let role = if ctx.is_admin(tx, user.id)? {
        "admin"
    } else {
        "member"
    };
    db::upsert_user(
        tx,
        user.id,
        user.username.as_deref(),
        &user.first_name,
        role,
        ctx.now,
    )
}

/// The chat's row, created (with its first settings version) on first contact.
fn ensure_chat(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    title: Option<&str>,
) -> Result<ChatRow> {
    if db::insert_chat(tx, chat_id, title, None, ctx.now)? {
        record_initial_version(tx, ctx.config, ctx.now, chat_id, None)?;
    } else if let Some(title) = title {
        db::update_chat_title(tx, chat_id, title)?;
    }
    Ok(db::chat(tx, chat_id)?.unwrap_or_else(|| ChatRow::new(chat_id)))
}

/// Chats listed in `allowed_chat_ids` get their row (and view of the media) at
/// start, so the scheduler serves them before anyone there speaks.
pub fn add_allowed_chats(
    conn: &mut rusqlite::Connection,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for chat_id in &config.access.allowed_chat_ids {
        // A group that became a supergroup lives on under its new id.
        if let Some(new_id) = db::chats::migrated_to(&tx, *chat_id)? {
            info!(
                "chat {chat_id} in allowed_chat_ids became supergroup {new_id}, served as such; \
                 storyline.toml may list {new_id} instead"
            );
            continue;
        }
        if db::insert_chat(&tx, *chat_id, None, None, now)? {
            record_initial_version(&tx, config, now, *chat_id, None)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The first settings_history version of a new chat.
pub fn record_initial_version(
    tx: &Transaction<'_>,
    config: &Config,
    now: DateTime<Utc>,
    chat_id: i64,
    by: Option<i64>,
) -> Result<()> {
    let row = db::chat(tx, chat_id)?.unwrap_or_else(|| ChatRow::new(chat_id));
    let snapshot = settings_snapshot(tx, chat_id, &settings::resolve(&row, &config.defaults))?;
    db::record_settings_version(tx, chat_id, &snapshot, "[]", by, "chat created", now)
}

/// The /connect answer: a one-time link to the web page, or which keys of
/// storyline.toml are missing. The wizard's "Connect Instagram" sends it too.
pub fn connect_message(
    tx: &Transaction<'_>,
    config: &Config,
    chat_id: i64,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<Outgoing> {
    Ok(match crate::bot::oauth::app(config) {
        Err(explanation) => {
            telegram::send_message(chat_id, &telegram::escape_html(&explanation), None)
        }
        Ok(app) => {
            let link = crate::bot::oauth::new_link(tx, &app, chat_id, user_id, now)?;
            let keyboard = vec![vec![telegram::Button::link("🔗 Connect Instagram", link)]];
            telegram::send_message(
                chat_id,
                &ui::connect_text(crate::bot::oauth::STATE_LIFETIME_MINUTES),
                Some(&keyboard),
            )
        }
    })
}

/// Saves the row and, if anything changed, a new settings version.
fn save_changes(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    row: &ChatRow,
    changes: &[Change],
    user_id: i64,
    reason: &str,
) -> Result<ChatSettings> {
    let resolved = settings::resolve(row, &ctx.config.defaults);
    if changes.is_empty() {
        return Ok(resolved);
    }
    let now = ctx.now;
    db::save_chat_settings(tx, row, now)?;
    db::record_settings_version(
        tx,
        row.chat_id,
        &settings_snapshot(tx, row.chat_id, &resolved)?,
        &serde_json::to_string(changes)?,
        Some(user_id),
        reason,
        now,
    )?;
    if changes
        .iter()
        .any(|c| SCHEDULE_SETTINGS.contains(&c.setting))
    {
        posting::replan(tx, row.chat_id, &resolved, ctx.now)?;
    }
    for change in changes {
        info!(
            "chat {}: {} {} -> {} by user {user_id} ({reason})",
            row.chat_id, change.setting, change.old, change.new
        );
    }
    Ok(resolved)
}

fn paused_by_name(tx: &Transaction<'_>, settings: &ChatSettings) -> Result<Option<String>> {
    match settings.paused_by {
        Some(id) if settings.is_paused => Ok(Some(db::user_display_name(tx, id)?)),
        _ => Ok(None),
    }
}

fn menu(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    settings: &ChatSettings,
) -> Result<(String, telegram::Keyboard)> {
    let paused_by = paused_by_name(tx, settings)?;
    let mix = picker::format_mix(&db::queue::category_weights(tx, chat_id)?);
    let account = ctx.chat_account(tx, chat_id)?;
    Ok(ui::settings_menu(
        settings,
        paused_by.as_deref(),
        &mix,
        &account,
    ))
}

/// The selector behind the menu's account button.
fn account_selector(tx: &Transaction<'_>, chat_id: i64) -> Result<(String, telegram::Keyboard)> {
    let current = match accounts::active_account_for_chat(tx, chat_id)? {
        accounts::AccountChoice::Account(account) => Some(account.id),
        _ => None,
    };
    Ok(ui::account_selector(
        &db::accounts::accounts_for_chat(tx, chat_id)?,
        current,
    ))
}

fn current_settings(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
) -> Result<(ChatRow, ChatSettings)> {
    let row = db::chat(tx, chat_id)?.unwrap_or_else(|| ChatRow::new(chat_id));
    let resolved = settings::resolve(&row, &ctx.config.defaults);
    Ok((row, resolved))
}

fn set_toggle(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    user_id: i64,
    toggle: Toggle,
    value: bool,
    reason: &str,
) -> Result<(ChatSettings, bool)> {
    let (mut row, _) = current_settings(tx, ctx, chat_id)?;
    let change = settings::apply_toggle(
        &mut row,
        &ctx.config.defaults,
        toggle,
        value,
        user_id,
        ctx.now,
    );
    let changed = change.is_some();
    let changes: Vec<Change> = change.into_iter().collect();
    Ok((
        save_changes(tx, ctx, &row, &changes, user_id, reason)?,
        changed,
    ))
}

/// What happens to the chat's stories at their slots, for /status: what
/// `publish::route` decides, and why Auto post cannot publish when it is on.
fn posting_mode(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    resolved: &ChatSettings,
) -> Result<ui::PostingMode> {
    let route = publish::route(tx, ctx.config, ctx.key, chat_id, resolved, ctx.now)?;
    let (offer_auto_post, note) = match route {
        Route::Publish { .. } => return Ok(ui::PostingMode::Published),
        Route::Manual {
            offer_auto_post,
            note,
        } => (offer_auto_post, note),
    };
    let reason = match note {
        Some(reason) => Some(reason),
        // The route tells a slot's story why only when the API is on; /status
        // says it whenever Auto post is on.
        None if resolved.auto_post => {
            publish::publishable_account(tx, ctx.config, ctx.key, chat_id, resolved, ctx.now)?.err()
        }
        None => None,
    };
    Ok(match reason {
        Some(reason) => ui::PostingMode::ByHandBecause(reason),
        None => ui::PostingMode::ByHand {
            auto_post_button: offer_auto_post,
        },
    })
}

fn run_command(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    user_id: i64,
    name: &str,
    args: &str,
    out: &mut Vec<Outgoing>,
) -> Result<FollowUp> {
    let mut follow_up = FollowUp::default();
    let reply = |out: &mut Vec<Outgoing>, text: String| {
        out.push(telegram::send_message(chat_id, &text, None))
    };
    match name {
        "start" if setup::start_runs_wizard(tx, chat_id)? => {
            setup::run_init(tx, ctx, chat_id, user_id, out)?
        }
        "start" => reply(out, ui::welcome_text(false)),
        "init" => setup::run_init(tx, ctx, chat_id, user_id, out)?,
        "help" => reply(out, ui::help_text()),
        "settings" if args.eq_ignore_ascii_case("export") => {
            settings_file::send_export(tx, ctx, chat_id, out)?
        }
        "settings" if args.eq_ignore_ascii_case("import") => {
            settings_file::ask_for_file(tx, ctx, chat_id, user_id, out)?
        }
        "settings" => {
            let (_, resolved) = current_settings(tx, ctx, chat_id)?;
            let (text, keyboard) = menu(tx, ctx, chat_id, &resolved)?;
            out.push(telegram::send_message(chat_id, &text, Some(&keyboard)));
        }
        "status" => {
            let (_, resolved) = current_settings(tx, ctx, chat_id)?;
            let paused_by = paused_by_name(tx, &resolved)?;
            let account = ctx.chat_account(tx, chat_id)?;
            let mode = posting_mode(tx, ctx, chat_id, &resolved)?;
            let mut text =
                ui::status_text(&resolved, &mode, paused_by.as_deref(), &account, ctx.uptime);
            let media_dir = &ctx.config.media.dir;
            if !media_dir.is_dir() {
                text.push_str(&ui::media_folder_missing_line(
                    &media_dir.display().to_string(),
                ));
            }
            text.push_str(&health::status_block(
                tx,
                chat_id,
                &account,
                ctx.last_poll_secs_ago,
                resolved.timezone,
            )?);
            reply(out, text);
        }
        "accounts" => {
            let statuses = accounts::account_statuses_for_chat(tx, ctx.key, chat_id, ctx.now)?;
            let account = ctx.chat_account(tx, chat_id)?;
            reply(out, ui::accounts_text(&statuses, &account));
        }
        "pause" | "resume" => {
            let pause = name == "pause";
            let (_, changed) = set_toggle(
                tx,
                ctx,
                chat_id,
                user_id,
                Toggle::Paused,
                pause,
                &format!("/{name}"),
            )?;
            let by = db::user_display_name(tx, user_id)?;
            let text = if pause {
                ui::paused_text(&by, !changed)
            } else {
                ui::resumed_text(&by, !changed)
            };
            reply(out, text);
        }
        "dryrun" => {
            let (_, resolved) = current_settings(tx, ctx, chat_id)?;
            let value = match args.to_ascii_lowercase().as_str() {
                "" => !resolved.dry_run_mode,
                "on" | "true" | "1" | "yes" => true,
                "off" | "false" | "0" | "no" => false,
                _ => {
                    reply(out, ui::dryrun_usage_text());
                    return Ok(follow_up);
                }
            };
            let (_, changed) =
                set_toggle(tx, ctx, chat_id, user_id, Toggle::DryRun, value, "/dryrun")?;
            reply(out, ui::dry_run_text(value, changed));
        }
        "next" => {
            let (_, resolved) = current_settings(tx, ctx, chat_id)?;
            posting::send_next(tx, ctx.config, ctx.key, chat_id, &resolved, ctx.now, out)?;
        }
        "queue" => {
            let (_, resolved) = current_settings(tx, ctx, chat_id)?;
            let lines = posting::queue_lines(tx, chat_id, &resolved, 15)?;
            reply(out, ui::queue_text(&lines, resolved.timezone));
        }
        "schedule" => {
            let days = if args.is_empty() {
                Ok(3)
            } else {
                args.parse::<u32>().map_err(|_| ())
            };
            match days {
                Ok(days @ 1..=14) => reply(out, schedule_text(tx, ctx, chat_id, days)?),
                _ => reply(
                    out,
                    "Use /schedule or /schedule N with N from 1 to 14 days.".to_string(),
                ),
            }
        }
        "scan" => {
            follow_up.scan_requested = Some(chat_id);
            reply(out, ui::scan_started_text());
        }
        "connect" => out.push(connect_message(tx, ctx.config, chat_id, user_id, ctx.now)?),
        "history" => history::show(tx, ctx, chat_id, args, out)?,
        "insights" => insights::show(tx, ctx, chat_id, args, out)?,
        "cancel" => {
            let text = if db::clear_pending_input(tx, chat_id, user_id, ctx.now)? {
                ui::cancelled_text()
            } else {
                ui::nothing_to_cancel_text()
            };
            reply(out, text);
        }
        other => reply(out, ui::unknown_command_text(other)),
    }
    Ok(follow_up)
}

fn schedule_text(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    days: u32,
) -> Result<String> {
    let (_, resolved) = current_settings(tx, ctx, chat_id)?;
    let weights = db::queue::category_weights(tx, chat_id)?;
    let plan = posting::preview(tx, Some(chat_id), &resolved, &weights, ctx.now, days)?;
    Ok(ui::schedule_text(
        &plan,
        resolved.timezone,
        resolved.is_paused,
    ))
}

fn handle_callback(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    update_id: i64,
    query: &CallbackQuery,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let alert = |out: &mut Vec<Outgoing>, text: &str| {
        out.push(telegram::answer_callback(&query.id, text, true))
    };
    let Some(message) = &query.message else {
        alert(
            out,
            "This button no longer works. Send /settings for a fresh menu.",
        );
        return Ok(());
    };
    let chat_id = message.chat.id;
    if health::is_switched_off(tx, chat_id)? {
        alert(out, &ui::chat_disabled_alert());
        return Ok(());
    }
    if !is_served(tx, ctx.config, chat_id)?
        && !setup::admin_press_in_unserved_chat(tx, ctx, chat_id, query)?
    {
        alert(out, "This chat is not set up for Storyline.");
        return Ok(());
    }
    ensure_chat(tx, ctx, chat_id, message.chat.name())?;
    remember_user(tx, ctx, &query.from)?;
    let now = ctx.now;
    let data = query.data.as_deref().unwrap_or("");
    let Some(parsed) = callback::parse(data) else {
        db::log_interaction(
            tx,
            update_id,
            chat_id,
            Some(query.from.id),
            "callback",
            "invalid",
            now,
        )?;
        info!("chat {chat_id}: rejected a button press with unknown data");
        alert(
            out,
            "This button is not valid. Send /settings for a fresh menu.",
        );
        return Ok(());
    };
    db::log_interaction(
        tx,
        update_id,
        chat_id,
        Some(query.from.id),
        "callback",
        data,
        now,
    )?;
    let user_id = query.from.id;
    let message_id = message.message_id;
    let toast = |out: &mut Vec<Outgoing>, text: &str| {
        out.push(telegram::answer_callback(&query.id, text, false))
    };
    // Story buttons are the members' unless the chat keeps them for its
    // administrators; Cancel only ever drops the presser's own prompt; a
    // /history page is for whoever may read /history; every other button
    // changes or shows the settings.
    let for_admins = match parsed {
        Callback::Story { .. } => {
            current_settings(tx, ctx, chat_id)?
                .1
                .story_buttons_admins_only
        }
        Callback::Cancel | Callback::HistoryPage { .. } => false,
        _ => true,
    };
    let verdict = ctx.verdict(tx, &message.chat, user_id)?;
    if for_admins && verdict != Verdict::Allowed {
        info!("chat {chat_id}: refused a press on {data} to user {user_id} ({verdict:?})");
        let text = match (verdict, parsed) {
            (Verdict::Unknown, _) => ui::role_unknown_text(),
            (_, Callback::Story { .. }) => ui::story_buttons_admins_only_alert(),
            _ => ui::admins_only_alert(),
        };
        alert(out, &text);
        return Ok(());
    }

    match parsed {
        Callback::Set { toggle, value } => {
            let (resolved, changed) =
                set_toggle(tx, ctx, chat_id, user_id, toggle, value, "settings menu")?;
            toast(out, &ui::toggle_answer(toggle, value, changed));
            let (text, keyboard) = menu(tx, ctx, chat_id, &resolved)?;
            out.push(telegram::edit_message(
                chat_id,
                message_id,
                &text,
                Some(&keyboard),
            ));
        }
        Callback::Ask(ask) => {
            let (_, resolved) = current_settings(tx, ctx, chat_id)?;
            let (field, prompt) = match ask {
                Ask::PostsPerDay => (
                    SettingsPrompt::PostsPerDay,
                    ui::posts_per_day_prompt(resolved.posts_per_day),
                ),
                Ask::Hours => (SettingsPrompt::Hours, ui::hours_prompt(&resolved)),
                Ask::Timezone => (
                    SettingsPrompt::Timezone,
                    ui::timezone_prompt(resolved.timezone),
                ),
                Ask::Categories => {
                    let mix = picker::format_mix(&db::queue::category_weights(tx, chat_id)?);
                    (
                        SettingsPrompt::Categories,
                        ui::categories_prompt(&mix, &db::media::active_categories(tx)?),
                    )
                }
                Ask::Locks => (
                    SettingsPrompt::Locks,
                    ui::locks_prompt(resolved.posted_lock_days, resolved.skipped_lock_days),
                ),
                Ask::Summary => (
                    SettingsPrompt::SummaryHour,
                    ui::summary_hour_prompt(resolved.daily_summary_hour, resolved.timezone),
                ),
                Ask::Tune => (SettingsPrompt::Tune, tune::prompt(tx, chat_id, &resolved)?),
            };
            ask_for(
                tx,
                ctx,
                chat_id,
                user_id,
                field.as_str(),
                message_id,
                &prompt,
                out,
            )?;
            toast(out, "Reply with the new value");
        }
        Callback::Cancel => {
            if db::clear_pending_input(tx, chat_id, user_id, now)? {
                toast(out, "Cancelled");
                out.push(telegram::edit_message(
                    chat_id,
                    message_id,
                    &ui::cancelled_text(),
                    None,
                ));
            } else {
                alert(out, &ui::nothing_to_cancel_text());
            }
        }
        Callback::Refresh => {
            let (_, resolved) = current_settings(tx, ctx, chat_id)?;
            toast(out, "Up to date");
            let (text, keyboard) = menu(tx, ctx, chat_id, &resolved)?;
            out.push(telegram::edit_message(
                chat_id,
                message_id,
                &text,
                Some(&keyboard),
            ));
        }
        Callback::ShowQueue => {
            let (_, resolved) = current_settings(tx, ctx, chat_id)?;
            toast(out, "Queue");
            let lines = posting::queue_lines(tx, chat_id, &resolved, 15)?;
            out.push(telegram::send_message(
                chat_id,
                &ui::queue_text(&lines, resolved.timezone),
                None,
            ));
        }
        Callback::ShowSchedule => {
            toast(out, "Schedule");
            out.push(telegram::send_message(
                chat_id,
                &schedule_text(tx, ctx, chat_id, 3)?,
                None,
            ));
        }
        Callback::Story { action, queue_id } => {
            posting::handle_story_press(
                tx, ctx.config, ctx.key, query, chat_id, message_id, action, queue_id, ctx.now, out,
            )?;
        }
        Callback::AddAccount => {
            toast(out, "Connect Instagram");
            out.push(connect_message(tx, ctx.config, chat_id, user_id, ctx.now)?);
        }
        Callback::AccountMenu => {
            toast(out, "Instagram accounts");
            let (text, keyboard) = account_selector(tx, chat_id)?;
            out.push(telegram::edit_message(
                chat_id,
                message_id,
                &text,
                Some(&keyboard),
            ));
        }
        Callback::Account(account_id) => {
            let (row, _) = current_settings(tx, ctx, chat_id)?;
            let picked = accounts::choose_account(tx, chat_id, account_id, ctx.now)?;
            let (account, changes) = match picked {
                PickOutcome::Unavailable => {
                    info!("chat {chat_id}: refused a pick of unavailable account {account_id}");
                    alert(out, &ui::account_unavailable_text());
                    let (text, keyboard) = account_selector(tx, chat_id)?;
                    out.push(telegram::edit_message(
                        chat_id,
                        message_id,
                        &text,
                        Some(&keyboard),
                    ));
                    return Ok(());
                }
                PickOutcome::Unchanged(account) => (account, Vec::new()),
                PickOutcome::Changed { account, old } => {
                    let change = Change {
                        setting: "active_account_id",
                        old: old.into(),
                        new: account.id.into(),
                    };
                    (account, vec![change])
                }
            };
            let resolved = save_changes(tx, ctx, &row, &changes, user_id, "account selector")?;
            let toast_text = ui::account_chosen_toast(&account, !changes.is_empty());
            toast(out, &toast_text);
            let (text, keyboard) = menu(tx, ctx, chat_id, &resolved)?;
            out.push(telegram::edit_message(
                chat_id,
                message_id,
                &text,
                Some(&keyboard),
            ));
        }
        Callback::BackToSettings => {
            let (_, resolved) = current_settings(tx, ctx, chat_id)?;
            toast(out, "Settings");
            let (text, keyboard) = menu(tx, ctx, chat_id, &resolved)?;
            out.push(telegram::edit_message(
                chat_id,
                message_id,
                &text,
                Some(&keyboard),
            ));
        }
        Callback::Close => {
            toast(out, "Closed");
            out.push(telegram::edit_message(
                chat_id,
                message_id,
                &ui::settings_closed_text(),
                None,
            ));
        }
        Callback::Wizard(press) => {
            setup::handle_press(tx, ctx, query, chat_id, message_id, press, out)?;
        }
        Callback::HistoryPage {
            narrow,
            page,
            anchor,
        } => history::turn_page(
            tx, ctx, query, chat_id, message_id, narrow, page, anchor, out,
        )?,
        Callback::Import { id, apply } => {
            settings_file::press(tx, ctx, query, chat_id, message_id, id, apply, out)?;
        }
        Callback::UndoTune(id) => {
            tune::undo(tx, ctx, query, chat_id, message_id, id, out)?;
        }
    }
    Ok(())
}

/// The shared half of answering a prompt, for the /settings menu and the wizard:
/// reads `text` as the value asked for. A value that is not one gets the
/// explanation and changes nothing; a window's start alone asks for its end
/// (stored under `end_field`); a prompt that cannot be finished is dropped.
/// `Some` only for a value the caller applies.
#[allow(clippy::too_many_arguments)]
fn take_answer(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    user_id: i64,
    pending: &PendingInput,
    asked: settings::Asked,
    end_field: &str,
    text: &str,
    out: &mut Vec<Outgoing>,
) -> Result<Option<settings::Answer>> {
    let now = ctx.now;
    match settings::read_answer(asked, text) {
        Err(e) => {
            out.push(telegram::send_message(
                chat_id,
                &ui::invalid_value_text(&e, text),
                None,
            ));
            Ok(None)
        }
        Ok(settings::Answer::HoursStart(start)) => {
            let next = PendingInput {
                field: end_field.to_string(),
                stash: Some(start.to_string()),
                ..pending.clone()
            };
            db::set_pending_input(tx, chat_id, user_id, &next, now)?;
            out.push(telegram::send_message(
                chat_id,
                &ui::hours_end_prompt(start),
                None,
            ));
            Ok(None)
        }
        Ok(settings::Answer::Lost) => {
            db::clear_pending_input(tx, chat_id, user_id, now)?;
            Ok(None)
        }
        Ok(answer) => Ok(Some(answer)),
    }
}

/// The asking half, shared by the /settings menu and the wizard: remembers that
/// `user_id` owes a value for `field` (asked from the message `message_id`, for
/// `PROMPT_TTL_MINUTES`) and sends the prompt with a Cancel button.
#[allow(clippy::too_many_arguments)]
fn ask_for(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    user_id: i64,
    field: &str,
    message_id: i64,
    prompt: &str,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let pending = PendingInput {
        field: field.to_string(),
        stash: None,
        menu_message_id: Some(message_id),
        expires_at: ctx.now + chrono::Duration::minutes(PROMPT_TTL_MINUTES),
    };
    db::set_pending_input(tx, chat_id, user_id, &pending, ctx.now)?;
    out.push(telegram::send_message(
        chat_id,
        prompt,
        Some(&ui::cancel_keyboard()),
    ));
    Ok(())
}

/// The start of a window stored while its end is asked.
fn stashed_start(pending: &PendingInput) -> Option<u32> {
    pending.stash.as_deref().and_then(|s| s.parse::<u32>().ok())
}

/// A typed answer to a /settings prompt: checked, applied, confirmed, and the
/// menu it came from redrawn.
fn answer_prompt(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    user_id: i64,
    pending: &PendingInput,
    text: &str,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    use settings::{Answer, Asked};
    let now = ctx.now;
    let (mut row, _) = current_settings(tx, ctx, chat_id)?;
    let defaults = &ctx.config.defaults;
    let asked = match SettingsPrompt::parse(&pending.field) {
        Some(SettingsPrompt::PostsPerDay) => Asked::PostsPerDay,
        Some(SettingsPrompt::Hours) => Asked::Hours,
        Some(SettingsPrompt::HoursEnd) => Asked::HoursEnd {
            start: stashed_start(pending),
        },
        Some(SettingsPrompt::Timezone) => Asked::Timezone,
        Some(SettingsPrompt::Locks) => Asked::Locks,
        Some(SettingsPrompt::SummaryHour) => Asked::SummaryHour,
        Some(SettingsPrompt::Categories) => {
            return answer_categories(tx, ctx, chat_id, user_id, pending, text, out);
        }
        Some(SettingsPrompt::Tune) => {
            return tune::answer(tx, ctx, chat_id, user_id, pending, text, out);
        }
        None if pending.field == settings_file::PROMPT_FIELD => {
            settings_file::text_instead_of_file(chat_id, out);
            return Ok(());
        }
        None if setup::is_wizard_field(&pending.field) => {
            return setup::answer_prompt(tx, ctx, chat_id, user_id, pending, text, out);
        }
        None => {
            db::clear_pending_input(tx, chat_id, user_id, now)?;
            return Ok(());
        }
    };
    let end_field = SettingsPrompt::HoursEnd.as_str();
    let Some(answer) = take_answer(
        tx, ctx, chat_id, user_id, pending, asked, end_field, text, out,
    )?
    else {
        return Ok(());
    };
    let (changes, confirmation): (Vec<Change>, String) = match answer {
        Answer::PostsPerDay(n) => (
            settings::apply_posts_per_day(&mut row, defaults, n)
                .into_iter()
                .collect(),
            ui::posts_per_day_set_text(n),
        ),
        Answer::Hours { start, end } => {
            let changes = settings::apply_hours(&mut row, defaults, start, end);
            let text = ui::hours_set_text(&settings::resolve(&row, defaults));
            (changes, text)
        }
        Answer::Timezone(tz) => (
            settings::apply_timezone(&mut row, defaults, tz)
                .into_iter()
                .collect(),
            ui::timezone_set_text(tz),
        ),
        Answer::Locks { posted, skipped } => (
            settings::apply_lock_days(&mut row, defaults, posted, skipped),
            ui::locks_set_text(posted, skipped),
        ),
        Answer::SummaryHour(hour) => (
            settings::apply_summary_hour(&mut row, defaults, hour)
                .into_iter()
                .collect(),
            ui::summary_hour_set_text(hour, settings::resolve(&row, defaults).timezone),
        ),
        Answer::HoursStart(_) | Answer::Lost => return Ok(()),
    };
    finish_prompt(
        tx,
        ctx,
        chat_id,
        user_id,
        pending,
        &row,
        &changes,
        confirmation,
        out,
    )
}

/// The library's categories by name, as the prompts check typed names against.
fn known_categories(conn: &rusqlite::Connection) -> Result<Vec<String>> {
    Ok(db::media::active_categories(conn)?
        .into_iter()
        .map(|(category, _)| category)
        .collect())
}

/// A typed value that is not one: why, and nothing changes (the prompt stays).
fn refuse_value(chat_id: i64, error: &str, sent: &str, out: &mut Vec<Outgoing>) {
    out.push(telegram::send_message(
        chat_id,
        &ui::invalid_value_text(error, sent),
        None,
    ));
}

/// The category mix typed as "quotes 2, tips 1": it lives in its own table.
fn answer_categories(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    user_id: i64,
    pending: &PendingInput,
    text: &str,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let known = known_categories(tx)?;
    let weights = match picker::parse_mix(text, &known) {
        Ok(weights) => weights,
        Err(e) => {
            refuse_value(chat_id, &e, text, out);
            return Ok(());
        }
    };
    let old = db::queue::category_weights(tx, chat_id)?;
    db::queue::set_category_weights(tx, chat_id, &weights)?;
    let mix = picker::format_mix(&weights);
    let changes = if old == weights {
        Vec::new()
    } else {
        vec![Change {
            setting: "category_mix",
            old: picker::format_mix(&old).into(),
            new: mix.clone().into(),
        }]
    };
    let (row, _) = current_settings(tx, ctx, chat_id)?;
    let confirmation = ui::categories_set_text(&mix);
    finish_prompt(
        tx,
        ctx,
        chat_id,
        user_id,
        pending,
        &row,
        &changes,
        confirmation,
        out,
    )
}

/// Saves a prompt's changes (one history version), ends the prompt, confirms,
/// and redraws the menu message it came from.
#[allow(clippy::too_many_arguments)]
fn finish_prompt(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    user_id: i64,
    pending: &PendingInput,
    row: &ChatRow,
    changes: &[Change],
    confirmation: String,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let resolved = save_changes(tx, ctx, row, changes, user_id, "settings menu")?;
    db::clear_pending_input(tx, chat_id, user_id, ctx.now)?;
    out.push(telegram::send_message(chat_id, &confirmation, None));
    if let Some(menu_id) = pending.menu_message_id {
        let (text, keyboard) = menu(tx, ctx, chat_id, &resolved)?;
        out.push(telegram::edit_message(
            chat_id,
            menu_id,
            &text,
            Some(&keyboard),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        for (text, bot, expected) in [
            ("/settings", None, Some(("settings", ""))),
            (
                "/Settings@Story_Bot  x ",
                Some("story_bot"),
                Some(("settings", "x")),
            ),
            ("/settings@other_bot", Some("story_bot"), None),
            ("/settings@other_bot", None, Some(("settings", ""))),
            ("/dryrun off", None, Some(("dryrun", "off"))),
            ("settings", None, None),
            ("/", None, None),
            ("/ settings", None, None),
            ("/sé", None, None),
        ] {
            let got = parse_command(text, bot);
            assert_eq!(
                got.as_ref().map(|(n, a)| (n.as_str(), *a)),
                expected,
                "{text}"
            );
        }
    }
}
