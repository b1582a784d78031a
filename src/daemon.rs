//! `storyline run`: the core loop and the threads around it.
//!
//! The core loop owns the database connection that writes chat data and handles
//! one closed `Event` at a time. The poller thread brings Telegram updates, the
//! outbox thread delivers replies, the signal thread turns SIGTERM/SIGINT into
//! `Event::Shutdown`, and a timeout of the event channel is the housekeeping timer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use chrono::Utc;
use log::{debug, error, info, warn};
use rusqlite::{Connection, TransactionBehavior};

use crate::bot;
use crate::config::{Config, Secret};
use crate::db;
use crate::keyfile;
use crate::memory;
use crate::outbox::Outbox;
use crate::poller::Poller;
use crate::telegram::{self, Client, Update};
use crate::ui;

/// Everything the core loop reacts to.
pub enum Event {
    /// A batch from getUpdates; the poller waits for the commit answer.
    Updates(Vec<Update>),
    /// getMe answered: the bot's own @username.
    BotIdentity {
        username: Option<String>,
    },
    /// The scanner thread finished a scan (asked for by a chat, or not).
    ScanFinished {
        requested_by: Option<i64>,
        outcome: std::result::Result<String, String>,
    },
    Shutdown(&'static str),
}

/// A scan for the scanner thread; the chat to tell, if /scan asked for it.
pub struct ScanRequest {
    pub requested_by: Option<i64>,
}

const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(30);
/// The scheduler plans and looks for due slots at least this often, and
/// otherwise wakes exactly at the next slot.
const SCHEDULER_EVERY: Duration = Duration::from_secs(60);
/// How long shutdown waits for a thread that is inside a network call.
const JOIN_DEADLINE: Duration = Duration::from_secs(3);
const THREAD_STACK: usize = 512 * 1024;

/// Sleeps for `duration`, waking early when `shutdown` is set.
pub fn sleep_unless(shutdown: &AtomicBool, duration: Duration) {
    let deadline = Instant::now() + duration;
    while !shutdown.load(Ordering::Relaxed) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .stack_size(THREAD_STACK)
        .spawn(f)
        .with_context(|| format!("starting the {name} thread"))
}

pub fn run(config: Config, token: Secret) -> Result<()> {
    let started = Instant::now();
    keyfile::ensure(&config.storage.key_file)?;
    let mut conn = db::open(&config.storage.database)?;
    bot::add_allowed_chats(&mut conn, &config, Utc::now())?;
    let offset = db::last_update_id(&conn)?.map_or(0, |id| id + 1);
    db::enqueue(
        &conn,
        "setMyCommands",
        &telegram::set_my_commands(ui::COMMANDS).params.to_string(),
        &db::timestamp(Utc::now()),
    )?;
    info!(
        "storyline {} starting: database {}, {} allowed chat(s), Telegram at {}",
        env!("CARGO_PKG_VERSION"),
        config.storage.database.display(),
        config.access.allowed_chat_ids.len(),
        config.telegram.api_url
    );

    let shutdown = Arc::new(AtomicBool::new(false));
    let (events_tx, events_rx) = mpsc::channel::<Event>();
    let (committed_tx, committed_rx) = mpsc::channel::<i64>();
    let (wake_tx, wake_rx) = mpsc::channel::<()>();

    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("installing signal handlers")?;
    let signals_handle = signals.handle();
    let mut threads = Vec::new();
    {
        let events = events_tx.clone();
        threads.push(spawn("signals", move || {
            if let Some(signal) = signals.forever().next() {
                let name = if signal == signal_hook::consts::SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                let _ = events.send(Event::Shutdown(name));
            }
        })?);
    }
    let client = Client::new(&config.telegram.api_url, token);
    let last_poll = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let poller = Poller {
        client: client.clone(),
        poll_timeout_secs: config.telegram.poll_timeout_secs,
        offset,
        events: events_tx.clone(),
        committed: committed_rx,
        shutdown: shutdown.clone(),
        last_poll: last_poll.clone(),
    };
    threads.push(spawn("poller", move || poller.run())?);
    let outbox = Outbox {
        client,
        conn: db::open_without_migrating(&config.storage.database)?,
        wake: wake_rx,
        shutdown: shutdown.clone(),
    };
    threads.push(spawn("outbox", move || outbox.run())?);
    let key = keyfile::read(&config.storage.key_file);
    if key.is_none() {
        warn!(
            "{}: the key file is unusable; Instagram accounts need reconnecting",
            config.storage.key_file.display()
        );
    }
    let web_state = crate::web::WebState {
        signer: crate::signing::UrlSigner::new(&key.unwrap_or_else(throwaway_key)),
        media_dir: config.media.dir.clone(),
        cache_dir: cache_dir(&config),
        db_path: config.storage.database.clone(),
        started,
        last_poll_unix: last_poll,
        oauth: Some(crate::web::OAuthPages {
            config: Arc::new(config.clone()),
            key,
            wake_outbox: wake_tx.clone(),
        }),
    };
    // Without the web page Telegram still works; publishing falls back to people.
    match crate::web::start(config.web.listen, web_state, shutdown.clone()) {
        Ok((address, web_threads)) => {
            info!("web page on http://{address}");
            threads.extend(web_threads);
        }
        Err(e) => {
            error!("{e:#}; Instagram publishing needs it, so stories will come to the chat instead")
        }
    }
    let (jobs_tx, jobs_rx) = mpsc::channel::<i64>();
    {
        let public_url = config.web.public_url.clone();
        let publisher = crate::publish::Publisher {
            conn: db::open_without_migrating(&config.storage.database)?,
            graph: crate::instagram::Graph::new(
                &config.instagram.graph_url,
                &config.instagram.api_url,
            ),
            signer: key.as_ref().map(crate::signing::UrlSigner::new),
            key,
            public_url,
            media_dir: config.media.dir.clone(),
            cache_dir: cache_dir(&config),
            defaults: config.defaults.clone(),
            jobs: jobs_rx,
            wake_outbox: wake_tx.clone(),
            shutdown: shutdown.clone(),
            image_polls: (20, Duration::from_secs(3)),
            video_polls: (60, Duration::from_secs(5)),
            refresh: crate::accounts::GraphRefresh::new(&config.instagram.graph_url),
        };
        threads.push(spawn("publisher", move || publisher.run())?);
    }
    let (scan_tx, scan_rx) = mpsc::channel::<ScanRequest>();
    {
        let events = events_tx.clone();
        let media_dir = config.media.dir.clone();
        let db_path = config.storage.database.clone();
        threads.push(spawn("scanner", move || {
            run_scanner(&db_path, &media_dir, &scan_rx, &events)
        })?);
    }
    drop(events_tx);

    let mut core = Core {
        config: &config,
        conn: &mut conn,
        started,
        bot_username: None,
        wake: wake_tx,
        scans: scan_tx,
        rescan_every: Duration::from_secs(u64::from(config.media.rescan_minutes) * 60),
        key,
        publish_jobs: jobs_tx,
        dispatched: Default::default(),
    };
    core.start_publishing();
    let reason = core.run(&events_rx, &committed_tx);
    info!("stopping ({reason})");
    tell_systemd(sd_notify::NotifyState::Stopping);

    shutdown.store(true, Ordering::Relaxed);
    signals_handle.close();
    drop(core);
    drop(committed_tx);
    join_all(threads);
    info!("stopped");
    Ok(())
}

/// Tells systemd (Type=notify) about a state change; a no-op outside systemd.
fn tell_systemd(state: sd_notify::NotifyState<'_>) {
    if let Err(e) = sd_notify::notify(&[state]) {
        debug!("could not notify systemd: {e}");
    }
}

/// A key nobody knows, so that no media URL validates when the key file is unusable.
fn throwaway_key() -> [u8; 32] {
    use ring::rand::SecureRandom;
    let mut key = [0u8; 32];
    let _ = ring::rand::SystemRandom::new().fill(&mut key);
    key
}

/// Where converted images wait until their story is decided: beside the database.
pub fn cache_dir(config: &Config) -> std::path::PathBuf {
    config
        .storage
        .database
        .parent()
        .map(|dir| dir.join("cache"))
        .unwrap_or_else(|| std::path::PathBuf::from("cache"))
}

fn join_all(threads: Vec<JoinHandle<()>>) {
    let deadline = Instant::now() + JOIN_DEADLINE;
    for thread in threads {
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let name = thread.thread().name().unwrap_or("?").to_string();
        if thread.is_finished() {
            if thread.join().is_err() {
                error!("the {name} thread panicked");
            }
        } else {
            // Only a thread blocked in a network call gets here; it holds nothing
            // uncommitted, so leaving it to process exit loses nothing.
            debug!("not waiting for the {name} thread (in a network call)");
        }
    }
}

/// The scanner thread: scans when asked, on its own connection, so a long cold
/// scan never holds up Telegram updates; then updates every chat's view.
fn run_scanner(
    db_path: &std::path::Path,
    media_dir: &std::path::Path,
    requests: &mpsc::Receiver<ScanRequest>,
    events: &Sender<Event>,
) {
    let mut scanner = crate::media::Scanner::new();
    while let Ok(request) = requests.recv() {
        // A connection per scan: scans are minutes apart, and an idle Pi should
        // not keep a page cache for them.
        let outcome = db::open_without_migrating(db_path).and_then(|mut conn| {
            let report = scanner.scan(&mut conn, media_dir, Utc::now(), &mut |_| {})?;
            db::queue::sync_content(&conn, &report.touched_content)?;
            Ok(report)
        });
        memory::release_free_memory();
        let outcome = match outcome {
            Ok(report) => {
                info!(
                    "scan: {}",
                    report.summary().lines().next().unwrap_or_default()
                );
                Ok(report.summary())
            }
            Err(e) => {
                warn!("scan of {} failed: {e:#}", media_dir.display());
                Err(format!("{e:#}"))
            }
        };
        let finished = Event::ScanFinished {
            requested_by: request.requested_by,
            outcome,
        };
        if events.send(finished).is_err() {
            return;
        }
    }
}

struct Core<'a> {
    config: &'a Config,
    conn: &'a mut Connection,
    started: Instant,
    bot_username: Option<String>,
    wake: Sender<()>,
    scans: Sender<ScanRequest>,
    rescan_every: Duration,
    key: Option<[u8; 32]>,
    publish_jobs: Sender<i64>,
    /// Jobs handed to the publisher since start, so each goes once.
    dispatched: std::collections::HashSet<i64>,
}

impl Core<'_> {
    fn run(&mut self, events: &mpsc::Receiver<Event>, committed: &Sender<i64>) -> &'static str {
        let mut next_housekeeping = Instant::now();
        let mut next_scan = Instant::now();
        let mut next_tick = Instant::now();
        // Under systemd with WatchdogSec, pings come from this loop and nowhere else,
        // so a loop that hangs is restarted; twice per period leaves room for a slow turn.
        let watchdog_every = sd_notify::watchdog_enabled().map(|timeout| timeout / 2);
        let mut next_watchdog = Instant::now();
        tell_systemd(sd_notify::NotifyState::Ready);
        loop {
            let now = Instant::now();
            if let Some(every) = watchdog_every {
                if now >= next_watchdog {
                    tell_systemd(sd_notify::NotifyState::Watchdog);
                    next_watchdog = now + every;
                }
            }
            if now >= next_housekeeping {
                self.housekeeping();
                next_housekeeping = now + HOUSEKEEPING_EVERY;
            }
            if now >= next_scan {
                let _ = self.scans.send(ScanRequest { requested_by: None });
                next_scan = now + self.rescan_every;
            }
            if now >= next_tick {
                self.scheduler_tick();
                next_tick = self.next_tick_after(Instant::now());
            }
            let mut wake_at = next_housekeeping.min(next_scan).min(next_tick);
            if watchdog_every.is_some() {
                wake_at = wake_at.min(next_watchdog);
            }
            match events.recv_timeout(wake_at.saturating_duration_since(Instant::now())) {
                Ok(Event::Updates(updates)) => {
                    let last = self.handle_batch(updates);
                    if committed.send(last).is_err() {
                        return "the poller stopped";
                    }
                    // Settings may have moved the plan, or /next queued work.
                    next_tick = Instant::now();
                }
                Ok(Event::BotIdentity { username }) => self.bot_username = username,
                Ok(Event::ScanFinished {
                    requested_by,
                    outcome,
                }) => {
                    self.scan_finished(requested_by, outcome);
                    next_tick = Instant::now();
                }
                Ok(Event::Shutdown(signal)) => return signal,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return "all event sources stopped",
            }
        }
    }

    /// When to look at the queue next: the next pending slot, or a minute.
    fn next_tick_after(&self, now: Instant) -> Instant {
        let regular = now + SCHEDULER_EVERY;
        let next_slot = db::queue::next_pending_time(self.conn)
            .ok()
            .flatten()
            .and_then(|t| db::parse_timestamp(&t))
            .map(|t| (t - Utc::now()).to_std().unwrap_or(Duration::ZERO));
        match next_slot {
            Some(wait) => regular.min(now + wait),
            None => regular,
        }
    }

    /// At start: ask about publishes whose outcome is unknown, and resume the
    /// jobs that had not reached media_publish.
    fn start_publishing(&mut self) {
        let result = (|| -> Result<()> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut out = Vec::new();
            crate::publish::ask_about_unknown_outcomes(&tx, &mut out)?;
            enqueue_all(&tx, &out, &db::timestamp(Utc::now()))?;
            tx.commit()?;
            for queue_id in crate::publish::restartable_jobs(self.conn)? {
                self.conn.execute(
                    "UPDATE publish_jobs SET state = 'queued' WHERE queue_id = ?1",
                    [queue_id],
                )?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            error!("resuming publish jobs: {e:#}");
        }
        self.dispatch_jobs();
    }

    /// The /connect fallback: exchanges a pasted code on the core thread (a few
    /// HTTP calls, each bounded by the client's timeout) after its update committed.
    fn finish_pasted_login(&mut self, state: &str, code: &str) {
        let graph = crate::instagram::Graph::new(
            &self.config.instagram.graph_url,
            &self.config.instagram.api_url,
        );
        let now = Utc::now();
        let result = crate::oauth::finish(
            self.conn,
            self.config,
            &graph,
            self.key.as_ref(),
            state,
            code,
            now,
        )
        .and_then(|finished| {
            if let crate::oauth::Finished::Failed { reason, .. } = &finished {
                crate::oauth::log_failure(reason);
            }
            crate::oauth::tell_chat(self.conn, self.config, &finished, Utc::now())
        });
        if let Err(e) = result {
            error!("finishing a pasted Instagram login: {e:#}");
        }
        let _ = self.wake.send(());
    }

    /// Hands queued publish jobs to the publisher thread, each once.
    fn dispatch_jobs(&mut self) {
        match crate::publish::queued_jobs(self.conn) {
            Ok(ids) => {
                for id in ids {
                    if self.dispatched.insert(id) {
                        let _ = self.publish_jobs.send(id);
                    }
                }
            }
            Err(e) => error!("reading publish jobs: {e:#}"),
        }
    }

    /// Plans, fires due slots and reports missed ones, in one transaction.
    fn scheduler_tick(&mut self) {
        let result = (|| -> Result<()> {
            let now = Utc::now();
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut out = Vec::new();
            crate::posting::tick(&tx, self.config, self.key.as_ref(), now, &mut out)?;
            enqueue_all(&tx, &out, &db::timestamp(now))?;
            tx.commit()?;
            if !out.is_empty() {
                let _ = self.wake.send(());
            }
            Ok(())
        })();
        if let Err(e) = result {
            error!("scheduler: {e:#}");
        }
        self.dispatch_jobs();
    }

    fn scan_finished(
        &mut self,
        requested_by: Option<i64>,
        outcome: std::result::Result<String, String>,
    ) {
        let Some(chat_id) = requested_by else {
            return;
        };
        let text = match &outcome {
            Ok(summary) => ui::scan_report_text(summary),
            Err(e) => ui::scan_failed_text(e),
        };
        let call = telegram::send_message(chat_id, &text, None);
        match enqueue_all(self.conn, &[call], &db::timestamp(Utc::now())) {
            Ok(()) => {
                let _ = self.wake.send(());
            }
            Err(e) => error!("reporting a scan to chat {chat_id}: {e:#}"),
        }
    }

    /// Handles a batch in order; returns the id of the last committed update.
    fn handle_batch(&mut self, updates: Vec<Update>) -> i64 {
        let before_batch = db::last_update_id(self.conn).ok().flatten().unwrap_or(-1);
        let mut last = before_batch;
        for update in &updates {
            match self.handle_update(update) {
                Ok(()) => last = last.max(update.update_id),
                Err(e) => {
                    error!("could not commit update {}: {e:#}", update.update_id);
                    break;
                }
            }
        }
        // Telegram forgets these updates once the poller confirms them, so they
        // must survive a power cut, not just a crash, before the ack.
        if let Err(e) = db::sync_wal(self.conn, &db::timestamp(Utc::now())) {
            error!("syncing the database: {e:#}");
            last = before_batch;
        }
        let _ = self.wake.send(());
        self.dispatch_jobs();
        last
    }

    /// One update, one transaction: its effects, its replies and the offset.
    fn handle_update(&mut self, update: &Update) -> Result<()> {
        let now = Utc::now();
        let ctx = bot::Context {
            config: self.config,
            now,
            uptime: self.started.elapsed(),
            bot_username: self.bot_username.as_deref(),
            scan_requested: std::cell::Cell::new(None),
            oauth_paste: std::cell::Cell::new(None),
            key: self.key.as_ref(),
        };
        let now_text = db::timestamp(now);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if db::last_update_id(&tx)?.is_some_and(|last| update.update_id <= last) {
            debug!("update {} was already handled", update.update_id);
            return Ok(());
        }
        let mut out = Vec::new();
        match bot::handle_update(&tx, &ctx, update, &mut out) {
            Ok(()) => {
                enqueue_all(&tx, &out, &now_text)?;
                db::set_last_update_id(&tx, update.update_id)?;
                tx.commit()?;
                let pasted = ctx.oauth_paste.take();
                if let Some(chat_id) = ctx.scan_requested.get() {
                    let _ = self.scans.send(ScanRequest {
                        requested_by: Some(chat_id),
                    });
                }
                drop(ctx);
                if let Some((state, code)) = pasted {
                    self.finish_pasted_login(&state, &code);
                }
            }
            Err(e) => {
                // One bad update never stops the daemon: undo its effects, tell the
                // user, and move past it.
                drop(tx);
                error!(
                    "update {} failed, nothing of it was kept: {e:#}",
                    update.update_id
                );
                let tx = self
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                if let Some(reply) = failure_reply(update) {
                    db::enqueue(&tx, reply.method, &reply.params.to_string(), &now_text)?;
                }
                db::set_last_update_id(&tx, update.update_id)?;
                tx.commit()?;
            }
        }
        Ok(())
    }

    fn housekeeping(&mut self) {
        memory::release_free_memory();
        memory::page_out_code();
        match db::delete_expired_inputs(self.conn, &db::timestamp(Utc::now())) {
            Ok(0) => {}
            Ok(n) => debug!("dropped {n} expired prompt(s)"),
            Err(e) => warn!("housekeeping: {e:#}"),
        }
        if let Ok(waiting) = db::outbox_len(self.conn) {
            if waiting > 0 {
                debug!("{waiting} Telegram call(s) waiting in the outbox");
            }
        }
    }
}

/// Stores the core's decided calls in the outbox, in order.
pub fn enqueue_all(conn: &Connection, calls: &[telegram::Outgoing], now: &str) -> Result<()> {
    for call in calls {
        let hook = call.on_result.as_ref().map(|h| h.to_string());
        db::enqueue_with_hook(
            conn,
            call.method,
            &call.params.to_string(),
            hook.as_deref(),
            now,
        )?;
    }
    Ok(())
}

/// What a user hears when their update could not be handled.
fn failure_reply(update: &Update) -> Option<telegram::Outgoing> {
    if let Some(query) = &update.callback_query {
        return Some(telegram::answer_callback(
            &query.id,
            &ui::error_text(),
            true,
        ));
    }
    let message = update.message.as_ref()?;
    let text = message.text.as_deref()?;
    text.starts_with('/')
        .then(|| telegram::send_message(message.chat.id, &ui::error_text(), None))
}
