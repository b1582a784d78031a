//! SQL for `runs`: one row per background action (scan, publish, token refresh,
//! daily summary, backup) with its start, duration, outcome, counts and error.
//!
//! The recorder the threads call: `start` writes the row as the action begins
//! (so one cut short by a crash is found, `interrupt_unfinished`), `Run::finish`
//! completes it; `begin` keeps the row in memory until `finish` (a backup, which
//! must not copy its own half-written row). Recording never fails the action:
//! a row that cannot be written is a warning in the log.

use super::exec;
use std::time::Instant;

use anyhow::Result;
use chrono::{DateTime, Utc};
use log::warn;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::Timestamp;
use crate::domain::status::{RunKind, RunOutcome};

/// How long runs are kept (`prune` in the daemon's housekeeping).
pub const KEEP_DAYS: i64 = 90;

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub kind: RunKind,
    pub chat_id: Option<i64>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    /// None while it runs.
    pub outcome: Option<RunOutcome>,
    /// `(name, count)` by name.
    pub counts: Vec<(String, i64)>,
    pub error: Option<String>,
}

/// A run being recorded. Drop it without `finish` and its row stays unfinished
/// (`interrupted` at the next start).
#[derive(Debug)]
pub struct Run {
    id: Option<i64>,
    kind: RunKind,
    chat_id: Option<i64>,
    started_at: DateTime<Utc>,
    started: Instant,
    counts: Vec<(String, i64)>,
}

/// Starts a run and writes its row now.
pub fn start(conn: &Connection, kind: RunKind, chat_id: Option<i64>, now: DateTime<Utc>) -> Run {
    let mut run = begin(kind, chat_id, now);
    match insert(conn, &run, None) {
        Ok(id) => run.id = Some(id),
        Err(e) => warn!("recording the start of a {kind} run: {e:#}"),
    }
    run
}

/// Starts a run whose row is written only when it finishes.
pub fn begin(kind: RunKind, chat_id: Option<i64>, now: DateTime<Utc>) -> Run {
    Run {
        id: None,
        kind,
        chat_id,
        started_at: now,
        started: Instant::now(),
        counts: Vec::new(),
    }
}

impl Run {
    /// Adds a count (`"new"`, `"published"`…) to what the run reports.
    pub fn count(&mut self, name: &str, value: impl TryInto<i64>) {
        let value = value.try_into().unwrap_or(i64::MAX);
        match self.counts.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value,
            None => self.counts.push((name.to_string(), value)),
        }
    }

    /// Ends the run: `Ok(())` is `ok`, `Err(words)` is `failed` with them.
    pub fn finish(self, conn: &Connection, result: Result<(), &str>, now: DateTime<Utc>) {
        let (outcome, error) = match result {
            Ok(()) => (RunOutcome::Ok, None),
            Err(error) => (RunOutcome::Failed, Some(error)),
        };
        self.end(conn, outcome, error, now);
    }

    /// Ends the run with `outcome` (`interrupted` when a shutdown cut it short).
    pub fn end(
        self,
        conn: &Connection,
        outcome: RunOutcome,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) {
        let kind = self.kind;
        let duration_ms = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let done = Done {
            finished_at: now,
            duration_ms,
            outcome,
            error,
        };
        let written = match self.id {
            Some(id) => complete(conn, id, &self.counts, &done),
            None => insert(conn, &self, Some(&done)).map(|_| ()),
        };
        if let Err(e) = written {
            warn!("recording the end of a {kind} run: {e:#}");
        }
    }
}

struct Done<'a> {
    finished_at: DateTime<Utc>,
    duration_ms: i64,
    outcome: RunOutcome,
    error: Option<&'a str>,
}

fn counts_json(counts: &[(String, i64)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = counts
        .iter()
        .map(|(name, value)| (name.clone(), (*value).into()))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn insert(conn: &Connection, run: &Run, done: Option<&Done<'_>>) -> Result<i64> {
    exec(conn, "INSERT INTO runs (kind, chat_id, started_at, finished_at, duration_ms, outcome, counts, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            run.kind,
            run.chat_id,
            Timestamp(run.started_at),
            done.map(|d| Timestamp(d.finished_at)),
            done.map(|d| d.duration_ms),
            done.map(|d| d.outcome),
            done.map(|_| counts_json(&run.counts)),
            done.and_then(|d| d.error),
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

fn complete(conn: &Connection, id: i64, counts: &[(String, i64)], done: &Done<'_>) -> Result<()> {
    exec(
        conn,
        "UPDATE runs SET finished_at = ?2, duration_ms = ?3, outcome = ?4, counts = ?5, error = ?6
         WHERE id = ?1",
        params![
            id,
            Timestamp(done.finished_at),
            done.duration_ms,
            done.outcome,
            counts_json(counts),
            done.error,
        ],
    )?;
    Ok(())
}

const COLUMNS: &str =
    "id, kind, chat_id, started_at, finished_at, duration_ms, outcome, counts, error";

fn read(row: &Row<'_>) -> rusqlite::Result<RunRow> {
    let counts: Option<String> = row.get(7)?;
    let counts = counts
        .and_then(|text| serde_json::from_str::<serde_json::Map<_, _>>(&text).ok())
        .map(|map| {
            map.into_iter()
                .filter_map(|(name, value)| value.as_i64().map(|v| (name, v)))
                .collect()
        })
        .unwrap_or_default();
    Ok(RunRow {
        id: row.get(0)?,
        kind: row.get(1)?,
        chat_id: row.get(2)?,
        started_at: row.get::<_, Timestamp>(3)?.0,
        finished_at: row.get::<_, Option<Timestamp>>(4)?.map(|t| t.0),
        duration_ms: row.get(5)?,
        outcome: row.get(6)?,
        counts,
        error: row.get(8)?,
    })
}

/// Runs started at or after `since` (all when None), oldest first; at most
/// `limit`, the newest of them.
pub fn runs_since(
    conn: &Connection,
    since: Option<DateTime<Utc>>,
    limit: u32,
) -> Result<Vec<RunRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM runs WHERE ?1 IS NULL OR started_at >= ?1
         ORDER BY started_at DESC, id DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![since.map(Timestamp), limit], read)?;
    let mut rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    rows.reverse();
    Ok(rows)
}

/// The newest run of `kind` that ended `outcome`.
pub fn last_of(conn: &Connection, kind: RunKind, outcome: RunOutcome) -> Result<Option<RunRow>> {
    Ok(super::row(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM runs WHERE kind = ?1 AND outcome = ?2
                 ORDER BY started_at DESC, id DESC LIMIT 1"
        ),
        params![kind, outcome],
        read,
    )
    .optional()?)
}

/// The newest failed run that a chat may hear of: one for every chat, or its own.
pub fn last_failure_for_chat(conn: &Connection, chat_id: i64) -> Result<Option<RunRow>> {
    Ok(super::row(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM runs
                 WHERE outcome = ?1 AND (chat_id IS NULL OR chat_id = ?2)
                 ORDER BY started_at DESC, id DESC LIMIT 1"
        ),
        params![RunOutcome::Failed, chat_id],
        read,
    )
    .optional()?)
}

/// Runs still without an outcome when the daemon starts were cut short.
pub fn interrupt_unfinished(conn: &Connection, now: DateTime<Utc>) -> Result<usize> {
    Ok(exec(
        conn,
        "UPDATE runs SET outcome = ?1, finished_at = ?2, error = 'cut short: the daemon stopped'
         WHERE outcome IS NULL",
        params![RunOutcome::Interrupted, Timestamp(now)],
    )?)
}

/// Deletes runs started before `before`; returns how many.
pub fn prune(conn: &Connection, before: DateTime<Utc>) -> Result<usize> {
    Ok(exec(
        conn,
        "DELETE FROM runs WHERE started_at < ?1",
        [Timestamp(before)],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0).unwrap()
    }

    /// The /status health block reads the newest failure through its index,
    /// not by walking every run of the last 90 days.
    #[test]
    fn the_newest_failure_is_found_by_the_outcome_index() {
        let conn = crate::db::open_in_memory_for_tests();
        let plan: Vec<String> = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT {COLUMNS} FROM runs
                 WHERE outcome = ?1 AND (chat_id IS NULL OR chat_id = ?2)
                 ORDER BY started_at DESC, id DESC LIMIT 1"
            ))
            .unwrap()
            .query_map(params![RunOutcome::Failed, 7], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter().any(|step| step.contains("runs_outcome")),
            "{plan:?}"
        );
    }

    #[test]
    fn a_run_is_written_at_start_and_completed_with_counts_and_error() {
        let conn = crate::db::open_in_memory_for_tests();
        let mut run = start(&conn, RunKind::Scan, None, at(1));
        let unfinished = runs_since(&conn, None, 10).unwrap();
        assert_eq!(unfinished.len(), 1);
        assert_eq!(unfinished[0].outcome, None);
        run.count("new", 3usize);
        run.count("gone", 1);
        run.finish(&conn, Ok(()), at(2));
        let mut failed = start(&conn, RunKind::Publish, Some(42), at(3));
        failed.count("published", 0);
        failed.finish(&conn, Err("container ERROR"), at(3));

        let rows = runs_since(&conn, None, 10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].outcome, Some(RunOutcome::Ok));
        assert_eq!(rows[0].finished_at, Some(at(2)));
        assert_eq!(
            rows[0].counts,
            [("gone".to_string(), 1), ("new".to_string(), 3)]
        );
        assert!(rows[0].duration_ms.is_some());
        assert_eq!(rows[1].chat_id, Some(42));
        assert_eq!(rows[1].error.as_deref(), Some("container ERROR"));
        assert_eq!(
            last_failure_for_chat(&conn, 42).unwrap().map(|r| r.id),
            Some(rows[1].id)
        );
        assert_eq!(last_failure_for_chat(&conn, 7).unwrap(), None);
        assert_eq!(
            last_of(&conn, RunKind::Scan, RunOutcome::Ok)
                .unwrap()
                .map(|r| r.id),
            Some(rows[0].id)
        );
    }

    #[test]
    fn a_begun_run_is_written_only_when_it_ends() {
        let conn = crate::db::open_in_memory_for_tests();
        let run = begin(RunKind::Backup, None, at(1));
        assert!(runs_since(&conn, None, 10).unwrap().is_empty());
        run.finish(&conn, Ok(()), at(1));
        let rows = runs_since(&conn, None, 10).unwrap();
        assert_eq!(rows[0].kind, RunKind::Backup);
        assert_eq!(rows[0].outcome, Some(RunOutcome::Ok));
    }

    #[test]
    fn unfinished_runs_are_interrupted_and_old_ones_pruned() {
        let conn = crate::db::open_in_memory_for_tests();
        let _cut_short = start(&conn, RunKind::Scan, None, at(1));
        start(&conn, RunKind::Scan, None, at(5)).finish(&conn, Ok(()), at(5));
        assert_eq!(interrupt_unfinished(&conn, at(6)).unwrap(), 1);
        let rows = runs_since(&conn, None, 10).unwrap();
        assert_eq!(rows[0].outcome, Some(RunOutcome::Interrupted));
        assert_eq!(rows[1].outcome, Some(RunOutcome::Ok));
        assert_eq!(runs_since(&conn, Some(at(3)), 10).unwrap().len(), 1);
        assert_eq!(prune(&conn, at(3)).unwrap(), 1);
        assert_eq!(runs_since(&conn, None, 10).unwrap().len(), 1);
    }
}
