//! SQL for `story_insights`: the stories whose numbers Storyline reads before
//! Instagram forgets them (24 hours), where each one's reads stand, and the
//! numbers per story for reports. The publisher thread walks the due rows
//! (`due`); what a step means is `bot::insights`'s.

use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{exec, optional_time_at, row, time_at, Timestamp};
use crate::domain::insights::{StoryMetrics, StoryResult};
use crate::domain::status::{InsightResult, InsightState};

/// A story that just went live, to be read later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStory {
    pub queue_id: i64,
    pub chat_id: i64,
    pub account_id: i64,
    pub category: String,
    /// Known for a story published through the API; None for one posted by hand.
    pub media_id: Option<String>,
    pub posted_at: DateTime<Utc>,
    /// When its first step (a match or the first read) is due.
    pub first_step_at: DateTime<Utc>,
}

/// A story as the publisher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub id: i64,
    pub queue_id: i64,
    pub chat_id: i64,
    pub account_id: i64,
    pub media_id: Option<String>,
    pub posted_at: DateTime<Utc>,
    pub state: InsightState,
    pub reads: u32,
    pub attempts: u32,
    pub next_at: Option<DateTime<Utc>>,
}

/// Starts tracking a story; a story already tracked is left as it is.
pub fn track(conn: &Connection, story: &NewStory) -> Result<bool> {
    let state = if story.media_id.is_some() {
        InsightState::Reading
    } else {
        InsightState::Matching
    };
    let added = exec(
        conn,
        "INSERT OR IGNORE INTO story_insights
             (queue_id, chat_id, account_id, category, media_id, posted_at, state, next_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            story.queue_id,
            story.chat_id,
            story.account_id,
            story.category,
            story.media_id,
            Timestamp(story.posted_at),
            state,
            Timestamp(story.first_step_at)
        ],
    )?;
    Ok(added == 1)
}

const TRACKED: &str =
    "SELECT id, queue_id, chat_id, account_id, media_id, posted_at, state, reads, attempts, next_at
     FROM story_insights";

fn tracked(r: &Row<'_>) -> rusqlite::Result<Tracked> {
    Ok(Tracked {
        id: r.get(0)?,
        queue_id: r.get(1)?,
        chat_id: r.get(2)?,
        account_id: r.get(3)?,
        media_id: r.get(4)?,
        posted_at: time_at(r, 5)?,
        state: r.get(6)?,
        reads: r.get(7)?,
        attempts: r.get(8)?,
        next_at: optional_time_at(r, 9)?,
    })
}

/// The stories whose next step is due at `now`, the longest waiting first.
pub fn due(conn: &Connection, now: DateTime<Utc>, limit: u32) -> Result<Vec<Tracked>> {
    let mut statement = conn.prepare_cached(&format!(
        "{TRACKED} WHERE next_at IS NOT NULL AND next_at <= ?1 ORDER BY next_at, id LIMIT ?2"
    ))?;
    let rows = statement.query_map(params![Timestamp(now), limit], tracked)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every story with a step still ahead (for `storyline insights fetch`).
pub fn pending(conn: &Connection) -> Result<Vec<Tracked>> {
    let mut statement = conn.prepare_cached(&format!(
        "{TRACKED} WHERE next_at IS NOT NULL ORDER BY next_at, id"
    ))?;
    let rows = statement.query_map([], tracked)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// When the next step of any story is due; None when none is.
pub fn next_due(conn: &Connection) -> Result<Option<DateTime<Utc>>> {
    Ok(row(
        conn,
        "SELECT next_at FROM story_insights WHERE next_at IS NOT NULL ORDER BY next_at LIMIT 1",
        [],
        |r| time_at(r, 0),
    )
    .optional()?)
}

pub fn by_queue_id(conn: &Connection, queue_id: i64) -> Result<Option<Tracked>> {
    Ok(row(
        conn,
        &format!("{TRACKED} WHERE queue_id = ?1"),
        [queue_id],
        tracked,
    )
    .optional()?)
}

/// A story posted by hand was found among the live stories: reads follow.
pub fn set_matched(
    conn: &Connection,
    id: i64,
    media_id: &str,
    next_at: DateTime<Utc>,
) -> Result<()> {
    exec(
        conn,
        "UPDATE story_insights SET media_id = ?2, state = ?3, attempts = 0, error = NULL, next_at = ?4
         WHERE id = ?1",
        params![id, media_id, InsightState::Reading, Timestamp(next_at)],
    )?;
    Ok(())
}

/// A read's answer: the numbers (or why there are none), and the next read, if any.
pub fn store_read(
    conn: &Connection,
    id: i64,
    reads: u32,
    result: InsightResult,
    metrics: &StoryMetrics,
    next_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    let state = if next_at.is_some() {
        InsightState::Reading
    } else {
        InsightState::Done
    };
    let n = |value: Option<u64>| value.and_then(|v| i64::try_from(v).ok());
    exec(
        conn,
        "UPDATE story_insights SET state = ?2, reads = ?3, result = ?4, next_at = ?5, attempts = 0,
             error = NULL, read_at = ?6, views = ?7, reach = ?8, replies = ?9, shares = ?10,
             total_interactions = ?11, follows = ?12, profile_visits = ?13, tap_forward = ?14,
             tap_back = ?15, tap_exit = ?16, swipe_forward = ?17
         WHERE id = ?1",
        params![
            id,
            state,
            reads,
            result,
            next_at.map(Timestamp),
            Timestamp(now),
            n(metrics.views),
            n(metrics.reach),
            n(metrics.replies),
            n(metrics.shares),
            n(metrics.total_interactions),
            n(metrics.follows),
            n(metrics.profile_visits),
            n(metrics.tap_forward),
            n(metrics.tap_back),
            n(metrics.tap_exit),
            n(metrics.swipe_forward)
        ],
    )?;
    Ok(())
}

/// A step failed: tried again at `next_at`.
pub fn retry_at(conn: &Connection, id: i64, error: &str, next_at: DateTime<Utc>) -> Result<()> {
    exec(
        conn,
        "UPDATE story_insights SET attempts = attempts + 1, error = ?2, next_at = ?3 WHERE id = ?1",
        params![id, error, Timestamp(next_at)],
    )?;
    Ok(())
}

/// Nothing more to do for this story (`NotMatched`, `Expired`, `NoPermission`, or
/// `Done` after an earlier read when the final one can no longer be made).
pub fn close(conn: &Connection, id: i64, state: InsightState, error: Option<&str>) -> Result<()> {
    exec(
        conn,
        "UPDATE story_insights SET state = ?2, next_at = NULL, error = COALESCE(?3, error)
         WHERE id = ?1",
        params![id, state, error],
    )?;
    Ok(())
}

/// The media ids already matched to stories of this account since `since`, so
/// two presses never claim the same live story.
pub fn claimed_media_ids(
    conn: &Connection,
    account_id: i64,
    since: DateTime<Utc>,
) -> Result<Vec<String>> {
    let mut statement = conn.prepare_cached(
        "SELECT media_id FROM story_insights
         WHERE account_id = ?1 AND media_id IS NOT NULL AND posted_at >= ?2",
    )?;
    let rows = statement.query_map(params![account_id, Timestamp(since)], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The chat's stories posted in `since..until` that Storyline tracked, with their
/// numbers (none where no read succeeded), labelled by file name.
pub fn results(
    conn: &Connection,
    chat_id: i64,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<StoryResult>> {
    story_results(
        conn,
        "si.posted_at >= ?2 AND si.posted_at < ?3",
        params![chat_id, Timestamp(since), Timestamp(until)],
    )
}

/// The chat's tracked stories of the slots of one local day (`window_date`), for
/// the daily summary.
pub fn results_of_day(
    conn: &Connection,
    chat_id: i64,
    window_date: chrono::NaiveDate,
) -> Result<Vec<StoryResult>> {
    story_results(
        conn,
        "q.window_date = ?2",
        params![chat_id, window_date.to_string()],
    )
}

fn story_results<P: rusqlite::Params>(
    conn: &Connection,
    filter: &str,
    params: P,
) -> Result<Vec<StoryResult>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT si.queue_id, COALESCE(mi.path, si.category), si.category, si.posted_at,
                si.views, si.reach, si.replies, si.shares, si.total_interactions, si.follows,
                si.profile_visits, si.tap_forward, si.tap_back, si.tap_exit, si.swipe_forward
         FROM story_insights si
         JOIN posting_queue q ON q.id = si.queue_id
         LEFT JOIN media_items mi ON mi.id = q.media_item_id
         WHERE si.chat_id = ?1 AND {filter}
         ORDER BY si.posted_at, si.id"
    ))?;
    let rows = statement.query_map(params, |r| {
        let n = |i: usize| -> rusqlite::Result<Option<u64>> {
            Ok(r.get::<_, Option<i64>>(i)?
                .and_then(|v| u64::try_from(v).ok()))
        };
        let path: String = r.get(1)?;
        let label = path.rsplit('/').next().unwrap_or(&path).to_string();
        Ok(StoryResult {
            id: r.get(0)?,
            label,
            category: r.get(2)?,
            posted_at: time_at(r, 3)?,
            metrics: StoryMetrics {
                views: n(4)?,
                reach: n(5)?,
                replies: n(6)?,
                shares: n(7)?,
                total_interactions: n(8)?,
                follows: n(9)?,
                profile_visits: n(10)?,
                tap_forward: n(11)?,
                tap_back: n(12)?,
                tap_exit: n(13)?,
                swipe_forward: n(14)?,
            },
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The chats with a story tracked since `since` (for the CLI without `--chat`).
pub fn chats_since(conn: &Connection, since: DateTime<Utc>) -> Result<Vec<i64>> {
    let mut statement = conn.prepare_cached(
        "SELECT DISTINCT chat_id FROM story_insights WHERE posted_at >= ?1 ORDER BY chat_id",
    )?;
    let rows = statement.query_map([Timestamp(since)], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ---- the insights permission of an account ------------------------------------------

/// Whether the account's token may read insights: None unknown.
pub fn permission(conn: &Connection, account_id: i64) -> Result<Option<bool>> {
    Ok(row(
        conn,
        "SELECT insights_granted FROM instagram_accounts WHERE id = ?1",
        [account_id],
        |r| r.get(0),
    )
    .optional()?
    .flatten())
}

/// `None`: unknown again (a reconnect that did not say), found out at the next read.
pub fn set_permission(conn: &Connection, account_id: i64, granted: Option<bool>) -> Result<()> {
    exec(
        conn,
        "UPDATE instagram_accounts SET insights_granted = ?2 WHERE id = ?1",
        params![account_id, granted],
    )?;
    Ok(())
}

/// Marks the account's chats told how to grant the permission; false when they
/// already were (they are told once).
pub fn mark_permission_told(
    conn: &Connection,
    account_id: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let changed = exec(
        conn,
        "UPDATE instagram_accounts SET insights_told_at = ?2
         WHERE id = ?1 AND insights_told_at IS NULL",
        params![account_id, Timestamp(now)],
    )?;
    Ok(changed == 1)
}

/// A new grant (a reconnect) clears the told mark, so a later loss is told again.
pub fn clear_permission_told(conn: &Connection, account_id: i64) -> Result<()> {
    exec(
        conn,
        "UPDATE instagram_accounts SET insights_told_at = NULL WHERE id = ?1",
        [account_id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, hour, 0, 0).unwrap()
    }

    fn setup() -> Connection {
        let conn = db::open_in_memory_for_tests();
        conn.execute_batch(
            "INSERT INTO chats (chat_id, created_at, updated_at) VALUES (-1, '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z');
             INSERT INTO instagram_accounts (id, display_name, instagram_user_id, created_at, updated_at)
                 VALUES (1, 'ada', '17841', '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z');
             INSERT INTO media_items (id, path, category, kind, size, mtime_ns, sha256, first_seen, last_seen)
                 VALUES (1, 'quotes/a.jpg', 'quotes', 'image', 1, 1, 'aa', '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z');
             INSERT INTO posting_queue (id, chat_id, scheduled_for, window_date, sha256, media_item_id, status, created_at)
                 VALUES (10, -1, '2026-12-01T09:00:00Z', '2026-12-01', 'aa', 1, 'posted', '2026-12-01T00:00:00Z'),
                        (11, -1, '2026-12-01T10:00:00Z', '2026-12-01', 'aa', 1, 'posted', '2026-12-01T00:00:00Z');",
        )
        .unwrap();
        conn
    }

    fn story(queue_id: i64, media_id: Option<&str>, posted: u32) -> NewStory {
        NewStory {
            queue_id,
            chat_id: -1,
            account_id: 1,
            category: "quotes".into(),
            media_id: media_id.map(str::to_string),
            posted_at: at(posted),
            first_step_at: at(posted + 4),
        }
    }

    #[test]
    fn a_story_is_tracked_once_and_walked_through_its_reads() {
        let conn = setup();
        assert!(track(&conn, &story(10, Some("m1"), 9)).unwrap());
        assert!(
            !track(&conn, &story(10, Some("m2"), 9)).unwrap(),
            "tracked once"
        );
        assert!(track(&conn, &story(11, None, 10)).unwrap());
        assert_eq!(next_due(&conn).unwrap(), Some(at(13)));
        assert!(due(&conn, at(12), 10).unwrap().is_empty());
        let now_due = due(&conn, at(14), 10).unwrap();
        assert_eq!(now_due.len(), 2);
        assert_eq!(now_due[0].state, InsightState::Reading);
        assert_eq!(now_due[0].media_id.as_deref(), Some("m1"));
        assert_eq!(now_due[1].state, InsightState::Matching);

        let metrics = StoryMetrics {
            views: Some(100),
            reach: Some(80),
            tap_exit: Some(10),
            swipe_forward: Some(5),
            ..StoryMetrics::default()
        };
        store_read(
            &conn,
            now_due[0].id,
            1,
            InsightResult::Numbers,
            &metrics,
            Some(at(20)),
            at(14),
        )
        .unwrap();
        retry_at(&conn, now_due[1].id, "no answer", at(15)).unwrap();
        set_matched(&conn, now_due[1].id, "m9", at(16)).unwrap();
        assert_eq!(claimed_media_ids(&conn, 1, at(0)).unwrap(), ["m1", "m9"]);
        let first = by_queue_id(&conn, 10).unwrap().unwrap();
        assert_eq!(
            (first.reads, first.next_at, first.state),
            (1, Some(at(20)), InsightState::Reading)
        );
        store_read(
            &conn,
            first.id,
            2,
            InsightResult::Numbers,
            &metrics,
            None,
            at(20),
        )
        .unwrap();
        let first = by_queue_id(&conn, 10).unwrap().unwrap();
        assert_eq!((first.state, first.next_at), (InsightState::Done, None));
        close(
            &conn,
            now_due[1].id,
            InsightState::Expired,
            Some("24 hours ended"),
        )
        .unwrap();
        assert_eq!(next_due(&conn).unwrap(), None);
        assert!(pending(&conn).unwrap().is_empty());

        let results = results(&conn, -1, at(0), at(23)).unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].label, "a.jpg");
        assert_eq!(results[0].metrics, metrics);
        assert_eq!(results[1].metrics, StoryMetrics::default());
        assert_eq!(chats_since(&conn, at(0)).unwrap(), [-1]);
    }

    #[test]
    fn the_permission_is_told_once_until_it_is_granted_again() {
        let conn = setup();
        assert_eq!(permission(&conn, 1).unwrap(), None);
        set_permission(&conn, 1, Some(false)).unwrap();
        assert_eq!(permission(&conn, 1).unwrap(), Some(false));
        assert!(mark_permission_told(&conn, 1, at(1)).unwrap());
        assert!(!mark_permission_told(&conn, 1, at(2)).unwrap());
        clear_permission_told(&conn, 1).unwrap();
        assert!(mark_permission_told(&conn, 1, at(3)).unwrap());
        assert_eq!(permission(&conn, 99).unwrap(), None);
    }
}
