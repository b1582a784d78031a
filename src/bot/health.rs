//! Health and audit for a chat and for the operator: the /status health block
//! (Telegram, database, media, the account's token, the last error from `runs`),
//! and a chat switched off and on by an admin (`storyline chats disable|enable`):
//! kept, not served (`chats::is_served`), told once each way, and its commands
//! answered with one notice an hour.

use crate::zone::Tz;
use anyhow::Result;
use chrono::{DateTime, Utc};
use log::info;
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::db;
use crate::domain::rows::ChatAccount;
use crate::domain::status::{RunKind, RunOutcome};
use crate::domain::ui::{self, HealthFacts};
use crate::telegram::{self, Outgoing};

/// A chat switched off hears at most one notice this often.
const NOTICE_INTERVAL_SECS: i64 = 3600;

/// The /status health block for `chat_id`, times in `tz`.
pub fn status_block(
    conn: &Connection,
    chat_id: i64,
    account: &ChatAccount,
    last_poll_secs_ago: Option<i64>,
    tz: Tz,
) -> Result<String> {
    let last_error = db::runs::last_failure_for_chat(conn, chat_id)?.map(|run| {
        (
            run.kind.to_string().replace('_', " "),
            run.started_at,
            run.error.unwrap_or_default(),
        )
    });
    let facts = HealthFacts {
        last_poll_secs_ago,
        database_bytes: db::health::database_bytes(conn)?,
        last_backup: db::runs::last_of(conn, RunKind::Backup, RunOutcome::Ok)?
            .map(|run| run.started_at),
        media_items: db::health::active_media_items(conn)?,
        last_scan: db::runs::last_of(conn, RunKind::Scan, RunOutcome::Ok)?
            .map(|run| run.started_at),
        token: match account {
            ChatAccount::Account { token, .. } => Some(*token),
            _ => None,
        },
        last_error,
    };
    Ok(ui::health_block(&facts, tz))
}

/// Whether an admin switched the chat off (why `is_served` says no).
pub fn is_switched_off(conn: &Connection, chat_id: i64) -> Result<bool> {
    db::health::is_disabled(conn, chat_id)
}

/// A command in a chat switched off: one notice an hour, nothing else.
pub fn notice_switched_off(
    tx: &Transaction<'_>,
    chat_id: i64,
    now: DateTime<Utc>,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let recently = db::last_refusal(tx, chat_id)?
        .is_some_and(|t| (now - t).num_seconds() < NOTICE_INTERVAL_SECS);
    if recently {
        return Ok(());
    }
    db::record_refusal(tx, chat_id, now)?;
    out.push(telegram::send_message(
        chat_id,
        &ui::chat_disabled_notice_text(),
        None,
    ));
    Ok(())
}

/// `storyline chats disable|enable ID`: switches the chat off (`off`) or on in
/// one transaction with the message that tells it, sent by the daemon's outbox.
/// Returns false (and tells nothing) when it already was so.
pub fn switch_chat(
    conn: &mut Connection,
    chat_id: i64,
    off: bool,
    now: DateTime<Utc>,
) -> Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !db::health::set_disabled(&tx, chat_id, off, now)? {
        return Ok(false);
    }
    let text = if off {
        ui::chat_disabled_text()
    } else {
        ui::chat_enabled_text()
    };
    crate::bot::chats::enqueue_all(&tx, &[telegram::send_message(chat_id, &text, None)], now)?;
    tx.commit()?;
    info!(
        "chat {chat_id}: switched {} by the operator",
        if off { "off" } else { "on" }
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
    }

    fn outbox_texts(conn: &Connection) -> Vec<String> {
        db::chats::outbox_calls(conn)
            .unwrap()
            .iter()
            .filter_map(|row| {
                let params: serde_json::Value = serde_json::from_str(&row.params).ok()?;
                params["text"].as_str().map(str::to_string)
            })
            .collect()
    }

    #[test]
    fn switching_a_chat_tells_it_once_each_way() {
        let mut conn = db::open_in_memory_for_tests();
        let tx = conn.transaction().unwrap();
        db::insert_chat(&tx, 7, None, None, now()).unwrap();
        tx.commit().unwrap();
        assert!(switch_chat(&mut conn, 7, true, now()).unwrap());
        assert!(!switch_chat(&mut conn, 7, true, now()).unwrap());
        assert!(is_switched_off(&conn, 7).unwrap());
        assert!(switch_chat(&mut conn, 7, false, now()).unwrap());
        assert!(!switch_chat(&mut conn, 7, false, now()).unwrap());
        assert_eq!(
            outbox_texts(&conn),
            [ui::chat_disabled_text(), ui::chat_enabled_text()]
        );
        assert!(switch_chat(&mut conn, 8, true, now()).is_err());
    }

    #[test]
    fn commands_in_a_chat_switched_off_get_one_notice_an_hour() {
        let mut conn = db::open_in_memory_for_tests();
        let tx = conn.transaction().unwrap();
        let mut out = Vec::new();
        notice_switched_off(&tx, 7, now(), &mut out).unwrap();
        notice_switched_off(&tx, 7, now() + chrono::TimeDelta::minutes(59), &mut out).unwrap();
        assert_eq!(out.len(), 1);
        notice_switched_off(&tx, 7, now() + chrono::TimeDelta::minutes(61), &mut out).unwrap();
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn the_health_block_reads_runs_of_every_chat_and_its_own_only() {
        let conn = db::open_in_memory_for_tests();
        db::runs::start(&conn, RunKind::Scan, None, now()).finish(&conn, Ok(()), now());
        db::runs::start(&conn, RunKind::Publish, Some(99), now()).finish(
            &conn,
            Err("someone else's secret"),
            now(),
        );
        let tz: Tz = "UTC".parse().unwrap();
        let block = status_block(&conn, 7, &ChatAccount::None, Some(3), tz).unwrap();
        assert!(block.contains("last scan Sun 01 Mar 09:00 UTC"), "{block}");
        assert!(block.contains("Last error: none"), "{block}");
        db::runs::start(&conn, RunKind::TokenRefresh, None, now()).finish(
            &conn,
            Err("Instagram said no"),
            now(),
        );
        let block = status_block(&conn, 7, &ChatAccount::None, Some(3), tz).unwrap();
        assert!(
            block.contains("Last error: token refresh at Sun 01 Mar 09:00 UTC: Instagram said no"),
            "{block}"
        );
    }
}
