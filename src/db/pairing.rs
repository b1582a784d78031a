//! SQL for pairing: the one-time codes of a set-up with only the token
//! (`pairing_codes`, stored as a salted HMAC, never as the code), the admins who
//! paired (`admins`), and the chats served because an admin enabled them.

use anyhow::Result;
use rusqlite::{params, Connection, OptionalExtension};

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
    pub added_at: String,
}

/// Stores a new code, dropping every unused one: only the newest can be used.
pub fn replace_code(
    conn: &Connection,
    salt: &[u8],
    tag: &[u8],
    created_at: &str,
    expires_at: &str,
) -> Result<()> {
    drop_unused_codes(conn)?;
    conn.execute(
        "INSERT INTO pairing_codes (salt, tag, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![salt, tag, created_at, expires_at],
    )?;
    Ok(())
}

/// Forgets every code not used yet. Returns how many.
pub fn drop_unused_codes(conn: &Connection) -> Result<usize> {
    Ok(conn.execute("DELETE FROM pairing_codes WHERE used_at IS NULL", [])?)
}

/// The code that may still be used at `now`, if any.
pub fn live_code(conn: &Connection, now: &str) -> Result<Option<LiveCode>> {
    Ok(conn
        .query_row(
            "SELECT id, salt, tag FROM pairing_codes WHERE used_at IS NULL AND expires_at > ?1
             ORDER BY id DESC LIMIT 1",
            [now],
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
pub fn live_code_expiry(conn: &Connection, now: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT max(expires_at) FROM pairing_codes WHERE used_at IS NULL AND expires_at > ?1",
            [now],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

/// Marks code `id` used by `user_id` in `chat_id`; false if it was used already.
pub fn use_code(conn: &Connection, id: i64, user_id: i64, chat_id: i64, now: &str) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE pairing_codes SET used_at = ?2, used_by = ?3, used_in_chat = ?4
         WHERE id = ?1 AND used_at IS NULL",
        params![id, now, user_id, chat_id],
    )? == 1)
}

/// Records an admin who paired in `chat_id`.
pub fn add_admin(conn: &Connection, user_id: i64, chat_id: i64, now: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO admins (user_id, chat_id, added_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id) DO NOTHING",
        params![user_id, chat_id, now],
    )?;
    Ok(())
}

/// The admins who paired, oldest first.
pub fn paired_admins(conn: &Connection) -> Result<Vec<PairedAdmin>> {
    let mut stmt =
        conn.prepare("SELECT user_id, chat_id, added_at FROM admins ORDER BY added_at, user_id")?;
    let rows = stmt.query_map([], |r| {
        Ok(PairedAdmin {
            user_id: r.get(0)?,
            chat_id: r.get(1)?,
            added_at: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The chats an admin enabled (with /start or the set-up), with who did: (chat, admin).
pub fn authorized_chats(conn: &Connection) -> Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT chat_id, authorized_by FROM chats WHERE authorized_by IS NOT NULL ORDER BY chat_id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_live_code_used_once() {
        let conn = crate::db::open_in_memory_for_tests();
        replace_code(
            &conn,
            b"s1",
            b"t1",
            "2026-01-01T00:00:00Z",
            "2026-01-01T01:00:00Z",
        )
        .unwrap();
        replace_code(
            &conn,
            b"s2",
            b"t2",
            "2026-01-01T00:10:00Z",
            "2026-01-01T01:10:00Z",
        )
        .unwrap();
        let live = live_code(&conn, "2026-01-01T00:30:00Z").unwrap().unwrap();
        assert_eq!(
            (live.salt.as_slice(), live.tag.as_slice()),
            (&b"s2"[..], &b"t2"[..])
        );
        assert_eq!(
            live_code_expiry(&conn, "2026-01-01T00:30:00Z")
                .unwrap()
                .as_deref(),
            Some("2026-01-01T01:10:00Z")
        );
        assert!(
            live_code(&conn, "2026-01-01T01:10:00Z").unwrap().is_none(),
            "expired"
        );
        assert!(use_code(&conn, live.id, 7, -5, "2026-01-01T00:31:00Z").unwrap());
        assert!(!use_code(&conn, live.id, 8, -6, "2026-01-01T00:32:00Z").unwrap());
        assert!(
            live_code(&conn, "2026-01-01T00:33:00Z").unwrap().is_none(),
            "used"
        );
        // A used code is kept as a record; a new start drops only unused ones.
        assert_eq!(drop_unused_codes(&conn).unwrap(), 0);
        add_admin(&conn, 7, -5, "2026-01-01T00:31:00Z").unwrap();
        add_admin(&conn, 7, -9, "2026-01-01T00:40:00Z").unwrap();
        assert_eq!(
            paired_admins(&conn).unwrap(),
            vec![PairedAdmin {
                user_id: 7,
                chat_id: -5,
                added_at: "2026-01-01T00:31:00Z".into()
            }]
        );
    }
}
