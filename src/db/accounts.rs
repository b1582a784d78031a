//! SQL for Instagram accounts, their sealed tokens (`api_tokens`), the chats
//! that may use each (`account_chats`, or `every_chat`), and the account each
//! chat has chosen (`chats.active_account_id`). Tokens come and go here only
//! sealed; `accounts` seals and opens them.

use super::{exec, row};
use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{optional_time_at, time_at, Timestamp};

/// `api_tokens.service` and `token_type` of an Instagram account's access token.
const INSTAGRAM: &str = "instagram";
const ACCESS_TOKEN: &str = "access_token";

pub use crate::domain::rows::Account;

/// An account's access token as stored: sealed, with its dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub account_id: i64,
    pub sealed_value: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_refresh_error: Option<String>,
    /// The UTC date ("2026-01-24") the chats were last told of a failed refresh.
    pub refresh_reported_on: Option<String>,
}

const ACCOUNT_COLUMNS: &str = "id, display_name, instagram_user_id, username, is_active";

fn account_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: r.get(0)?,
        display_name: r.get(1)?,
        instagram_user_id: r.get(2)?,
        username: r.get(3)?,
        is_active: r.get(4)?,
    })
}

/// Adds the account, or updates the name and username of the one with this
/// Instagram user id and makes it active again. Returns its id and whether it
/// is new.
pub fn upsert_account(
    conn: &Connection,
    display_name: &str,
    instagram_user_id: &str,
    username: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(i64, bool)> {
    let existing: Option<i64> = super::row(
        conn,
        "SELECT id FROM instagram_accounts WHERE instagram_user_id = ?1",
        [instagram_user_id],
        |r| r.get(0),
    )
    .optional()?;
    match existing {
        Some(id) => {
            exec(
                conn,
                "UPDATE instagram_accounts SET display_name = ?2, username = ?3, is_active = 1,
                     updated_at = ?4
                 WHERE id = ?1",
                params![id, display_name, username, Timestamp(now)],
            )?;
            Ok((id, false))
        }
        None => {
            exec(
                conn,
                "INSERT INTO instagram_accounts
                     (display_name, instagram_user_id, username, is_active, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 1, ?4, ?4)",
                params![display_name, instagram_user_id, username, Timestamp(now)],
            )?;
            Ok((conn.last_insert_rowid(), true))
        }
    }
}

pub fn account(conn: &Connection, id: i64) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM instagram_accounts WHERE id = ?1");
    Ok(row(conn, &sql, [id], account_from_row).optional()?)
}

/// Every account, deactivated ones too, oldest first.
pub fn all_accounts(conn: &Connection) -> Result<Vec<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM instagram_accounts ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], account_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every active account, whoever may use it, oldest first.
pub fn active_accounts(conn: &Connection) -> Result<Vec<Account>> {
    let sql =
        format!("SELECT {ACCOUNT_COLUMNS} FROM instagram_accounts WHERE is_active = 1 ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], account_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The accounts a chat may choose: active, and open to every chat, owned by
/// it or shared with it; oldest first.
pub fn accounts_for_chat(conn: &Connection, chat_id: i64) -> Result<Vec<Account>> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM instagram_accounts
         WHERE is_active = 1 AND (every_chat = 1
             OR id IN (SELECT account_id FROM account_chats WHERE chat_id = ?1))
         ORDER BY id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([chat_id], account_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Whether the chat may use the account (active or not).
pub fn chat_may_use(conn: &Connection, account_id: i64, chat_id: i64) -> Result<bool> {
    Ok(row(
        conn,
        "SELECT EXISTS (SELECT 1 FROM instagram_accounts WHERE id = ?1 AND every_chat = 1)
             OR EXISTS (SELECT 1 FROM account_chats WHERE account_id = ?1 AND chat_id = ?2)",
        params![account_id, chat_id],
        |r| r.get(0),
    )?)
}

/// Who may use an account, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountReach {
    /// Added on the command line without a chat: every chat may use it.
    pub every_chat: bool,
    pub owner: Option<i64>,
    /// The chats it is shared with, besides its owner.
    pub shared_with: Vec<i64>,
}

pub fn account_reach(conn: &Connection, account_id: i64) -> Result<AccountReach> {
    let every_chat = super::row(
        conn,
        "SELECT every_chat FROM instagram_accounts WHERE id = ?1",
        [account_id],
        |r| r.get(0),
    )
    .optional()?
    .unwrap_or(false);
    let mut stmt = conn.prepare_cached(
        "SELECT chat_id, is_owner FROM account_chats WHERE account_id = ?1 ORDER BY chat_id",
    )?;
    let rows = stmt.query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut reach = AccountReach {
        every_chat,
        owner: None,
        shared_with: Vec::new(),
    };
    for row in rows {
        let (chat_id, is_owner): (i64, bool) = row?;
        if is_owner {
            reach.owner = Some(chat_id);
        } else {
            reach.shared_with.push(chat_id);
        }
    }
    Ok(reach)
}

/// Opens the account to every chat (an account the operator added without a chat).
pub fn open_to_every_chat(conn: &Connection, account_id: i64, now: DateTime<Utc>) -> Result<()> {
    exec(
        conn,
        "UPDATE instagram_accounts SET every_chat = 1, updated_at = ?2 WHERE id = ?1",
        params![account_id, Timestamp(now)],
    )?;
    Ok(())
}

/// Gives the chat the account: as its owner when it has none, else shared.
/// Returns false when the chat had it already.
pub fn give_to_chat(
    conn: &Connection,
    account_id: i64,
    chat_id: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let added = exec(
        conn,
        "INSERT INTO account_chats (account_id, chat_id, is_owner, since)
         VALUES (?1, ?2, NOT EXISTS (SELECT 1 FROM account_chats
                                     WHERE account_id = ?1 AND is_owner = 1), ?3)
         ON CONFLICT (account_id, chat_id) DO NOTHING",
        params![account_id, chat_id, Timestamp(now)],
    )?;
    Ok(added == 1)
}

/// Takes a shared account away from a chat; never from its owner. Returns
/// false when it was not shared with the chat.
pub fn unshare(conn: &Connection, account_id: i64, chat_id: i64) -> Result<bool> {
    let removed = exec(
        conn,
        "DELETE FROM account_chats WHERE account_id = ?1 AND chat_id = ?2 AND is_owner = 0",
        params![account_id, chat_id],
    )?;
    Ok(removed == 1)
}

/// Soft delete. Returns false when there is no such account.
pub fn deactivate_account(conn: &Connection, id: i64, now: DateTime<Utc>) -> Result<bool> {
    let found = exec(
        conn,
        "UPDATE instagram_accounts SET is_active = 0, updated_at = ?2 WHERE id = ?1",
        params![id, Timestamp(now)],
    )?;
    Ok(found == 1)
}

// ---- tokens -------------------------------------------------------------------------

const TOKEN_COLUMNS: &str =
    "account_id, sealed_value, issued_at, expires_at, last_refresh_error, refresh_reported_on";

fn token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        account_id: r.get(0)?,
        sealed_value: r.get(1)?,
        issued_at: time_at(r, 2)?,
        expires_at: optional_time_at(r, 3)?,
        last_refresh_error: r.get(4)?,
        refresh_reported_on: r.get(5)?,
    })
}

/// Stores a new access token for the account, replacing any earlier one and
/// forgetting its refresh errors.
pub fn store_token(
    conn: &Connection,
    account_id: i64,
    sealed_value: &str,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    exec(conn,
        "INSERT INTO api_tokens (service, token_type, account_id, sealed_value, issued_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (service, token_type, account_id) DO UPDATE SET
             sealed_value = excluded.sealed_value, issued_at = excluded.issued_at,
             expires_at = excluded.expires_at, last_refresh_error = NULL,
             refresh_reported_on = NULL",
        params![
            INSTAGRAM,
            ACCESS_TOKEN,
            account_id,
            sealed_value,
            Timestamp(issued_at),
            Timestamp(expires_at)
        ],
    )?;
    Ok(())
}

pub fn token(conn: &Connection, account_id: i64) -> Result<Option<TokenRow>> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens
         WHERE service = ?1 AND token_type = ?2 AND account_id = ?3"
    );
    Ok(super::row(
        conn,
        &sql,
        params![INSTAGRAM, ACCESS_TOKEN, account_id],
        token_from_row,
    )
    .optional()?)
}

/// Every sealed value in the database, to check that the key file opens them.
pub fn sealed_values(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT sealed_value FROM api_tokens ORDER BY id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Removes every sealed token (the key that opens them is lost); the accounts
/// stay, and need connecting again. Returns how many were removed.
pub fn forget_tokens(conn: &Connection) -> Result<usize> {
    Ok(exec(conn, "DELETE FROM api_tokens", [])?)
}

/// The access tokens of active accounts, by account.
pub fn active_account_tokens(conn: &Connection) -> Result<Vec<TokenRow>> {
    let sql = format!(
        "SELECT {} FROM api_tokens t JOIN instagram_accounts a ON a.id = t.account_id
         WHERE t.service = ?1 AND t.token_type = ?2 AND a.is_active = 1
         ORDER BY t.account_id",
        TOKEN_COLUMNS
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![INSTAGRAM, ACCESS_TOKEN], token_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Stores a refreshed token in place of `old_sealed`. Returns false, storing
/// nothing, when the token was replaced meanwhile (`accounts add` while the
/// refresh call was under way): the newer token wins.
pub fn replace_refreshed_token(
    conn: &Connection,
    account_id: i64,
    old_sealed: &str,
    new_sealed: &str,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<bool> {
    let replaced = exec(
        conn,
        "UPDATE api_tokens SET sealed_value = ?5, issued_at = ?6, expires_at = ?7,
             last_refresh_error = NULL, refresh_reported_on = NULL
         WHERE service = ?1 AND token_type = ?2 AND account_id = ?3 AND sealed_value = ?4",
        params![
            INSTAGRAM,
            ACCESS_TOKEN,
            account_id,
            old_sealed,
            new_sealed,
            Timestamp(issued_at),
            Timestamp(expires_at)
        ],
    )?;
    Ok(replaced == 1)
}

/// A failed refresh of the token `sealed_value`: the error in plain words, and
/// the date the chats were told (kept as it was when `reported_on` is `None`).
/// Returns false, storing nothing, when that token was replaced meanwhile.
pub fn record_refresh_error(
    conn: &Connection,
    account_id: i64,
    sealed_value: &str,
    error: &str,
    reported_on: Option<&str>,
) -> Result<bool> {
    let recorded = exec(
        conn,
        "UPDATE api_tokens SET last_refresh_error = ?5,
             refresh_reported_on = coalesce(?6, refresh_reported_on)
         WHERE service = ?1 AND token_type = ?2 AND account_id = ?3 AND sealed_value = ?4",
        params![
            INSTAGRAM,
            ACCESS_TOKEN,
            account_id,
            sealed_value,
            error,
            reported_on
        ],
    )?;
    Ok(recorded == 1)
}

// ---- the chat's account -------------------------------------------------------------

/// The account the chat chose, as stored (it may since have been deactivated).
pub fn chat_active_account_id(conn: &Connection, chat_id: i64) -> Result<Option<i64>> {
    Ok(super::row(
        conn,
        "SELECT active_account_id FROM chats WHERE chat_id = ?1",
        [chat_id],
        |r| r.get(0),
    )
    .optional()?
    .flatten())
}

pub fn set_chat_active_account(
    conn: &Connection,
    chat_id: i64,
    account_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    exec(
        conn,
        "UPDATE chats SET active_account_id = ?2, updated_at = ?3 WHERE chat_id = ?1",
        params![chat_id, account_id, Timestamp(now)],
    )?;
    Ok(())
}

/// Every chat's id, for finding those that post to an account.
pub fn chat_ids(conn: &Connection) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT chat_id FROM chats ORDER BY chat_id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn conn() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open(&dir.path().join("a.db")).unwrap();
        (dir, conn)
    }

    #[test]
    fn upsert_updates_by_instagram_id_and_reactivates() {
        let (_dir, conn) = conn();
        let t = at("2026-01-01T00:00:00Z");
        let (id, created) = upsert_account(&conn, "Main", "178", Some("brand"), t).unwrap();
        assert!(created);
        assert!(deactivate_account(&conn, id, t).unwrap());
        assert!(active_accounts(&conn).unwrap().is_empty());
        let (again, created) = upsert_account(&conn, "Main 2", "178", Some("brand2"), t).unwrap();
        assert_eq!((again, created), (id, false));
        let account = account(&conn, id).unwrap().unwrap();
        assert_eq!(account.display_name, "Main 2");
        assert_eq!(account.username.as_deref(), Some("brand2"));
        assert!(account.is_active);
        assert!(!deactivate_account(&conn, 999, t).unwrap());
    }

    #[test]
    fn an_account_reaches_its_owner_the_chats_it_is_shared_with_or_every_chat() {
        let (_dir, conn) = conn();
        let t = at("2026-01-01T00:00:00Z");
        for chat in [7, 8, 9] {
            conn.execute(
                "INSERT INTO chats (chat_id, created_at, updated_at) VALUES (?1, ?2, ?2)",
                params![chat, Timestamp(t)],
            )
            .unwrap();
        }
        let (owned, _) = upsert_account(&conn, "Owned", "1", None, t).unwrap();
        let (everyone, _) = upsert_account(&conn, "Everyone", "2", None, t).unwrap();
        assert!(give_to_chat(&conn, owned, 7, t).unwrap());
        assert!(!give_to_chat(&conn, owned, 7, t).unwrap());
        open_to_every_chat(&conn, everyone, t).unwrap();
        let ids = |chat| -> Vec<i64> {
            accounts_for_chat(&conn, chat)
                .unwrap()
                .iter()
                .map(|a| a.id)
                .collect()
        };
        assert_eq!(ids(7), [owned, everyone]);
        assert_eq!(ids(8), [everyone]);
        assert!(chat_may_use(&conn, owned, 7).unwrap());
        assert!(!chat_may_use(&conn, owned, 8).unwrap());
        assert!(chat_may_use(&conn, everyone, 8).unwrap());

        // Shared with 8: it sees it; the owner stays the owner.
        assert!(give_to_chat(&conn, owned, 8, t).unwrap());
        assert_eq!(ids(8), [owned, everyone]);
        assert_eq!(
            account_reach(&conn, owned).unwrap(),
            AccountReach {
                every_chat: false,
                owner: Some(7),
                shared_with: vec![8],
            }
        );
        // Unsharing takes it from 8, never from its owner.
        assert!(!unshare(&conn, owned, 7).unwrap());
        assert!(unshare(&conn, owned, 8).unwrap());
        assert!(!unshare(&conn, owned, 8).unwrap());
        assert_eq!(ids(8), [everyone]);
        assert_eq!(ids(7), [owned, everyone]);
        // A deactivated account is listed nowhere.
        deactivate_account(&conn, owned, t).unwrap();
        assert_eq!(ids(7), [everyone]);
        assert!(chat_may_use(&conn, owned, 7).unwrap());
        assert_eq!(
            account_reach(&conn, everyone).unwrap(),
            AccountReach {
                every_chat: true,
                owner: None,
                shared_with: vec![],
            }
        );
    }

    /// Builds a database as V7 left it, fills it with `setup`, applies V8 and
    /// returns (account, chat, is_owner) and the accounts open to every chat.
    fn after_v8(setup: &str) -> (Vec<(i64, i64, bool)>, Vec<i64>) {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate_to(&mut conn, 7).unwrap();
        conn.execute_batch(setup).unwrap();
        crate::db::migrate(&mut conn).unwrap();
        let mut stmt = conn
            .prepare("SELECT account_id, chat_id, is_owner FROM account_chats ORDER BY 1, 2")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut stmt = conn
            .prepare("SELECT id FROM instagram_accounts WHERE every_chat = 1 ORDER BY id")
            .unwrap();
        let open = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        (rows, open)
    }

    const ACCOUNTS: &str = "
        INSERT INTO instagram_accounts (id, display_name, instagram_user_id, is_active, created_at, updated_at)
        VALUES (1, 'A', '1', 1, 't', 't'), (2, 'B', '2', 0, 't', 't'), (3, 'C', '3', 1, 't', 't');";

    #[test]
    fn the_migration_keeps_each_account_for_the_chats_that_use_it() {
        // Chats 10 and 20 chose A (10 is older), 30 chose B (since deactivated),
        // 40 chose nothing; C is used by no chat.
        let (rows, open) = after_v8(&format!(
            "{ACCOUNTS}
             INSERT INTO chats (chat_id, active_account_id, created_at, updated_at) VALUES
                 (20, 1, '2026-01-02T00:00:00Z', 't'), (10, 1, '2026-01-03T00:00:00Z', 't'),
                 (30, 2, '2026-01-01T00:00:00Z', 't'), (40, NULL, '2026-01-01T00:00:00Z', 't');"
        ));
        // A is the oldest chooser's (20), shared with 10; B stays 30's.
        assert_eq!(rows, [(1, 10, false), (1, 20, true), (2, 30, true)]);
        assert_eq!(open, [3]);
    }

    #[test]
    fn the_migration_keeps_the_only_account_for_the_chats_that_post_to_it() {
        // One active account (A): chats without a choice, or with a deactivated
        // one (B), post to it; the oldest of them owns it.
        let (rows, open) = after_v8(&format!(
            "{ACCOUNTS}
             UPDATE instagram_accounts SET is_active = 0 WHERE id = 3;
             INSERT INTO chats (chat_id, active_account_id, created_at, updated_at) VALUES
                 (10, NULL, '2026-01-02T00:00:00Z', 't'), (20, NULL, '2026-01-01T00:00:00Z', 't'),
                 (30, 2, '2026-01-03T00:00:00Z', 't');"
        ));
        assert_eq!(
            rows,
            [(1, 10, false), (1, 20, true), (1, 30, false), (2, 30, true)]
        );
        assert_eq!(open, [3]);
    }

    #[test]
    fn a_new_token_replaces_the_old_and_clears_its_errors() {
        let (_dir, conn) = conn();
        let t = at("2026-01-01T00:00:00Z");
        let (id, _) = upsert_account(&conn, "Main", "178", None, t).unwrap();
        store_token(&conn, id, "v1:aa", t, at("2026-03-01T00:00:00Z")).unwrap();
        assert!(record_refresh_error(&conn, id, "v1:aa", "boom", Some("2026-01-01")).unwrap());
        assert!(record_refresh_error(&conn, id, "v1:aa", "boom again", None).unwrap());
        let row = token(&conn, id).unwrap().unwrap();
        assert_eq!(row.last_refresh_error.as_deref(), Some("boom again"));
        assert_eq!(row.refresh_reported_on.as_deref(), Some("2026-01-01"));
        store_token(&conn, id, "v1:bb", t, at("2026-04-01T00:00:00Z")).unwrap();
        let row = token(&conn, id).unwrap().unwrap();
        assert_eq!(row.sealed_value, "v1:bb");
        assert_eq!(row.last_refresh_error, None);
        assert_eq!(row.refresh_reported_on, None);
        // A refresh of the token "v1:aa", answered after "v1:bb" was stored,
        // changes nothing.
        assert!(!record_refresh_error(&conn, id, "v1:aa", "late", Some("2026-01-02")).unwrap());
        assert!(!replace_refreshed_token(&conn, id, "v1:aa", "v1:cc", t, t).unwrap());
        assert_eq!(token(&conn, id).unwrap().unwrap(), row);
        assert!(replace_refreshed_token(&conn, id, "v1:bb", "v1:cc", t, t).unwrap());
        assert_eq!(token(&conn, id).unwrap().unwrap().sealed_value, "v1:cc");
        let row = token(&conn, id).unwrap().unwrap();
        assert_eq!(active_account_tokens(&conn).unwrap(), vec![row]);
        deactivate_account(&conn, id, t).unwrap();
        assert!(active_account_tokens(&conn).unwrap().is_empty());
    }
}
