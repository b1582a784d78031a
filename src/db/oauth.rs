//! SQL for `oauth_states`: the single-use states of /connect (who asked, in
//! which chat, until when, and whether one was used).

use super::exec;
use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub chat_id: i64,
    pub user_id: i64,
}

/// Stores a new state, unused.
pub fn insert_state(
    conn: &Connection,
    state: &str,
    chat_id: i64,
    user_id: i64,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    exec(conn,
        "INSERT INTO oauth_states (state, chat_id, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            state,
            chat_id,
            user_id,
            Timestamp(created_at),
            Timestamp(expires_at)
        ],
    )?;
    Ok(())
}

/// A state that is known, unused and unexpired at `now`.
pub fn live_state(conn: &Connection, state: &str, now: DateTime<Utc>) -> Result<Option<StateRow>> {
    Ok(super::row(conn,
            "SELECT chat_id, user_id FROM oauth_states WHERE state = ?1 AND used_at IS NULL AND expires_at > ?2",
            params![state, Timestamp(now)],
            |r| Ok(StateRow { chat_id: r.get(0)?, user_id: r.get(1)? }),
        )
        .optional()?)
}

/// The newest live state of a user in a chat.
pub fn live_state_of(
    conn: &Connection,
    chat_id: i64,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    Ok(super::row(
        conn,
        "SELECT state FROM oauth_states WHERE chat_id = ?1 AND user_id = ?2 AND used_at IS NULL
               AND expires_at > ?3 ORDER BY created_at DESC LIMIT 1",
        params![chat_id, user_id, Timestamp(now)],
        |r| r.get(0),
    )
    .optional()?)
}

/// Marks a state used at `now`.
pub fn mark_used(conn: &Connection, state: &str, now: DateTime<Utc>) -> Result<()> {
    exec(
        conn,
        "UPDATE oauth_states SET used_at = ?2 WHERE state = ?1",
        params![state, Timestamp(now)],
    )?;
    Ok(())
}
