//! SQL for the auto-tuner: each chat's per-category bounds (`category_bounds`),
//! the changes the tuner made (`tune_changes`, for ↩️ Undo) and the local date
//! of its last weekly pass (`chats.auto_tune_ran_on`).

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{exec, optional_time_at, row, time_at, Timestamp};
use crate::domain::tune::Bounds;

/// The chat's bounds by category (none set: empty).
pub fn bounds(conn: &Connection, chat_id: i64) -> Result<BTreeMap<String, Bounds>> {
    let mut statement = conn.prepare_cached(
        "SELECT category, floor, ceiling FROM category_bounds WHERE chat_id = ?1 ORDER BY category",
    )?;
    let rows = statement.query_map([chat_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Bounds {
                floor: r.get(1)?,
                ceiling: r.get(2)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Sets the bounds of the categories in `bounds`; the others keep theirs.
pub fn set_bounds(
    conn: &Connection,
    chat_id: i64,
    bounds: &BTreeMap<String, Bounds>,
) -> Result<()> {
    for (category, b) in bounds {
        exec(
            conn,
            "INSERT INTO category_bounds (chat_id, category, floor, ceiling) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (chat_id, category) DO UPDATE SET floor = ?3, ceiling = ?4",
            params![chat_id, category, b.floor, b.ceiling],
        )?;
    }
    Ok(())
}

/// The local date of the tuner's last weekly pass for the chat (or of the day it
/// was switched on).
pub fn ran_on(conn: &Connection, chat_id: i64) -> Result<Option<NaiveDate>> {
    let text: Option<String> = row(
        conn,
        "SELECT auto_tune_ran_on FROM chats WHERE chat_id = ?1",
        [chat_id],
        |r| r.get(0),
    )
    .optional()?
    .flatten();
    Ok(text.and_then(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok()))
}

pub fn set_ran_on(conn: &Connection, chat_id: i64, date: NaiveDate) -> Result<()> {
    exec(
        conn,
        "UPDATE chats SET auto_tune_ran_on = ?2 WHERE chat_id = ?1",
        params![chat_id, date.to_string()],
    )?;
    Ok(())
}

/// One change the tuner made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuneChange {
    pub id: i64,
    pub chat_id: i64,
    pub old_mix: BTreeMap<String, u32>,
    pub new_mix: BTreeMap<String, u32>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub undone_at: Option<DateTime<Utc>>,
}

pub fn record_change(
    conn: &Connection,
    chat_id: i64,
    old_mix: &BTreeMap<String, u32>,
    new_mix: &BTreeMap<String, u32>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    exec(
        conn,
        "INSERT INTO tune_changes (chat_id, old_mix, new_mix, reason, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            chat_id,
            serde_json::to_string(old_mix)?,
            serde_json::to_string(new_mix)?,
            reason,
            Timestamp(now)
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn change(conn: &Connection, id: i64) -> Result<Option<TuneChange>> {
    let found = row(
        conn,
        "SELECT id, chat_id, old_mix, new_mix, reason, created_at, undone_at
         FROM tune_changes WHERE id = ?1",
        [id],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                time_at(r, 5)?,
                optional_time_at(r, 6)?,
            ))
        },
    )
    .optional()?;
    let Some((id, chat_id, old, new, reason, created_at, undone_at)) = found else {
        return Ok(None);
    };
    Ok(Some(TuneChange {
        id,
        chat_id,
        old_mix: serde_json::from_str(&old)?,
        new_mix: serde_json::from_str(&new)?,
        reason,
        created_at,
        undone_at,
    }))
}

/// Marks the change undone; false when it already was.
pub fn mark_undone(conn: &Connection, id: i64, by: i64, now: DateTime<Utc>) -> Result<bool> {
    let changed = exec(
        conn,
        "UPDATE tune_changes SET undone_at = ?2, undone_by = ?3 WHERE id = ?1 AND undone_at IS NULL",
        params![id, Timestamp(now), by],
    )?;
    Ok(changed == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;
    use chrono::TimeZone;

    #[test]
    fn bounds_changes_and_the_weekly_date_are_kept() {
        let conn = db::open_in_memory_for_tests();
        conn.execute_batch(
            "INSERT INTO chats (chat_id, created_at, updated_at) VALUES (-1, '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z');",
        )
        .unwrap();
        assert!(bounds(&conn, -1).unwrap().is_empty());
        let mut set = BTreeMap::new();
        set.insert(
            "quotes".to_string(),
            Bounds {
                floor: 50,
                ceiling: 400,
            },
        );
        set_bounds(&conn, -1, &set).unwrap();
        set.insert(
            "quotes".to_string(),
            Bounds {
                floor: 60,
                ceiling: 300,
            },
        );
        set.insert(
            "memes".to_string(),
            Bounds {
                floor: 0,
                ceiling: 100,
            },
        );
        set_bounds(&conn, -1, &set).unwrap();
        assert_eq!(bounds(&conn, -1).unwrap(), set);

        assert_eq!(ran_on(&conn, -1).unwrap(), None);
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        set_ran_on(&conn, -1, day).unwrap();
        assert_eq!(ran_on(&conn, -1).unwrap(), Some(day));

        let now = Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap();
        let old = BTreeMap::from([("memes".to_string(), 100), ("quotes".to_string(), 100)]);
        let new = BTreeMap::from([("memes".to_string(), 50), ("quotes".to_string(), 150)]);
        let id = record_change(&conn, -1, &old, &new, "auto-tune: quotes", now).unwrap();
        let stored = change(&conn, id).unwrap().unwrap();
        assert_eq!(
            (stored.old_mix, stored.new_mix, stored.undone_at),
            (old, new, None)
        );
        assert!(mark_undone(&conn, id, 7, now).unwrap());
        assert!(!mark_undone(&conn, id, 7, now).unwrap());
        assert_eq!(change(&conn, id + 1).unwrap(), None);
    }
}
