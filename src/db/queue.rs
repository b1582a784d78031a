//! SQL for each chat's view of the media library (`chat_media`), its category
//! mix, the posting queue, planned windows and the posting history.
//! Every function here takes the chat id and filters by it.

use super::{exec, row};
use anyhow::Result;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{optional_time_at, time_at, Timestamp};

use crate::domain::picker::Candidate;
use crate::domain::status::QueueStatus;

/// A lock that never ends (Reject): stored as "9999-12-31T00:00:00Z".
pub const FOREVER: DateTime<Utc> = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(day) => day.and_time(NaiveTime::MIN).and_utc(),
    None => panic!("9999-12-31 is a date"),
};

// ---- chat_media ---------------------------------------------------------------------

/// Gives a new chat its view of every active content.
pub fn seed_chat_media(conn: &Connection, chat_id: i64) -> Result<()> {
    exec(
        conn,
        "INSERT INTO chat_media (chat_id, sha256, category, is_active, shuffle)
         SELECT ?1, sha256, min(category), 1, random() FROM media_items
         WHERE is_active = 1 GROUP BY sha256
         ON CONFLICT (chat_id, sha256) DO NOTHING",
        [chat_id],
    )?;
    Ok(())
}

/// Brings every chat's view of these contents up to date after a scan: active
/// when some active file has it, in the category of its first such file.
pub fn sync_content(conn: &Connection, sha256s: &[String]) -> Result<()> {
    let mut active = conn.prepare_cached(
        "SELECT category FROM media_items WHERE sha256 = ?1 AND is_active = 1 ORDER BY id LIMIT 1",
    )?;
    let mut upsert = conn.prepare_cached(
        "INSERT INTO chat_media (chat_id, sha256, category, is_active, shuffle)
         SELECT chat_id, ?1, ?2, 1, random() FROM chats WHERE true
         ON CONFLICT (chat_id, sha256) DO UPDATE SET is_active = 1, category = excluded.category",
    )?;
    let mut deactivate =
        conn.prepare_cached("UPDATE chat_media SET is_active = 0 WHERE sha256 = ?1")?;
    for sha in sha256s {
        let category: Option<String> = active.query_row([sha], |r| r.get(0)).optional()?;
        match category {
            Some(category) => upsert.execute(params![sha, category])?,
            None => deactivate.execute([sha])?,
        };
    }
    Ok(())
}

fn candidate_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Candidate> {
    Ok(Candidate {
        sha256: r.get(0)?,
        category: r.get(1)?,
        times_posted: r.get(2)?,
        last_posted_at: optional_time_at(r, 3)?,
        locked_until: optional_time_at(r, 4)?,
        shuffle: r.get(5)?,
    })
}

/// The categories of the chat's active items, found by index seeks rather than
/// a scan (a library can hold 100,000 items).
pub fn chat_categories_present(conn: &Connection, chat_id: i64) -> Result<Vec<String>> {
    let mut next = conn.prepare_cached(
        "SELECT min(category) FROM chat_media WHERE chat_id = ?1 AND category > ?2",
    )?;
    let mut found = Vec::new();
    let mut after = String::new();
    while let Some(category) =
        next.query_row(params![chat_id, after], |r| r.get::<_, Option<String>>(0))?
    {
        found.push(category.clone());
        after = category;
    }
    Ok(found)
}

/// The first `limit` eligible items of a category in picking order, for
/// planning: active, not locked at `now`, and not already in the chat's queue.
pub fn eligible_in_category(
    conn: &Connection,
    chat_id: i64,
    category: &str,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Candidate>> {
    eligible(
        conn,
        chat_id,
        category,
        now,
        limit,
        "'pending', 'sending', 'sent'",
    )
}

/// Like `eligible_in_category`, for sending right now: an item planned for a
/// later slot may be taken (that slot picks again when it comes).
pub fn eligible_now_in_category(
    conn: &Connection,
    chat_id: i64,
    category: &str,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Candidate>> {
    eligible(conn, chat_id, category, now, limit, "'sending', 'sent'")
}

fn eligible(
    conn: &Connection,
    chat_id: i64,
    category: &str,
    now: DateTime<Utc>,
    limit: usize,
    busy_statuses: &str,
) -> Result<Vec<Candidate>> {
    let sql = format!(
        "SELECT sha256, category, times_posted, last_posted_at, locked_until, shuffle
         FROM chat_media
         WHERE chat_id = ?1 AND category = ?2 AND is_active = 1
           AND (locked_until IS NULL OR locked_until <= ?3)
           AND sha256 NOT IN (SELECT sha256 FROM posting_queue WHERE chat_id = ?1
                              AND status IN ({busy_statuses}) AND sha256 IS NOT NULL)
         ORDER BY times_posted, last_posted_at, shuffle
         LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![chat_id, category, Timestamp(now), limit as i64],
        candidate_from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Whether a planned content may still go out now: active, not locked, and not
/// out in another slot waiting for a decision.
pub fn content_available(
    conn: &Connection,
    chat_id: i64,
    sha256: &str,
    now: DateTime<Utc>,
    slot_id: i64,
) -> Result<bool> {
    Ok(super::row(
        conn,
        "SELECT 1 FROM chat_media WHERE chat_id = ?1 AND sha256 = ?2 AND is_active = 1
               AND (locked_until IS NULL OR locked_until <= ?3)
               AND NOT EXISTS (SELECT 1 FROM posting_queue WHERE chat_id = ?1 AND sha256 = ?2
                               AND id != ?4 AND status IN ('sending', 'sent'))",
        params![chat_id, sha256, Timestamp(now), slot_id],
        |_| Ok(()),
    )
    .optional()?
    .is_some())
}

/// How many items the chat could post at `now`, counting at most `cap`.
pub fn count_eligible(
    conn: &Connection,
    chat_id: i64,
    now: DateTime<Utc>,
    cap: usize,
) -> Result<usize> {
    let n: i64 = row(
        conn,
        "SELECT count(*) FROM (SELECT 1 FROM chat_media
           WHERE chat_id = ?1 AND is_active = 1 AND (locked_until IS NULL OR locked_until <= ?2)
           LIMIT ?3)",
        params![chat_id, Timestamp(now), cap as i64],
        |r| r.get(0),
    )?;
    Ok(n as usize)
}

/// Applies a decision to the chat's view of a content: the lock and, for a post,
/// the count and time.
pub fn record_decision(
    conn: &Connection,
    chat_id: i64,
    sha256: &str,
    posted: bool,
    locked_until: Option<DateTime<Utc>>,
    lock_reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    exec(
        conn,
        "UPDATE chat_media SET
             times_posted = times_posted + ?3,
             last_posted_at = CASE WHEN ?3 = 1 THEN ?6 ELSE last_posted_at END,
             locked_until = ?4, lock_reason = ?5
         WHERE chat_id = ?1 AND sha256 = ?2",
        params![
            chat_id,
            sha256,
            i64::from(posted),
            locked_until.map(Timestamp),
            lock_reason,
            Timestamp(now)
        ],
    )?;
    if posted {
        exec(conn,
            "UPDATE media_items SET times_posted = times_posted + 1, last_posted_at = ?2 WHERE sha256 = ?1",
            params![sha256, Timestamp(now)],
        )?;
    }
    Ok(())
}

/// Keeps a content out for good (too large to send, for example).
pub fn lock_content(
    conn: &Connection,
    chat_id: i64,
    sha256: &str,
    until: DateTime<Utc>,
    reason: &str,
) -> Result<()> {
    exec(conn,
        "UPDATE chat_media SET locked_until = ?3, lock_reason = ?4 WHERE chat_id = ?1 AND sha256 = ?2",
        params![chat_id, sha256, Timestamp(until), reason],
    )?;
    Ok(())
}

// ---- category mix ---------------------------------------------------------------------

pub fn category_weights(
    conn: &Connection,
    chat_id: i64,
) -> Result<std::collections::BTreeMap<String, u32>> {
    let mut stmt =
        conn.prepare_cached("SELECT category, weight FROM chat_categories WHERE chat_id = ?1")?;
    let rows = stmt.query_map([chat_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn set_category_weights(
    conn: &Connection,
    chat_id: i64,
    weights: &std::collections::BTreeMap<String, u32>,
) -> Result<()> {
    exec(
        conn,
        "DELETE FROM chat_categories WHERE chat_id = ?1",
        [chat_id],
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO chat_categories (chat_id, category, weight) VALUES (?1, ?2, ?3)",
    )?;
    for (category, weight) in weights {
        insert.execute(params![chat_id, category, weight])?;
    }
    Ok(())
}

// ---- the queue --------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRow {
    pub id: i64,
    pub chat_id: i64,
    pub scheduled_for: DateTime<Utc>,
    pub window_date: String,
    pub sha256: Option<String>,
    pub media_item_id: Option<i64>,
    pub status: QueueStatus,
    pub telegram_message_id: Option<i64>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<i64>,
}

const QUEUE_COLUMNS: &str =
    "id, chat_id, scheduled_for, window_date, sha256, media_item_id, status, \
     telegram_message_id, decided_at, decided_by";

fn queue_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<QueueRow> {
    Ok(QueueRow {
        id: r.get(0)?,
        chat_id: r.get(1)?,
        scheduled_for: time_at(r, 2)?,
        window_date: r.get(3)?,
        sha256: r.get(4)?,
        media_item_id: r.get(5)?,
        status: r.get(6)?,
        telegram_message_id: r.get(7)?,
        decided_at: optional_time_at(r, 8)?,
        decided_by: r.get(9)?,
    })
}

pub fn window_planned(conn: &Connection, chat_id: i64, window_date: &str) -> Result<bool> {
    Ok(super::row(
        conn,
        "SELECT 1 FROM planned_windows WHERE chat_id = ?1 AND window_date = ?2",
        params![chat_id, window_date],
        |_| Ok(()),
    )
    .optional()?
    .is_some())
}

pub fn mark_window_planned(
    conn: &Connection,
    chat_id: i64,
    window_date: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    exec(
        conn,
        "INSERT INTO planned_windows (chat_id, window_date, planned_at) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        params![chat_id, window_date, Timestamp(now)],
    )?;
    Ok(())
}

pub fn insert_slot(
    conn: &Connection,
    chat_id: i64,
    scheduled_for: DateTime<Utc>,
    window_date: &str,
    sha256: Option<&str>,
    now: DateTime<Utc>,
) -> Result<i64> {
    exec(
        conn,
        "INSERT INTO posting_queue (chat_id, scheduled_for, window_date, sha256, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            chat_id,
            Timestamp(scheduled_for),
            window_date,
            sha256,
            Timestamp(now)
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Forgets the chat's future plan (after its schedule settings changed): pending
/// slots after `now` go, and windows not over yet will be planned again.
pub fn forget_future_plan(
    conn: &Connection,
    chat_id: i64,
    now: DateTime<Utc>,
    open_windows: &[String],
) -> Result<()> {
    exec(conn,
        "DELETE FROM posting_queue WHERE chat_id = ?1 AND status = 'pending' AND scheduled_for > ?2",
        params![chat_id, Timestamp(now)],
    )?;
    let mut forget =
        conn.prepare_cached("DELETE FROM planned_windows WHERE chat_id = ?1 AND window_date = ?2")?;
    for date in open_windows {
        forget.execute(params![chat_id, date])?;
    }
    Ok(())
}

pub fn queue_item(conn: &Connection, id: i64) -> Result<Option<QueueRow>> {
    let sql = format!("SELECT {QUEUE_COLUMNS} FROM posting_queue WHERE id = ?1");
    Ok(row(conn, &sql, [id], queue_from_row).optional()?)
}

/// Pending slots due at `now` (and not older than `missed_before`), all chats.
pub fn due_slots(
    conn: &Connection,
    now: DateTime<Utc>,
    missed_before: DateTime<Utc>,
) -> Result<Vec<QueueRow>> {
    let sql = format!(
        "SELECT {QUEUE_COLUMNS} FROM posting_queue
         WHERE status = 'pending' AND scheduled_for <= ?1 AND scheduled_for >= ?2
         ORDER BY scheduled_for, id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![Timestamp(now), Timestamp(missed_before)],
        queue_from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Marks pending slots older than `missed_before` as missed; returns them.
pub fn mark_missed(conn: &Connection, missed_before: DateTime<Utc>) -> Result<Vec<QueueRow>> {
    let sql = format!(
        "SELECT {QUEUE_COLUMNS} FROM posting_queue WHERE status = 'pending' AND scheduled_for < ?1
         ORDER BY chat_id, scheduled_for"
    );
    let missed: Vec<QueueRow> = {
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([Timestamp(missed_before)], queue_from_row)?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    exec(conn,
        "UPDATE posting_queue SET status = 'missed', last_error = 'the slot passed while Storyline was not running'
         WHERE status = 'pending' AND scheduled_for < ?1",
        [Timestamp(missed_before)],
    )?;
    Ok(missed)
}

/// The earliest pending slot of any chat, to sleep until it.
pub fn next_pending_time(conn: &Connection) -> Result<Option<DateTime<Utc>>> {
    Ok(row(
        conn,
        "SELECT min(scheduled_for) FROM posting_queue WHERE status = 'pending'",
        [],
        |r| optional_time_at(r, 0),
    )?)
}

/// The chat's slots still to come or waiting for a decision, soonest first.
pub fn upcoming(conn: &Connection, chat_id: i64, limit: usize) -> Result<Vec<QueueRow>> {
    let sql = format!(
        "SELECT {QUEUE_COLUMNS} FROM posting_queue
         WHERE chat_id = ?1 AND status IN ('pending', 'sending', 'sent')
         ORDER BY scheduled_for, id LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![chat_id, limit as i64], queue_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn next_pending_for_chat(conn: &Connection, chat_id: i64) -> Result<Option<QueueRow>> {
    let sql = format!(
        "SELECT {QUEUE_COLUMNS} FROM posting_queue WHERE chat_id = ?1 AND status = 'pending'
         ORDER BY scheduled_for, id LIMIT 1"
    );
    Ok(row(conn, &sql, [chat_id], queue_from_row).optional()?)
}

pub fn set_slot_content(
    conn: &Connection,
    id: i64,
    sha256: Option<&str>,
    media_item_id: Option<i64>,
) -> Result<()> {
    exec(
        conn,
        "UPDATE posting_queue SET sha256 = ?2, media_item_id = ?3 WHERE id = ?1",
        params![id, sha256, media_item_id],
    )?;
    Ok(())
}

pub fn set_slot_status(
    conn: &Connection,
    id: i64,
    status: QueueStatus,
    error: Option<&str>,
) -> Result<()> {
    exec(
        conn,
        "UPDATE posting_queue SET status = ?2, last_error = coalesce(?3, last_error),
             attempts = attempts + (?2 = 'sending')
         WHERE id = ?1",
        params![id, status, error],
    )?;
    Ok(())
}

/// A slot still `sending` whose publish was given up: it failed, with `error`.
pub fn fail_sending_slot(conn: &Connection, id: i64, error: &str) -> Result<()> {
    exec(
        conn,
        "UPDATE posting_queue SET status = 'failed', last_error = ?2
         WHERE id = ?1 AND status = 'sending'",
        params![id, error],
    )?;
    Ok(())
}

/// A slot published through the API (or recorded as published by `by`).
pub fn mark_posted(conn: &Connection, id: i64, by: Option<i64>, now: DateTime<Utc>) -> Result<()> {
    exec(conn,
        "UPDATE posting_queue SET status = 'posted', decided_at = ?2, decided_by = ?3 WHERE id = ?1",
        params![id, Timestamp(now), by],
    )?;
    Ok(())
}

/// The outbox delivered a story: remember its message (for the buttons) and the
/// file_id Telegram gave the upload (to send it again without uploading).
pub fn story_delivered(
    conn: &Connection,
    queue_id: i64,
    message_id: i64,
    media_item_id: i64,
    file_id: Option<&str>,
) -> Result<()> {
    exec(
        conn,
        "UPDATE posting_queue SET status = 'sent', telegram_message_id = ?2
         WHERE id = ?1 AND status = 'sending'",
        params![queue_id, message_id],
    )?;
    if let Some(file_id) = file_id {
        exec(
            conn,
            "UPDATE media_items SET telegram_file_id = ?2 WHERE id = ?1",
            params![media_item_id, file_id],
        )?;
    }
    Ok(())
}

/// Telegram refused a story for good; a stale file_id is forgotten so the next
/// send uploads the file again.
pub fn story_failed(
    conn: &Connection,
    queue_id: i64,
    media_item_id: i64,
    error: &str,
) -> Result<()> {
    exec(
        conn,
        "UPDATE posting_queue SET status = 'failed', last_error = ?2 WHERE id = ?1",
        params![queue_id, error],
    )?;
    exec(
        conn,
        "UPDATE media_items SET telegram_file_id = NULL WHERE id = ?1",
        [media_item_id],
    )?;
    Ok(())
}

pub fn decide(
    conn: &Connection,
    id: i64,
    status: QueueStatus,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    exec(
        conn,
        "UPDATE posting_queue SET status = ?2, decided_by = ?3, decided_at = ?4 WHERE id = ?1",
        params![id, status, user_id, Timestamp(now)],
    )?;
    Ok(())
}

/// The Instagram media id of the slot's latest history row.
pub fn set_history_media_id(conn: &Connection, queue_id: i64, media_id: &str) -> Result<()> {
    exec(conn,
        "UPDATE posting_history SET instagram_media_id = ?2 WHERE id = (SELECT max(id) FROM posting_history WHERE queue_id = ?1)",
        params![queue_id, media_id],
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn record_history(
    conn: &Connection,
    chat_id: i64,
    queue_id: Option<i64>,
    media_item_id: Option<i64>,
    sha256: &str,
    outcome: &str,
    method: &str,
    user_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    exec(conn,
        "INSERT INTO posting_history (chat_id, queue_id, media_item_id, sha256, outcome, method, user_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            chat_id,
            queue_id,
            media_item_id,
            sha256,
            outcome,
            method,
            user_id,
            Timestamp(now)
        ],
    )?;
    Ok(())
}

pub fn set_pool_warned(conn: &Connection, chat_id: i64, local_date: &str) -> Result<()> {
    exec(
        conn,
        "UPDATE chats SET pool_warned_on = ?2 WHERE chat_id = ?1",
        params![chat_id, local_date],
    )?;
    Ok(())
}

pub fn pool_warned_on(conn: &Connection, chat_id: i64) -> Result<Option<String>> {
    Ok(super::row(
        conn,
        "SELECT pool_warned_on FROM chats WHERE chat_id = ?1",
        [chat_id],
        |r| r.get(0),
    )
    .optional()?
    .flatten())
}

/// The chat's slots of one window, in order.
pub fn window_slots(conn: &Connection, chat_id: i64, window_date: &str) -> Result<Vec<QueueRow>> {
    let sql = format!(
        "SELECT {QUEUE_COLUMNS} FROM posting_queue WHERE chat_id = ?1 AND window_date = ?2
         ORDER BY scheduled_for, id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![chat_id, window_date], queue_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every active content of the library as a never-posted candidate: what a new
/// chat would pick from (for `storyline plan` before any chat exists).
pub fn library_candidates(conn: &Connection) -> Result<Vec<Candidate>> {
    let mut stmt = conn.prepare_cached(
        "SELECT sha256, min(category), 0, NULL, NULL, min(id) FROM media_items
         WHERE is_active = 1 GROUP BY sha256",
    )?;
    let rows = stmt.query_map([], candidate_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
