//! SQL for a chat's life beyond its settings: moving everything of a group to
//! the supergroup Telegram made of it, the id it was migrated from (for
//! access), and marking a chat inactive while Telegram refuses to deliver to it.

use super::exec;
use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{OutboxRow, Timestamp};

/// Every table with a `chat_id` column, so a move cannot forget one added later.
fn tables_with_chat_id(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
         WHERE m.type = 'table' AND p.name = 'chat_id' AND m.name NOT LIKE 'sqlite_%'
         ORDER BY m.name",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn chat_exists(conn: &Connection, chat_id: i64) -> Result<bool> {
    Ok(super::row(
        conn,
        "SELECT 1 FROM chats WHERE chat_id = ?1",
        [chat_id],
        |_| Ok(()),
    )
    .optional()?
    .is_some())
}

/// Moves every row of chat `from` to chat `to`, in `tx`: the chat's settings,
/// account, queue, history, media view, prompts, wizard and links. Returns
/// whether the chat's own row moved (false when `from` has none, for example
/// because it moved already), so the caller tells the chat once.
///
/// What `from` holds wins: where `to` already holds a row of the same key (it
/// was allowed or set up before the move), that row is replaced; `to`'s
/// history is kept, its current settings version closed, and its pending slots
/// and planned days dropped so no day is planned twice.
pub fn move_chat(
    tx: &Transaction<'_>,
    from: i64,
    to: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    if from == to {
        return Ok(false);
    }
    let moves_row = chat_exists(tx, from)?;
    // The children move before or after their chats row; the keys are checked
    // at commit. (The pragma switches itself off at the end of the transaction.)
    tx.execute_batch("PRAGMA defer_foreign_keys = ON")?;
    if moves_row && chat_exists(tx, to)? {
        exec(
            tx,
            "DELETE FROM posting_queue WHERE chat_id = ?1 AND status = 'pending'
               AND id NOT IN (SELECT queue_id FROM publish_jobs)
               AND id NOT IN (SELECT queue_id FROM posting_history WHERE queue_id IS NOT NULL)",
            [to],
        )?;
        exec(tx, "DELETE FROM planned_windows WHERE chat_id = ?1", [to])?;
        exec(tx, "DELETE FROM chat_categories WHERE chat_id = ?1", [to])?;
        exec(tx, "DELETE FROM chats WHERE chat_id = ?1", [to])?;
    }
    let from_snapshot: Option<String> = super::row(
        tx,
        "SELECT snapshot FROM settings_history WHERE chat_id = ?1 AND valid_to IS NULL",
        [from],
        |r| r.get(0),
    )
    .optional()?;
    if from_snapshot.is_some() {
        exec(
            tx,
            "UPDATE settings_history SET valid_to = ?2 WHERE chat_id = ?1 AND valid_to IS NULL",
            params![to, Timestamp(now)],
        )?;
    }
    for table in tables_with_chat_id(tx)? {
        if table == "chats" {
            exec(
                tx,
                "UPDATE OR REPLACE chats SET chat_id = ?2,
                     migrated_from_chat_id = coalesce(migrated_from_chat_id, ?1)
                 WHERE chat_id = ?1",
                params![from, to],
            )?;
        } else {
            let table = table.replace('"', "\"\"");
            exec(
                tx,
                &format!("UPDATE OR REPLACE \"{table}\" SET chat_id = ?2 WHERE chat_id = ?1"),
                params![from, to],
            )?;
        }
    }
    if let Some(snapshot) = from_snapshot {
        // A version that says when and why the chat changed id; same settings.
        super::record_settings_version(tx, to, &snapshot, "[]", None, reason, now)?;
    }
    Ok(moves_row)
}

/// The id the chat had before Telegram moved it, if it moved.
pub fn migrated_from(conn: &Connection, chat_id: i64) -> Result<Option<i64>> {
    Ok(super::row(
        conn,
        "SELECT migrated_from_chat_id FROM chats WHERE chat_id = ?1",
        [chat_id],
        |r| r.get(0),
    )
    .optional()?
    .flatten())
}

/// The chat that was migrated from `old_id`, if one was.
pub fn migrated_to(conn: &Connection, old_id: i64) -> Result<Option<i64>> {
    Ok(super::row(
        conn,
        "SELECT chat_id FROM chats WHERE migrated_from_chat_id = ?1",
        [old_id],
        |r| r.get(0),
    )
    .optional()?)
}

/// Marks the chat inactive for `reason`; true if it was active until now (and
/// has a row), so whoever must be told is told once.
pub fn mark_inactive(
    conn: &Connection,
    chat_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let changed = exec(
        conn,
        "UPDATE chats SET inactive_since = ?3, inactive_reason = ?2
         WHERE chat_id = ?1 AND inactive_since IS NULL",
        params![chat_id, reason, Timestamp(now)],
    )?;
    Ok(changed == 1)
}

/// Clears the mark; true if the chat was inactive.
pub fn clear_inactive(conn: &Connection, chat_id: i64) -> Result<bool> {
    let changed = exec(
        conn,
        "UPDATE chats SET inactive_since = NULL, inactive_reason = NULL
         WHERE chat_id = ?1 AND inactive_since IS NOT NULL",
        [chat_id],
    )?;
    Ok(changed == 1)
}

/// The chats marked inactive.
pub fn inactive_chat_ids(conn: &Connection) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT chat_id FROM chats WHERE inactive_since IS NOT NULL ORDER BY chat_id",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ---- outbox calls, readdressed when their chat moves ---------------------------------

/// Every call waiting in the outbox, oldest first.
pub fn outbox_calls(conn: &Connection) -> Result<Vec<OutboxRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM outbox ORDER BY id",
        super::OUTBOX_COLUMNS
    ))?;
    let rows = stmt.query_map([], super::outbox_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn rewrite_outbox_call(
    conn: &Connection,
    id: i64,
    params_json: &str,
    on_result: Option<&str>,
) -> Result<()> {
    exec(
        conn,
        "UPDATE outbox SET params = ?2, on_result = ?3,
             chat_id = CASE WHEN json_valid(?2)
                            THEN CAST(json_extract(?2, '$.chat_id') AS INTEGER) END
         WHERE id = ?1",
        params![id, params_json, on_result],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;

    const fn january(day: u32) -> DateTime<Utc> {
        match chrono::NaiveDate::from_ymd_opt(2026, 1, day) {
            Some(date) => date.and_time(chrono::NaiveTime::MIN).and_utc(),
            None => panic!("a day of January"),
        }
    }

    const T0: DateTime<Utc> = january(1);
    const T1: DateTime<Utc> = january(2);

    /// A chat with a row in every table that has a chat_id.
    fn full_chat(tx: &Transaction<'_>, chat_id: i64, account_id: i64) {
        db::insert_chat(tx, chat_id, Some("Team"), Some(42), T0).unwrap();
        db::record_settings_version(tx, chat_id, "{\"posts_per_day\":3}", "[]", None, "r", T0)
            .unwrap();
        tx.execute(
            "UPDATE chats SET posts_per_day = 3, active_account_id = ?2 WHERE chat_id = ?1",
            params![chat_id, account_id],
        )
        .unwrap();
        db::log_interaction(tx, chat_id.abs(), chat_id, Some(42), "command", "next", T0).unwrap();
        let input = db::PendingInput {
            field: "posts_per_day".into(),
            stash: None,
            menu_message_id: Some(5),
            expires_at: "2099-01-01T00:00:00Z".parse().unwrap(),
        };
        db::set_pending_input(tx, chat_id, 42, &input, T0).unwrap();
        db::record_refusal(tx, chat_id, T0).unwrap();
        tx.execute(
            "INSERT INTO chat_media (chat_id, sha256, category, shuffle) VALUES (?1, 'aa', 'q', 1)",
            [chat_id],
        )
        .unwrap();
        let mut weights = std::collections::BTreeMap::new();
        weights.insert("q".to_string(), 100);
        db::queue::set_category_weights(tx, chat_id, &weights).unwrap();
        let slot = db::queue::insert_slot(tx, chat_id, T1, "2026-01-02", Some("aa"), T0).unwrap();
        let sent = db::queue::insert_slot(tx, chat_id, T0, "2026-01-01", Some("aa"), T0).unwrap();
        db::queue::mark_window_planned(tx, chat_id, "2026-01-02", T0).unwrap();
        db::queue::record_history(
            tx,
            chat_id,
            Some(sent),
            None,
            "aa",
            "posted",
            "manual",
            Some(42),
            T0,
        )
        .unwrap();
        tx.execute(
            "INSERT INTO publish_jobs (queue_id, chat_id, account_id, dry_run, state, created_at, updated_at)
             VALUES (?1, ?2, ?3, 1, 'published', ?4, ?4)",
            params![sent, chat_id, account_id, Timestamp(T0)],
        )
        .unwrap();
        db::wizard::put_wizard(tx, chat_id, 1, "{}", 42, T0, T0).unwrap();
        tx.execute(
            "INSERT INTO oauth_states (state, chat_id, user_id, created_at, expires_at)
             VALUES (?1, ?2, 42, ?3, ?3)",
            params![format!("state{chat_id}"), chat_id, Timestamp(T0)],
        )
        .unwrap();
        let _ = slot;
    }

    fn rows_of(conn: &Connection, chat_id: i64) -> Vec<(String, i64)> {
        tables_with_chat_id(conn)
            .unwrap()
            .into_iter()
            .map(|table| {
                let n: i64 = conn
                    .query_row(
                        &format!("SELECT count(*) FROM \"{table}\" WHERE chat_id = ?1"),
                        [chat_id],
                        |r| r.get(0),
                    )
                    .unwrap();
                (table, n)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    fn setup() -> (tempfile::TempDir, Connection, i64) {
        let dir = tempfile::tempdir().unwrap();
        let conn = db::open(&dir.path().join("s.db")).unwrap();
        conn.execute(
            "INSERT INTO instagram_accounts (display_name, instagram_user_id, created_at, updated_at)
             VALUES ('Brand', '178', ?1, ?1)",
            [Timestamp(T0)],
        )
        .unwrap();
        let account = conn.last_insert_rowid();
        (dir, conn, account)
    }

    #[test]
    fn a_move_takes_every_row_of_every_table_in_one_transaction() {
        let (_dir, mut conn, account) = setup();
        let tx = conn.transaction().unwrap();
        full_chat(&tx, -5, account);
        tx.commit().unwrap();
        let before: Vec<(String, i64)> = rows_of(&conn, -5);
        assert!(before.len() >= 13, "every table has a row: {before:?}");

        let tx = conn.transaction().unwrap();
        assert!(move_chat(&tx, -5, -1005, "upgraded", T1).unwrap());
        tx.commit().unwrap();
        assert_eq!(rows_of(&conn, -5), []);
        let mut after = rows_of(&conn, -1005);
        // One more settings version: the move itself.
        for (table, n) in &mut after {
            if table == "settings_history" {
                *n -= 1;
            }
        }
        assert_eq!(after, before);
        let row = db::chat(&conn, -1005).unwrap().unwrap();
        assert_eq!(row.posts_per_day, Some(3));
        assert_eq!(
            db::accounts::chat_active_account_id(&conn, -1005).unwrap(),
            Some(account)
        );
        assert_eq!(migrated_from(&conn, -1005).unwrap(), Some(-5));
        assert_eq!(migrated_to(&conn, -5).unwrap(), Some(-1005));
        assert!(db::chat_is_authorized(&conn, -1005).unwrap());
        let history = db::settings_history(&conn, -1005, 10).unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].reason.as_deref(), Some("upgraded"));
        assert_eq!(history[0].valid_to, None);
        assert_eq!(history[0].snapshot, "{\"posts_per_day\":3}");
        assert_eq!(history[1].valid_to, Some(T1));

        // Moving again finds nothing: the caller does not tell the chat twice.
        let tx = conn.transaction().unwrap();
        assert!(!move_chat(&tx, -5, -1005, "upgraded", T1).unwrap());
        tx.commit().unwrap();
        assert_eq!(db::settings_history(&conn, -1005, 10).unwrap().len(), 2);
    }

    #[test]
    fn what_the_old_id_holds_replaces_what_the_new_one_got_meanwhile() {
        let (_dir, mut conn, account) = setup();
        let tx = conn.transaction().unwrap();
        full_chat(&tx, -5, account);
        // The new id was allowed in the config and got a default row and plan.
        db::insert_chat(&tx, -1005, None, None, T0).unwrap();
        db::record_settings_version(&tx, -1005, "{}", "[]", None, "chat created", T0).unwrap();
        db::queue::insert_slot(&tx, -1005, T1, "2026-01-02", Some("aa"), T0).unwrap();
        db::queue::mark_window_planned(&tx, -1005, "2026-01-02", T0).unwrap();
        db::record_refusal(&tx, -1005, T0).unwrap();
        tx.commit().unwrap();

        let tx = conn.transaction().unwrap();
        assert!(move_chat(&tx, -5, -1005, "upgraded", T1).unwrap());
        tx.commit().unwrap();
        assert_eq!(rows_of(&conn, -5), []);
        let row = db::chat(&conn, -1005).unwrap().unwrap();
        assert_eq!(row.posts_per_day, Some(3));
        let pending: i64 = conn
            .query_row(
                "SELECT count(*) FROM posting_queue WHERE chat_id = -1005 AND status = 'pending'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(pending, 2, "the old id's slots, not the new id's plan too");
        let current: i64 = conn
            .query_row(
                "SELECT count(*) FROM settings_history WHERE chat_id = -1005 AND valid_to IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(current, 1);
        assert_eq!(db::settings_history(&conn, -1005, 10).unwrap().len(), 3);
    }

    #[test]
    fn inactive_is_marked_and_cleared_once() {
        let (_dir, mut conn, _) = setup();
        let tx = conn.transaction().unwrap();
        db::insert_chat(&tx, 7, None, None, T0).unwrap();
        tx.commit().unwrap();
        assert!(!mark_inactive(&conn, 8, "blocked", T0).unwrap(), "no row");
        assert!(
            mark_inactive(&conn, 7, "nonsense", T0).is_err(),
            "a reason we know"
        );
        assert!(mark_inactive(&conn, 7, "blocked", T0).unwrap());
        assert!(!mark_inactive(&conn, 7, "kicked", T1).unwrap());
        assert_eq!(inactive_chat_ids(&conn).unwrap(), [7]);
        let reason: String = conn
            .query_row(
                "SELECT inactive_reason FROM chats WHERE chat_id = 7",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(reason, "blocked", "the first reason stays");
        assert!(clear_inactive(&conn, 7).unwrap());
        assert!(!clear_inactive(&conn, 7).unwrap());
        assert!(inactive_chat_ids(&conn).unwrap().is_empty());
    }
}
