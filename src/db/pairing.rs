//! SQL for pairing: the one-time codes of a set-up with only the token
//! (`pairing_codes`, stored as a salted HMAC, never as the code), the admins who
//! paired (`admins`), and the chats served because an admin enabled them.

use super::{exec, row};
use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{optional_time_at, time_at, Timestamp};

/// An unused, unexpired code: what to check a guess against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCode {
    pub id: i64,
    pub salt: Vec<u8>,
    pub tag: Vec<u8>,
}

/// An admin who paired with a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairedAdmin {
    pub user_id: i64,
    pub chat_id: i64,
    pub added_at: DateTime<Utc>,
}

/// Stores a new code, dropping every unused one: only the newest can be used.
pub fn replace_code(
    conn: &Connection,
    salt: &[u8],
    tag: &[u8],
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    drop_unused_codes(conn)?;
    exec(
        conn,
        "INSERT INTO pairing_codes (salt, tag, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![salt, tag, Timestamp(created_at), Timestamp(expires_at)],
    )?;
    Ok(())
}

/// Forgets every code not used yet. Returns how many.
pub fn drop_unused_codes(conn: &Connection) -> Result<usize> {
    Ok(exec(
        conn,
        "DELETE FROM pairing_codes WHERE used_at IS NULL",
        [],
    )?)
}

/// The code that may still be used at `now`, if any.
pub fn live_code(conn: &Connection, now: DateTime<Utc>) -> Result<Option<LiveCode>> {
    Ok(super::row(
        conn,
        "SELECT id, salt, tag FROM pairing_codes WHERE used_at IS NULL AND expires_at > ?1
             ORDER BY id DESC LIMIT 1",
        [Timestamp(now)],
        |r| {
            Ok(LiveCode {
                id: r.get(0)?,
                salt: r.get(1)?,
                tag: r.get(2)?,
            })
        },
    )
    .optional()?)
}

/// When the code that may still be used expires, if there is one.
pub fn live_code_expiry(conn: &Connection, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    Ok(row(
        conn,
        "SELECT max(expires_at) FROM pairing_codes WHERE used_at IS NULL AND expires_at > ?1",
        [Timestamp(now)],
        |r| optional_time_at(r, 0),
    )?)
}

/// Marks code `id` used by `user_id` in `chat_id`; false if it was used already.
pub fn use_code(
    conn: &Connection,
    id: i64,
    user_id: i64,
    chat_id: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(exec(
        conn,
        "UPDATE pairing_codes SET used_at = ?2, used_by = ?3, used_in_chat = ?4
         WHERE id = ?1 AND used_at IS NULL",
        params![id, Timestamp(now), user_id, chat_id],
    )? == 1)
}

/// Records an admin who paired in `chat_id`.
pub fn add_admin(conn: &Connection, user_id: i64, chat_id: i64, now: DateTime<Utc>) -> Result<()> {
    exec(
        conn,
        "INSERT INTO admins (user_id, chat_id, added_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id) DO NOTHING",
        params![user_id, chat_id, Timestamp(now)],
    )?;
    Ok(())
}

/// The admins who paired, oldest first.
pub fn paired_admins(conn: &Connection) -> Result<Vec<PairedAdmin>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, chat_id, added_at FROM admins ORDER BY added_at, user_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(PairedAdmin {
            user_id: r.get(0)?,
            chat_id: r.get(1)?,
            added_at: time_at(r, 2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The chats an admin enabled (with /start or the set-up), with who did: (chat, admin).
pub fn authorized_chats(conn: &Connection) -> Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT chat_id, authorized_by FROM chats WHERE authorized_by IS NOT NULL ORDER BY chat_id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn one_live_code_used_once() {
        let conn = crate::db::open_in_memory_for_tests();
        replace_code(
            &conn,
            b"s1",
            b"t1",
            at("2026-01-01T00:00:00Z"),
            at("2026-01-01T01:00:00Z"),
        )
        .unwrap();
        replace_code(
            &conn,
            b"s2",
            b"t2",
            at("2026-01-01T00:10:00Z"),
            at("2026-01-01T01:10:00Z"),
        )
        .unwrap();
        let live = live_code(&conn, at("2026-01-01T00:30:00Z"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (live.salt.as_slice(), live.tag.as_slice()),
            (&b"s2"[..], &b"t2"[..])
        );
        assert_eq!(
            live_code_expiry(&conn, at("2026-01-01T00:30:00Z")).unwrap(),
            Some(at("2026-01-01T01:10:00Z"))
        );
        assert!(
            live_code(&conn, at("2026-01-01T01:10:00Z"))
                .unwrap()
                .is_none(),
            "expired"
        );
        assert_eq!(
            live_code_expiry(&conn, at("2026-01-01T01:10:00Z")).unwrap(),
            None
        );
        // Stored as the store writes every time, so SQL compares it as text.
        let stored: String = conn
            .query_row(
                "SELECT expires_at FROM pairing_codes WHERE id = ?1",
                [live.id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, "2026-01-01T01:10:00Z");
        assert!(use_code(&conn, live.id, 7, -5, at("2026-01-01T00:31:00Z")).unwrap());
        assert!(!use_code(&conn, live.id, 8, -6, at("2026-01-01T00:32:00Z")).unwrap());
        assert!(
            live_code(&conn, at("2026-01-01T00:33:00Z"))
                .unwrap()
                .is_none(),
            "used"
        );
        // A used code is kept as a record; a new start drops only unused ones.
        assert_eq!(drop_unused_codes(&conn).unwrap(), 0);
        add_admin(&conn, 7, -5, at("2026-01-01T00:31:00Z")).unwrap();
        add_admin(&conn, 7, -9, at("2026-01-01T00:40:00Z")).unwrap();
        assert_eq!(
            paired_admins(&conn).unwrap(),
            vec![PairedAdmin {
                user_id: 7,
                chat_id: -5,
                added_at: at("2026-01-01T00:31:00Z"),
            }]
        );
    }
}
