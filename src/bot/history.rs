//! /history: a chat's settings changes and story outcomes, newest first, a
//! page at a time. /history sends the first page with ◀ ▶ buttons; a press
//! edits that same message to the page asked for. A list is anchored at the
//! moment /history was sent, so its pages do not shift as new entries arrive;
//! a page that is not there (a forged or stale press) gets an alert and
//! changes nothing. Everyone in a served chat may read it, like /status.

use anyhow::Result;
use chrono::{DateTime, Utc};
use log::info;
use rusqlite::Transaction;

use super::Context;
use crate::db::{self, history::Query};
use crate::domain::history::{page_count, Anchor, Narrow, PAGE_SIZE};
use crate::domain::settings::{self, ChatRow};
use crate::domain::ui::history::{self as ui, PagePosition};
use crate::telegram::{self, CallbackQuery, Outgoing};

/// `/history [settings|posts]`: the newest page.
pub(super) fn show(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    args: &str,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let Some(narrow) = Narrow::from_argument(args) else {
        out.push(telegram::send_message(
            chat_id,
            &ui::history_usage_text(),
            None,
        ));
        return Ok(());
    };
    let (settings_id, post_id) = db::history::newest_ids(tx)?;
    let anchor = Anchor {
        at: ctx.now.timestamp(),
        settings_id,
        post_id,
    };
    let (text, keyboard) = match page(tx, ctx, chat_id, narrow, 0, anchor)? {
        Some((text, keyboard, _)) => (text, keyboard),
        // Page 0 of a list anchored now is always there.
        None => (ui::history_page_gone_alert(), Vec::new()),
    };
    let keyboard = (!keyboard.is_empty()).then_some(keyboard);
    out.push(telegram::send_message(chat_id, &text, keyboard.as_ref()));
    Ok(())
}

/// ◀ or ▶ on a /history message: that message becomes the page asked for.
#[allow(clippy::too_many_arguments)]
pub(super) fn turn_page(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    query: &CallbackQuery,
    chat_id: i64,
    message_id: i64,
    narrow: Narrow,
    number: u32,
    anchor: Anchor,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    match page(tx, ctx, chat_id, narrow, number, anchor)? {
        // Buttons are only ever made on a list with entries.
        Some((text, keyboard, position)) if position.total > 0 => {
            let pages = position.pages;
            out.push(telegram::answer_callback(
                &query.id,
                &ui::history_page_toast(number, pages),
                false,
            ));
            out.push(telegram::edit_message(
                chat_id,
                message_id,
                &text,
                Some(&keyboard),
            ));
        }
        _ => {
            info!("chat {chat_id}: refused a press on history page {number} that is not there");
            out.push(telegram::answer_callback(
                &query.id,
                &ui::history_page_gone_alert(),
                true,
            ));
        }
    }
    Ok(())
}

/// The list as it stood at `anchor`, narrowed.
fn query(chat_id: i64, narrow: Narrow, anchor: Anchor, until: DateTime<Utc>) -> Query {
    Query {
        chat_id: Some(chat_id),
        narrow,
        since: None,
        until: Some(until),
        settings_id_max: Some(anchor.settings_id),
        post_id_max: Some(anchor.post_id),
    }
}

/// Page `number` of the list as it stood at `anchor`, or None when that page
/// is not there (past the last one, or an anchor in the future); with where
/// the page stands.
fn page(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    narrow: Narrow,
    number: u32,
    anchor: Anchor,
) -> Result<Option<(String, telegram::Keyboard, PagePosition)>> {
    let Some(until) = DateTime::from_timestamp(anchor.at, 0).filter(|a| *a <= ctx.now) else {
        return Ok(None);
    };
    let query = query(chat_id, narrow, anchor, until);
    let total = db::history::count(tx, &query)?;
    let pages = page_count(total);
    if number >= pages {
        return Ok(None);
    }
    let entries = db::history::entries(tx, &query, number * PAGE_SIZE, Some(PAGE_SIZE))?;
    let row = db::chat(tx, chat_id)?.unwrap_or_else(|| ChatRow::new(chat_id));
    let tz = settings::resolve(&row, &ctx.config.defaults).timezone;
    let position = PagePosition {
        narrow,
        page: number,
        pages,
        total,
        anchor,
    };
    let (text, keyboard) = ui::history_page(&entries, position, tz);
    Ok(Some((text, keyboard, position)))
}
