//! SQL for the daily summary: which local dates were summarised (one row each,
//! written with the summary's outbox row), and the figures of a day. Every
//! function takes the chat id and filters by it.

use super::{exec, row};
use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{time_at, Timestamp};
use crate::domain::status::{JobState, QueueStatus};
use crate::domain::summary::{CategoryDay, Publishing};

/// When the chat's row was created.
pub fn chat_created_at(conn: &Connection, chat_id: i64) -> Result<Option<DateTime<Utc>>> {
    Ok(super::row(
        conn,
        "SELECT created_at FROM chats WHERE chat_id = ?1",
        [chat_id],
        |r| time_at(r, 0),
    )
    .optional()?)
}

/// The latest local date the chat got a summary for.
pub fn last_sent_date(conn: &Connection, chat_id: i64) -> Result<Option<NaiveDate>> {
    let text: Option<String> = row(
        conn,
        "SELECT max(local_date) FROM daily_summaries WHERE chat_id = ?1",
        [chat_id],
        |r| r.get(0),
    )?;
    Ok(text.and_then(|t| t.parse().ok()))
}

/// Records the summary for `local_date`; false when one was recorded already
/// (then nothing is to be sent).
pub fn record_sent(
    conn: &Connection,
    chat_id: i64,
    local_date: NaiveDate,
    covers: NaiveDate,
    late: bool,
    now: DateTime<Utc>,
) -> Result<bool> {
    let inserted = exec(
        conn,
        "INSERT INTO daily_summaries (chat_id, local_date, covers_date, sent_at, late)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (chat_id, local_date) DO NOTHING",
        params![
            chat_id,
            local_date.to_string(),
            covers.to_string(),
            Timestamp(now),
            late
        ],
    )?;
    Ok(inserted == 1)
}

/// The summaries recorded for the chat: (local date, late), oldest first.
pub fn sent(conn: &Connection, chat_id: i64) -> Result<Vec<(String, bool)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT local_date, late FROM daily_summaries WHERE chat_id = ?1 ORDER BY local_date",
    )?;
    let rows = stmt.query_map([chat_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// What became of the slots of the chat's window on `window_date`, per
/// category (the item's, else the content's in the chat's view; `None` when
/// nothing was picked), categories by name and `None` last.
pub fn day_by_category(
    conn: &Connection,
    chat_id: i64,
    window_date: NaiveDate,
) -> Result<Vec<CategoryDay>> {
    let mut stmt = conn.prepare_cached(
        "SELECT coalesce(m.category, cm.category), q.status, count(*)
         FROM posting_queue q
         LEFT JOIN media_items m ON m.id = q.media_item_id
         LEFT JOIN chat_media cm ON cm.chat_id = q.chat_id AND cm.sha256 = q.sha256
         WHERE q.chat_id = ?1 AND q.window_date = ?2
         GROUP BY 1, 2",
    )?;
    let rows = stmt.query_map(params![chat_id, window_date.to_string()], |r| {
        Ok((
            r.get::<_, Option<String>>(0)?,
            r.get::<_, QueueStatus>(1)?,
            r.get::<_, u32>(2)?,
        ))
    })?;
    let mut days: Vec<CategoryDay> = Vec::new();
    for row in rows {
        let (category, status, n) = row?;
        let day = match days.iter().position(|d| d.category == category) {
            Some(i) => &mut days[i],
            None => {
                days.push(CategoryDay {
                    category,
                    ..CategoryDay::default()
                });
                let last = days.len() - 1;
                &mut days[last]
            }
        };
        match status {
            QueueStatus::Posted => day.posted += n,
            QueueStatus::Skipped => day.skipped += n,
            QueueStatus::Rejected => day.rejected += n,
            QueueStatus::Failed => day.failed += n,
            QueueStatus::Missed => day.missed += n,
            QueueStatus::Pending | QueueStatus::Sending | QueueStatus::Sent => day.open += n,
        }
    }
    days.sort_by(|a, b| {
        (a.category.is_none(), &a.category).cmp(&(b.category.is_none(), &b.category))
    });
    Ok(days)
}

/// The publishes of the slots of the chat's window on `window_date`.
pub fn day_publishing(
    conn: &Connection,
    chat_id: i64,
    window_date: NaiveDate,
) -> Result<Publishing> {
    let mut stmt = conn.prepare_cached(
        "SELECT j.state, j.dry_run, q.status, count(*)
         FROM publish_jobs j JOIN posting_queue q ON q.id = j.queue_id
         WHERE j.chat_id = ?1 AND q.window_date = ?2
         GROUP BY 1, 2, 3",
    )?;
    let rows = stmt.query_map(params![chat_id, window_date.to_string()], |r| {
        Ok((
            r.get::<_, JobState>(0)?,
            r.get::<_, bool>(1)?,
            r.get::<_, QueueStatus>(2)?,
            r.get::<_, u32>(3)?,
        ))
    })?;
    let mut publishing = Publishing::default();
    for row in rows {
        match row? {
            (JobState::Published, true, _, n) => publishing.dry_run += n,
            (JobState::Published, false, _, n) => publishing.by_api += n,
            (JobState::Failed, _, QueueStatus::Failed, n) => publishing.failed += n,
            (JobState::Failed, _, _, n) => publishing.fell_back += n,
            (_, _, _, n) => publishing.pending_or_unknown += n,
        }
    }
    Ok(publishing)
}

/// The chat's stories in the chat that wait for a press (any day).
pub fn waiting_for_decision(conn: &Connection, chat_id: i64) -> Result<u32> {
    Ok(row(
        conn,
        "SELECT count(*) FROM posting_queue WHERE chat_id = ?1 AND status = 'sent'",
        [chat_id],
        |r| r.get(0),
    )?)
}

/// The chat's publishes with an unknown outcome (any day).
pub fn unknown_outcomes(conn: &Connection, chat_id: i64) -> Result<u32> {
    Ok(row(
        conn,
        "SELECT count(*) FROM publish_jobs WHERE chat_id = ?1 AND state = 'unknown'",
        [chat_id],
        |r| r.get(0),
    )?)
}

/// The chat's next pending slots, soonest first.
pub fn next_slots(conn: &Connection, chat_id: i64, limit: usize) -> Result<Vec<DateTime<Utc>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT scheduled_for FROM posting_queue WHERE chat_id = ?1 AND status = 'pending'
         ORDER BY scheduled_for, id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![chat_id, limit as i64], |r| time_at(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
