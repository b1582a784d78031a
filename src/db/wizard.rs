//! SQL for the /init set-up wizard (`setup_wizards`): a chat's set-up in
//! progress, and whether a chat was ever set up.

use super::{exec, row};
use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{time_at, Timestamp};

/// The reason of the settings_history version a completed set-up writes.
pub const SETUP_REASON: &str = "initial setup";

/// A set-up in progress, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWizard {
    pub id: i64,
    pub chat_id: i64,
    pub step: u8,
    /// JSON of `wizard::Choices`.
    pub choices: String,
    pub started_by: i64,
    pub started_at: DateTime<Utc>,
    /// The wizard's message, once Telegram answered its send.
    pub message_id: Option<i64>,
}

pub fn wizard(conn: &Connection, chat_id: i64) -> Result<Option<StoredWizard>> {
    Ok(super::row(
        conn,
        "SELECT id, chat_id, step, choices, started_by, started_at, message_id
             FROM setup_wizards WHERE chat_id = ?1",
        [chat_id],
        |r| {
            Ok(StoredWizard {
                id: r.get(0)?,
                chat_id: r.get(1)?,
                step: r.get(2)?,
                choices: r.get(3)?,
                started_by: r.get(4)?,
                started_at: time_at(r, 5)?,
                message_id: r.get(6)?,
            })
        },
    )
    .optional()?)
}

/// Stores the chat's wizard under a new id (replacing any row it had) and
/// returns the id: a new set-up, or one resumed in a new message, whose older
/// messages' buttons must stop working.
pub fn put_wizard(
    tx: &Transaction<'_>,
    chat_id: i64,
    step: u8,
    choices_json: &str,
    started_by: i64,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<i64> {
    delete_wizard(tx, chat_id)?;
    exec(
        tx,
        "INSERT INTO setup_wizards (chat_id, step, choices, started_by, started_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            chat_id,
            step,
            choices_json,
            started_by,
            Timestamp(started_at),
            Timestamp(now)
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Saves the step and choices of the wizard with this id.
pub fn save_wizard(
    tx: &Transaction<'_>,
    id: i64,
    step: u8,
    choices_json: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    exec(
        tx,
        "UPDATE setup_wizards SET step = ?2, choices = ?3, updated_at = ?4 WHERE id = ?1",
        params![id, step, choices_json, Timestamp(now)],
    )?;
    Ok(())
}

/// Records the message showing the wizard with this id; a wizard replaced since
/// (resumed, cancelled, completed) is left alone.
pub fn set_wizard_message(conn: &Connection, id: i64, message_id: i64) -> Result<()> {
    exec(
        conn,
        "UPDATE setup_wizards SET message_id = ?2 WHERE id = ?1",
        params![id, message_id],
    )?;
    Ok(())
}

pub fn delete_wizard(tx: &Transaction<'_>, chat_id: i64) -> Result<()> {
    exec(
        tx,
        "DELETE FROM setup_wizards WHERE chat_id = ?1",
        [chat_id],
    )?;
    Ok(())
}

/// Whether the chat completed a set-up or has changed any setting: such a chat
/// gets the plain welcome on /start rather than the wizard.
pub fn chat_is_set_up(conn: &Connection, chat_id: i64) -> Result<bool> {
    Ok(row(
        conn,
        "SELECT EXISTS (SELECT 1 FROM settings_history
             WHERE chat_id = ?1 AND (reason = ?2 OR changes <> '[]'))",
        params![chat_id, SETUP_REASON],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_wizard_gets_a_new_id_and_set_up_follows_history() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::db::open(&dir.path().join("w.db")).unwrap();
        let tx = conn.transaction().unwrap();
        let t: chrono::DateTime<chrono::Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        crate::db::insert_chat(&tx, 7, None, None, t).unwrap();
        crate::db::record_settings_version(&tx, 7, "{}", "[]", None, "chat created", t).unwrap();
        assert!(!chat_is_set_up(&tx, 7).unwrap());

        let first = put_wizard(&tx, 7, 1, "{}", 42, t, t).unwrap();
        save_wizard(&tx, first, 3, "{\"x\":1}", t).unwrap();
        let stored = wizard(&tx, 7).unwrap().unwrap();
        assert_eq!(
            (stored.id, stored.step, stored.choices.as_str()),
            (first, 3, "{\"x\":1}")
        );
        assert_eq!(stored.message_id, None);
        set_wizard_message(&tx, first, 55).unwrap();
        assert_eq!(wizard(&tx, 7).unwrap().unwrap().message_id, Some(55));
        let second = put_wizard(&tx, 7, stored.step, &stored.choices, 42, t, t).unwrap();
        assert_ne!(first, second);
        // The new message is not known yet; the old wizard's id no longer names a row.
        assert_eq!(wizard(&tx, 7).unwrap().unwrap().message_id, None);
        set_wizard_message(&tx, first, 56).unwrap();
        assert_eq!(wizard(&tx, 7).unwrap().unwrap().message_id, None);
        delete_wizard(&tx, 7).unwrap();
        // AUTOINCREMENT: a deleted id is never handed out again.
        let third = put_wizard(&tx, 7, 1, "{}", 42, t, t).unwrap();
        assert!(third > second);
        assert_eq!(wizard(&tx, 8).unwrap(), None);

        crate::db::record_settings_version(&tx, 7, "{}", "[]", Some(42), SETUP_REASON, t).unwrap();
        assert!(chat_is_set_up(&tx, 7).unwrap());
        crate::db::insert_chat(&tx, 9, None, None, t).unwrap();
        crate::db::record_settings_version(
            &tx,
            9,
            "{}",
            r#"[{"setting":"posts_per_day","old":3,"new":5}]"#,
            Some(42),
            "settings menu",
            t,
        )
        .unwrap();
        assert!(chat_is_set_up(&tx, 9).unwrap());
    }
}
