//! The /init set-up wizard's part of handling an update: starting or resuming
//! it, its button presses, the values it asks for, and applying the choices
//! when it completes. The steps, what a press does, the button data and the
//! texts are pure, in `crate::domain::wizard`; this is the IO around them.
//!
//! Nothing of the chat's settings changes until ✅ Complete, which applies
//! every choice in the update's transaction and writes one settings_history
//! version ("initial setup"). In a chat the bot does not serve yet, only
//! admins may run the wizard, and completing it enables the chat.

use anyhow::Result;
use chrono::{DateTime, Utc};
use log::info;
use rusqlite::Transaction;

use super::{
    current_settings, is_served, record_initial_version, remember_user, save_changes,
    settings_snapshot, Context,
};
use crate::bot::accounts::{self, AccountChoice, PickOutcome};
use crate::bot::chats::Hook;
use crate::db::{self, wizard::SETUP_REASON, PendingInput};
use crate::domain::callback::{self, Callback};
use crate::domain::picker;
use crate::domain::settings::{self, Change, Toggle};
use crate::domain::ui;
use crate::domain::wizard::{self, Choices, Effect, Field, Press, Step, View};
use crate::telegram::{self, CallbackQuery, Keyboard, Message, Outgoing};

/// A set-up in progress, read back.
struct Running {
    id: i64,
    step: Step,
    choices: Choices,
    started_by: i64,
    started_at: DateTime<Utc>,
    /// Its message, once Telegram answered the send.
    message_id: Option<i64>,
}

/// The chat's set-up in progress; one whose stored values no longer read back
/// counts as none, so /init starts afresh rather than failing every update.
fn running(tx: &Transaction<'_>, chat_id: i64) -> Result<Option<Running>> {
    let Some(stored) = db::wizard::wizard(tx, chat_id)? else {
        return Ok(None);
    };
    let step = Step::from_number(stored.step);
    let choices = Choices::from_json(&stored.choices);
    Ok(step.zip(choices).map(|(step, choices)| Running {
        id: stored.id,
        step,
        choices,
        started_by: stored.started_by,
        started_at: stored.started_at,
        message_id: stored.message_id,
    }))
}

/// Whether /start runs the wizard: a set-up is in progress, or the chat never
/// completed one nor changed a setting.
pub(super) fn start_runs_wizard(tx: &Transaction<'_>, chat_id: i64) -> Result<bool> {
    Ok(db::wizard::wizard(tx, chat_id)?.is_some() || !db::wizard::chat_is_set_up(tx, chat_id)?)
}

pub(super) fn is_wizard_field(field: &str) -> bool {
    Field::from_name(field).is_some()
}

fn category_names(tx: &Transaction<'_>) -> Result<Vec<String>> {
    Ok(db::media::active_categories(tx)?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// The step's text and keyboard, with the accounts and categories as they are now.
fn step_message(
    tx: &Transaction<'_>,
    chat_id: i64,
    wizard_id: i64,
    step: Step,
    choices: &Choices,
) -> Result<(String, Keyboard)> {
    let accounts = db::accounts::accounts_for_chat(tx, chat_id)?;
    let chat_account = match accounts::active_account_for_chat(tx, chat_id)? {
        AccountChoice::Account(account) => Some(account),
        _ => None,
    };
    let categories = db::media::active_categories(tx)?;
    let view = View {
        accounts: &accounts,
        chat_account: chat_account.as_ref(),
        categories: &categories,
    };
    Ok(wizard::step_message(wizard_id, step, choices, &view))
}

/// /init (and /start in a chat never set up): starts the set-up, or shows the
/// one in progress again at its step, in a new message whose buttons replace
/// those of the older one; the older one (when its id is known) is edited to
/// say where the set-up went, without buttons.
pub(super) fn run_init(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    user_id: i64,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let now = ctx.now;
    let (id, step, choices) = match running(tx, chat_id)? {
        Some(running) => {
            let id = db::wizard::put_wizard(
                tx,
                chat_id,
                running.step.number(),
                &running.choices.to_json(),
                running.started_by,
                running.started_at,
                now,
            )?;
            info!(
                "chat {chat_id}: set-up resumed at step {} by user {user_id}",
                running.step.number()
            );
            if let Some(old) = running.message_id {
                out.push(telegram::edit_message(
                    chat_id,
                    old,
                    &wizard::moved_text(running.step),
                    None,
                ));
            }
            (id, running.step, running.choices)
        }
        None => {
            let (_, resolved) = current_settings(tx, ctx, chat_id)?;
            let weights = db::queue::category_weights(tx, chat_id)?;
            let choices = Choices::from_current(&resolved, &weights, &category_names(tx)?);
            let id = db::wizard::put_wizard(
                tx,
                chat_id,
                Step::Mode.number(),
                &choices.to_json(),
                user_id,
                now,
                now,
            )?;
            info!("chat {chat_id}: set-up started by user {user_id}");
            (id, Step::Mode, choices)
        }
    };
    let (text, keyboard) = step_message(tx, chat_id, id, step, &choices)?;
    let mut message = telegram::send_message(chat_id, &text, Some(&keyboard));
    message.on_result = Some(serde_json::to_value(Hook::WizardMessage { wizard_id: id })?);
    out.push(message);
    Ok(())
}

/// Whether an admin's message in a chat the bot does not serve yet belongs to
/// the set-up, and if so handles it: /init, and while a set-up runs there,
/// /cancel and the answers to its prompts. Anything else is for the caller
/// to refuse.
pub(super) fn admin_message_in_unserved_chat(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    update_id: i64,
    message: &Message,
    command: Option<&(String, &str)>,
    out: &mut Vec<Outgoing>,
) -> Result<bool> {
    let Some(from) = &message.from else {
        return Ok(false);
    };
    let chat_id = message.chat.id;
    let now = ctx.now;
    let in_progress = db::wizard::wizard(tx, chat_id)?.is_some();
    let log = |kind: &str, name: &str| {
        db::log_interaction(tx, update_id, chat_id, Some(from.id), kind, name, now)
    };
    match command.map(|(name, _)| name.as_str()) {
        Some("init") => {
            // The chat's row holds its prompts and /connect links; it is not
            // served until the set-up completes.
            if db::insert_chat(tx, chat_id, message.chat.name(), None, now)? {
                record_initial_version(tx, ctx.config, ctx.now, chat_id, Some(from.id))?;
            }
            remember_user(tx, ctx, from)?;
            log("command", "init")?;
            run_init(tx, ctx, chat_id, from.id, out)?;
        }
        Some("cancel") if in_progress => {
            remember_user(tx, ctx, from)?;
            log("command", "cancel")?;
            let text = if db::clear_pending_input(tx, chat_id, from.id, now)? {
                ui::cancelled_text()
            } else {
                ui::nothing_to_cancel_text()
            };
            out.push(telegram::send_message(chat_id, &text, None));
        }
        None if in_progress => {
            let Some(pending) = db::pending_input(tx, chat_id, from.id, now)?
                .filter(|pending| is_wizard_field(&pending.field))
            else {
                return Ok(false);
            };
            remember_user(tx, ctx, from)?;
            log("message", &pending.field)?;
            let text = message.text.as_deref().unwrap_or("");
            answer_prompt(tx, ctx, chat_id, from.id, &pending, text, out)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Whether a press in a chat the bot does not serve yet may go on: an admin's,
/// on the set-up running there (or on the ✖️ Cancel of its prompt).
pub(super) fn admin_press_in_unserved_chat(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    query: &CallbackQuery,
) -> Result<bool> {
    let for_setup = matches!(
        callback::parse(query.data.as_deref().unwrap_or("")),
        Some(Callback::Wizard(_) | Callback::Cancel)
    );
    Ok(for_setup && ctx.is_admin(tx, query.from.id)? && db::wizard::wizard(tx, chat_id)?.is_some())
}

/// The user's prompt of the wizard, if they have one open, is dropped.
fn clear_wizard_prompt(
    tx: &Transaction<'_>,
    chat_id: i64,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    if db::pending_input(tx, chat_id, user_id, now)?.is_some_and(|p| is_wizard_field(&p.field)) {
        db::clear_pending_input(tx, chat_id, user_id, now)?;
    }
    Ok(())
}

/// A press on a wizard button in `chat_id`'s message `message_id`.
pub(super) fn handle_press(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    query: &CallbackQuery,
    chat_id: i64,
    message_id: i64,
    press: Press,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let alert = |out: &mut Vec<Outgoing>, text: &str| {
        out.push(telegram::answer_callback(&query.id, text, true))
    };
    let toast = |out: &mut Vec<Outgoing>, text: &str| {
        out.push(telegram::answer_callback(&query.id, text, false))
    };
    let user_id = query.from.id;
    let now = ctx.now;
    let Some(running) = running(tx, chat_id)? else {
        alert(out, &wizard::not_running_text());
        return Ok(());
    };
    // Another chat's wizard, an older message of this one, or a step it has left.
    if press.wizard_id != running.id || press.step != running.step {
        info!("chat {chat_id}: refused a press on a stale or foreign set-up message");
        alert(out, &wizard::stale_text());
        // A message of an older wizard (its id was not known when /init moved the
        // set-up on) loses its buttons now. The current message on a step it has
        // left is about to be edited anyway.
        if press.wizard_id != running.id && running.message_id != Some(message_id) {
            out.push(telegram::edit_message(
                chat_id,
                message_id,
                &wizard::moved_text(running.step),
                None,
            ));
        }
        return Ok(());
    }
    if let wizard::Action::Account(account_id) = press.action {
        if accounts::usable_account(tx, chat_id, account_id)?.is_none() {
            alert(out, &ui::account_unavailable_text());
            let (text, keyboard) =
                step_message(tx, chat_id, running.id, running.step, &running.choices)?;
            out.push(telegram::edit_message(
                chat_id,
                message_id,
                &text,
                Some(&keyboard),
            ));
            return Ok(());
        }
    }
    let categories = category_names(tx)?;
    match wizard::press(running.step, &running.choices, press.action, &categories) {
        Effect::Show {
            step,
            choices,
            toast: toast_text,
        } => {
            db::wizard::save_wizard(tx, running.id, step.number(), &choices.to_json(), now)?;
            toast(out, &toast_text);
            let (text, keyboard) = step_message(tx, chat_id, running.id, step, &choices)?;
            out.push(telegram::edit_message(
                chat_id,
                message_id,
                &text,
                Some(&keyboard),
            ));
        }
        Effect::Ask(field) => {
            let (_, mut resolved) = current_settings(tx, ctx, chat_id)?;
            let choices = &running.choices;
            resolved.posting_hours_start = choices.hours_start;
            resolved.posting_hours_end = choices.hours_end;
            resolved.timezone = choices.timezone();
            let prompt = match field {
                Field::PostsPerDay => ui::posts_per_day_prompt(choices.posts_per_day),
                Field::Hours | Field::HoursEnd => ui::hours_prompt(&resolved),
                Field::Timezone => ui::timezone_prompt(resolved.timezone),
                Field::SummaryHour => {
                    ui::summary_hour_prompt(choices.summary_hour, resolved.timezone)
                }
            };
            super::ask_for(
                tx,
                ctx,
                chat_id,
                user_id,
                field.name(),
                message_id,
                &prompt,
                out,
            )?;
            toast(out, "Reply with the value");
        }
        Effect::Connect => {
            toast(out, "Connect Instagram");
            out.push(super::connect_message(
                tx, ctx.config, chat_id, user_id, ctx.now,
            )?);
        }
        Effect::Cancel => {
            db::wizard::delete_wizard(tx, chat_id)?;
            clear_wizard_prompt(tx, chat_id, user_id, now)?;
            info!("chat {chat_id}: set-up cancelled by user {user_id}");
            toast(out, "Set-up cancelled");
            out.push(telegram::edit_message(
                chat_id,
                message_id,
                &wizard::cancelled_text(),
                None,
            ));
        }
        Effect::Complete => complete(tx, ctx, query, chat_id, message_id, &running, out)?,
        Effect::Alert(text) => alert(out, &text),
    }
    Ok(())
}

/// ✅ Complete: applies every choice and writes one settings version.
fn complete(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    query: &CallbackQuery,
    chat_id: i64,
    message_id: i64,
    running: &Running,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let user_id = query.from.id;
    let now = ctx.now;
    let choices = &running.choices;
    let served = is_served(tx, ctx.config, chat_id)?;
    let (mut row, _) = current_settings(tx, ctx, chat_id)?;
    let mut changes: Vec<Change> = Vec::new();
    if let Some(account_id) = choices.account_id {
        match accounts::choose_account(tx, chat_id, account_id, ctx.now)? {
            PickOutcome::Unavailable => {
                // Nothing is written yet: back to the Instagram step to choose again.
                let mut again = choices.clone();
                again.account_id = None;
                db::wizard::save_wizard(
                    tx,
                    running.id,
                    Step::Instagram.number(),
                    &again.to_json(),
                    now,
                )?;
                out.push(telegram::answer_callback(
                    &query.id,
                    &ui::account_unavailable_text(),
                    true,
                ));
                let (text, keyboard) =
                    step_message(tx, chat_id, running.id, Step::Instagram, &again)?;
                out.push(telegram::edit_message(
                    chat_id,
                    message_id,
                    &text,
                    Some(&keyboard),
                ));
                return Ok(());
            }
            PickOutcome::Unchanged(_) => {}
            PickOutcome::Changed { account, old } => changes.push(Change {
                setting: "active_account_id",
                old: old.into(),
                new: account.id.into(),
            }),
        }
    }
    let defaults = &ctx.config.defaults;
    changes.extend(settings::apply_toggle(
        &mut row,
        defaults,
        Toggle::DryRun,
        choices.dry_run,
        user_id,
        now,
    ));
    changes.extend(settings::apply_posts_per_day(
        &mut row,
        defaults,
        choices.posts_per_day,
    ));
    changes.extend(settings::apply_hours(
        &mut row,
        defaults,
        choices.hours_start,
        choices.hours_end,
    ));
    changes.extend(settings::apply_timezone(
        &mut row,
        defaults,
        choices.timezone(),
    ));
    changes.extend(settings::apply_summary_hour(
        &mut row,
        defaults,
        choices.summary_hour,
    ));
    let old_mix = db::queue::category_weights(tx, chat_id)?;
    let mix = wizard::mix_after_setup(&old_mix, &category_names(tx)?, &choices.excluded_categories);
    if mix != old_mix {
        db::queue::set_category_weights(tx, chat_id, &mix)?;
        changes.push(Change {
            setting: "category_mix",
            old: picker::format_mix(&old_mix).into(),
            new: picker::format_mix(&mix).into(),
        });
    }
    if !served {
        db::authorize_chat(tx, chat_id, user_id, now)?;
        info!("chat {chat_id}: enabled by admin {user_id} through the set-up");
    }
    if changes.is_empty() {
        // Nothing differs from before, but the set-up is recorded all the same:
        // it is what marks the chat as set up.
        let resolved = settings::resolve(&row, defaults);
        db::record_settings_version(
            tx,
            chat_id,
            &settings_snapshot(tx, chat_id, &resolved)?,
            "[]",
            Some(user_id),
            SETUP_REASON,
            now,
        )?;
    } else {
        save_changes(tx, ctx, &row, &changes, user_id, SETUP_REASON)?;
    }
    db::wizard::delete_wizard(tx, chat_id)?;
    clear_wizard_prompt(tx, chat_id, user_id, now)?;
    info!("chat {chat_id}: set-up completed by user {user_id}");

    let accounts = db::accounts::accounts_for_chat(tx, chat_id)?;
    let chat_account = match accounts::active_account_for_chat(tx, chat_id)? {
        AccountChoice::Account(account) => Some(account),
        _ => None,
    };
    let categories = db::media::active_categories(tx)?;
    let view = View {
        accounts: &accounts,
        chat_account: chat_account.as_ref(),
        categories: &categories,
    };
    out.push(telegram::answer_callback(
        &query.id,
        "Set-up complete",
        false,
    ));
    out.push(telegram::edit_message(
        chat_id,
        message_id,
        &wizard::completed_text(choices, &view, !served),
        None,
    ));
    Ok(())
}

/// A typed answer to one of the wizard's prompts: checked like the same value
/// in /settings, then kept in the wizard (not the chat's settings) and shown.
pub(super) fn answer_prompt(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    user_id: i64,
    pending: &PendingInput,
    text: &str,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let now = ctx.now;
    let reply = |out: &mut Vec<Outgoing>, text: String| {
        out.push(telegram::send_message(chat_id, &text, None))
    };
    let (Some(field), Some(running)) = (Field::from_name(&pending.field), running(tx, chat_id)?)
    else {
        db::clear_pending_input(tx, chat_id, user_id, now)?;
        reply(out, wizard::not_running_text());
        return Ok(());
    };
    use settings::{Answer, Asked};
    let asked = match field {
        Field::PostsPerDay => Asked::PostsPerDay,
        Field::Hours => Asked::Hours,
        Field::HoursEnd => Asked::HoursEnd {
            start: super::stashed_start(pending),
        },
        Field::Timezone => Asked::Timezone,
        Field::SummaryHour => Asked::SummaryHour,
    };
    let end_field = Field::HoursEnd.name();
    let Some(answer) = super::take_answer(
        tx, ctx, chat_id, user_id, pending, asked, end_field, text, out,
    )?
    else {
        return Ok(());
    };
    let mut choices = running.choices.clone();
    let taken = match answer {
        Answer::PostsPerDay(n) => {
            choices.posts_per_day = n;
            format!("Posts per day: {n}")
        }
        Answer::Hours { start, end } => {
            choices.hours_start = start;
            choices.hours_end = end;
            format!("Posting hours: {}", settings::format_window(start, end))
        }
        Answer::Timezone(tz) => {
            choices.timezone = tz.name().to_string();
            format!("Time zone: {}", tz.name())
        }
        Answer::SummaryHour(hour) => {
            choices.summary_hour = hour;
            format!("Daily summary: {}", ui::summary_hour_words(hour))
        }
        // Not asked by the wizard; the menu's prompts only.
        Answer::Locks { .. } | Answer::HoursStart(_) | Answer::Lost => return Ok(()),
    };
    db::wizard::save_wizard(
        tx,
        running.id,
        running.step.number(),
        &choices.to_json(),
        now,
    )?;
    db::clear_pending_input(tx, chat_id, user_id, now)?;
    reply(out, wizard::value_taken_text(&taken));
    if let Some(wizard_message_id) = pending.menu_message_id {
        let (text, keyboard) = step_message(tx, chat_id, running.id, running.step, &choices)?;
        out.push(telegram::edit_message(
            chat_id,
            wizard_message_id,
            &text,
            Some(&keyboard),
        ));
    }
    Ok(())
}
