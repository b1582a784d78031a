//! Settings export and import: `/settings export` sends the chat's settings as
//! a JSON document (`domain::settings_file`); a document sent back (as a reply
//! to an export, or after `/settings import`) is read, checked as the menu
//! checks, and its differences shown with ✅ Apply / ✖️ Cancel; Apply records
//! one settings version (reason "import"). `storyline settings import` plans
//! and applies through the same `plan` and `apply`.
//!
//! The file itself is downloaded by the poller before the batch reaches the
//! core (`document_to_fetch`, `telegram::Document::fetched`): the core never
//! waits on Telegram inside its transaction.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{DateTime, Utc};
use log::info;
use rusqlite::{Connection, Transaction};

use super::{Context, SCHEDULE_SETTINGS};
use crate::config::Config;
use crate::db::{self, settings_imports::PendingImport, PendingInput};
use crate::domain::picker;
use crate::domain::settings::{self, Change, ChatRow, ChatSettings};
use crate::domain::settings_file::{self as file, Refusal, SettingsFile};
use crate::domain::ui;
use crate::domain::ui::settings_file::{self as texts, Difference};
use crate::telegram::{self, CallbackQuery, Document, Fetched, Message, Outgoing, Update, User};

/// The pending input of a user asked for a settings file.
pub const PROMPT_FIELD: &str = "settings_import";
/// The reasons an import's settings version carries.
pub const IMPORT_REASON: &str = "import";
pub const CLI_IMPORT_REASON: &str = "import (CLI)";
/// How long a file's differences wait for ✅ Apply.
const IMPORT_TTL_MINUTES: i64 = 60;

/// The document of an update the core may read as a settings file: a .json
/// document from a person. The poller downloads it (up to
/// `file::MAX_FILE_BYTES`); whether it is an import is the core's to decide.
pub fn document_to_fetch(update: &mut Update) -> Option<&mut Document> {
    let message = update.message.as_mut()?;
    if message.from.as_ref().is_none_or(|user| user.is_bot) {
        return None;
    }
    let document = message.document.as_mut()?;
    let json_name = document
        .file_name
        .as_deref()
        .is_some_and(|name| name.to_ascii_lowercase().ends_with(".json"));
    let json_type = document.mime_type.as_deref() == Some("application/json");
    (json_name || json_type).then_some(document)
}

/// The chat's settings file, as exported.
pub fn export_text(
    conn: &Connection,
    config: &Config,
    chat_id: i64,
    now: DateTime<Utc>,
) -> Result<String> {
    let row = db::chat(conn, chat_id)?.unwrap_or_else(|| ChatRow::new(chat_id));
    let resolved = settings::resolve(&row, &config.defaults);
    let mix = db::queue::category_weights(conn, chat_id)?;
    let account = chosen_account(conn, chat_id)?;
    Ok(file::export(&file::Export {
        chat_id,
        title: row.title.as_deref(),
        exported_at: now,
        settings: &resolved,
        mix: &mix,
        account: account.as_ref().and_then(|a| a.username.as_deref()),
    }))
}

/// The account the chat chose, if it may still use it.
fn chosen_account(conn: &Connection, chat_id: i64) -> Result<Option<crate::domain::rows::Account>> {
    match db::accounts::chat_active_account_id(conn, chat_id)? {
        Some(id) => super::accounts::usable_account(conn, chat_id, id),
        None => Ok(None),
    }
}

/// `/settings export`: the file as a document.
pub fn send_export(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let content = export_text(tx, ctx.config, chat_id, ctx.now)?;
    let row = db::chat(tx, chat_id)?.unwrap_or_else(|| ChatRow::new(chat_id));
    let tz = settings::resolve(&row, &ctx.config.defaults).timezone;
    let caption = texts::export_caption(row.title.as_deref(), ctx.now, tz);
    info!("chat {chat_id}: settings exported");
    out.push(telegram::send_document(
        chat_id,
        &file::file_name(chat_id, ctx.now),
        &content,
        &caption,
    ));
    Ok(())
}

/// `/settings import`: the user's next document is the file.
pub fn ask_for_file(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    user_id: i64,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let pending = PendingInput {
        field: PROMPT_FIELD.to_string(),
        stash: None,
        menu_message_id: None,
        expires_at: ctx.now + chrono::Duration::minutes(super::PROMPT_TTL_MINUTES),
    };
    db::set_pending_input(tx, chat_id, user_id, &pending, ctx.now)?;
    out.push(telegram::send_message(
        chat_id,
        &texts::import_prompt(),
        Some(&ui::cancel_keyboard()),
    ));
    Ok(())
}

/// Text typed while a file is awaited: the prompt stays, and says how.
pub fn text_instead_of_file(chat_id: i64, out: &mut Vec<Outgoing>) {
    out.push(telegram::send_message(
        chat_id,
        &texts::import_not_a_settings_file_text(),
        None,
    ));
}

/// Whether `message` is one of our exports (a reply to it imports).
fn is_export(ctx: &Context<'_>, message: &Message) -> bool {
    let from_us = message.from.as_ref().is_some_and(|from| {
        from.is_bot
            && match (ctx.bot_username, from.username.as_deref()) {
                (Some(me), Some(them)) => me.eq_ignore_ascii_case(them),
                _ => true,
            }
    });
    let named_as_export = message
        .document
        .as_ref()
        .and_then(|d| d.file_name.as_deref())
        .is_some_and(|name| name.starts_with(file::FILE_NAME_PREFIX));
    from_us && named_as_export
}

/// A document in a served chat: an import when it replies to an export or
/// answers `/settings import`. `Ok(false)`: none of ours, left alone.
pub fn document_message(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    update_id: i64,
    message: &Message,
    from: &User,
    out: &mut Vec<Outgoing>,
) -> Result<bool> {
    let Some(document) = &message.document else {
        return Ok(false);
    };
    let chat_id = message.chat.id;
    let now = ctx.now;
    let prompted = db::pending_input(tx, chat_id, from.id, now)?
        .is_some_and(|pending| pending.field == PROMPT_FIELD);
    let replies_to_export = message
        .reply_to_message
        .as_deref()
        .is_some_and(|replied| is_export(ctx, replied));
    if !prompted && !replies_to_export {
        return Ok(false);
    }
    db::log_interaction(
        tx,
        update_id,
        chat_id,
        Some(from.id),
        "message",
        PROMPT_FIELD,
        now,
    )?;
    // The prompt was opened by someone allowed to; a reply needs the same right.
    if !prompted {
        let verdict = ctx.verdict(tx, &message.chat, from.id)?;
        if verdict != super::Verdict::Allowed {
            info!(
                "chat {chat_id}: refused a settings import to user {} ({verdict:?})",
                from.id
            );
            let text = match verdict {
                super::Verdict::Unknown => ui::role_unknown_text(),
                _ => ui::admins_only_text("settings"),
            };
            out.push(telegram::send_message(chat_id, &text, None));
            return Ok(true);
        }
    } else {
        db::clear_pending_input(tx, chat_id, from.id, now)?;
    }
    let reply = |out: &mut Vec<Outgoing>, text: String| {
        out.push(telegram::send_message(chat_id, &text, None))
    };
    let bytes = match &document.fetched {
        None => {
            reply(out, texts::import_not_a_settings_file_text());
            return Ok(true);
        }
        Some(Fetched::TooBig) => {
            reply(out, texts::import_too_big_text(file::MAX_FILE_BYTES / 1024));
            return Ok(true);
        }
        Some(Fetched::Failed(why)) => {
            info!("chat {chat_id}: a settings file could not be downloaded: {why}");
            reply(out, texts::import_download_failed_text());
            return Ok(true);
        }
        Some(Fetched::Content(bytes)) => bytes,
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        reply(
            out,
            texts::import_refused_text("file", "is not text (UTF-8), so not a settings file"),
        );
        return Ok(true);
    };
    match plan(tx, ctx.config, chat_id, text, Some(from.id), now)? {
        Err(refusal) => {
            info!("chat {chat_id}: settings file refused: {refusal}");
            reply(
                out,
                texts::import_refused_text(&refusal.field, &refusal.why),
            );
        }
        Ok(plan) if plan.changes.is_empty() => reply(out, texts::import_unchanged_text()),
        Ok(plan) => {
            let pending = PendingImport {
                id: 0,
                chat_id,
                user_id: from.id,
                document: text.to_string(),
                based_on: db::settings_imports::current_version(tx, chat_id)?,
                expires_at: now + chrono::Duration::minutes(IMPORT_TTL_MINUTES),
            };
            let id = db::settings_imports::insert(tx, &pending, now)?;
            let (text, keyboard) = texts::import_preview(&plan.differences, id);
            out.push(telegram::send_message(chat_id, &text, Some(&keyboard)));
        }
    }
    Ok(true)
}

/// ✅ Apply or ✖️ Cancel under an import's differences.
#[allow(clippy::too_many_arguments)]
pub fn press(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    query: &CallbackQuery,
    chat_id: i64,
    message_id: i64,
    import_id: i64,
    apply_it: bool,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let now = ctx.now;
    let answer = |out: &mut Vec<Outgoing>, text: &str, alert: bool| {
        out.push(telegram::answer_callback(&query.id, text, alert))
    };
    let edit = |out: &mut Vec<Outgoing>, text: &str| {
        out.push(telegram::edit_message(chat_id, message_id, text, None))
    };
    let Some(import) = db::settings_imports::get(tx, chat_id, import_id)? else {
        answer(out, &texts::import_gone_alert(), true);
        return Ok(());
    };
    db::settings_imports::delete(tx, import.id)?;
    if !apply_it {
        answer(out, "Cancelled", false);
        edit(out, &texts::import_cancelled_text());
        return Ok(());
    }
    if import.expires_at <= now {
        answer(out, &texts::import_gone_alert(), true);
        edit(out, &texts::import_cancelled_text());
        return Ok(());
    }
    if import.based_on != db::settings_imports::current_version(tx, chat_id)? {
        answer(out, "Out of date", false);
        edit(out, &texts::import_stale_text());
        return Ok(());
    }
    let user_id = query.from.id;
    // Checked again: the library or the accounts may have changed meanwhile.
    match plan(
        tx,
        ctx.config,
        chat_id,
        &import.document,
        Some(user_id),
        now,
    )? {
        Err(refusal) => {
            answer(out, "Not imported", false);
            edit(
                out,
                &texts::import_refused_text(&refusal.field, &refusal.why),
            );
        }
        Ok(plan) if plan.changes.is_empty() => {
            answer(out, "Nothing to change", false);
            edit(out, &texts::import_unchanged_text());
        }
        Ok(plan) => {
            apply(
                tx,
                ctx.config,
                chat_id,
                &plan,
                Some(user_id),
                IMPORT_REASON,
                now,
            )?;
            answer(out, "Imported", false);
            edit(out, &texts::import_applied_text(&plan.differences));
        }
    }
    Ok(())
}

/// What a file would change, checked against the chat as it is now.
#[derive(Debug, Clone)]
pub struct Plan {
    row: ChatRow,
    changes: Vec<Change>,
    /// The new mix, when it changes.
    mix: Option<BTreeMap<String, u32>>,
    /// The newly chosen account, when it changes.
    account: Option<i64>,
    pub differences: Vec<Difference>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Reads `text` and works out its changes to the chat, or why it changes
/// nothing. Changes nothing itself.
pub fn plan(
    conn: &Connection,
    config: &Config,
    chat_id: i64,
    text: &str,
    by: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Result<Plan, Refusal>> {
    let wanted: SettingsFile = match file::parse(text) {
        Ok(wanted) => wanted,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let mut row = db::chat(conn, chat_id)?.unwrap_or_else(|| ChatRow::new(chat_id));
    let mut changes = file::apply_to_row(&mut row, &config.defaults, &wanted, by, now);
    let mut differences: Vec<Difference> = changes.iter().map(texts::difference).collect();

    let mut new_mix = None;
    if let Some(mix) = wanted.category_mix {
        let old = db::queue::category_weights(conn, chat_id)?;
        if mix != old {
            let known: Vec<String> = db::media::active_categories(conn)?
                .into_iter()
                .map(|(category, _)| category)
                .collect();
            for name in mix.keys() {
                if let Err(why) = picker::check_known(name, &known) {
                    return Ok(Err(Refusal::new(format!("category_mix.{name}"), why)));
                }
            }
            let change = Change {
                setting: "category_mix",
                old: picker::format_mix(&old).into(),
                new: picker::format_mix(&mix).into(),
            };
            differences.push(texts::difference(&change));
            changes.push(change);
            new_mix = Some(mix);
        }
    }

    let mut new_account = None;
    if let Some(username) = wanted.instagram_account {
        let usable = db::accounts::accounts_for_chat(conn, chat_id)?;
        let Some(account) = usable.into_iter().find(|a| {
            a.username
                .as_deref()
                .is_some_and(|name| name.eq_ignore_ascii_case(&username))
        }) else {
            return Ok(Err(Refusal::new(
                "instagram_account",
                format!(
                    "@{username} is not an Instagram account this chat may use \
                     (connect it here with /connect first, or set the field to null)"
                ),
            )));
        };
        let old = db::accounts::chat_active_account_id(conn, chat_id)?;
        if old != Some(account.id) {
            let old_name = match old {
                Some(id) => {
                    db::accounts::account(conn, id)?.map(|a| a.username.unwrap_or(a.display_name))
                }
                None => None,
            };
            let change = Change {
                setting: "active_account_id",
                old: old.into(),
                new: account.id.into(),
            };
            differences.push(texts::account_difference(
                old_name.as_deref(),
                account.username.as_deref().unwrap_or(&username),
            ));
            changes.push(change);
            new_account = Some(account.id);
        }
    }
    Ok(Ok(Plan {
        row,
        changes,
        mix: new_mix,
        account: new_account,
        differences,
    }))
}

/// The reason a change made on the command line (`storyline categories set`) is
/// recorded with.
pub const CLI_REASON: &str = "CLI";

/// Sets the chat's category mix as one settings version with `reason`, by `by`
/// (None: the operator on the command line, or the auto-tuner); false when the
/// mix already was `mix`. Inside the caller's transaction.
pub fn set_mix(
    tx: &Connection,
    config: &Config,
    chat_id: i64,
    mix: BTreeMap<String, u32>,
    by: Option<i64>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let old = db::queue::category_weights(tx, chat_id)?;
    if old == mix {
        return Ok(false);
    }
    let plan = Plan {
        row: db::chat(tx, chat_id)?.unwrap_or_else(|| ChatRow::new(chat_id)),
        changes: vec![Change {
            setting: "category_mix",
            old: picker::format_mix(&old).into(),
            new: picker::format_mix(&mix).into(),
        }],
        mix: Some(mix),
        account: None,
        differences: Vec::new(),
    };
    apply(tx, config, chat_id, &plan, by, reason, now)?;
    Ok(true)
}

/// Stores a plan's changes as one settings version (`reason`, by `by`; None is
/// the operator on the command line) and replans the chat's slots when the
/// schedule moved. A plan without changes writes nothing.
pub fn apply(
    tx: &Connection,
    config: &Config,
    chat_id: i64,
    plan: &Plan,
    by: Option<i64>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<ChatSettings> {
    let resolved = settings::resolve(&plan.row, &config.defaults);
    if plan.changes.is_empty() {
        return Ok(resolved);
    }
    db::save_chat_settings(tx, &plan.row, now)?;
    if let Some(mix) = &plan.mix {
        db::queue::set_category_weights(tx, chat_id, mix)?;
    }
    if let Some(account_id) = plan.account {
        db::accounts::set_chat_active_account(tx, chat_id, Some(account_id), now)?;
    }
    db::record_settings_version(
        tx,
        chat_id,
        &super::chats::settings_snapshot(tx, chat_id, &resolved)?,
        &serde_json::to_string(&plan.changes)?,
        by,
        reason,
        now,
    )?;
    if plan
        .changes
        .iter()
        .any(|c| SCHEDULE_SETTINGS.contains(&c.setting))
    {
        super::posting::replan(tx, chat_id, &resolved, now)?;
    }
    for change in &plan.changes {
        info!(
            "chat {chat_id}: {} {} -> {} ({reason})",
            change.setting, change.old, change.new
        );
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telegram::parse_update;
    use serde_json::json;

    fn document_update(from_bot: bool, file_name: &str, mime: Option<&str>) -> Update {
        let mut document = json!({"file_id": "f1", "file_name": file_name, "file_size": 300});
        if let Some(mime) = mime {
            document["mime_type"] = json!(mime);
        }
        parse_update(json!({
            "update_id": 1,
            "message": {
                "message_id": 5,
                "from": {"id": 9, "is_bot": from_bot, "first_name": "A"},
                "chat": {"id": 9, "type": "private"},
                "document": document,
            }
        }))
        .unwrap()
    }

    #[test]
    fn only_json_documents_from_people_are_fetched() {
        for (from_bot, name, mime, fetched) in [
            (false, "storyline-settings-chat9.json", None, true),
            (false, "SETTINGS.JSON", None, true),
            (false, "settings", Some("application/json"), true),
            (false, "photo.jpg", Some("image/jpeg"), false),
            (true, "settings.json", None, false),
        ] {
            let mut update = document_update(from_bot, name, mime);
            assert_eq!(
                document_to_fetch(&mut update).is_some(),
                fetched,
                "{name} {mime:?} from a bot: {from_bot}"
            );
        }
        let mut text = parse_update(json!({"update_id": 2, "message": {
            "message_id": 1, "chat": {"id": 9}, "from": {"id": 9}, "text": "hi"}}))
        .unwrap();
        assert!(document_to_fetch(&mut text).is_none());
    }
}
