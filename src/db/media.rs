//! SQL for the media library (`media_items`): one row per file under the media
//! folder, written by the scanner in `media.rs` and read by whoever posts a file.
//! A row is never deleted: a file that goes away is deactivated, so its history
//! and its cached Telegram file id survive until it comes back.

use super::{exec, row};
use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::Timestamp;

use crate::domain::status::MediaKind;

/// What the scanner needs to know about an indexed file to decide whether to read
/// it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedFile {
    pub id: i64,
    pub path: String,
    pub size: i64,
    pub mtime_ns: i64,
    pub sha256: String,
    pub is_active: bool,
}

/// A file seen for the first time (or at a path with no row yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile<'a> {
    pub path: &'a str,
    pub category: &'a str,
    pub kind: MediaKind,
    pub size: i64,
    pub mtime_ns: i64,
    pub sha256: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaItem {
    pub id: i64,
    pub path: String,
    pub category: String,
    pub kind: MediaKind,
    pub size: i64,
    pub sha256: String,
    pub telegram_file_id: Option<String>,
    pub is_active: bool,
}

const ITEM_COLUMNS: &str = "id, path, category, kind, size, sha256, telegram_file_id, is_active";

fn item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MediaItem> {
    Ok(MediaItem {
        id: r.get(0)?,
        path: r.get(1)?,
        category: r.get(2)?,
        kind: r.get(3)?,
        size: r.get(4)?,
        sha256: r.get(5)?,
        telegram_file_id: r.get(6)?,
        is_active: r.get(7)?,
    })
}

/// Whether any file was ever indexed (active or not).
pub fn any_indexed(conn: &Connection) -> Result<bool> {
    Ok(row(
        conn,
        "SELECT EXISTS (SELECT 1 FROM media_items)",
        [],
        |r| r.get(0),
    )?)
}

/// Calls `each` with every row, active or not, one at a time so the caller can
/// build whatever compact index it wants without a second copy in between.
pub fn each_indexed_file(conn: &Connection, each: &mut dyn FnMut(IndexedFile)) -> Result<()> {
    let mut stmt =
        conn.prepare_cached("SELECT id, path, size, mtime_ns, sha256, is_active FROM media_items")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        each(IndexedFile {
            id: r.get(0)?,
            path: r.get(1)?,
            size: r.get(2)?,
            mtime_ns: r.get(3)?,
            sha256: r.get(4)?,
            is_active: r.get(5)?,
        });
    }
    Ok(())
}

/// Adds a row for a file and returns its id. Should another process have added
/// the same path since the caller looked, that row is updated instead.
pub fn insert_file(conn: &Connection, file: &NewFile<'_>, now: DateTime<Utc>) -> Result<i64> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO media_items (path, category, kind, size, mtime_ns, sha256, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT (path) DO UPDATE SET category = excluded.category, kind = excluded.kind,
             size = excluded.size, mtime_ns = excluded.mtime_ns, last_seen = excluded.last_seen,
             is_active = 1,
             telegram_file_id = CASE WHEN sha256 = excluded.sha256 THEN telegram_file_id END,
             sha256 = excluded.sha256
         RETURNING id",
    )?;
    Ok(stmt.query_row(
        params![
            file.path,
            file.category,
            file.kind,
            file.size,
            file.mtime_ns,
            file.sha256,
            Timestamp(now)
        ],
        |r| r.get(0),
    )?)
}

/// Records a file read again (its size or mtime changed, or it came back) and makes
/// it active. A cached Telegram file id is dropped when the content changed: it
/// would send the old picture.
pub fn update_file(
    conn: &Connection,
    id: i64,
    size: i64,
    mtime_ns: i64,
    sha256: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE media_items SET size = ?2, mtime_ns = ?3, last_seen = ?5, is_active = 1,
             telegram_file_id = CASE WHEN sha256 = ?4 THEN telegram_file_id END,
             sha256 = ?4
         WHERE id = ?1",
    )?;
    stmt.execute(params![id, size, mtime_ns, sha256, Timestamp(now)])?;
    Ok(())
}

/// Marks a file that came back unchanged as active again.
pub fn reactivate_item(conn: &Connection, id: i64, now: DateTime<Utc>) -> Result<()> {
    let mut stmt =
        conn.prepare_cached("UPDATE media_items SET is_active = 1, last_seen = ?2 WHERE id = ?1")?;
    stmt.execute(params![id, Timestamp(now)])?;
    Ok(())
}

/// Takes a file out of the pool; the row stays for history and for its return.
pub fn deactivate_item(conn: &Connection, id: i64) -> Result<()> {
    let mut stmt = conn.prepare_cached("UPDATE media_items SET is_active = 0 WHERE id = ?1")?;
    stmt.execute([id])?;
    Ok(())
}

pub fn set_telegram_file_id(conn: &Connection, id: i64, file_id: &str) -> Result<()> {
    exec(
        conn,
        "UPDATE media_items SET telegram_file_id = ?2 WHERE id = ?1",
        params![id, file_id],
    )?;
    Ok(())
}

pub fn item_by_id(conn: &Connection, id: i64) -> Result<Option<MediaItem>> {
    let sql = format!("SELECT {ITEM_COLUMNS} FROM media_items WHERE id = ?1");
    Ok(row(conn, &sql, [id], item_from_row).optional()?)
}

/// The active file with this content that was indexed first, if any.
pub fn active_item_for_content(conn: &Connection, sha256: &str) -> Result<Option<MediaItem>> {
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM media_items WHERE sha256 = ?1 AND is_active = 1
         ORDER BY id LIMIT 1"
    );
    Ok(row(conn, &sql, [sha256], item_from_row).optional()?)
}

/// Each category with active files and its number of distinct active contents,
/// by category name.
pub fn active_categories(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT category, count(DISTINCT sha256) FROM media_items WHERE is_active = 1
         GROUP BY category ORDER BY category",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
