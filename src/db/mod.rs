//! Part `db/` (the store): every SQL statement and the typed rows they read. Never
//! decides anything about a chat and calls no network; the other parts see
//! functions and rows, never SQL (`tests/boundaries.rs` checks).
//!
//! The database: opening it, migrating it, and every SQL statement of the program.
//! Only this module has SQL. Each thread opens its own connection; the core loop
//! owns the one that writes chat data, in one transaction per Telegram update.

pub mod accounts;
pub mod chats;
pub mod health;
pub mod history;
pub mod insights;
pub mod media;
pub mod oauth;
pub mod outbox;
pub mod pairing;
pub mod publish;
pub mod queue;
pub mod runs;
pub mod settings_imports;
pub mod summary;
pub mod tune;
pub mod wizard;

mod time;
pub use time::timestamp;
pub(crate) use time::{optional_time_at, time_at, Timestamp};

use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::domain::settings::ChatRow;

/// Statements kept prepared per connection (a few KB each): the core's working set.
const STATEMENT_CACHE: usize = 64;

/// `Connection::execute` through the connection's statement cache.
pub(crate) fn exec<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// `Connection::query_row` through the connection's statement cache.
pub(crate) fn row<T, P, F>(conn: &Connection, sql: &str, params: P, f: F) -> rusqlite::Result<T>
where
    P: rusqlite::Params,
    F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
{
    conn.prepare_cached(sql)?.query_row(params, f)
}

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Runs `work` inside a savepoint of the caller's transaction: what it wrote is
/// kept when it succeeds and undone when it fails, the rest of the transaction
/// untouched either way. Its error is returned.
pub fn in_savepoint<T>(conn: &Connection, work: impl FnOnce() -> Result<T>) -> Result<T> {
    exec(conn, "SAVEPOINT part", [])?;
    match work() {
        Ok(value) => {
            exec(conn, "RELEASE part", [])?;
            Ok(value)
        }
        Err(e) => {
            exec(conn, "ROLLBACK TO part", [])?;
            exec(conn, "RELEASE part", [])?;
            Err(e)
        }
    }
}

/// Whether an error is the database's storage failing (a full or read-only disk,
/// an I/O error, a lock held too long) rather than something about the input:
/// work that hits it is retried later, never skipped.
pub fn is_storage_error(e: &anyhow::Error) -> bool {
    use rusqlite::ErrorCode::*;
    sqlite_codes(e).any(|code| {
        matches!(
            code,
            DiskFull
                | ReadOnly
                | SystemIoFailure
                | CannotOpen
                | DatabaseBusy
                | DatabaseLocked
                | OutOfMemory
        )
    })
}

/// The SQLite error codes in an error's chain of causes.
fn sqlite_codes(e: &anyhow::Error) -> impl Iterator<Item = rusqlite::ErrorCode> + '_ {
    e.chain()
        .filter_map(|cause| match cause.downcast_ref::<rusqlite::Error>() {
            Some(rusqlite::Error::SqliteFailure(failure, _)) => Some(failure.code),
            _ => None,
        })
}

/// Copies the WAL into the database file and cuts it to nothing; returns whether
/// a reader kept part of it, and how many frames it held.
fn checkpoint_truncate(conn: &Connection) -> rusqlite::Result<(bool, i64)> {
    row(conn, "PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        Ok((r.get::<_, i64>(0)? != 0, r.get::<_, i64>(1)?))
    })
}

/// Gives back the space the WAL holds after a commit failed on a full disk.
///
/// SQLite copies the WAL back into the database file (and reuses it) only after a
/// commit that succeeded, so a WAL that grew until the disk was full keeps it
/// full: a retry writes its frames into whatever room the operator made, fails
/// again, and the room is gone. So before retrying, a TRUNCATE checkpoint gets
/// the room first: it copies the WAL into the database file and cuts the WAL to
/// nothing, and the retry then has the WAL's space too. One per retry loop.
#[derive(Default)]
pub struct Room {
    full: bool,
}

impl Room {
    /// Remembers whether a failure was the disk being full.
    pub fn failed(&mut self, e: &anyhow::Error) {
        self.full = sqlite_codes(e).any(|code| code == rusqlite::ErrorCode::DiskFull);
    }

    /// Before a retry: after a full disk, checkpoints first (see above).
    pub fn make(&mut self, conn: &Connection) {
        if !self.full {
            return;
        }
        match checkpoint_truncate(conn) {
            Ok((busy, frames)) => {
                log::debug!("disk full: WAL of {frames} frame(s) checkpointed (busy: {busy})");
                self.full = busy;
            }
            Err(e) => log::debug!("disk full: checkpointing the WAL: {e}"),
        }
    }
}

/// Opens (creating it mode 0600 if missing) and configures the database, then
/// applies pending migrations.
pub fn open(path: &Path) -> Result<Connection> {
    let mut conn = open_without_migrating(path)?;
    let applied = migrate(&mut conn)?;
    // The schema goes into the database file now, not at the WAL's first
    // checkpoint: a checkpoint that must first grow the file by the whole schema
    // is the one that cannot run on a full disk (see `Room`).
    if let Err(e) = checkpoint_truncate(&conn) {
        log::debug!("{}: checkpointing at start: {e}", path.display());
    }
    if !applied.is_empty() {
        log::info!(
            "{}: applied migrations {}",
            path.display(),
            applied.join(", ")
        );
    }
    Ok(conn)
}

/// A new database in memory with every migration applied, for unit tests.
#[cfg(test)]
pub fn open_in_memory_for_tests() -> Connection {
    let mut conn = Connection::open_in_memory().expect("an in-memory database");
    migrate(&mut conn).expect("the migrations apply");
    conn
}

/// SQLite gives each connection a bulk of 20 page-cache lines (~87 KB) when it
/// first reads a page; three long-lived connections that mostly read a few
/// pages (the outbox's, the publisher's) then hold a quarter of a megabyte
/// they never use. With no bulk, each page is allocated as it is read. Must run
/// before SQLite initialises: the first open calls it; later calls do nothing.
fn small_page_caches() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config is called before any connection of this process
        // opens (SQLite refuses it with SQLITE_MISUSE otherwise, which changes
        // nothing); PAGECACHE with a null buffer and zero sizes takes no pointer.
        let code = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_PAGECACHE,
                std::ptr::null_mut::<std::ffi::c_void>(),
                0 as std::ffi::c_int,
                0 as std::ffi::c_int,
            )
        };
        if code != rusqlite::ffi::SQLITE_OK {
            log::debug!("SQLite was initialised before its page cache could be set ({code})");
        }
    });
}

/// Opens a connection for a thread other than the one that migrated at start.
pub fn open_without_migrating(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: creating the database folder", dir.display()))?;
        }
    }
    create_private(path)?;
    small_page_caches();
    // synchronous = NORMAL: a commit survives a crash of the process but may be
    // undone by a power cut until the WAL is next synced. Whatever must survive a
    // power cut (the Telegram offset before it is confirmed) calls `sync_wal`.
    let conn = Connection::open(path)
        .with_context(|| format!("{}: opening the database", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // The core answers the same few dozen statements all day; parsing their SQL
    // again each time was most of a command's CPU (see `exec`).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Plans fixed when a statement is prepared (the query planner stability
    // guarantee): the bundled SQLite is built with STAT4, under which a cached
    // statement that compares a column with a bound value was prepared again
    // whenever that value changed, a third of /status's CPU on the core thread.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    // The WAL is copied back every 256 pages (1 MiB) rather than SQLite's 1,000:
    // on a nearly full disk it is the space the WAL holds that the next commit
    // lacks, and only a commit that succeeds copies it back. journal_size_limit
    // cuts a WAL that one large transaction grew back to 1 MiB afterwards.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -512;
         PRAGMA temp_store = MEMORY;
         PRAGMA wal_autocheckpoint = 256;
         PRAGMA journal_size_limit = 1048576;",
    )
    .with_context(|| format!("{}: configuring the database", path.display()))?;
    Ok(conn)
}

/// Makes sure the database file exists with mode 0600 before SQLite opens it
/// (SQLite gives its -wal and -shm files the same mode).
///
/// Nothing here may open a descriptor on a database that exists: on Linux,
/// closing any descriptor of a file drops every POSIX lock this process holds on
/// it, so the daemon's connections would silently lose their locks and another
/// process (the `sqlite3` shell, `storyline backup`) could checkpoint and delete
/// the live WAL under them. A file that does not exist yet has no locks to lose;
/// an existing one only ever gets `chmod`, which works on the path.
fn create_private(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if meta.is_file() && mode & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
                    .with_context(|| {
                        format!("{}: making the database private (0600)", path.display())
                    })?;
                log::warn!(
                    "{}: the database was readable by others (mode {mode:o}); made it private",
                    path.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                // Another thread or process created it meanwhile: it is theirs now.
                Ok(_) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => {
                    Err(e).with_context(|| format!("{}: creating the database", path.display()))
                }
            }
        }
        Err(e) => Err(e).with_context(|| format!("{}: reading the database", path.display())),
    }
}

/// Makes every commit so far durable against power loss: a small write
/// committed with synchronous = FULL fsyncs the WAL, and with it every frame
/// before. Called once per batch of updates, not once per update.
pub fn sync_wal(conn: &Connection, now: DateTime<Utc>) -> Result<()> {
    exec(conn, "PRAGMA synchronous = FULL", [])?;
    let written = kv_set(conn, "db.last_sync", &timestamp(now));
    exec(conn, "PRAGMA synchronous = NORMAL", [])?;
    written
}

/// The newest migration in `migrations/` (`latest_migration_is_the_newest_file`
/// keeps it true).
const LATEST_MIGRATION: i32 = 18;

/// Applies the embedded migrations; returns the names of those applied now.
///
/// A database already at `LATEST_MIGRATION` is left alone without asking
/// refinery: its runner parses the migrations' names with a regular expression
/// whose compiled form (~380 KB) it keeps for the life of the process, a fifth
/// of the daemon's idle heap. After an upgrade it runs once, as before.
pub fn migrate(conn: &mut Connection) -> Result<Vec<String>> {
    let applied: Option<i32> = row(
        conn,
        "SELECT MAX(version) FROM refinery_schema_history",
        [],
        |r| r.get(0),
    )
    .ok()
    .flatten();
    if applied == Some(LATEST_MIGRATION) {
        return Ok(Vec::new());
    }
    let report = embedded::migrations::runner()
        .run(conn)
        .context("applying database migrations")?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| format!("V{}__{}", m.version(), m.name()))
        .collect())
}

/// Applies the migrations up to `version` only, for tests of a later migration.
#[cfg(test)]
pub(crate) fn migrate_to(conn: &mut Connection, version: i32) -> Result<()> {
    embedded::migrations::runner()
        .set_target(refinery::Target::Version(version))
        .run(conn)
        .context("applying database migrations")?;
    Ok(())
}

// ---- kv and the Telegram offset -------------------------------------------------

const LAST_UPDATE_ID: &str = "telegram.last_update_id";

pub fn kv_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(
        row(conn, "SELECT value FROM kv WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?,
    )
}

pub fn kv_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    exec(
        conn,
        "INSERT INTO kv (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// The id of the last Telegram update whose effects are committed.
pub fn last_update_id(conn: &Connection) -> Result<Option<i64>> {
    Ok(kv_get(conn, LAST_UPDATE_ID)?.and_then(|v| v.parse().ok()))
}

pub fn set_last_update_id(conn: &Connection, update_id: i64) -> Result<()> {
    kv_set(conn, LAST_UPDATE_ID, &update_id.to_string())
}

// ---- chats ---------------------------------------------------------------------

const CHAT_COLUMNS: &str = "chat_id, title, dry_run_mode, enable_instagram_api, is_paused, \
     paused_at, paused_by, posts_per_day, posting_hours_start, posting_hours_end, timezone, \
     posted_lock_days, skipped_lock_days, posting_mode, story_buttons_admins_only, \
     daily_summary, daily_summary_hour, auto_tune, auto_tune_metric, auto_tune_step";

fn chat_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChatRow> {
    Ok(ChatRow {
        chat_id: r.get(0)?,
        title: r.get(1)?,
        dry_run_mode: r.get(2)?,
        enable_instagram_api: r.get(3)?,
        is_paused: r.get(4)?,
        paused_at: optional_time_at(r, 5)?,
        paused_by: r.get(6)?,
        posts_per_day: r.get(7)?,
        posting_hours_start: r.get(8)?,
        posting_hours_end: r.get(9)?,
        timezone: r.get(10)?,
        posted_lock_days: r.get(11)?,
        skipped_lock_days: r.get(12)?,
        auto_post: r.get::<_, Option<String>>(13)?.map(|m| m == "auto"),
        story_buttons_admins_only: r.get(14)?,
        daily_summary: r.get(15)?,
        daily_summary_hour: r.get(16)?,
        auto_tune: r.get(17)?,
        auto_tune_metric: r.get(18)?,
        auto_tune_step: r.get(19)?,
    })
}

pub fn chat(conn: &Connection, chat_id: i64) -> Result<Option<ChatRow>> {
    let sql = format!("SELECT {CHAT_COLUMNS} FROM chats WHERE chat_id = ?1");
    Ok(row(conn, &sql, [chat_id], chat_from_row).optional()?)
}

pub fn chats(conn: &Connection) -> Result<Vec<ChatRow>> {
    let sql = format!("SELECT {CHAT_COLUMNS} FROM chats ORDER BY chat_id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], chat_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Whether an admin enabled this chat with /start.
pub fn chat_is_authorized(conn: &Connection, chat_id: i64) -> Result<bool> {
    Ok(row(
        conn,
        "SELECT authorized_by IS NOT NULL FROM chats WHERE chat_id = ?1",
        [chat_id],
        |r| r.get(0),
    )
    .optional()?
    .unwrap_or(false))
}

/// Adds a chat with every setting at its default. Returns false if it existed.
pub fn insert_chat(
    tx: &Transaction<'_>,
    chat_id: i64,
    title: Option<&str>,
    authorized_by: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let inserted = exec(
        tx,
        "INSERT INTO chats (chat_id, title, authorized_by, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (chat_id) DO NOTHING",
        params![chat_id, title, authorized_by, Timestamp(now)],
    )?;
    if inserted == 1 {
        queue::seed_chat_media(tx, chat_id)?;
    }
    Ok(inserted == 1)
}

pub fn authorize_chat(
    tx: &Transaction<'_>,
    chat_id: i64,
    admin: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    exec(
        tx,
        "UPDATE chats SET authorized_by = ?2, updated_at = ?3 WHERE chat_id = ?1",
        params![chat_id, admin, Timestamp(now)],
    )?;
    Ok(())
}

pub fn update_chat_title(tx: &Transaction<'_>, chat_id: i64, title: &str) -> Result<()> {
    exec(
        tx,
        "UPDATE chats SET title = ?2 WHERE chat_id = ?1 AND title IS NOT ?2",
        params![chat_id, title],
    )?;
    Ok(())
}

/// Writes every setting column of the row.
pub fn save_chat_settings(tx: &Connection, row: &ChatRow, now: DateTime<Utc>) -> Result<()> {
    exec(
        tx,
        "UPDATE chats SET dry_run_mode = ?2, enable_instagram_api = ?3, is_paused = ?4,
             paused_at = ?5, paused_by = ?6, posts_per_day = ?7, posting_hours_start = ?8,
             posting_hours_end = ?9, timezone = ?10, updated_at = ?11,
             posted_lock_days = ?12, skipped_lock_days = ?13, posting_mode = ?14,
             story_buttons_admins_only = ?15, daily_summary = ?16, daily_summary_hour = ?17,
             auto_tune = ?18, auto_tune_metric = ?19, auto_tune_step = ?20
         WHERE chat_id = ?1",
        params![
            row.chat_id,
            row.dry_run_mode,
            row.enable_instagram_api,
            row.is_paused,
            row.paused_at.map(Timestamp),
            row.paused_by,
            row.posts_per_day,
            row.posting_hours_start,
            row.posting_hours_end,
            row.timezone,
            Timestamp(now),
            row.posted_lock_days,
            row.skipped_lock_days,
            row.auto_post
                .map(|auto| if auto { "auto" } else { "manual" }),
            row.story_buttons_admins_only,
            row.daily_summary,
            row.daily_summary_hour,
            row.auto_tune,
            row.auto_tune_metric,
            row.auto_tune_step
        ],
    )?;
    Ok(())
}

// ---- settings history (Type 2 SCD) ----------------------------------------------

/// Closes the chat's current version and opens a new one (inside the caller's
/// transaction, with the change itself).
pub fn record_settings_version(
    tx: &Connection,
    chat_id: i64,
    snapshot_json: &str,
    changes_json: &str,
    changed_by: Option<i64>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    exec(
        tx,
        "UPDATE settings_history SET valid_to = ?2 WHERE chat_id = ?1 AND valid_to IS NULL",
        params![chat_id, Timestamp(now)],
    )?;
    exec(
        tx,
        "INSERT INTO settings_history (chat_id, snapshot, changes, changed_by, reason, valid_from)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            chat_id,
            snapshot_json,
            changes_json,
            changed_by,
            reason,
            Timestamp(now)
        ],
    )?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub snapshot: String,
    pub changes: String,
    pub changed_by: Option<i64>,
    pub reason: Option<String>,
    pub valid_from: DateTime<Utc>,
    pub valid_to: Option<DateTime<Utc>>,
}

/// The chat's versions, newest first.
pub fn settings_history(conn: &Connection, chat_id: i64, limit: u32) -> Result<Vec<HistoryRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT snapshot, changes, changed_by, reason, valid_from, valid_to
         FROM settings_history WHERE chat_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![chat_id, limit], |r| {
        Ok(HistoryRow {
            snapshot: r.get(0)?,
            changes: r.get(1)?,
            changed_by: r.get(2)?,
            reason: r.get(3)?,
            valid_from: time_at(r, 4)?,
            valid_to: optional_time_at(r, 5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ---- users and interactions -----------------------------------------------------

pub fn upsert_user(
    tx: &Transaction<'_>,
    user_id: i64,
    username: Option<&str>,
    first_name: &str,
    role: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    exec(tx,
        "INSERT INTO users (user_id, username, first_name, role, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (user_id) DO UPDATE SET username = excluded.username,
             first_name = excluded.first_name, role = excluded.role, last_seen = excluded.last_seen",
        params![user_id, username, first_name, role, Timestamp(now)],
    )?;
    Ok(())
}

/// "@ada", or the first name, or the id, for showing who did something.
pub fn user_display_name(conn: &Connection, user_id: i64) -> Result<String> {
    let found: Option<(Option<String>, Option<String>)> = row(
        conn,
        "SELECT username, first_name FROM users WHERE user_id = ?1",
        [user_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?;
    Ok(match found {
        Some((Some(username), _)) => format!("@{username}"),
        Some((None, Some(first))) if !first.is_empty() => first,
        _ => format!("user {user_id}"),
    })
}

pub fn log_interaction(
    tx: &Transaction<'_>,
    update_id: i64,
    chat_id: i64,
    user_id: Option<i64>,
    kind: &str,
    name: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    exec(
        tx,
        "INSERT INTO interactions (update_id, chat_id, user_id, kind, name, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![update_id, chat_id, user_id, kind, name, Timestamp(now)],
    )?;
    Ok(())
}

// ---- pending inputs -------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInput {
    pub field: String,
    pub stash: Option<String>,
    pub menu_message_id: Option<i64>,
    pub expires_at: DateTime<Utc>,
}

pub fn set_pending_input(
    tx: &Transaction<'_>,
    chat_id: i64,
    user_id: i64,
    input: &PendingInput,
    now: DateTime<Utc>,
) -> Result<()> {
    exec(tx,
        "INSERT INTO pending_inputs (chat_id, user_id, field, stash, menu_message_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (chat_id, user_id) DO UPDATE SET field = excluded.field,
             stash = excluded.stash, menu_message_id = excluded.menu_message_id,
             created_at = excluded.created_at, expires_at = excluded.expires_at",
        params![
            chat_id,
            user_id,
            input.field,
            input.stash,
            input.menu_message_id,
            Timestamp(now),
            Timestamp(input.expires_at)
        ],
    )?;
    Ok(())
}

/// The user's open prompt in that chat, if it has not expired.
pub fn pending_input(
    conn: &Connection,
    chat_id: i64,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<PendingInput>> {
    Ok(row(
        conn,
        "SELECT field, stash, menu_message_id, expires_at FROM pending_inputs
             WHERE chat_id = ?1 AND user_id = ?2 AND expires_at > ?3",
        params![chat_id, user_id, Timestamp(now)],
        |r| {
            Ok(PendingInput {
                field: r.get(0)?,
                stash: r.get(1)?,
                menu_message_id: r.get(2)?,
                expires_at: time_at(r, 3)?,
            })
        },
    )
    .optional()?)
}

/// Removes the user's prompt; true if there was an unexpired one.
pub fn clear_pending_input(
    tx: &Transaction<'_>,
    chat_id: i64,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let live = pending_input(tx, chat_id, user_id, now)?.is_some();
    exec(
        tx,
        "DELETE FROM pending_inputs WHERE chat_id = ?1 AND user_id = ?2",
        params![chat_id, user_id],
    )?;
    Ok(live)
}

pub fn delete_expired_inputs(conn: &Connection, now: DateTime<Utc>) -> Result<usize> {
    Ok(exec(
        conn,
        "DELETE FROM pending_inputs WHERE expires_at <= ?1",
        [Timestamp(now)],
    )?)
}

// ---- refusals -------------------------------------------------------------------

pub fn last_refusal(conn: &Connection, chat_id: i64) -> Result<Option<DateTime<Utc>>> {
    Ok(row(
        conn,
        "SELECT last_replied_at FROM refusals WHERE chat_id = ?1",
        [chat_id],
        |r| time_at(r, 0),
    )
    .optional()?)
}

pub fn record_refusal(tx: &Transaction<'_>, chat_id: i64, now: DateTime<Utc>) -> Result<()> {
    exec(
        tx,
        "INSERT INTO refusals (chat_id, last_replied_at) VALUES (?1, ?2)
         ON CONFLICT (chat_id) DO UPDATE SET last_replied_at = excluded.last_replied_at",
        params![chat_id, Timestamp(now)],
    )?;
    Ok(())
}

// ---- outbox ---------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub method: String,
    pub params: String,
    pub attempts: i64,
    pub on_result: Option<String>,
    /// The chat the call is for, as stored beside it (see `enqueue`).
    pub chat_id: Option<i64>,
}

/// Stores a Bot API call for the outbox; `chat_id` is the chat it is for (None
/// for a call to no chat), by which the outbox paces and holds it.
pub fn enqueue(
    conn: &Connection,
    method: &str,
    params_json: &str,
    chat_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    enqueue_with_hook(conn, method, params_json, chat_id, None, now)
}

pub fn enqueue_with_hook(
    conn: &Connection,
    method: &str,
    params_json: &str,
    chat_id: Option<i64>,
    on_result: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    exec(
        conn,
        "INSERT INTO outbox (method, params, on_result, created_at, chat_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![method, params_json, on_result, Timestamp(now), chat_id],
    )?;
    Ok(())
}

pub(crate) const OUTBOX_COLUMNS: &str = "id, method, params, attempts, on_result, chat_id";

pub(crate) fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        method: r.get(1)?,
        params: r.get(2)?,
        attempts: r.get(3)?,
        on_result: r.get(4)?,
        chat_id: r.get(5)?,
    })
}

pub fn outbox_next(conn: &Connection) -> Result<Option<OutboxRow>> {
    Ok(row(
        conn,
        &format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id LIMIT 1"),
        [],
        outbox_row,
    )
    .optional()?)
}

pub fn outbox_done(conn: &Connection, id: i64) -> Result<()> {
    exec(conn, "DELETE FROM outbox WHERE id = ?1", [id])?;
    Ok(())
}

pub fn outbox_attempted(conn: &Connection, id: i64) -> Result<()> {
    exec(
        conn,
        "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

pub fn outbox_len(conn: &Connection) -> Result<i64> {
    Ok(row(conn, "SELECT count(*) FROM outbox", [], |r| r.get(0))?)
}

/// Switches a connection's file to a rollback journal (no -wal beside it);
/// returns the journal mode SQLite reports afterwards.
pub fn set_rollback_journal(conn: &Connection) -> rusqlite::Result<String> {
    row(conn, "PRAGMA journal_mode = DELETE", [], |r| r.get(0))
}

/// Every line of `PRAGMA integrity_check` ("ok" alone when sound).
pub fn integrity_check(conn: &Connection) -> Result<Vec<String>> {
    let mut statement = conn.prepare_cached("PRAGMA integrity_check")?;
    let lines = statement
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(lines)
}

/// The first line of `PRAGMA quick_check` ("ok" when sound).
pub fn quick_check(conn: &Connection) -> rusqlite::Result<String> {
    row(conn, "PRAGMA quick_check", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_savepoint_keeps_what_succeeded_and_undoes_what_failed() {
        let mut conn = open_in_memory_for_tests();
        let tx = conn.transaction().unwrap();
        kv_set(&tx, "outer", "1").unwrap();
        in_savepoint(&tx, || kv_set(&tx, "kept", "1")).unwrap();
        let failed: Result<()> = in_savepoint(&tx, || {
            kv_set(&tx, "undone", "1")?;
            anyhow::bail!("its own data")
        });
        assert!(failed.is_err());
        tx.commit().unwrap();
        assert_eq!(kv_get(&conn, "outer").unwrap().as_deref(), Some("1"));
        assert_eq!(kv_get(&conn, "kept").unwrap().as_deref(), Some("1"));
        assert_eq!(kv_get(&conn, "undone").unwrap(), None);
    }

    #[test]
    fn latest_migration_is_the_newest_file() {
        let newest = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().into_string().unwrap();
                name.strip_prefix('V')?
                    .split_once("__")?
                    .0
                    .parse::<i32>()
                    .ok()
            })
            .max();
        assert_eq!(newest, Some(LATEST_MIGRATION));
        let runner = embedded::migrations::runner();
        let last = runner.get_migrations().iter().map(|m| m.version()).max();
        assert_eq!(last, Some(LATEST_MIGRATION));
    }

    #[test]
    fn an_up_to_date_database_is_not_migrated_again_and_an_older_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut conn = open_without_migrating(&path).unwrap();
        migrate_to(&mut conn, LATEST_MIGRATION - 1).unwrap();
        let applied = migrate(&mut conn).unwrap();
        assert_eq!(applied.len(), 1, "{applied:?}");
        assert!(applied[0].starts_with(&format!("V{LATEST_MIGRATION}__")));
        assert!(migrate(&mut conn).unwrap().is_empty());
        let version: i32 = conn
            .query_row(
                "SELECT MAX(version) FROM refinery_schema_history",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(version, LATEST_MIGRATION);
    }

    #[test]
    fn storage_errors_are_told_from_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let conn = open(&path).unwrap();
        let bad_input = conn
            .execute("INSERT INTO kv (key, value) VALUES ('k', NULL)", [])
            .unwrap_err();
        assert!(!is_storage_error(&anyhow::Error::from(bad_input)));
        let read_only =
            Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let refused = read_only
            .execute("INSERT INTO kv (key, value) VALUES ('a', 'b')", [])
            .unwrap_err();
        let wrapped = anyhow::Error::from(refused).context("handling update 7");
        assert!(is_storage_error(&wrapped), "{wrapped:#}");
    }

    #[test]
    fn creates_private_file_and_migrates_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/storyline.db");
        let mut conn = open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(migrate(&mut conn).unwrap().is_empty());
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    }

    #[test]
    fn settings_history_keeps_one_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("s.db")).unwrap();
        let tx = conn.transaction().unwrap();
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        insert_chat(&tx, 7, None, None, at("2026-01-01T00:00:00Z")).unwrap();
        for (i, t) in ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]
            .iter()
            .enumerate()
        {
            record_settings_version(&tx, 7, "{}", "[]", Some(i as i64), "r", at(t)).unwrap();
        }
        tx.commit().unwrap();
        let rows = settings_history(&conn, 7, 10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].valid_to, None);
        assert_eq!(rows[1].valid_to, Some(at("2026-01-02T00:00:00Z")));
    }

    #[test]
    fn a_stored_time_that_does_not_read_is_an_error_not_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("s.db")).unwrap();
        let t: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let tx = conn.transaction().unwrap();
        record_refusal(&tx, 7, t).unwrap();
        tx.commit().unwrap();
        let stored: String = conn
            .query_row("SELECT last_replied_at FROM refusals", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, "2026-01-01T00:00:00Z");
        assert_eq!(last_refusal(&conn, 7).unwrap(), Some(t));
        assert_eq!(last_refusal(&conn, 8).unwrap(), None, "no row");
        conn.execute("UPDATE refusals SET last_replied_at = 'an hour ago'", [])
            .unwrap();
        let err = last_refusal(&conn, 7).unwrap_err();
        assert!(format!("{err:#}").contains("an hour ago"), "{err:#}");
    }
}
