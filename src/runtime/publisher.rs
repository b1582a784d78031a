//! Publishing stories through the Instagram Graph API: deciding whether a story
//! is published or handed to people (`route`), the publish jobs in the database,
//! and the publisher thread that walks a job through quota → media → container →
//! status polls → media_publish, with its own connection so that minutes of
//! polling never hold up the core loop. Everything it tells a chat goes through
//! the outbox.
//!
//! A failed call is tried again, or the story gets a new container, or it goes to
//! people with Instagram's reason, as `instagram::error_action` says; retries are
//! bounded (`RETRIES`, `MAX_CONTAINERS`), logged, and told to the chat on a fallback.
//! A publish whose answer never came is not retried blindly: its job stays in
//! 'publishing' (a crash) or becomes 'unknown' (a timeout), and the chat is asked.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use log::{info, warn};
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::bot::accounts::{self, TokenState};
use crate::bot::publish::{
    account_name, job, record_published, set_job_state, unknown_outcome_message, Job,
};
use crate::config::Secret;
use crate::db::queue::{self, QueueRow};
use crate::db::{self, media::MediaItem};
use crate::domain::settings::{self, ChatSettings};
use crate::domain::status::{JobState, MediaKind, QueueStatus, RunKind, RunOutcome};
use crate::domain::ui;
use crate::instagram::{
    Call, ContainerStatus, ErrorAction, Graph, GraphError, StatusCode, StoryMedia,
};
use crate::media::convert::{self, Check};
use crate::runtime::sleep_unless;
use crate::signing::UrlSigner;
use crate::telegram::{self, FileSource, Outgoing};

// ---- the publisher thread ---------------------------------------------------------------

/// Links handed to Instagram stop working after this.
const MEDIA_URL_LIFETIME_SECS: i64 = 3600;

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
/// How often the publisher looks for due insight reads, in daemon time: one
/// indexed query a minute when none is due.
const INSIGHTS_EVERY: chrono::Duration = chrono::Duration::minutes(1);
const STORAGE_RETRY: Duration = Duration::from_secs(5);
/// How often an idle publisher looks at the shutdown flag (the daemon gives its
/// threads 3 s to stop; fewer wake-ups keep an idle Pi idle).
const SHUTDOWN_LOOK: Duration = Duration::from_secs(1);
const STORING_JOBS: &str = "publisher: storing a publish job (it waits; retrying)";

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
        // Jobs the database could not take (a full or read-only disk), tried again
        // after a pause rather than given up.
        let mut waiting: Vec<(i64, std::time::Instant)> = Vec::new();
        let mut trouble = crate::logging::Trouble::default();
        let mut room = db::Room::default();
        let mut insights_looked: Option<chrono::DateTime<chrono::Utc>> = None;
        while !self.shutdown.load(Ordering::Relaxed) {
            if std::time::Instant::now() >= next_refresh {
                self.refresh_tokens();
                next_refresh = std::time::Instant::now() + REFRESH_EVERY;
            }
            // Daemon time, so a story's reads come hours later on the test clock too.
            let mut now = crate::clock::now();
            if insights_looked.is_none_or(|at| now >= at + INSIGHTS_EVERY || now < at) {
                // A full pass (a backlog after downtime) looks again at once, with
                // a publish job's turn in between, rather than a minute later.
                let more = self.read_insights(now);
                insights_looked = (!more).then_some(now);
                now = crate::clock::now();
            }
            // The next look is a minute of daemon time away: on a fast test clock
            // that is less than the shutdown look, and waiting a whole second would
            // make every read late by up to an hour of daemon time.
            let next_look = insights_looked.map_or(Duration::ZERO, |at| {
                crate::clock::real_duration(
                    (at + INSIGHTS_EVERY - now).to_std().unwrap_or_default(),
                )
            });
            let due = waiting
                .iter()
                .position(|(_, at)| *at <= std::time::Instant::now());
            let queue_id = match due {
                Some(index) => waiting.remove(index).0,
                None => match self.jobs.recv_timeout(SHUTDOWN_LOOK.min(next_look)) {
                    Ok(id) => id,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
            };
            room.make(&self.conn);
            let result = self.handle(queue_id).or_else(|e| {
                if db::is_storage_error(&e) {
                    return Err(e);
                }
                warn!("publishing queue item {queue_id}: {e:#}");
                self.give_up(queue_id, &format!("{e:#}"))
            });
            match result {
                Ok(()) => trouble.ended(STORING_JOBS),
                Err(e) => {
                    room.failed(&e);
                    trouble.failed(STORING_JOBS, &e);
                    waiting.push((queue_id, std::time::Instant::now() + STORAGE_RETRY));
                }
            }
            let _ = self.wake_outbox.send(());
        }
    }

    /// The insight steps due now (`bot::insights`), recorded as a run when any was;
    /// true when the pass was full and more may be due.
    fn read_insights(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        let pass = match crate::bot::insights::run_due(
            &self.conn,
            &self.graph,
            self.key.as_ref(),
            false,
            now,
        ) {
            Ok(pass) => pass,
            Err(e) => {
                warn!("reading story insights: {e:#}");
                return false;
            }
        };
        if pass.due == 0 {
            return false;
        }
        let mut run = db::runs::begin(RunKind::Insights, None, now);
        run.count("due", pass.due);
        run.count("read", pass.read);
        run.count("matched", pass.matched);
        run.count("failed", pass.failed);
        run.count("closed", pass.closed);
        let error = format!(
            "{} of {} insight steps failed (tried again later)",
            pass.failed, pass.due
        );
        let result = if pass.failed == 0 {
            Ok(())
        } else {
            Err(error.as_str())
        };
        run.finish(&self.conn, result, crate::clock::now());
        self.tell(&pass.out, now, "telling chats about insights");
        pass.full
    }

    fn refresh_tokens(&self) {
        let now = crate::clock::now();
        // Recorded when a token was due (or the pass failed): not every hourly look.
        let mut run = db::runs::begin(RunKind::TokenRefresh, None, now);
        let pass = match accounts::refresh_due_tokens_counted(
            &self.conn,
            self.key.as_ref(),
            &self.refresh,
            now,
        ) {
            Ok(pass) => pass,
            Err(e) => {
                warn!("refreshing Instagram tokens: {e:#}");
                run.finish(&self.conn, Err(&format!("{e:#}")), crate::clock::now());
                return;
            }
        };
        if pass.due > 0 {
            run.count("due", pass.due);
            run.count("refreshed", pass.refreshed);
            run.count("failed", pass.failed.len());
            let errors: Vec<String> = pass
                .failed
                .iter()
                .map(|(account, error)| format!("account {account}: {error}"))
                .collect();
            let result = if errors.is_empty() {
                Ok(())
            } else {
                Err(errors.join("; "))
            };
            run.finish(
                &self.conn,
                result.as_ref().map(|_| ()).map_err(String::as_str),
                crate::clock::now(),
            );
        }
        let reports = pass.reports;
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
        self.tell(&out, now, "reporting a failed token refresh");
    }

    /// Messages of a background pass for the outbox, which is woken; a failure to
    /// store them is logged as `what` (the pass itself is already recorded).
    fn tell(&self, out: &[Outgoing], now: chrono::DateTime<chrono::Utc>, what: &str) {
        if out.is_empty() {
            return;
        }
        match crate::bot::chats::enqueue_all(&self.conn, out, now) {
            Ok(()) => {
                let _ = self.wake_outbox.send(());
            }
            Err(e) => warn!("{what}: {e:#}"),
        }
    }

    fn handle(&self, queue_id: i64) -> Result<()> {
        let job = job(&self.conn, queue_id)?.ok_or_else(|| anyhow!("no publish job {queue_id}"))?;
        if job.state == JobState::Publishing {
            // Only a retry gets here: media_publish was called, and recording its
            // outcome failed. The chat is asked, as after a crash.
            return self.give_up(
                queue_id,
                "the outcome of media_publish could not be recorded",
            );
        }
        if !job.state.may_start() {
            return Ok(());
        }
        let mut run = db::runs::start(
            &self.conn,
            RunKind::Publish,
            Some(job.chat_id),
            crate::clock::now(),
        );
        let result = self.publish_job(queue_id, &job);
        let now = crate::clock::now();
        match &result {
            Ok(Outcome::Published { .. }) => {
                run.count("published", 1);
                run.finish(&self.conn, Ok(()), now);
            }
            Ok(Outcome::Fallback(reason)) => {
                run.count("published", 0);
                run.finish(&self.conn, Err(reason), now);
            }
            Ok(Outcome::Unknown) => {
                run.count("published", 0);
                run.finish(&self.conn, Err("no answer to media_publish"), now);
            }
            Ok(Outcome::Stopped) => run.end(&self.conn, RunOutcome::Interrupted, None, now),
            Err(e) => run.finish(&self.conn, Err(&format!("{e:#}")), now),
        }
        result.map(|_| ())
    }

    /// `handle` for a job that may start: publishes it and records the outcome.
    fn publish_job(&self, queue_id: i64, job: &Job) -> Result<Outcome> {
        let job = job.clone();
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
        if matches!(outcome, Outcome::Stopped) {
            return Ok(outcome);
        }
        let now = crate::clock::now();
        let mut out = Vec::new();
        // The outcome, the slot, the history and the chat's message are one commit: a
        // crash or a full disk in between leaves the job where it was ('publishing'
        // after media_publish), so the chat is asked rather than left with a slot
        // that never ends.
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let mut published_image = false;
        match &outcome {
            Outcome::Stopped => {}
            Outcome::Published { media_id, warnings } => {
                set_job_state(&tx, queue_id, JobState::Published, None)?;
                db::publish::set_media_id(&tx, queue_id, media_id.as_deref())?;
                let method = if job.dry_run {
                    "dry_run"
                } else {
                    "instagram_api"
                };
                record_published(
                    &tx,
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
                let mut lines =
                    ui::caption_line(ui::published_line(&username, now, s.timezone, job.dry_run));
                for warning in warnings {
                    lines.extend(ui::warning_line(warning));
                }
                out.push(self.report(&job, &slot, &item, &s, &lines, None));
                published_image = item.kind == MediaKind::Image;
            }
            Outcome::Fallback(reason) => {
                set_job_state(&tx, queue_id, JobState::Failed, Some(reason.as_str()))?;
                info!(
                    "chat {}: {} not published: {reason}",
                    job.chat_id, item.path
                );
                // A press's story keeps its message and waits for people again;
                // a scheduled one is sent now with the buttons (its hook marks it sent).
                let status = if job.requested_by.is_some() && slot.telegram_message_id.is_some() {
                    QueueStatus::Sent
                } else {
                    QueueStatus::Sending
                };
                queue::set_slot_status(&tx, queue_id, status, None)?;
                let note = ui::not_published_note(reason);
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
                    &tx,
                    queue_id,
                    JobState::Unknown,
                    Some("no answer to media_publish"),
                )?;
                if let Some(message) = unknown_outcome_message(&tx, queue_id)? {
                    out.push(message);
                }
            }
        }
        crate::bot::chats::enqueue_all(&tx, &out, now)?;
        tx.commit()?;
        if published_image {
            convert::remove_cached(&item.sha256, &self.cache_dir);
        }
        Ok(outcome)
    }

    /// After an error in `handle`: a job that may have reached media_publish is an
    /// unknown outcome (the chat is asked, as after a crash); any other job failed,
    /// and so did its slot, so that it does not wait for ever.
    fn give_up(&self, queue_id: i64, error: &str) -> Result<()> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let mut out = Vec::new();
        match job(&tx, queue_id)?.map(|j| j.state) {
            Some(JobState::Publishing) => {
                set_job_state(&tx, queue_id, JobState::Unknown, Some(error))?;
                out.extend(unknown_outcome_message(&tx, queue_id)?);
            }
            Some(state) if state.may_start() => {
                set_job_state(&tx, queue_id, JobState::Failed, Some(error))?;
                queue::fail_sending_slot(&tx, queue_id, error)?;
            }
            _ => {}
        }
        crate::bot::chats::enqueue_all(&tx, &out, crate::clock::now())?;
        tx.commit()?;
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
        lines: &[crate::domain::html_fit::Piece],
        keyboard: Option<telegram::Keyboard>,
    ) -> Outgoing {
        let caption = ui::story_caption(
            &item.category,
            &item.path,
            slot.scheduled_for,
            s.timezone,
            s.dry_run_mode,
            lines,
        );
        match (job.requested_by, slot.telegram_message_id) {
            (Some(_), Some(message_id)) if slot.status != QueueStatus::Pending => {
                telegram::edit_caption(job.chat_id, message_id, &caption, keyboard.as_ref())
            }
            _ => {
                let path = self.media_dir.join(&item.path);
                // Its slot found it showable; should that have changed, the
                // file goes as it is and the outbox reports Telegram's answer.
                let source = crate::media::convert::chat_source(item, &path, &self.cache_dir)
                    .unwrap_or_else(|_| FileSource::Upload {
                        path: path.to_string_lossy().into_owned(),
                        file_name: item
                            .path
                            .rsplit('/')
                            .next()
                            .unwrap_or(&item.path)
                            .to_string(),
                    });
                let hook = crate::bot::chats::Hook::Story {
                    queue_id: slot.id,
                    media_item_id: item.id,
                    chat_id: job.chat_id,
                    name: item.path.clone(),
                };
                telegram::send_media(
                    job.chat_id,
                    item.kind == MediaKind::Video,
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
            crate::clock::now(),
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
        let is_video = item.kind == MediaKind::Video;
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

        let expires = crate::clock::now().timestamp() + MEDIA_URL_LIFETIME_SECS;
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

        // Each pass makes a container, waits for it and publishes it; a pass ends early
        // when Instagram cannot use the container, and then the next one starts over.
        let mut tries = Tries::default();
        let mut reason = String::new();
        while tries.containers < MAX_CONTAINERS {
            if tries.containers > 0 {
                info!(
                    "chat {}: {}: making a new container: {reason}",
                    job.chat_id, item.path
                );
            }
            tries.containers += 1;
            let created = self.call_with_retries(job, &mut tries, Call::CreateContainer, || {
                self.graph.create_story_container(&ig, &token, &media)
            });
            let container = match created {
                Attempt::Done(id) => id,
                Attempt::Stopped => return Ok(Outcome::Stopped),
                Attempt::Failed(e, ErrorAction::Recreate) => {
                    reason = e.plain_words();
                    continue;
                }
                Attempt::Failed(e, _) => return Ok(not_published(e.plain_words(), &tries)),
            };
            db::publish::set_container(&self.conn, job.queue_id, &container, crate::clock::now())?;

            match self.wait_for_container(&container, &token, is_video) {
                Polled::Finished => {}
                Polled::Published => {
                    return Ok(Outcome::Published {
                        media_id: None,
                        warnings,
                    })
                }
                Polled::Stopped => return Ok(Outcome::Stopped),
                Polled::Failed(why, ErrorAction::Recreate) => {
                    reason = why;
                    continue;
                }
                Polled::Failed(why, _) => return Ok(not_published(why, &tries)),
            }

            // From here an interrupted call may have published: the state says so.
            set_job_state(&self.conn, job.queue_id, JobState::Publishing, None)?;
            let published = self.call_with_retries(job, &mut tries, Call::Publish, || {
                self.graph.publish(&ig, &token, &container)
            });
            match published {
                Attempt::Done(media_id) => {
                    if tries.retries > 0 || tries.containers > 1 {
                        info!(
                            "chat {}: {}: published{}",
                            job.chat_id,
                            item.path,
                            tries.note()
                        );
                    }
                    return Ok(Outcome::Published {
                        media_id: Some(media_id),
                        warnings,
                    });
                }
                Attempt::Failed(_, ErrorAction::Ask) => return Ok(Outcome::Unknown),
                // Instagram answered every publish with an error: nothing went live, so
                // the job may start over.
                Attempt::Stopped => {
                    set_job_state(&self.conn, job.queue_id, JobState::Container, None)?;
                    return Ok(Outcome::Stopped);
                }
                Attempt::Failed(e, action) => {
                    set_job_state(&self.conn, job.queue_id, JobState::Container, None)?;
                    reason = e.plain_words();
                    if action == ErrorAction::GiveUp {
                        return Ok(not_published(reason, &tries));
                    }
                    // Retried as often as allowed, or Instagram wants a new container:
                    // Meta's advice for a container that keeps failing is a new one.
                }
            }
        }
        Ok(not_published(reason, &tries))
    }

    /// Polls a container until it is FINISHED, at most `image_polls`/`video_polls`.
    fn wait_for_container(&self, container: &str, token: &Secret, is_video: bool) -> Polled {
        let (polls, pause) = if is_video {
            self.video_polls
        } else {
            self.image_polls
        };
        for _ in 0..polls {
            if self.shutdown.load(Ordering::Relaxed) {
                return Polled::Stopped;
            }
            match self.graph.container_status(container, token) {
                Ok(status) => match status.code {
                    StatusCode::Finished => return Polled::Finished,
                    StatusCode::Published => return Polled::Published,
                    StatusCode::Error | StatusCode::Expired => {
                        return Polled::Failed(container_failure(&status), status.failure_action())
                    }
                    _ => {}
                },
                Err(e) => match e.action(Call::ContainerStatus) {
                    // The next poll is the retry.
                    ErrorAction::Retry => {}
                    action => return Polled::Failed(e.plain_words(), action),
                },
            }
            sleep_unless(&self.shutdown, crate::clock::real_duration(pause));
        }
        Polled::Failed(
            "Instagram took too long to process the story".into(),
            ErrorAction::GiveUp,
        )
    }

    /// Makes `call`, and makes it again after a delay while its error says to retry and
    /// `RETRIES` allows; each retry is logged and counted in `tries`.
    fn call_with_retries<T>(
        &self,
        job: &Job,
        tries: &mut Tries,
        call: Call,
        make_call: impl Fn() -> std::result::Result<T, GraphError>,
    ) -> Attempt<T> {
        let mut attempt = 1;
        loop {
            let error = match make_call() {
                Ok(value) => return Attempt::Done(value),
                Err(error) => error,
            };
            let action = error.action(call);
            if action != ErrorAction::Retry {
                return Attempt::Failed(error, action);
            }
            let Some(delay) = retry_delay(&RETRIES, attempt, tries.waited) else {
                warn!(
                    "chat {}: queue item {}: {error} at {call:?}; no more retries after {attempt} \
                     attempts ({} s waited for this story)",
                    job.chat_id,
                    job.queue_id,
                    tries.waited.as_secs()
                );
                return Attempt::Failed(error, action);
            };
            info!(
                "chat {}: queue item {}: {error} at {call:?}; trying again in {} s (attempt {} of {})",
                job.chat_id,
                job.queue_id,
                delay.as_secs(),
                attempt + 1,
                RETRIES.attempts
            );
            sleep_unless(&self.shutdown, crate::clock::real_duration(delay));
            if self.shutdown.load(Ordering::Relaxed) {
                return Attempt::Stopped;
            }
            tries.retries += 1;
            tries.waited += delay;
            attempt += 1;
        }
    }
}

/// Bounds on trying a failed Graph call again, for one story.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries of one call, the first included.
    pub attempts: u32,
    /// The wait before the second try; it doubles before each further one …
    pub first_delay: Duration,
    /// … up to this.
    pub max_delay: Duration,
    /// All the waits for one story together stay within this.
    pub max_waiting: Duration,
}

/// Meta's error table advises "try again 1–2 times in the next 30 seconds to 2 minutes"
/// for a temporary container error (24/2207008). Storyline tries a call at most 4 times,
/// 2, 4 and 8 s apart, waits at most 2 minutes per story in all, and makes at most
/// `MAX_CONTAINERS` containers for it; status polls have their own bounds.
pub const RETRIES: RetryPolicy = RetryPolicy {
    attempts: 4,
    first_delay: Duration::from_secs(2),
    max_delay: Duration::from_secs(30),
    max_waiting: Duration::from_secs(120),
};
/// The first container and one made again (Meta's advice when one keeps failing).
pub const MAX_CONTAINERS: u32 = 2;

/// The wait before trying again a call that has failed `attempt` times, or `None` when
/// `policy` allows no more; `waited` is what the story has waited already.
pub fn retry_delay(policy: &RetryPolicy, attempt: u32, waited: Duration) -> Option<Duration> {
    let attempt = attempt.max(1);
    if attempt >= policy.attempts {
        return None;
    }
    let delay = policy
        .first_delay
        .saturating_mul(1 << (attempt - 1).min(16))
        .min(policy.max_delay);
    (waited + delay <= policy.max_waiting).then_some(delay)
}

/// How a call went, with its retries.
enum Attempt<T> {
    Done(T),
    /// The last error and what it calls for (`Retry` when the retries ran out).
    Failed(GraphError, ErrorAction),
    Stopped,
}

/// How waiting for a container went.
enum Polled {
    Finished,
    Published,
    /// What to tell the chat, and what to do.
    Failed(String, ErrorAction),
    Stopped,
}

/// What one story's publishing took beyond a single try of each call.
#[derive(Debug, Default)]
struct Tries {
    retries: u32,
    waited: Duration,
    containers: u32,
}

impl Tries {
    /// " Storyline tried 3 more times over 14 s, with 2 containers.", or "" for none.
    fn note(&self) -> String {
        let containers = if self.containers > 1 {
            format!(", with {} containers", self.containers)
        } else {
            String::new()
        };
        match self.retries {
            0 if containers.is_empty() => String::new(),
            0 => format!(" Storyline tried again{containers}."),
            1 => format!(
                " Storyline tried once more after {} s{containers}.",
                self.waited.as_secs()
            ),
            n => format!(
                " Storyline tried {n} more times over {} s{containers}.",
                self.waited.as_secs()
            ),
        }
    }
}

/// Not published: the reason for the chat, with what was tried (recorded with the job).
fn not_published(reason: String, tries: &Tries) -> Outcome {
    Outcome::Fallback(format!("{reason}{}", tries.note()))
}

/// Why a container ended in ERROR or EXPIRED: Instagram's own words (its `status`),
/// after Storyline's sentence for the error code they name, if it has one.
fn container_failure(status: &ContainerStatus) -> String {
    let what = if status.code == StatusCode::Error {
        "could not process"
    } else {
        "let the upload expire for"
    };
    match (&status.detail, status.explanation()) {
        (Some(detail), Some(explained)) => {
            format!("Instagram {what} the story: {explained} Instagram said: “{detail}”")
        }
        (Some(detail), None) => format!("Instagram {what} the story. Instagram said: “{detail}”"),
        (None, _) => format!("Instagram {what} the story and gave no reason."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::publish::create_job;

    #[test]
    fn retries_are_bounded_in_attempts_and_in_time() {
        let secs = Duration::from_secs;
        // (attempts made so far, waited so far, wait before the next try)
        let cases = [
            (1, secs(0), Some(secs(2))),
            (2, secs(2), Some(secs(4))),
            (3, secs(6), Some(secs(8))),
            (4, secs(14), None),
            (0, secs(0), Some(secs(2))),
            (1, secs(118), Some(secs(2))),
            (1, secs(119), None),
            (3, secs(113), None),
        ];
        for (attempt, waited, delay) in cases {
            assert_eq!(
                retry_delay(&RETRIES, attempt, waited),
                delay,
                "attempt {attempt}, waited {waited:?}"
            );
        }
        let slow = RetryPolicy {
            attempts: 10,
            first_delay: secs(10),
            max_delay: secs(30),
            max_waiting: secs(1000),
        };
        assert_eq!(retry_delay(&slow, 3, secs(0)), Some(secs(30)), "capped");
        assert_eq!(retry_delay(&slow, 9, secs(0)), Some(secs(30)));
        // The whole schedule of one call fits Meta's "30 seconds to 2 minutes".
        let mut waited = Duration::ZERO;
        let mut attempt = 1;
        while let Some(delay) = retry_delay(&RETRIES, attempt, waited) {
            waited += delay;
            attempt += 1;
        }
        assert_eq!((attempt, waited), (RETRIES.attempts, secs(14)));
    }

    #[test]
    fn what_was_tried_is_told() {
        let tries = |retries: u32, waited: u64, containers: u32| Tries {
            retries,
            waited: Duration::from_secs(waited),
            containers,
        };
        let cases = [
            (tries(0, 0, 0), ""),
            (tries(0, 0, 1), ""),
            (tries(1, 2, 1), " Storyline tried once more after 2 s."),
            (tries(3, 14, 1), " Storyline tried 3 more times over 14 s."),
            (tries(0, 0, 2), " Storyline tried again, with 2 containers."),
            (
                tries(4, 16, 2),
                " Storyline tried 4 more times over 16 s, with 2 containers.",
            ),
        ];
        for (tries, note) in cases {
            assert_eq!(tries.note(), note, "{tries:?}");
        }
    }

    #[test]
    fn a_failed_container_is_told_in_instagrams_words() {
        let status = |code: StatusCode, detail: Option<&str>| ContainerStatus {
            code,
            detail: detail.map(str::to_string),
        };
        assert_eq!(
            container_failure(&status(
                StatusCode::Error,
                Some("Error: Media upload has failed with error code 2207026")
            )),
            "Instagram could not process the story: Instagram does not take this video format \
             (MP4 or MOV). Instagram said: “Error: Media upload has failed with error code \
             2207026”"
        );
        assert_eq!(
            container_failure(&status(StatusCode::Expired, None)),
            "Instagram let the upload expire for the story and gave no reason."
        );
        // A status that names no code Storyline knows is quoted alone.
        assert_eq!(
            container_failure(&status(
                StatusCode::Error,
                Some("Error: <not> supported & co")
            )),
            "Instagram could not process the story. Instagram said: “Error: <not> supported & co”"
        );
        // A status that names only a code gets Storyline's sentence for it first.
        assert_eq!(
            container_failure(&status(StatusCode::Error, Some("Error: 2207026"))),
            "Instagram could not process the story: Instagram does not take this video \
             format (MP4 or MOV). Instagram said: “Error: 2207026”"
        );
    }

    const CHAT: i64 = -1_007;
    const KEY: [u8; 32] = [7; 32];
    const SHA: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

    /// A database with one chat, one image, one account with a valid token and a
    /// slot at 'sending' whose dry-run publish job is queued; and its publisher.
    fn setup() -> (tempfile::TempDir, Publisher, i64) {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("s.db");
        let media_dir = dir.path().join("media");
        std::fs::create_dir_all(&media_dir).unwrap();
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageRgb8(image::RgbImage::new(36, 64))
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        std::fs::write(media_dir.join("a.jpg"), &jpeg).unwrap();
        let now = crate::clock::now();
        let t = now;
        let mut conn = db::open(&db_path).unwrap();
        let tx = conn.transaction().unwrap();
        db::insert_chat(&tx, CHAT, None, None, t).unwrap();
        tx.commit().unwrap();
        let item = db::media::insert_file(
            &conn,
            &db::media::NewFile {
                path: "a.jpg",
                category: "uncategorized",
                kind: MediaKind::Image,
                size: jpeg.len() as i64,
                mtime_ns: 0,
                sha256: SHA,
            },
            t,
        )
        .unwrap();
        let (account, _) = accounts::add_or_update_account(
            &conn,
            &KEY,
            "Brand",
            "178",
            Some("brand"),
            &crate::config::Secret::new("IGAA-token"),
            now + chrono::Duration::days(60),
            accounts::Owner::Operator,
            now,
        )
        .unwrap();
        let slot = queue::insert_slot(&conn, CHAT, t, "2026-01-01", Some(SHA), t).unwrap();
        queue::set_slot_content(&conn, slot, Some(SHA), Some(item)).unwrap();
        queue::set_slot_status(&conn, slot, QueueStatus::Sending, None).unwrap();
        create_job(&conn, slot, CHAT, account.id, None, true, t).unwrap();
        let config = crate::config::parse(
            "[telegram]\nbot_token = \"1:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n",
            std::path::Path::new("storyline.toml"),
            dir.path(),
            &|_| None,
        )
        .unwrap();
        let (_jobs_tx, jobs) = std::sync::mpsc::channel();
        let (wake_outbox, _wake) = std::sync::mpsc::channel();
        let publisher = Publisher {
            conn: db::open_without_migrating(&db_path).unwrap(),
            graph: Graph::new("http://127.0.0.1:9", "http://127.0.0.1:9"),
            signer: Some(UrlSigner::new(&KEY)),
            key: Some(KEY),
            public_url: Some("http://127.0.0.1:9".into()),
            media_dir,
            cache_dir: dir.path().join("cache"),
            defaults: config.defaults,
            jobs,
            wake_outbox,
            shutdown: Arc::new(AtomicBool::new(false)),
            image_polls: (1, Duration::ZERO),
            video_polls: (1, Duration::ZERO),
            refresh: accounts::GraphRefresh::new("http://127.0.0.1:9"),
        };
        (dir, publisher, slot)
    }

    fn states(p: &Publisher, slot: i64) -> (String, String, i64, i64) {
        let job = job(&p.conn, slot).unwrap().unwrap().state;
        let status = queue::queue_item(&p.conn, slot).unwrap().unwrap().status;
        let count = |sql: &str| p.conn.query_row(sql, [], |r| r.get(0)).unwrap();
        (
            job.to_string(),
            status.to_string(),
            count("SELECT count(*) FROM posting_history"),
            count("SELECT count(*) FROM outbox"),
        )
    }

    #[test]
    fn a_publish_is_recorded_in_one_commit_with_its_report() {
        let (_dir, p, slot) = setup();
        p.handle(slot).unwrap();
        assert_eq!(
            states(&p, slot),
            ("published".into(), "posted".into(), 1, 1)
        );
    }

    #[test]
    fn a_failure_while_recording_a_publish_leaves_no_half_record_and_no_waiting_slot() {
        let (_dir, p, slot) = setup();
        // The history insert fails, as a full disk would make it.
        p.conn
            .execute_batch(
                "CREATE TRIGGER full BEFORE INSERT ON posting_history
                 BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
            )
            .unwrap();
        let error = p.handle(slot).unwrap_err();
        assert!(format!("{error:#}").contains("disk is full"), "{error:#}");
        // Nothing of the outcome was kept: not 'published' without its history.
        assert_eq!(states(&p, slot), ("queued".into(), "sending".into(), 0, 0));
        p.give_up(slot, &format!("{error:#}")).unwrap();
        assert_eq!(states(&p, slot), ("failed".into(), "failed".into(), 0, 0));
    }

    #[test]
    fn giving_up_after_media_publish_asks_the_chat_instead_of_failing() {
        let (_dir, p, slot) = setup();
        set_job_state(&p.conn, slot, JobState::Publishing, None).unwrap();
        p.give_up(slot, "database or disk is full").unwrap();
        assert_eq!(states(&p, slot), ("unknown".into(), "sending".into(), 0, 1));
        let question: String = p
            .conn
            .query_row("SELECT params FROM outbox", [], |r| r.get(0))
            .unwrap();
        assert!(question.contains("could not tell whether"), "{question}");
        // Jobs that ended are left alone.
        p.give_up(slot, "again").unwrap();
        p.handle(slot).unwrap();
        assert_eq!(states(&p, slot), ("unknown".into(), "sending".into(), 0, 1));
    }

    #[test]
    fn a_retry_after_the_disk_refused_an_outcome_asks_instead_of_publishing_again() {
        let (_dir, p, slot) = setup();
        // media_publish was called; the commit of its outcome failed.
        set_job_state(&p.conn, slot, JobState::Publishing, None).unwrap();
        p.handle(slot).unwrap();
        assert_eq!(states(&p, slot), ("unknown".into(), "sending".into(), 0, 1));
    }
}
