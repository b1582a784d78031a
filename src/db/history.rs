//! A chat's history as one list, newest first: settings versions
//! (`settings_history`), story outcomes (`posting_history`), and slots that
//! failed or were missed (`posting_queue`), with who did it by name. Also the
//! settings as they were at a moment: the `settings_history` version whose
//! `valid_from`/`valid_to` hold it (a Type 2 table).

use super::row;
use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{optional_time_at, time_at, HistoryRow, Timestamp};
use crate::domain::history::{parse_changes, Entry, Narrow, SettingChange, What};
use crate::domain::status::{PostMethod, QueueStatus};

/// Which entries, of which chat (None: every chat), in which time span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub chat_id: Option<i64>,
    pub narrow: Narrow,
    /// Entries at or after this moment.
    pub since: Option<DateTime<Utc>>,
    /// Entries at or before this moment, and settings and posting rows up to
    /// these ids (a /history list's anchor, so its pages stay put while new
    /// entries arrive).
    pub until: Option<DateTime<Utc>>,
    pub settings_id_max: Option<i64>,
    pub post_id_max: Option<i64>,
}

/// Every entry the query selects, as rows of the three tables: kind ('s', 'p'
/// or 'q'), id, chat, time, user, and four kind-dependent columns. Parameters
/// ?1 to ?7 are `Bound`'s.
const ENTRIES: &str = "
    SELECT 's' AS kind, h.id AS id, h.chat_id AS chat_id, h.valid_from AS at,
           h.changed_by AS user_id, h.changes AS a, h.reason AS b, NULL AS c, NULL AS d
      FROM settings_history h
     WHERE (?1 IS NULL OR h.chat_id = ?1) AND ?2 = 1 AND (?6 IS NULL OR h.id <= ?6)
    UNION ALL
    SELECT 'p', p.id, p.chat_id, p.created_at, p.user_id, m.path, p.outcome, p.method, p.error
      FROM posting_history p LEFT JOIN media_items m ON m.id = p.media_item_id
     WHERE (?1 IS NULL OR p.chat_id = ?1) AND ?3 = 1 AND (?7 IS NULL OR p.id <= ?7)
    UNION ALL
    SELECT 'q', q.id, q.chat_id, q.scheduled_for, NULL, m.path, q.status, NULL, q.last_error
      FROM posting_queue q LEFT JOIN media_items m ON m.id = q.media_item_id
     WHERE (?1 IS NULL OR q.chat_id = ?1) AND ?3 = 1 AND q.status IN ('failed', 'missed')";

/// How many entries the query selects.
pub fn count(conn: &Connection, query: &Query) -> Result<u32> {
    let sql = format!("SELECT count(*) FROM ({ENTRIES}) e {WHERE_SPAN}");
    let b = Bound::of(query);
    let total: i64 = row(
        conn,
        &sql,
        params![
            b.chat_id,
            b.settings,
            b.posts,
            b.since,
            b.until,
            query.settings_id_max,
            query.post_id_max
        ],
        |r| r.get(0),
    )?;
    Ok(u32::try_from(total).unwrap_or(u32::MAX))
}

/// The entries the query selects, newest first, `limit` of them after
/// skipping `offset` (None: all).
pub fn entries(
    conn: &Connection,
    query: &Query,
    offset: u32,
    limit: Option<u32>,
) -> Result<Vec<Entry>> {
    let sql = format!(
        "SELECT e.kind, e.chat_id, e.at, e.user_id, e.a, e.b, e.c, e.d, u.username, u.first_name
           FROM ({ENTRIES}) e LEFT JOIN users u ON u.user_id = e.user_id
           {WHERE_SPAN}
          ORDER BY e.at DESC, e.kind, e.id DESC
          LIMIT ?8 OFFSET ?9"
    );
    let b = Bound::of(query);
    let limit = limit.map_or(-1, i64::from);
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(
        params![
            b.chat_id,
            b.settings,
            b.posts,
            b.since,
            b.until,
            query.settings_id_max,
            query.post_id_max,
            limit,
            offset
        ],
        entry_from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

const WHERE_SPAN: &str = "WHERE (?4 IS NULL OR e.at >= ?4) AND (?5 IS NULL OR e.at <= ?5)";

/// A query as the statement's parameters ?1 to ?5.
struct Bound {
    chat_id: Option<i64>,
    settings: bool,
    posts: bool,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
}

impl Bound {
    fn of(query: &Query) -> Bound {
        Bound {
            chat_id: query.chat_id,
            settings: query.narrow.includes_settings(),
            posts: query.narrow.includes_posts(),
            since: query.since.map(Timestamp),
            until: query.until.map(Timestamp),
        }
    }
}

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let kind: String = r.get(0)?;
    let user_id: Option<i64> = r.get(3)?;
    let username: Option<String> = r.get(8)?;
    let first_name: Option<String> = r.get(9)?;
    let who = user_id.map(|id| match (username, first_name) {
        (Some(username), _) => format!("@{username}"),
        (None, Some(first)) if !first.is_empty() => first,
        _ => format!("user {id}"),
    });
    let what = if kind == "s" {
        let changes: String = r.get(4)?;
        What::Settings {
            changes: parse_changes(&changes),
            reason: r.get(5)?,
        }
    } else {
        What::Post {
            item: r.get(4)?,
            outcome: r.get::<_, QueueStatus>(5)?,
            method: r.get::<_, Option<PostMethod>>(6)?,
            error: r.get(7)?,
        }
    };
    Ok(Entry {
        chat_id: r.get(1)?,
        at: time_at(r, 2)?,
        user_id,
        who,
        what,
    })
}

/// The highest settings_history and posting_history ids (0 when empty): a
/// /history list's bound.
pub fn newest_ids(conn: &Connection) -> Result<(i64, i64)> {
    Ok(row(
        conn,
        "SELECT (SELECT coalesce(max(id), 0) FROM settings_history),
                (SELECT coalesce(max(id), 0) FROM posting_history)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// The version in force at `at`: valid_from ≤ at < valid_to (or still current).
pub fn version_at(
    conn: &Connection,
    chat_id: i64,
    at: DateTime<Utc>,
) -> Result<Option<HistoryRow>> {
    Ok(super::row(
        conn,
        "SELECT snapshot, changes, changed_by, reason, valid_from, valid_to
               FROM settings_history
              WHERE chat_id = ?1 AND valid_from <= ?2 AND (valid_to IS NULL OR valid_to > ?2)
              ORDER BY valid_from DESC, id DESC LIMIT 1",
        params![chat_id, Timestamp(at)],
        history_row,
    )
    .optional()?)
}

/// The chat's current version (valid_to IS NULL).
pub fn current_version(conn: &Connection, chat_id: i64) -> Result<Option<HistoryRow>> {
    Ok(super::row(
        conn,
        "SELECT snapshot, changes, changed_by, reason, valid_from, valid_to
               FROM settings_history WHERE chat_id = ?1 AND valid_to IS NULL",
        [chat_id],
        history_row,
    )
    .optional()?)
}

/// When the chat's first version starts, if it has one.
pub fn first_version_at(conn: &Connection, chat_id: i64) -> Result<Option<DateTime<Utc>>> {
    Ok(super::row(
        conn,
        "SELECT valid_from FROM settings_history WHERE chat_id = ?1
              ORDER BY valid_from, id LIMIT 1",
        [chat_id],
        |r| time_at(r, 0),
    )
    .optional()?)
}

/// Every version's start and changes, oldest first (for what a snapshot does
/// not hold, such as the category mix).
pub fn all_changes(
    conn: &Connection,
    chat_id: i64,
) -> Result<Vec<(DateTime<Utc>, Vec<SettingChange>)>> {
    let mut statement = conn.prepare_cached(
        "SELECT valid_from, changes FROM settings_history WHERE chat_id = ?1
          ORDER BY valid_from, id",
    )?;
    let rows = statement.query_map([chat_id], |r| {
        let changes: String = r.get(1)?;
        Ok((time_at(r, 0)?, parse_changes(&changes)))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every chat with a row, in id order (for `storyline history` without --chat).
pub fn chat_ids(conn: &Connection) -> Result<Vec<i64>> {
    let mut statement = conn.prepare_cached("SELECT chat_id FROM chats ORDER BY chat_id")?;
    let rows = statement.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn history_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HistoryRow> {
    Ok(HistoryRow {
        snapshot: r.get(0)?,
        changes: r.get(1)?,
        changed_by: r.get(2)?,
        reason: r.get(3)?,
        valid_from: time_at(r, 4)?,
        valid_to: optional_time_at(r, 5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// Chat 7 with three settings versions, a posted and a skipped story of
    /// a known item, a missed slot; chat 8 with one version.
    fn fixture() -> Connection {
        let mut conn = db::open_in_memory_for_tests();
        let tx = conn.transaction().unwrap();
        db::insert_chat(&tx, 7, None, None, at("2026-01-01T00:00:00Z")).unwrap();
        db::insert_chat(&tx, 8, None, None, at("2026-01-01T00:00:00Z")).unwrap();
        db::upsert_user(
            &tx,
            42,
            Some("ada"),
            "Ada",
            "admin",
            at("2026-01-01T00:00:00Z"),
        )
        .unwrap();
        db::record_settings_version(
            &tx,
            7,
            r#"{"posts_per_day":3}"#,
            "[]",
            None,
            "chat created",
            at("2026-01-01T00:00:00Z"),
        )
        .unwrap();
        db::record_settings_version(
            &tx,
            8,
            "{}",
            "[]",
            None,
            "chat created",
            at("2026-01-01T00:00:00Z"),
        )
        .unwrap();
        db::record_settings_version(
            &tx,
            7,
            r#"{"posts_per_day":5}"#,
            r#"[{"setting":"posts_per_day","old":3,"new":5}]"#,
            Some(42),
            "settings menu",
            at("2026-01-03T00:00:00Z"),
        )
        .unwrap();
        db::record_settings_version(
            &tx,
            7,
            r#"{"posts_per_day":9}"#,
            r#"[{"setting":"posts_per_day","old":5,"new":9}]"#,
            Some(99),
            "import",
            at("2026-01-06T00:00:00Z"),
        )
        .unwrap();
        tx.execute(
            "INSERT INTO media_items (id, path, category, kind, size, mtime_ns, sha256, first_seen, last_seen)
             VALUES (1, 'quotes/a.jpg', 'quotes', 'image', 1, 1, 'aa', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
            [],
        )
        .unwrap();
        db::queue::record_history(
            &tx,
            7,
            None,
            Some(1),
            "aa",
            "posted",
            "manual",
            Some(42),
            at("2026-01-04T00:00:00Z"),
        )
        .unwrap();
        db::queue::record_history(
            &tx,
            7,
            None,
            Some(1),
            "aa",
            "skipped",
            "instagram_api",
            None,
            at("2026-01-05T00:00:00Z"),
        )
        .unwrap();
        tx.execute(
            "INSERT INTO posting_queue (chat_id, scheduled_for, window_date, sha256, media_item_id, status, last_error, created_at)
             VALUES (7, '2026-01-02T00:00:00Z', '2026-01-02', 'aa', 1, 'missed', 'not running', '2026-01-01T00:00:00Z'),
                    (7, '2026-01-07T00:00:00Z', '2026-01-07', 'aa', 1, 'pending', NULL, '2026-01-01T00:00:00Z')",
            [],
        )
        .unwrap();
        tx.commit().unwrap();
        conn
    }

    fn query(narrow: Narrow) -> Query {
        Query {
            chat_id: Some(7),
            narrow,
            since: None,
            until: None,
            settings_id_max: None,
            post_id_max: None,
        }
    }

    fn summary(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} ({})",
                    e.at.format("%d"),
                    e.who_words(),
                    e.what_words(),
                    e.why_words()
                )
            })
            .collect()
    }

    #[test]
    fn settings_and_posts_newest_first() {
        let conn = fixture();
        let all = entries(&conn, &query(Narrow::All), 0, None).unwrap();
        assert_eq!(
            summary(&all),
            [
                "06 user 99 Posts per day 5 → 9 (import)",
                "05 Storyline quotes/a.jpg skipped (Instagram API)",
                "04 @ada quotes/a.jpg posted (by hand)",
                "03 @ada Posts per day 3 → 5 (menu)",
                "02 Storyline quotes/a.jpg missed (Storyline was not running)",
                "01 Storyline settings recorded as they were (new chat)",
            ]
        );
        assert_eq!(count(&conn, &query(Narrow::All)).unwrap(), 6);
        assert_eq!(count(&conn, &query(Narrow::Settings)).unwrap(), 3);
        assert_eq!(count(&conn, &query(Narrow::Posts)).unwrap(), 3);
        let posts = entries(&conn, &query(Narrow::Posts), 0, None).unwrap();
        assert!(posts.iter().all(|e| !e.is_settings()));
        let settings = entries(&conn, &query(Narrow::Settings), 0, None).unwrap();
        assert!(settings.iter().all(Entry::is_settings));
        // Every chat: chat 8's version too.
        let every = Query {
            chat_id: None,
            ..query(Narrow::Settings)
        };
        assert_eq!(count(&conn, &every).unwrap(), 4);
    }

    #[test]
    fn pages_and_time_spans() {
        let conn = fixture();
        let page = entries(&conn, &query(Narrow::All), 2, Some(2)).unwrap();
        assert_eq!(
            summary(&page),
            [
                "04 @ada quotes/a.jpg posted (by hand)",
                "03 @ada Posts per day 3 → 5 (menu)"
            ]
        );
        let span = Query {
            since: Some(at("2026-01-03T00:00:00Z")),
            until: Some(at("2026-01-05T00:00:00Z")),
            ..query(Narrow::All)
        };
        assert_eq!(count(&conn, &span).unwrap(), 3);
        let dates: Vec<String> = entries(&conn, &span, 0, None)
            .unwrap()
            .iter()
            .map(|e| e.at.format("%d").to_string())
            .collect();
        assert_eq!(dates, ["05", "04", "03"]);
        // Bounded by ids: the newest version (id 4) and the second post (id 2) are out.
        assert_eq!(newest_ids(&conn).unwrap(), (4, 2));
        let bounded = Query {
            settings_id_max: Some(3),
            post_id_max: Some(1),
            ..query(Narrow::All)
        };
        let dates: Vec<String> = entries(&conn, &bounded, 0, None)
            .unwrap()
            .iter()
            .map(|e| e.at.format("%d").to_string())
            .collect();
        assert_eq!(dates, ["04", "03", "02", "01"]);
    }

    #[test]
    fn the_version_in_force_at_a_moment() {
        let conn = fixture();
        for (moment, expected) in [
            ("2025-12-31T23:59:59Z", None),
            ("2026-01-01T00:00:00Z", Some(r#"{"posts_per_day":3}"#)),
            ("2026-01-02T12:00:00Z", Some(r#"{"posts_per_day":3}"#)),
            ("2026-01-03T00:00:00Z", Some(r#"{"posts_per_day":5}"#)),
            ("2026-01-05T23:59:59Z", Some(r#"{"posts_per_day":5}"#)),
            ("2030-01-01T00:00:00Z", Some(r#"{"posts_per_day":9}"#)),
        ] {
            let version = version_at(&conn, 7, at(moment)).unwrap();
            assert_eq!(
                version.as_ref().map(|v| v.snapshot.as_str()),
                expected,
                "{moment}"
            );
        }
        let current = current_version(&conn, 7).unwrap().unwrap();
        assert_eq!(current.snapshot, r#"{"posts_per_day":9}"#);
        assert_eq!(current.reason.as_deref(), Some("import"));
        assert_eq!(
            first_version_at(&conn, 7).unwrap(),
            Some(at("2026-01-01T00:00:00Z"))
        );
        assert_eq!(all_changes(&conn, 7).unwrap().len(), 3);
        assert_eq!(chat_ids(&conn).unwrap(), [7, 8]);
    }
}
