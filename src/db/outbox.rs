//! The outbox's pick when some chats must wait (a 429's `retry_after`, or
//! Telegram's per-chat limits): the oldest call of any other chat. A chat's own
//! calls keep their stored order, since all of a waiting chat's are passed over.
//! A call's chat is its `chat_id` parameter; a call without one (answerCallbackQuery,
//! setMyCommands) or with unreadable parameters never waits for a chat.

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension};

use super::{outbox_row, OutboxRow, OUTBOX_COLUMNS};

/// The oldest outbox row whose chat is not in `waiting`.
pub fn next_skipping(conn: &Connection, waiting: &[i64]) -> Result<Option<OutboxRow>> {
    if waiting.is_empty() {
        return super::outbox_next(conn);
    }
    let waiting = serde_json::to_string(waiting)?;
    Ok(super::row(
        conn,
        &format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox \
                 WHERE coalesce(chat_id, 0) NOT IN (SELECT value FROM json_each(?1)) \
                 ORDER BY id LIMIT 1"
        ),
        [waiting],
        outbox_row,
    )
    .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(conn: &Connection, method: &str, params: &str, chat: Option<i64>) -> i64 {
        let now = "2030-01-01T00:00:00Z".parse().unwrap();
        super::super::enqueue(conn, method, params, chat, now).unwrap();
        conn.last_insert_rowid()
    }

    #[test]
    fn waiting_chats_are_passed_over_in_order_and_the_rest_goes() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open(&dir.path().join("s.db")).unwrap();
        let a1 = put(
            &conn,
            "sendMessage",
            r#"{"chat_id":-100,"text":"a1"}"#,
            Some(-100),
        );
        let a2 = put(
            &conn,
            "sendMessage",
            r#"{"chat_id":-100,"text":"a2"}"#,
            Some(-100),
        );
        let answer = put(
            &conn,
            "answerCallbackQuery",
            r#"{"callback_query_id":"x"}"#,
            None,
        );
        let b1 = put(
            &conn,
            "sendMessage",
            r#"{"chat_id":"7","text":"b1"}"#,
            Some(7),
        );
        let broken = put(&conn, "sendMessage", "{not json", None);
        let next = |waiting: &[i64]| next_skipping(&conn, waiting).unwrap().map(|r| r.id);
        assert_eq!(next(&[]), Some(a1));
        assert_eq!(next(&[-100]), Some(answer));
        conn.execute("DELETE FROM outbox WHERE id = ?1", [answer])
            .unwrap();
        assert_eq!(next(&[-100]), Some(b1));
        assert_eq!(next(&[-100, 7]), Some(broken));
        conn.execute("DELETE FROM outbox WHERE id = ?1", [broken])
            .unwrap();
        assert_eq!(next(&[-100, 7]), None);
        assert_eq!(next(&[7]), Some(a1));
        conn.execute("DELETE FROM outbox WHERE id = ?1", [a1])
            .unwrap();
        assert_eq!(next(&[7]), Some(a2));
        // A call readdressed to another chat (a group became a supergroup) is
        // held or passed as that chat's.
        crate::db::chats::rewrite_outbox_call(
            &conn,
            a2,
            r#"{"chat_id":-1000000000100,"text":"a2"}"#,
            None,
        )
        .unwrap();
        assert_eq!(next(&[-1_000_000_000_100]), Some(b1));
        assert_eq!(next(&[-100]), Some(a2));
    }
}
