//! SQL for settings imports waiting for ✅ Apply (`settings_imports`), and the
//! one read an import needs of `settings_history`: which version is current.

use super::exec;
use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{time_at, Timestamp};

/// A settings file read and shown, not yet applied or cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingImport {
    pub id: i64,
    pub chat_id: i64,
    pub user_id: i64,
    pub document: String,
    /// The settings version its differences were worked out against.
    pub based_on: Option<i64>,
    pub expires_at: DateTime<Utc>,
}

/// Keeps a file for its Apply button; drops the imports that expired meanwhile.
pub fn insert(conn: &Connection, import: &PendingImport, now: DateTime<Utc>) -> Result<i64> {
    exec(
        conn,
        "DELETE FROM settings_imports WHERE expires_at <= ?1",
        [Timestamp(now)],
    )?;
    exec(conn, "INSERT INTO settings_imports (chat_id, user_id, document, based_on, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            import.chat_id,
            import.user_id,
            import.document,
            import.based_on,
            Timestamp(now),
            Timestamp(import.expires_at)
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// The import `id` of this chat, if it is still kept (expired or not).
pub fn get(conn: &Connection, chat_id: i64, id: i64) -> Result<Option<PendingImport>> {
    Ok(super::row(
        conn,
        "SELECT id, chat_id, user_id, document, based_on, expires_at
             FROM settings_imports WHERE id = ?1 AND chat_id = ?2",
        params![id, chat_id],
        |r| {
            Ok(PendingImport {
                id: r.get(0)?,
                chat_id: r.get(1)?,
                user_id: r.get(2)?,
                document: r.get(3)?,
                based_on: r.get(4)?,
                expires_at: time_at(r, 5)?,
            })
        },
    )
    .optional()?)
}

pub fn delete(conn: &Connection, id: i64) -> Result<()> {
    exec(conn, "DELETE FROM settings_imports WHERE id = ?1", [id])?;
    Ok(())
}

/// The id of the chat's current settings version (`valid_to IS NULL`).
pub fn current_version(conn: &Connection, chat_id: i64) -> Result<Option<i64>> {
    Ok(super::row(
        conn,
        "SELECT id FROM settings_history WHERE chat_id = ?1 AND valid_to IS NULL",
        [chat_id],
        |r| r.get(0),
    )
    .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_is_kept_for_its_chat_until_it_expires() {
        let mut conn = crate::db::open_in_memory_for_tests();
        let tx = conn.transaction().unwrap();
        let t0: DateTime<Utc> = "2026-01-05T09:00:00Z".parse().unwrap();
        crate::db::insert_chat(&tx, 7, None, None, t0).unwrap();
        crate::db::record_settings_version(&tx, 7, "{}", "[]", None, "chat created", t0).unwrap();
        let version = current_version(&tx, 7).unwrap();
        assert!(version.is_some());
        let import = PendingImport {
            id: 0,
            chat_id: 7,
            user_id: 42,
            document: "{}".into(),
            based_on: version,
            expires_at: t0 + chrono::Duration::hours(1),
        };
        let id = insert(&tx, &import, t0).unwrap();
        let kept = get(&tx, 7, id).unwrap().unwrap();
        assert_eq!(
            kept,
            PendingImport {
                id,
                ..import.clone()
            }
        );
        assert_eq!(get(&tx, 8, id).unwrap(), None, "another chat's import");
        // Storing the next one two hours later drops the expired first.
        let later = t0 + chrono::Duration::hours(2);
        let next = insert(
            &tx,
            &PendingImport {
                expires_at: later + chrono::Duration::hours(1),
                ..import
            },
            later,
        )
        .unwrap();
        assert_eq!(get(&tx, 7, id).unwrap(), None);
        assert_ne!(next, id, "an id is never handed out twice");
        delete(&tx, next).unwrap();
        assert_eq!(get(&tx, 7, next).unwrap(), None);
    }
}
