//! SQL for `publish_jobs`: one row per slot that is (or was) being published
//! through the Graph API, with its state (`status::JobState`), container and
//! media ids. The publisher thread, the core loop and the story buttons use
//! these functions; none of them writes SQL of its own.

use super::exec;
use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::Timestamp;

use crate::domain::status::JobState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub queue_id: i64,
    pub chat_id: i64,
    pub account_id: i64,
    pub requested_by: Option<i64>,
    pub dry_run: bool,
    pub state: JobState,
    pub container_id: Option<String>,
}

/// A new job for a slot, or the slot's old job started over (queued, no
/// container, no error).
pub fn create_job(
    conn: &Connection,
    queue_id: i64,
    chat_id: i64,
    account_id: i64,
    requested_by: Option<i64>,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    exec(conn,
        "INSERT INTO publish_jobs (queue_id, chat_id, account_id, requested_by, dry_run, state, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?7, ?6, ?6)
         ON CONFLICT (queue_id) DO UPDATE SET account_id = excluded.account_id,
             requested_by = excluded.requested_by, dry_run = excluded.dry_run, state = ?7,
             container_id = NULL, error = NULL, updated_at = excluded.updated_at",
        params![
            queue_id,
            chat_id,
            account_id,
            requested_by,
            dry_run,
            Timestamp(now),
            JobState::Queued
        ],
    )?;
    Ok(())
}

pub fn job(conn: &Connection, queue_id: i64) -> Result<Option<Job>> {
    Ok(super::row(
        conn,
        "SELECT queue_id, chat_id, account_id, requested_by, dry_run, state, container_id
             FROM publish_jobs WHERE queue_id = ?1",
        [queue_id],
        |r| {
            Ok(Job {
                queue_id: r.get(0)?,
                chat_id: r.get(1)?,
                account_id: r.get(2)?,
                requested_by: r.get(3)?,
                dry_run: r.get(4)?,
                state: r.get(5)?,
                container_id: r.get(6)?,
            })
        },
    )
    .optional()?)
}

/// Sets a job's state; `error` replaces the stored error only when given.
pub fn set_state(
    conn: &Connection,
    queue_id: i64,
    state: JobState,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    exec(conn,
        "UPDATE publish_jobs SET state = ?2, error = coalesce(?3, error), updated_at = ?4 WHERE queue_id = ?1",
        params![queue_id, state, error, Timestamp(now)],
    )?;
    Ok(())
}

/// A container was created for the job: it is in state `container`.
pub fn set_container(
    conn: &Connection,
    queue_id: i64,
    container_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    exec(conn,
        "UPDATE publish_jobs SET state = ?4, container_id = ?2, updated_at = ?3 WHERE queue_id = ?1",
        params![queue_id, container_id, Timestamp(now), JobState::Container],
    )?;
    Ok(())
}

/// The Instagram media id of a published job.
pub fn set_media_id(conn: &Connection, queue_id: i64, media_id: Option<&str>) -> Result<()> {
    exec(
        conn,
        "UPDATE publish_jobs SET media_id = ?2 WHERE queue_id = ?1",
        params![queue_id, media_id],
    )?;
    Ok(())
}

/// At start: a job to restart goes back to `queued` (its container and error kept).
pub fn requeue(conn: &Connection, queue_id: i64) -> Result<()> {
    exec(
        conn,
        "UPDATE publish_jobs SET state = ?2 WHERE queue_id = ?1",
        params![queue_id, JobState::Queued],
    )?;
    Ok(())
}

/// The ids of the jobs in `state`.
pub fn jobs_in(conn: &Connection, state: JobState) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT queue_id FROM publish_jobs WHERE state = ?1")?;
    let rows = stmt.query_map([state], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Jobs to (re)start after a restart: queued or with a container only (nothing
/// was published yet, so starting over is safe).
pub fn restartable_jobs(conn: &Connection) -> Result<Vec<i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT queue_id FROM publish_jobs WHERE state IN (?1, ?2)")?;
    let rows = stmt.query_map(params![JobState::Queued, JobState::Container], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
