//! SQL for the operator's view of the chats (`storyline chats list`), a chat
//! switched off by an admin (`chats disable` / `enable`: kept, not served) and
//! the figures of the /status health block.

use super::{exec, row};
use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::Timestamp;

/// One chat as `storyline chats list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatListRow {
    pub chat_id: i64,
    pub title: Option<String>,
    /// Enabled by an admin's /start (or the set-up), not only listed in the config.
    pub authorized: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub inactive_since: Option<DateTime<Utc>>,
    /// Moved to this supergroup: the row is an old id.
    pub migrated_to: Option<i64>,
}

/// Every chat the database knows, by id.
pub fn chat_list(conn: &Connection) -> Result<Vec<ChatListRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.chat_id, c.title, c.authorized_by IS NOT NULL, c.disabled_at, c.inactive_since,
                (SELECT n.chat_id FROM chats n WHERE n.migrated_from_chat_id = c.chat_id LIMIT 1)
         FROM chats c ORDER BY c.chat_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(ChatListRow {
            chat_id: r.get(0)?,
            title: r.get(1)?,
            authorized: r.get(2)?,
            disabled_at: r.get::<_, Option<Timestamp>>(3)?.map(|t| t.0),
            inactive_since: r.get::<_, Option<Timestamp>>(4)?.map(|t| t.0),
            migrated_to: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Whether an admin switched the chat off.
pub fn is_disabled(conn: &Connection, chat_id: i64) -> Result<bool> {
    Ok(super::row(
        conn,
        "SELECT disabled_at IS NOT NULL FROM chats WHERE chat_id = ?1",
        [chat_id],
        |r| r.get(0),
    )
    .optional()?
    .unwrap_or(false))
}

/// Switches the chat off (`disabled`) or on; true if that changed it, false if it
/// already was so. An unknown chat is an error.
pub fn set_disabled(
    conn: &Connection,
    chat_id: i64,
    disabled: bool,
    now: DateTime<Utc>,
) -> Result<bool> {
    let known = super::row(
        conn,
        "SELECT 1 FROM chats WHERE chat_id = ?1",
        [chat_id],
        |_| Ok(()),
    )
    .optional()?
    .is_some();
    if !known {
        anyhow::bail!("no chat {chat_id} in the database (storyline chats list shows them)");
    }
    let changed = if disabled {
        exec(
            conn,
            "UPDATE chats SET disabled_at = ?2 WHERE chat_id = ?1 AND disabled_at IS NULL",
            params![chat_id, Timestamp(now)],
        )?
    } else {
        exec(
            conn,
            "UPDATE chats SET disabled_at = NULL WHERE chat_id = ?1 AND disabled_at IS NOT NULL",
            [chat_id],
        )?
    };
    Ok(changed == 1)
}

/// How many media items are active (posted from) now.
pub fn active_media_items(conn: &Connection) -> Result<i64> {
    Ok(row(
        conn,
        "SELECT count(*) FROM media_items WHERE is_active = 1",
        [],
        |r| r.get(0),
    )?)
}

/// The database's size in bytes: its pages, as SQLite counts them.
pub fn database_bytes(conn: &Connection) -> Result<i64> {
    Ok(row(
        conn,
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        [],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_chat_is_switched_off_and_on_once_each() {
        let mut conn = crate::db::open_in_memory_for_tests();
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let tx = conn.transaction().unwrap();
        crate::db::insert_chat(&tx, 7, Some("Team"), None, now).unwrap();
        tx.commit().unwrap();
        assert!(!is_disabled(&conn, 7).unwrap());
        assert!(set_disabled(&conn, 7, true, now).unwrap());
        assert!(!set_disabled(&conn, 7, true, now).unwrap(), "already off");
        assert!(is_disabled(&conn, 7).unwrap());
        let list = chat_list(&conn).unwrap();
        assert_eq!(list[0].disabled_at, Some(now));
        assert_eq!(list[0].title.as_deref(), Some("Team"));
        assert!(set_disabled(&conn, 7, false, now).unwrap());
        assert!(!set_disabled(&conn, 7, false, now).unwrap(), "already on");
        assert!(set_disabled(&conn, 8, true, now).is_err(), "unknown chat");
        assert!(database_bytes(&conn).unwrap() > 0);
        assert_eq!(active_media_items(&conn).unwrap(), 0);
    }
}
