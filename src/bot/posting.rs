//! The posting flow on the core loop: planning each chat's windows into the
//! queue, firing due slots (the story goes to the chat with buttons), missed
//! slots after downtime, the "running dry" warning, /next, and the buttons under
//! a story. Times and picks come from the pure `schedule` and `picker`; SQL from
//! `db`; words from `ui`. Every function takes the chat id it works for.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use log::{info, warn};
use rusqlite::Connection;

use crate::bot::chats::Hook;
use crate::bot::publish;
use crate::config::Config;
use crate::db::media::MediaItem;
use crate::db::queue::{self, QueueRow, FOREVER};
use crate::db::{self};
use crate::domain::callback::StoryAction;
use crate::domain::picker::{Pool, Rng};
use crate::domain::schedule;
use crate::domain::settings::{self, ChatSettings};
use crate::domain::status::{JobState, MediaKind, QueueStatus};
use crate::domain::ui;
use crate::media::convert;
use crate::telegram::{self, CallbackQuery, FileSource, Outgoing};

/// A slot whose time passed longer ago than this was missed (the Pi was off).
pub const MISSED_AFTER: Duration = Duration::minutes(15);
/// How far ahead windows are planned into the queue.
const PLAN_HORIZON: Duration = Duration::hours(30);
/// Warn when the eligible items cover fewer days than this.
const POOL_WARNING_DAYS: usize = 7;

/// The seed of a chat's window: the same chat and day always get the same
/// jitter and picks, so /schedule's preview matches what is planned later.
pub fn seed_for(chat_id: i64, window_date: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in chat_id.to_le_bytes().iter().chain(window_date.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The chats the scheduler works for, with their settings.
pub fn served_chats(conn: &Connection, config: &Config) -> Result<Vec<(i64, ChatSettings)>> {
    let mut out = Vec::new();
    for row in db::chats(conn)? {
        if crate::bot::chats::is_served(conn, config, row.chat_id)? {
            out.push((row.chat_id, settings::resolve(&row, &config.defaults)));
        }
    }
    Ok(out)
}

/// The chat's items not yet planned, enough for `needed` picks from any category.
pub fn load_pool(
    conn: &Connection,
    chat_id: i64,
    now: DateTime<Utc>,
    needed: usize,
) -> Result<Pool> {
    load(conn, chat_id, now, needed, queue::eligible_in_category)
}

/// The chat's items that can go out right now, planned for later or not.
fn load_pool_now(conn: &Connection, chat_id: i64, now: DateTime<Utc>) -> Result<Pool> {
    load(conn, chat_id, now, 1, queue::eligible_now_in_category)
}

type EligibleQuery = fn(
    &Connection,
    i64,
    &str,
    DateTime<Utc>,
    usize,
) -> Result<Vec<crate::domain::picker::Candidate>>;

fn load(
    conn: &Connection,
    chat_id: i64,
    now: DateTime<Utc>,
    needed: usize,
    query: EligibleQuery,
) -> Result<Pool> {
    let mut candidates = Vec::new();
    for category in queue::chat_categories_present(conn, chat_id)? {
        candidates.extend(query(conn, chat_id, &category, now, needed)?);
    }
    Ok(Pool::new(candidates, now))
}

/// Plans every window of the chat that is not planned yet and not over,
/// picking an item for each future slot. Returns the number of slots added.
pub fn plan_chat(
    conn: &Connection,
    chat_id: i64,
    s: &ChatSettings,
    now: DateTime<Utc>,
) -> Result<usize> {
    let mut added = 0;
    for window in schedule::upcoming_windows(
        now,
        s.timezone,
        s.posting_hours_start,
        s.posting_hours_end,
        PLAN_HORIZON,
    ) {
        let date = window.date.to_string();
        if queue::window_planned(conn, chat_id, &date)? {
            continue;
        }
        let seed = seed_for(chat_id, &date);
        let future: Vec<DateTime<Utc>> = schedule::slots(&window, s.posts_per_day, seed)
            .into_iter()
            .filter(|t| *t > now)
            .collect();
        let mut pool = load_pool(conn, chat_id, now, future.len())?;
        let weights = queue::category_weights(conn, chat_id)?;
        let mut rng = Rng::new(seed ^ 0x9e37_79b9_7f4a_7c15);
        for at in &future {
            let pick = pool.pick(&weights, &mut rng);
            queue::insert_slot(
                conn,
                chat_id,
                *at,
                &date,
                pick.as_ref().map(|c| c.sha256.as_str()),
                now,
            )?;
            added += 1;
        }
        queue::mark_window_planned(conn, chat_id, &date, now)?;
    }
    Ok(added)
}

/// After a schedule setting changed: drop the future part of the plan so the
/// next tick plans it again with the new settings.
pub fn replan(conn: &Connection, chat_id: i64, s: &ChatSettings, now: DateTime<Utc>) -> Result<()> {
    let local_today = now.with_timezone(&s.timezone).date_naive();
    let open: Vec<String> = (-1..=2)
        .map(|d| (local_today + Duration::days(d)).to_string())
        .collect();
    queue::forget_future_plan(conn, chat_id, now, &open)
}

/// One scheduler pass: missed slots, planning, the pool warning, and the slots
/// due now. Returns the calls to make; the caller commits them with the changes.
pub fn tick(
    conn: &Connection,
    config: &Config,
    key: Option<&[u8; 32]>,
    now: DateTime<Utc>,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let missed_before = now - MISSED_AFTER;
    let missed = queue::mark_missed(conn, missed_before)?;
    let chats = served_chats(conn, config)?;
    // Telegram delivers nothing to these: no plan, no notices, no stories.
    let inactive = crate::bot::chats::inactive_chats(conn)?;
    for (chat_id, s) in chats.iter().filter(|(id, _)| !inactive.contains(id)) {
        plan_chat(conn, *chat_id, s, now)?;
        let missed_here: Vec<&QueueRow> = missed.iter().filter(|m| m.chat_id == *chat_id).collect();
        if !missed_here.is_empty() && !s.is_paused {
            let next = queue::next_pending_for_chat(conn, *chat_id)?.map(|r| r.scheduled_for);
            info!(
                "chat {chat_id}: {} missed while not running",
                crate::domain::markup::plural(missed_here.len(), "slot", "slots")
            );
            out.push(telegram::send_message(
                *chat_id,
                &ui::missed_text(missed_here.len(), next, s.timezone),
                None,
            ));
        }
        warn_if_running_dry(conn, *chat_id, s, now, out)?;
        // A chat's summary or weekly tuning that fails on its own data (not on
        // the disk) is undone, its messages too, and logged; it does not hold up
        // every other chat.
        let told = out.len();
        let summary = db::in_savepoint(conn, || {
            crate::bot::summary::send_if_due(conn, key, *chat_id, s, now, out)
        });
        keep_or_log(summary, *chat_id, "daily summary", out, told)?;
        if s.auto_tune.is_some() {
            let told = out.len();
            let tuned = db::in_savepoint(conn, || {
                crate::bot::tune::run_if_due(conn, config, *chat_id, s, now, out)
            });
            keep_or_log(tuned, *chat_id, "auto-tune", out, told)?;
        }
    }
    for slot in queue::due_slots(conn, now, missed_before)? {
        let Some((_, s)) = chats.iter().find(|(id, _)| *id == slot.chat_id) else {
            queue::set_slot_status(
                conn,
                slot.id,
                QueueStatus::Skipped,
                Some("the chat is no longer served"),
            )?;
            continue;
        };
        if s.is_paused {
            queue::set_slot_status(conn, slot.id, QueueStatus::Skipped, Some("paused"))?;
            continue;
        }
        if inactive.contains(&slot.chat_id) {
            queue::set_slot_status(
                conn,
                slot.id,
                QueueStatus::Skipped,
                Some("the chat is inactive: Telegram no longer delivers to it"),
            )?;
            continue;
        }
        send_slot(conn, config, key, s, slot, now, out)?;
    }
    Ok(())
}

fn warn_if_running_dry(
    conn: &Connection,
    chat_id: i64,
    s: &ChatSettings,
    now: DateTime<Utc>,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    if s.is_paused {
        return Ok(());
    }
    let local_today = now.with_timezone(&s.timezone).date_naive().to_string();
    if queue::pool_warned_on(conn, chat_id)?.as_deref() == Some(local_today.as_str()) {
        return Ok(());
    }
    let needed = POOL_WARNING_DAYS * s.posts_per_day as usize;
    let eligible = queue::count_eligible(conn, chat_id, now, needed)?;
    if eligible < needed {
        queue::set_pool_warned(conn, chat_id, &local_today)?;
        out.push(telegram::send_message(
            chat_id,
            &ui::running_dry_text(eligible, s.posts_per_day),
            None,
        ));
    }
    Ok(())
}

/// Sends a slot's story now: checks its file (gone → next item; too large for
/// Telegram → reported and locked), then hands the photo or video to the outbox.
#[allow(clippy::too_many_arguments)]
pub fn send_slot(
    conn: &Connection,
    config: &Config,
    key: Option<&[u8; 32]>,
    s: &ChatSettings,
    slot: QueueRow,
    now: DateTime<Utc>,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let chat_id = slot.chat_id;
    // A planned item that was posted, locked or sent by /next since planning is
    // not sent again: the slot picks anew.
    let mut sha = match slot.sha256.clone() {
        Some(planned) if queue::content_available(conn, chat_id, &planned, now, slot.id)? => {
            Some(planned)
        }
        _ => None,
    };
    let weights = queue::category_weights(conn, chat_id)?;
    // Seeded with the slot's time as stored, so a slot draws as it always did.
    let stored_time = slot
        .scheduled_for
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut rng = Rng::new(seed_for(chat_id, &stored_time));
    // Each round either sends or rules out one content, so this ends.
    for _ in 0..64 {
        let content = match sha.take() {
            Some(c) => c,
            None => {
                let mut pool = load_pool_now(conn, chat_id, now)?;
                match pool.pick(&weights, &mut rng) {
                    Some(c) => c.sha256,
                    None => {
                        // Other categories may still have items: the mix left them
                        // out on purpose, so the slot is skipped rather than filled.
                        let (reason, text) = if !config.media.dir.is_dir() {
                            (MEDIA_FOLDER_MISSING, media_folder_missing_text(config))
                        } else if pool.is_empty() {
                            ("nothing eligible to post", ui::nothing_to_post_text())
                        } else {
                            (
                                "the categories of the mix ran dry",
                                ui::mix_ran_dry_text(weights.keys().map(String::as_str)),
                            )
                        };
                        queue::set_slot_status(conn, slot.id, QueueStatus::Failed, Some(reason))?;
                        out.push(telegram::send_message(chat_id, &text, None));
                        return Ok(());
                    }
                }
            }
        };
        let Some(item) = db::media::active_item_for_content(conn, &content)? else {
            queue::sync_content(conn, std::slice::from_ref(&content))?;
            continue;
        };
        let path = config.media.dir.join(&item.path);
        let size = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta.len(),
            // Not one file gone but all of them (an unmounted disk): said as it
            // is, and the library is left as it was for when the folder is back.
            _ if !config.media.dir.is_dir() => {
                queue::set_slot_status(
                    conn,
                    slot.id,
                    QueueStatus::Failed,
                    Some(MEDIA_FOLDER_MISSING),
                )?;
                out.push(telegram::send_message(
                    chat_id,
                    &media_folder_missing_text(config),
                    None,
                ));
                return Ok(());
            }
            _ => {
                info!(
                    "chat {chat_id}: {} is gone; taking the next item",
                    item.path
                );
                db::media::deactivate_item(conn, item.id)?;
                queue::sync_content(conn, std::slice::from_ref(&content))?;
                continue;
            }
        };
        let is_video = item.kind == MediaKind::Video;
        let limit = telegram::MAX_UPLOAD_BYTES;
        if is_video && size > limit && item.telegram_file_id.is_none() {
            warn!(
                "chat {chat_id}: {} is {size} bytes, over Telegram's limit",
                item.path
            );
            queue::lock_content(conn, chat_id, &content, FOREVER, "too large for Telegram")?;
            out.push(telegram::send_message(
                chat_id,
                &ui::too_large_text(&item.path, size, limit, is_video),
                None,
            ));
            continue;
        }
        // A photo Telegram would refuse goes as a preview; one it cannot be
        // shown at all is reported and locked like a video over the limit.
        let source =
            match convert::chat_source(&item, &path, &crate::media::convert::cache_dir(config)) {
                Ok(source) => source,
                Err(reason) => {
                    warn!("chat {chat_id}: {} cannot be shown: {reason}", item.path);
                    queue::lock_content(
                        conn,
                        chat_id,
                        &content,
                        FOREVER,
                        "cannot be shown in Telegram",
                    )?;
                    out.push(telegram::send_message(
                        chat_id,
                        &ui::unshowable_photo_text(&item.path, &reason),
                        None,
                    ));
                    continue;
                }
            };
        queue::set_slot_content(conn, slot.id, Some(&content), Some(item.id))?;
        queue::set_slot_status(conn, slot.id, QueueStatus::Sending, None)?;
        match publish::route(conn, config, key, chat_id, s, now)? {
            publish::Route::Publish {
                account_id,
                dry_run,
            } => {
                publish::create_job(conn, slot.id, chat_id, account_id, None, dry_run, now)?;
            }
            publish::Route::Manual {
                offer_auto_post,
                note,
            } => {
                out.push(story_message(
                    chat_id,
                    &slot,
                    &item,
                    &source,
                    s,
                    offer_auto_post,
                    note.as_deref(),
                ));
            }
        }
        return Ok(());
    }
    queue::set_slot_status(
        conn,
        slot.id,
        QueueStatus::Failed,
        Some("no sendable file found"),
    )?;
    Ok(())
}

const MEDIA_FOLDER_MISSING: &str = "the media folder is missing";

fn media_folder_missing_text(config: &Config) -> String {
    ui::media_folder_missing_text(&config.media.dir.display().to_string())
}

fn story_message(
    chat_id: i64,
    slot: &QueueRow,
    item: &MediaItem,
    source: &FileSource,
    s: &ChatSettings,
    offer_auto_post: bool,
    note: Option<&str>,
) -> Outgoing {
    let lines = note.map(ui::not_published_note).unwrap_or_default();
    let caption = story_caption(slot, item, s, &lines);
    let hook = Hook::Story {
        queue_id: slot.id,
        media_item_id: item.id,
        chat_id,
        name: file_name(&item.path).to_string(),
    };
    telegram::send_media(
        chat_id,
        item.kind == MediaKind::Video,
        source,
        &caption,
        &ui::story_buttons(slot.id, offer_auto_post),
        serde_json::to_value(hook).unwrap_or_default(),
    )
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn story_caption(
    slot: &QueueRow,
    item: &MediaItem,
    s: &ChatSettings,
    lines: &[crate::domain::html_fit::Piece],
) -> String {
    ui::story_caption(
        &item.category,
        &item.path,
        slot.scheduled_for,
        s.timezone,
        s.dry_run_mode,
        lines,
    )
}

/// /next: the chat's next planned story goes out now (or a fresh pick, when
/// nothing is planned).
pub fn send_next(
    conn: &Connection,
    config: &Config,
    key: Option<&[u8; 32]>,
    chat_id: i64,
    s: &ChatSettings,
    now: DateTime<Utc>,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let slot = match queue::next_pending_for_chat(conn, chat_id)? {
        Some(slot) => slot,
        None => {
            let date = now.with_timezone(&s.timezone).date_naive().to_string();
            let id = queue::insert_slot(conn, chat_id, now, &date, None, now)?;
            queue::queue_item(conn, id)?
                .ok_or_else(|| anyhow::anyhow!("queue row {id} vanished"))?
        }
    };
    send_slot(conn, config, key, s, slot, now, out)
}

/// A press on a story's buttons.
#[allow(clippy::too_many_arguments)]
pub fn handle_story_press(
    conn: &Connection,
    config: &Config,
    key: Option<&[u8; 32]>,
    query: &CallbackQuery,
    chat_id: i64,
    message_id: i64,
    action: StoryAction,
    queue_id: i64,
    now: DateTime<Utc>,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let alert = |out: &mut Vec<Outgoing>, text: &str| {
        out.push(telegram::answer_callback(&query.id, text, true))
    };
    let row = queue::queue_item(conn, queue_id)?;
    if matches!(
        action,
        StoryAction::WasPublished | StoryAction::PublishAgain
    ) {
        return answer_unknown_outcome(
            conn, config, query, chat_id, message_id, action, row, now, out,
        );
    }
    // Another chat's item, or a message that is not this item's: the same answer,
    // so nothing about other chats can be learnt by probing ids.
    let Some(row) =
        row.filter(|r| r.chat_id == chat_id && r.telegram_message_id == Some(message_id))
    else {
        alert(out, "This button does not belong to a story of this chat.");
        return Ok(());
    };
    let s = settings::resolve(
        &db::chat(conn, chat_id)?.unwrap_or_else(|| settings::ChatRow::new(chat_id)),
        &config.defaults,
    );
    if row.status != QueueStatus::Sent {
        let text = match (row.status, row.decided_by) {
            (QueueStatus::Posted | QueueStatus::Skipped | QueueStatus::Rejected, Some(by)) => {
                let at = row.decided_at.unwrap_or(now);
                ui::already_decided_text(
                    row.status.as_str(),
                    &db::user_display_name(conn, by)?,
                    at,
                    s.timezone,
                )
            }
            _ => "This story is not waiting for a decision.".to_string(),
        };
        alert(out, &text);
        return Ok(());
    }
    let item = match row.media_item_id {
        Some(id) => db::media::item_by_id(conn, id)?,
        None => None,
    };
    let (Some(item), Some(sha)) = (item, row.sha256.clone()) else {
        alert(out, "This story's file is no longer known.");
        return Ok(());
    };
    let caption = |lines: &[crate::domain::html_fit::Piece]| story_caption(&row, &item, &s, lines);
    match action {
        StoryAction::AutoPost => {
            match publish::publishable_account(conn, config, key, chat_id, &s, now)? {
                Ok(account_id) => {
                    publish::create_job(
                        conn,
                        queue_id,
                        chat_id,
                        account_id,
                        Some(query.from.id),
                        s.dry_run_mode,
                        now,
                    )?;
                    queue::set_slot_status(conn, queue_id, QueueStatus::Sending, None)?;
                    out.push(telegram::answer_callback(
                        &query.id,
                        "Publishing to Instagram…",
                        false,
                    ));
                    let text = caption(&ui::caption_line("🤖 Publishing to Instagram…"));
                    out.push(telegram::edit_caption(chat_id, message_id, &text, None));
                }
                Err(reason) => alert(out, &format!("Cannot publish: {reason}.")),
            }
        }
        StoryAction::WasPublished | StoryAction::PublishAgain => {}
        StoryAction::Reject => {
            out.push(telegram::answer_callback(
                &query.id,
                "Reject for good? Confirm below.",
                false,
            ));
            out.push(telegram::edit_keyboard(
                chat_id,
                message_id,
                &ui::reject_confirm_keyboard(queue_id),
            ));
        }
        StoryAction::RejectCancelled => {
            out.push(telegram::answer_callback(&query.id, "Kept", false));
            out.push(telegram::edit_keyboard(
                chat_id,
                message_id,
                &ui::story_keyboard(queue_id),
            ));
        }
        StoryAction::Posted | StoryAction::Skip | StoryAction::RejectConfirmed => {
            let (status, lock_days, reason) = match action {
                StoryAction::Posted => (QueueStatus::Posted, Some(s.posted_lock_days), "posted"),
                StoryAction::Skip => (QueueStatus::Skipped, Some(s.skipped_lock_days), "skipped"),
                _ => (QueueStatus::Rejected, None, "rejected"),
            };
            let until = match lock_days {
                Some(0) => None,
                Some(days) => Some(now + Duration::days(i64::from(days))),
                None => Some(FOREVER),
            };
            let user = query.from.id;
            queue::decide(conn, queue_id, status, user, now)?;
            let method = if s.dry_run_mode { "dry_run" } else { "manual" };
            queue::record_history(
                conn,
                chat_id,
                Some(queue_id),
                Some(item.id),
                &sha,
                status.as_str(),
                method,
                Some(user),
                now,
            )?;
            queue::record_decision(
                conn,
                chat_id,
                &sha,
                status == QueueStatus::Posted,
                until,
                reason,
                now,
            )?;
            if status == QueueStatus::Posted && !s.dry_run_mode {
                crate::bot::insights::track_posted_by_hand(
                    conn,
                    queue_id,
                    chat_id,
                    &item.category,
                    now,
                )?;
            }
            let by = db::user_display_name(conn, user)?;
            info!("chat {chat_id}: {} {status} by user {user}", item.path);
            out.push(telegram::answer_callback(
                &query.id,
                &ui::decision_toast(status.as_str()),
                false,
            ));
            let text = caption(&ui::caption_line(ui::outcome_line(
                status.as_str(),
                &by,
                now,
                s.timezone,
            )));
            out.push(telegram::edit_caption(chat_id, message_id, &text, None));
        }
    }
    Ok(())
}

/// A part of the tick done in its own savepoint: a storage error fails the tick
/// (it is tried again); any other error was undone, so its messages go too and
/// it is logged.
fn keep_or_log(
    result: Result<()>,
    chat_id: i64,
    what: &str,
    out: &mut Vec<Outgoing>,
    told: usize,
) -> Result<()> {
    match result {
        Err(e) if !db::is_storage_error(&e) => {
            out.truncate(told);
            warn!("chat {chat_id}: {what}: {e:#}");
            Ok(())
        }
        other => other,
    }
}

/// One line per upcoming slot of the chat, for /queue and `storyline queue`.
pub fn queue_lines(
    conn: &Connection,
    chat_id: i64,
    s: &ChatSettings,
    limit: usize,
) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for row in queue::upcoming(conn, chat_id, limit)? {
        let at = row.scheduled_for;
        let item = match &row.sha256 {
            Some(sha) => db::media::active_item_for_content(conn, sha)?.map(|i| i.path),
            None => None,
        };
        lines.push(ui::queue_line(
            at,
            s.timezone,
            item.as_deref(),
            row.status.as_str(),
        ));
    }
    Ok(lines)
}

/// The plan for `days` local days, today first: each day holds the slots whose
/// local time falls on it (a window past midnight spills into the next day),
/// only those still to come — queued slots still pending, and for windows not
/// planned yet, what planning would pick. Slots already used (sent by /next,
/// decided, missed) are not listed. Nothing is written.
pub fn preview(
    conn: &Connection,
    chat_id: Option<i64>,
    s: &ChatSettings,
    weights: &BTreeMap<String, u32>,
    now: DateTime<Utc>,
    days: u32,
) -> Result<Vec<ui::PlannedDay>> {
    let today = now.with_timezone(&s.timezone).date_naive();
    let dates: Vec<NaiveDate> = (0..i64::from(days.max(1)))
        .filter_map(|d| today.checked_add_signed(Duration::days(d)))
        .collect();
    let last = dates.last().copied().unwrap_or(today);
    let end = schedule::local_midnight_after(last, s.timezone);
    let windows = schedule::upcoming_windows(
        now,
        s.timezone,
        s.posting_hours_start,
        s.posting_hours_end,
        end - now,
    );
    let needed = windows.len() * s.posts_per_day as usize;
    let mut pool = match chat_id {
        Some(id) => load_pool(conn, id, now, needed)?,
        None => Pool::new(queue::library_candidates(conn)?, now),
    };
    let mut slots = Vec::new();
    for window in windows {
        let date = window.date.to_string();
        let planned = match chat_id {
            Some(id) => queue::window_planned(conn, id, &date)?,
            None => false,
        };
        if let (true, Some(id)) = (planned, chat_id) {
            for row in queue::window_slots(conn, id, &date)? {
                if row.status != QueueStatus::Pending {
                    continue;
                }
                let at = row.scheduled_for;
                let path = match &row.sha256 {
                    Some(sha) => db::media::active_item_for_content(conn, sha)?.map(|i| i.path),
                    None => None,
                };
                slots.push((at, path, row.status.to_string()));
            }
        } else {
            let seed = match chat_id {
                Some(id) => seed_for(id, &date),
                None => seed_for(0, &date),
            };
            let mut rng = Rng::new(seed ^ 0x9e37_79b9_7f4a_7c15);
            for at in schedule::slots(&window, s.posts_per_day, seed)
                .into_iter()
                .filter(|t| *t > now)
            {
                let path = match pool.pick(weights, &mut rng) {
                    Some(c) => db::media::active_item_for_content(conn, &c.sha256)?.map(|i| i.path),
                    None => None,
                };
                slots.push((at, path, "planned".to_string()));
            }
        }
    }
    slots.sort_by_key(|(at, _, _)| *at);
    Ok(dates
        .into_iter()
        .map(|date| ui::PlannedDay {
            date,
            slots: slots
                .iter()
                .filter(|(at, _, _)| at.with_timezone(&s.timezone).date_naive() == date)
                .cloned()
                .collect(),
        })
        .collect())
}

/// The answer to "was it published?" after a publish whose outcome is unknown.
#[allow(clippy::too_many_arguments)]
fn answer_unknown_outcome(
    conn: &Connection,
    config: &Config,
    query: &CallbackQuery,
    chat_id: i64,
    message_id: i64,
    action: StoryAction,
    row: Option<QueueRow>,
    now: DateTime<Utc>,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let job = publish::job(conn, queue_id_of(&row))?;
    let (Some(row), Some(job)) = (row, job.filter(|j| j.chat_id == chat_id)) else {
        out.push(telegram::answer_callback(
            &query.id,
            "This button does not belong to a story of this chat.",
            true,
        ));
        return Ok(());
    };
    if job.state != JobState::Unknown {
        out.push(telegram::answer_callback(
            &query.id,
            "This was already answered.",
            true,
        ));
        return Ok(());
    }
    let s = settings::resolve(
        &db::chat(conn, chat_id)?.unwrap_or_else(|| settings::ChatRow::new(chat_id)),
        &config.defaults,
    );
    let by = db::user_display_name(conn, query.from.id)?;
    if action == StoryAction::WasPublished {
        let Some(item) = row
            .media_item_id
            .map(|id| db::media::item_by_id(conn, id))
            .transpose()?
            .flatten()
        else {
            out.push(telegram::answer_callback(
                &query.id,
                "This story's file is no longer known.",
                true,
            ));
            return Ok(());
        };
        let decided = publish::Job {
            requested_by: Some(query.from.id),
            ..job
        };
        publish::record_published(conn, &decided, &row, &item, &s, "instagram_api", None, now)?;
        db::publish::set_state(conn, row.id, JobState::Published, None, now)?;
        out.push(telegram::answer_callback(
            &query.id,
            "Recorded as published",
            false,
        ));
        let text = format!(
            "✅ Recorded as published on Instagram, by {}.",
            telegram::escape_html(&by)
        );
        out.push(telegram::edit_message(chat_id, message_id, &text, None));
    } else {
        publish::create_job(
            conn,
            row.id,
            chat_id,
            job.account_id,
            Some(query.from.id),
            job.dry_run,
            now,
        )?;
        out.push(telegram::answer_callback(
            &query.id,
            "Publishing again",
            false,
        ));
        let text = format!(
            "🔁 Publishing again, as asked by {}.",
            telegram::escape_html(&by)
        );
        out.push(telegram::edit_message(chat_id, message_id, &text, None));
    }
    Ok(())
}

fn queue_id_of(row: &Option<QueueRow>) -> i64 {
    row.as_ref().map_or(0, |r| r.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAT: i64 = -1_009;

    /// `tick` as a table: one slot in an in-memory database, the chat's state, and
    /// what the tick makes of the slot and whether the chat hears it was missed.
    #[test]
    fn tick_marks_missed_slots_and_skips_those_nobody_may_get() {
        let now = chrono::DateTime::parse_from_rfc3339("2030-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let dir = tempfile::tempdir().unwrap();
        // (slot minutes from now, paused, served, status after the tick, missed notice)
        let cases = [
            (-16, false, true, "missed", true),
            (-60 * 24, false, true, "missed", true),
            (-16, true, true, "missed", false),
            (10, false, true, "pending", false),
            (-1, true, true, "skipped", false),
            (-1, false, false, "skipped", false),
            (-16, false, false, "missed", false),
        ];
        for (i, (minutes, paused, served, status, notice)) in cases.into_iter().enumerate() {
            let mut conn = Connection::open_in_memory().unwrap();
            db::migrate(&mut conn).unwrap();
            let t = now;
            let tx = conn.transaction().unwrap();
            db::insert_chat(&tx, CHAT, None, None, t).unwrap();
            tx.commit().unwrap();
            conn.execute(
                "UPDATE chats SET is_paused = ?1, authorized_by = NULL WHERE chat_id = ?2",
                rusqlite::params![paused, CHAT],
            )
            .unwrap();
            let slot_at = now + Duration::minutes(minutes);
            let slot = queue::insert_slot(
                &conn,
                CHAT,
                slot_at,
                &slot_at.date_naive().to_string(),
                None,
                t,
            )
            .unwrap();
            let access = if served {
                format!("[access]\nadmin_user_ids = [42]\nallowed_chat_ids = [{CHAT}]\n")
            } else {
                "[access]\nadmin_user_ids = [42]\n".to_string()
            };
            let config = crate::config::parse(
                &format!("[telegram]\nbot_token = \"1:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n{access}"),
                std::path::Path::new("storyline.toml"),
                dir.path(),
                &|_| None,
            )
            .unwrap();
            let mut out = Vec::new();
            tick(&conn, &config, None, now, &mut out).unwrap();
            let row = queue::queue_item(&conn, slot).unwrap().unwrap();
            assert_eq!(row.status.as_str(), status, "case {i}: {out:?}");
            let told = out.iter().any(|o| {
                o.params["text"]
                    .as_str()
                    .is_some_and(|text| text.starts_with("⏰ 1 scheduled story was missed"))
            });
            assert_eq!(told, notice, "case {i}: {out:?}");
        }
    }

    /// `/schedule N` and `plan --days N`: exactly N local days from today, each with
    /// the slots whose local time falls on it, and only slots still to come.
    #[test]
    fn the_preview_shows_the_days_asked_by_local_date_and_only_what_will_happen() {
        let now = chrono::DateTime::parse_from_rfc3339("2030-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut conn = Connection::open_in_memory().unwrap();
        db::migrate(&mut conn).unwrap();
        let berlin: crate::zone::Tz = "Europe/Berlin".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::parse(
            "[telegram]\nbot_token = \"1:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n",
            std::path::Path::new("storyline.toml"),
            dir.path(),
            &|_| None,
        )
        .unwrap();
        let mut s = settings::resolve(&settings::ChatRow::new(CHAT), &config.defaults);
        s.timezone = berlin;
        s.posting_hours_start = 14;
        s.posting_hours_end = 2;
        s.posts_per_day = 6;
        let weights = BTreeMap::new();
        for days in [1, 2, 3, 14] {
            let plan = preview(&conn, Some(CHAT), &s, &weights, now, days).unwrap();
            let dates: Vec<String> = plan.iter().map(|d| d.date.to_string()).collect();
            let expected: Vec<String> = (0..days)
                .map(|d| (now.date_naive() + Duration::days(i64::from(d))).to_string())
                .collect();
            assert_eq!(dates, expected, "{days} days");
            for day in &plan {
                for (at, _, _) in &day.slots {
                    assert_eq!(at.with_timezone(&berlin).date_naive(), day.date, "{at}");
                    assert!(*at > now, "{at}");
                }
            }
            // The window of 14:00–02:00 spills past midnight: days after the first
            // begin with the previous window's slots before 02:00.
            if days >= 2 {
                let second = &plan[1];
                assert!(
                    second.slots.iter().any(|(at, _, _)| {
                        at.with_timezone(&berlin).time()
                            < chrono::NaiveTime::from_hms_opt(2, 0, 0).unwrap()
                    }),
                    "{:?}",
                    second.slots
                );
            }
        }
        // Today's window planned: a slot sent by /next and one rejected are not
        // listed, a pending one is.
        let today = now.with_timezone(&berlin).date_naive().to_string();
        let tx = conn.transaction().unwrap();
        db::insert_chat(&tx, CHAT, None, None, now).unwrap();
        tx.commit().unwrap();
        queue::mark_window_planned(&conn, CHAT, &today, now).unwrap();
        let at = |h: i64| now + Duration::hours(h);
        let pending = queue::insert_slot(&conn, CHAT, at(3), &today, None, now).unwrap();
        let sent = queue::insert_slot(&conn, CHAT, at(4), &today, None, now).unwrap();
        let rejected = queue::insert_slot(&conn, CHAT, at(5), &today, None, now).unwrap();
        queue::set_slot_status(&conn, sent, QueueStatus::Sent, None).unwrap();
        queue::set_slot_status(&conn, rejected, QueueStatus::Rejected, None).unwrap();
        let plan = preview(&conn, Some(CHAT), &s, &weights, now, 1).unwrap();
        let listed: Vec<DateTime<Utc>> = plan[0].slots.iter().map(|(at, _, _)| *at).collect();
        let pending_at = queue::queue_item(&conn, pending)
            .unwrap()
            .unwrap()
            .scheduled_for;
        assert_eq!(listed, [pending_at]);
    }
}
