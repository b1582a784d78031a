//! Publishing stories through the Instagram Graph API: deciding whether a story
//! is published or handed to people (`route`), the publish jobs in the database,
//! and the publisher thread that walks a job through quota → media → container →
//! status polls → media_publish, with its own connection so that minutes of
//! polling never hold up the core loop. Everything it tells a chat goes through
//! the outbox.
//!
//! A publish whose answer never came is not retried blindly: its job stays in
//! 'publishing' (a crash) or becomes 'unknown' (a timeout), and the chat is asked.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use chrono::{DateTime, Utc};
use log::{info, warn};
use rusqlite::{params, Connection, OptionalExtension};

use crate::accounts::{self, AccountChoice, TokenState};
use crate::config::Config;
use crate::convert::{self, Check};
use crate::daemon::sleep_unless;
use crate::db::queue::{self, QueueRow};
use crate::db::{self, media::MediaItem};
use crate::instagram::{Graph, GraphError, StatusCode, StoryMedia};
use crate::settings::{self, ChatSettings};
use crate::signing::UrlSigner;
use crate::telegram::{self, FileSource, Outgoing};
use crate::ui;

/// Links handed to Instagram stop working after this.
const MEDIA_URL_LIFETIME_SECS: i64 = 3600;

/// What happens to a story at its slot (or on "Auto post").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To the chat with buttons; `offer_auto_post` when the API could publish
    /// it on a press; `note` says why it was not published when it was meant to be.
    Manual {
        offer_auto_post: bool,
        note: Option<String>,
    },
    /// Published by the publisher thread (without Graph calls in dry run).
    Publish { account_id: i64, dry_run: bool },
}

/// Why the chat cannot publish through the API now, or the account it would use.
pub fn publishable_account(
    conn: &Connection,
    config: &Config,
    key: Option<&[u8; 32]>,
    chat_id: i64,
    s: &ChatSettings,
    now: DateTime<Utc>,
) -> Result<std::result::Result<i64, String>> {
    if !s.enable_instagram_api {
        return Ok(Err("the Instagram API is off for this chat".into()));
    }
    if config.web.public_url.is_none() {
        return Ok(Err(
            "[web] public_url is not set in storyline.toml, so Instagram cannot fetch the file"
                .into(),
        ));
    }
    let account = match accounts::active_account_for_chat(conn, chat_id)? {
        AccountChoice::Account(account) => account,
        AccountChoice::NeedsChoice(_) => {
            return Ok(Err("choose the Instagram account in /settings".into()))
        }
        AccountChoice::None => return Ok(Err("no Instagram account is connected".into())),
    };
    Ok(match accounts::usable_token(conn, key, account.id, now)? {
        TokenState::Valid { .. } => Ok(account.id),
        TokenState::Expired => Err(format!(
            "the access token of @{} has expired; reconnect the account",
            account.username.as_deref().unwrap_or(&account.display_name)
        )),
        TokenState::ReconnectNeeded => Err(format!(
            "the access token of @{} cannot be read (was the key file replaced?); reconnect the account",
            account.username.as_deref().unwrap_or(&account.display_name)
        )),
    })
}

/// The route of a scheduled story.
pub fn route(
    conn: &Connection,
    config: &Config,
    key: Option<&[u8; 32]>,
    chat_id: i64,
    s: &ChatSettings,
    now: DateTime<Utc>,
) -> Result<Route> {
    let account = publishable_account(conn, config, key, chat_id, s, now)?;
    Ok(match (account, s.auto_post) {
        (Ok(account_id), true) => Route::Publish {
            account_id,
            dry_run: s.dry_run_mode,
        },
        (Ok(_), false) => Route::Manual {
            offer_auto_post: true,
            note: None,
        },
        // Auto mode that cannot publish says why, so nobody waits for a post
        // that will not happen.
        (Err(reason), true) if s.enable_instagram_api => Route::Manual {
            offer_auto_post: false,
            note: Some(reason),
        },
        (Err(_), _) => Route::Manual {
            offer_auto_post: false,
            note: None,
        },
    })
}

// ---- jobs -----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub queue_id: i64,
    pub chat_id: i64,
    pub account_id: i64,
    pub requested_by: Option<i64>,
    pub dry_run: bool,
    pub state: String,
    pub container_id: Option<String>,
}

pub fn create_job(
    conn: &Connection,
    queue_id: i64,
    chat_id: i64,
    account_id: i64,
    requested_by: Option<i64>,
    dry_run: bool,
    now: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO publish_jobs (queue_id, chat_id, account_id, requested_by, dry_run, state, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?6)
         ON CONFLICT (queue_id) DO UPDATE SET account_id = excluded.account_id,
             requested_by = excluded.requested_by, dry_run = excluded.dry_run, state = 'queued',
             container_id = NULL, error = NULL, updated_at = excluded.updated_at",
        params![queue_id, chat_id, account_id, requested_by, dry_run, now],
    )?;
    Ok(())
}

pub fn job(conn: &Connection, queue_id: i64) -> Result<Option<Job>> {
    Ok(conn
        .query_row(
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

fn set_job_state(conn: &Connection, queue_id: i64, state: &str, error: Option<&str>) -> Result<()> {
    conn.execute(
        "UPDATE publish_jobs SET state = ?2, error = coalesce(?3, error), updated_at = ?4 WHERE queue_id = ?1",
        params![queue_id, state, error, db::timestamp(Utc::now())],
    )?;
    Ok(())
}

/// Jobs to (re)start after a restart: queued or with a container only (nothing
/// was published yet, so starting over is safe).
pub fn restartable_jobs(conn: &Connection) -> Result<Vec<i64>> {
    let mut stmt =
        conn.prepare("SELECT queue_id FROM publish_jobs WHERE state IN ('queued', 'container')")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// At start: a job that was sending media_publish when the process died has an
/// unknown outcome. Its chat is asked, once.
pub fn ask_about_unknown_outcomes(conn: &Connection, out: &mut Vec<Outgoing>) -> Result<()> {
    let mut stmt = conn.prepare("SELECT queue_id FROM publish_jobs WHERE state = 'publishing'")?;
    let ids: Vec<i64> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for queue_id in ids {
        set_job_state(
            conn,
            queue_id,
            "unknown",
            Some("the process stopped during media_publish"),
        )?;
        if let Some(message) = unknown_outcome_message(conn, queue_id)? {
            out.push(message);
        }
    }
    Ok(())
}

pub fn unknown_outcome_message(conn: &Connection, queue_id: i64) -> Result<Option<Outgoing>> {
    let Some(job) = job(conn, queue_id)? else {
        return Ok(None);
    };
    let path = queue::queue_item(conn, queue_id)?
        .and_then(|row| row.media_item_id)
        .map(|id| db::media::item_by_id(conn, id))
        .transpose()?
        .flatten()
        .map(|item| item.path)
        .unwrap_or_else(|| "a story".into());
    let username = account_name(conn, job.account_id)?;
    Ok(Some(telegram::send_message(
        job.chat_id,
        &ui::unknown_outcome_text(&path, &username),
        Some(&ui::unknown_outcome_keyboard(queue_id)),
    )))
}

fn account_name(conn: &Connection, account_id: i64) -> Result<String> {
    Ok(db::accounts::account(conn, account_id)?
        .map(|a| a.username.unwrap_or(a.display_name))
        .unwrap_or_else(|| "?".into()))
}

// ---- the publisher thread ---------------------------------------------------------------

pub struct Publisher {
    pub conn: Connection,
    pub graph: Graph,
    pub signer: Option<UrlSigner>,
    pub key: Option<[u8; 32]>,
    pub public_url: Option<String>,
    pub media_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub defaults: crate::config::Defaults,
    pub jobs: Receiver<i64>,
    pub wake_outbox: Sender<()>,
    pub shutdown: Arc<AtomicBool>,
    /// Status polls: how many, and the pause between them, for images and videos.
    pub image_polls: (u32, Duration),
    pub video_polls: (u32, Duration),
    /// Token refresh, every hour from start (it is HTTP, so it runs here and
    /// not on the core loop).
    pub refresh: accounts::GraphRefresh,
}

const REFRESH_EVERY: Duration = Duration::from_secs(3600);

/// How a job ended, for what the chat is told.
enum Outcome {
    Published {
        media_id: Option<String>,
        /// What Instagram may crop or show oddly (aspect ratio), for the report.
        warnings: Vec<String>,
    },
    /// Not published; the story goes to the chat with the manual buttons.
    Fallback(String),
    Unknown,
    Stopped,
}

impl Publisher {
    pub fn run(self) {
        let mut next_refresh = std::time::Instant::now();
        while !self.shutdown.load(Ordering::Relaxed) {
            if std::time::Instant::now() >= next_refresh {
                self.refresh_tokens();
                next_refresh = std::time::Instant::now() + REFRESH_EVERY;
            }
            let queue_id = match self.jobs.recv_timeout(Duration::from_millis(500)) {
                Ok(id) => id,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if let Err(e) = self.handle(queue_id) {
                warn!("publishing queue item {queue_id}: {e:#}");
                let _ = set_job_state(&self.conn, queue_id, "failed", Some(&format!("{e:#}")));
            }
            let _ = self.wake_outbox.send(());
        }
    }

    fn refresh_tokens(&self) {
        let now = Utc::now();
        let reports =
            match accounts::refresh_due_tokens(&self.conn, self.key.as_ref(), &self.refresh, now) {
                Ok(reports) => reports,
                Err(e) => {
                    warn!("refreshing Instagram tokens: {e:#}");
                    return;
                }
            };
        let mut out = Vec::new();
        for report in reports {
            let name = report
                .account
                .username
                .clone()
                .unwrap_or(report.account.display_name.clone());
            warn!("refreshing the token of @{name} failed: {}", report.error);
            for chat_id in &report.chat_ids {
                out.push(telegram::send_message(
                    *chat_id,
                    &ui::refresh_failed_text(&name, &report.error, report.days_left),
                    None,
                ));
            }
        }
        if !out.is_empty() {
            match crate::daemon::enqueue_all(&self.conn, &out, &db::timestamp(now)) {
                Ok(()) => {
                    let _ = self.wake_outbox.send(());
                }
                Err(e) => warn!("reporting a failed token refresh: {e:#}"),
            }
        }
    }

    fn handle(&self, queue_id: i64) -> Result<()> {
        let job = job(&self.conn, queue_id)?.ok_or_else(|| anyhow!("no publish job {queue_id}"))?;
        if job.state != "queued" && job.state != "container" {
            return Ok(());
        }
        let slot = queue::queue_item(&self.conn, queue_id)?
            .ok_or_else(|| anyhow!("queue row {queue_id} is gone"))?;
        let item = slot
            .media_item_id
            .map(|id| db::media::item_by_id(&self.conn, id))
            .transpose()?
            .flatten()
            .ok_or_else(|| anyhow!("queue row {queue_id} has no file"))?;
        let row = db::chat(&self.conn, job.chat_id)?
            .unwrap_or_else(|| settings::ChatRow::new(job.chat_id));
        let s = settings::resolve(&row, &self.defaults);
        let username = account_name(&self.conn, job.account_id)?;
        let outcome = self.publish(&job, &item, &slot)?;
        let now = Utc::now();
        let now_text = db::timestamp(now);
        let mut out = Vec::new();
        match outcome {
            Outcome::Stopped => return Ok(()),
            Outcome::Published { media_id, warnings } => {
                set_job_state(&self.conn, queue_id, "published", None)?;
                self.conn.execute(
                    "UPDATE publish_jobs SET media_id = ?2 WHERE queue_id = ?1",
                    params![queue_id, media_id],
                )?;
                let method = if job.dry_run {
                    "dry_run"
                } else {
                    "instagram_api"
                };
                record_published(
                    &self.conn,
                    &job,
                    &slot,
                    &item,
                    &s,
                    method,
                    media_id.as_deref(),
                    now,
                )?;
                info!(
                    "chat {}: {} published as @{username} ({method})",
                    job.chat_id, item.path
                );
                let mut line = ui::published_line(&username, now, s.timezone, job.dry_run);
                for warning in &warnings {
                    line.push_str(&format!("\n⚠️ {}", telegram::escape_html(warning)));
                }
                out.push(self.report(&job, &slot, &item, &s, &line, None));
                if item.kind == "image" {
                    convert::remove_cached(&item.sha256, &self.cache_dir);
                }
            }
            Outcome::Fallback(reason) => {
                set_job_state(&self.conn, queue_id, "failed", Some(&reason))?;
                info!(
                    "chat {}: {} not published: {reason}",
                    job.chat_id, item.path
                );
                // A press's story keeps its message and waits for people again;
                // a scheduled one is sent now with the buttons (its hook marks it sent).
                let status = if job.requested_by.is_some() && slot.telegram_message_id.is_some() {
                    "sent"
                } else {
                    "sending"
                };
                queue::set_slot_status(&self.conn, queue_id, status, None)?;
                let note = ui::not_published_note(&reason);
                out.push(self.report(
                    &job,
                    &slot,
                    &item,
                    &s,
                    &note,
                    Some(ui::story_buttons(queue_id, false)),
                ));
            }
            Outcome::Unknown => {
                set_job_state(
                    &self.conn,
                    queue_id,
                    "unknown",
                    Some("no answer to media_publish"),
                )?;
                if let Some(message) = unknown_outcome_message(&self.conn, queue_id)? {
                    out.push(message);
                }
            }
        }
        crate::daemon::enqueue_all(&self.conn, &out, &now_text)?;
        Ok(())
    }

    /// The chat's message about a job: an edit of the story message when the job
    /// came from a press on it, else a new photo or video with the caption.
    fn report(
        &self,
        job: &Job,
        slot: &QueueRow,
        item: &MediaItem,
        s: &ChatSettings,
        line: &str,
        keyboard: Option<telegram::Keyboard>,
    ) -> Outgoing {
        let at = db::parse_timestamp(&slot.scheduled_for).unwrap_or_default();
        let caption = format!(
            "{}\n\n{line}",
            ui::story_caption(&item.category, &item.path, at, s.timezone, s.dry_run_mode)
        );
        match (job.requested_by, slot.telegram_message_id) {
            (Some(_), Some(message_id)) if slot.status != "pending" => {
                telegram::edit_caption(job.chat_id, message_id, &caption, keyboard.as_ref())
            }
            _ => {
                let path = self.media_dir.join(&item.path);
                // Its slot found it showable; should that have changed, the
                // file goes as it is and the outbox reports Telegram's answer.
                let source = crate::posting::chat_source(item, &path, &self.cache_dir)
                    .unwrap_or_else(|_| FileSource::Upload {
                        path: path.to_string_lossy().into_owned(),
                        file_name: item
                            .path
                            .rsplit('/')
                            .next()
                            .unwrap_or(&item.path)
                            .to_string(),
                    });
                let hook = crate::outbox::Hook::Story {
                    queue_id: slot.id,
                    media_item_id: item.id,
                    chat_id: job.chat_id,
                    name: item.path.clone(),
                };
                telegram::send_media(
                    job.chat_id,
                    item.kind == "video",
                    &source,
                    &caption,
                    &keyboard.unwrap_or_default(),
                    serde_json::to_value(hook).unwrap_or_default(),
                )
            }
        }
    }

    fn publish(&self, job: &Job, item: &MediaItem, slot: &QueueRow) -> Result<Outcome> {
        let _ = slot;
        let (Some(signer), Some(public_url)) = (&self.signer, &self.public_url) else {
            return Ok(Outcome::Fallback(
                "[web] public_url is not set, so Instagram cannot fetch the file".into(),
            ));
        };
        let token = match accounts::usable_token(
            &self.conn,
            self.key.as_ref(),
            job.account_id,
            Utc::now(),
        )? {
            TokenState::Valid { token, .. } => token,
            TokenState::Expired => {
                return Ok(Outcome::Fallback(
                    "the account's access token has expired; reconnect it".into(),
                ))
            }
            TokenState::ReconnectNeeded => {
                return Ok(Outcome::Fallback(
                    "the account's access token cannot be read; reconnect it".into(),
                ))
            }
        };
        let account = db::accounts::account(&self.conn, job.account_id)?
            .ok_or_else(|| anyhow!("account {} is gone", job.account_id))?;
        let ig = account.instagram_user_id.clone();

        // What Instagram would refuse is found here, not at the API.
        let path = self.media_dir.join(&item.path);
        let is_video = item.kind == "video";
        let mut warnings = Vec::new();
        let checks = if is_video {
            convert::check_video(&path).map(|(checks, _)| checks)
        } else {
            convert::prepare_image(&path, &item.sha256, &self.cache_dir)
                .map(|prepared| convert::check_image(&prepared))
        };
        let checks = match checks {
            Ok(c) => c,
            Err(e) => return Ok(Outcome::Fallback(format!("{e:#}"))),
        };
        for check in checks {
            match check {
                Check::Refuse(reason) => return Ok(Outcome::Fallback(reason)),
                Check::Warn(warning) => warnings.push(warning),
            }
        }
        for warning in &warnings {
            info!("chat {}: {}: {warning}", job.chat_id, item.path);
        }
        if job.dry_run {
            return Ok(Outcome::Published {
                media_id: None,
                warnings: warnings.clone(),
            });
        }

        match self.graph.publishing_limit(&ig, &token) {
            Ok(quota) if quota.used >= quota.total => {
                return Ok(Outcome::Fallback(format!(
                    "Instagram's publishing limit for @{} is reached ({} of {} in 24 hours)",
                    account.username.as_deref().unwrap_or(&account.display_name),
                    quota.used,
                    quota.total
                )))
            }
            Ok(_) => {}
            Err(e) if e.is_token_problem() => return Ok(Outcome::Fallback(e.plain_words())),
            // The quota is a courtesy check; the container call will say if it is wrong.
            Err(e) => warn!(
                "chat {}: reading the publishing limit: {}",
                job.chat_id,
                e.plain_words()
            ),
        }

        let expires = Utc::now().timestamp() + MEDIA_URL_LIFETIME_SECS;
        let url = format!(
            "{}{}",
            public_url.trim_end_matches('/'),
            signer.sign_path(item.id, expires)
        );
        let media = if is_video {
            StoryMedia::Video(url)
        } else {
            StoryMedia::Image(url)
        };
        let container =
            match self.with_retries(|| self.graph.create_story_container(&ig, &token, &media)) {
                Ok(id) => id,
                Err(e) => return Ok(Outcome::Fallback(e.plain_words())),
            };
        self.conn.execute(
            "UPDATE publish_jobs SET state = 'container', container_id = ?2, updated_at = ?3 WHERE queue_id = ?1",
            params![job.queue_id, container, db::timestamp(Utc::now())],
        )?;

        let (polls, pause) = if is_video {
            self.video_polls
        } else {
            self.image_polls
        };
        let mut finished = false;
        for _ in 0..polls {
            if self.shutdown.load(Ordering::Relaxed) {
                return Ok(Outcome::Stopped);
            }
            match self.graph.container_status(&container, &token) {
                Ok(status) => match status.code {
                    StatusCode::Finished => {
                        finished = true;
                        break;
                    }
                    StatusCode::Error | StatusCode::Expired => {
                        let what = if status.code == StatusCode::Error {
                            "could not process"
                        } else {
                            "let the upload expire for"
                        };
                        let detail = status.detail.map(|d| format!(": {d}")).unwrap_or_default();
                        return Ok(Outcome::Fallback(format!(
                            "Instagram {what} the story{detail}"
                        )));
                    }
                    StatusCode::Published => {
                        return Ok(Outcome::Published {
                            media_id: None,
                            warnings: warnings.clone(),
                        })
                    }
                    _ => {}
                },
                Err(e) if e.is_token_problem() => return Ok(Outcome::Fallback(e.plain_words())),
                Err(e) if e.is_transient() => {}
                Err(e) => return Ok(Outcome::Fallback(e.plain_words())),
            }
            sleep_unless(&self.shutdown, pause);
        }
        if !finished {
            return Ok(Outcome::Fallback(
                "Instagram took too long to process the story".into(),
            ));
        }

        // From here an interrupted call may have published: the state says so.
        set_job_state(&self.conn, job.queue_id, "publishing", None)?;
        for attempt in 0..6 {
            match self.graph.publish(&ig, &token, &container) {
                Ok(media_id) => {
                    return Ok(Outcome::Published {
                        media_id: Some(media_id),
                        warnings,
                    })
                }
                Err(e) if e.is_not_ready() && attempt < 5 => sleep_unless(&self.shutdown, pause),
                Err(GraphError::Timeout) | Err(GraphError::Network(_)) => {
                    return Ok(Outcome::Unknown)
                }
                Err(e) => {
                    set_job_state(&self.conn, job.queue_id, "container", None)?;
                    return Ok(Outcome::Fallback(e.plain_words()));
                }
            }
        }
        set_job_state(&self.conn, job.queue_id, "container", None)?;
        Ok(Outcome::Fallback(
            "Instagram kept saying the story was not ready to publish".into(),
        ))
    }

    /// A call retried twice on a passing failure (5xx, rate limit, network).
    fn with_retries<T>(
        &self,
        call: impl Fn() -> std::result::Result<T, GraphError>,
    ) -> std::result::Result<T, GraphError> {
        let mut delay = Duration::from_secs(2);
        let mut result = call();
        for _ in 0..2 {
            match &result {
                Err(e) if e.is_transient() && !self.shutdown.load(Ordering::Relaxed) => {
                    sleep_unless(&self.shutdown, delay);
                    delay *= 2;
                    result = call();
                }
                _ => break,
            }
        }
        result
    }
}

/// History, lock and queue status of a published story.
#[allow(clippy::too_many_arguments)]
pub fn record_published(
    conn: &Connection,
    job: &Job,
    slot: &QueueRow,
    item: &MediaItem,
    s: &ChatSettings,
    method: &str,
    media_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let now_text = db::timestamp(now);
    let by = job.requested_by;
    conn.execute(
        "UPDATE posting_queue SET status = 'posted', decided_at = ?2, decided_by = ?3 WHERE id = ?1",
        params![slot.id, now_text, by],
    )?;
    queue::record_history(
        conn,
        job.chat_id,
        Some(slot.id),
        Some(item.id),
        &item.sha256,
        "posted",
        method,
        by,
        &now_text,
    )?;
    if let Some(media_id) = media_id {
        conn.execute(
            "UPDATE posting_history SET instagram_media_id = ?2 WHERE id = (SELECT max(id) FROM posting_history WHERE queue_id = ?1)",
            params![slot.id, media_id],
        )?;
    }
    let until = (s.posted_lock_days > 0)
        .then(|| db::timestamp(now + chrono::Duration::days(i64::from(s.posted_lock_days))));
    queue::record_decision(
        conn,
        job.chat_id,
        &item.sha256,
        true,
        until.as_deref(),
        "posted",
        &now_text,
    )
}

/// Queued jobs, for the core to hand to the publisher thread.
pub fn queued_jobs(conn: &Connection) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare("SELECT queue_id FROM publish_jobs WHERE state = 'queued'")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
