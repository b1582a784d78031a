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
use log::{debug, error, info, warn};
use rusqlite::{Connection, TransactionBehavior};

use crate::bot;
use crate::bot::chats::enqueue_all;
use crate::bot::keyfile;
use crate::bot::roles::Roles;
use crate::config::{Config, Secret};
use crate::db;
use crate::domain::status::RunKind;
use crate::domain::ui;
use crate::media::convert::cache_dir;
use crate::memory;
use crate::runlock;
use crate::runtime::outbox::Outbox;
use crate::runtime::poller::Poller;
use crate::runtime::{spawn, Event, PastedLogin, ScanRequest};
use crate::telegram::{self, Client, Update};

const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(30);
/// How soon a scheduler pass that could not commit (a full or read-only disk) is tried again.
const SCHEDULER_RETRY: Duration = Duration::from_secs(5);
const STORING_UPDATES: &str =
    "storing Telegram updates (Telegram keeps them until they are stored; retrying)";
const SCHEDULING: &str = "scheduler (due stories wait; retrying)";
/// The scheduler plans and looks for due slots at least this often, and
/// otherwise wakes exactly at the next slot.
const SCHEDULER_EVERY: Duration = Duration::from_secs(60);
/// How long shutdown waits for a thread that is inside a network call.
const JOIN_DEADLINE: Duration = Duration::from_secs(3);

/// While nobody is admin and no chat is served, a new one-time pairing code, on
/// the terminal and in the log (the one place it is ever written out).
fn announce_pairing(conn: &Connection, config: &Config) -> Result<()> {
    let Some(code) = crate::bot::pairing::start(conn, config, crate::clock::now())? else {
        return Ok(());
    };
    let text = format!(
        "pairing code {code}: no admin and no chat yet, so send /start {code} to the bot in \
         Telegram, in the chat it should serve, within {} minutes; you become its admin. \
         Each start prints a new code until then",
        crate::bot::pairing::LIFETIME_MINUTES
    );
    if log::log_enabled!(log::Level::Warn) {
        warn!("{text}");
    } else {
        // [log] level hides warnings; the operator needs this line all the same.
        eprintln!("storyline: {text}");
    }
    Ok(())
}

pub fn run(config: Config, token: Secret) -> Result<()> {
    let started = Instant::now();
    // First of all: a SIGTERM during start-up (systemd stopping a unit that is
    // still starting) is kept and handled by the loop as a clean shutdown,
    // instead of killing the process half-way by the default action.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("installing signal handlers")?;
    if let Some(clock) = crate::clock::install_from_env()? {
        warn!(
            "TEST CLOCK: {} is set, so time starts at {} and runs {}x the wall clock; \
             this is for tests only, never for a real deployment",
            crate::clock::ENV_VAR,
            clock.virtual_start.to_rfc3339(),
            clock.speed
        );
    }
    if let Some(factor) = crate::clock::install_pacing_from_env()? {
        warn!(
            "TEST PACING: {} is set, so Telegram's sending limits are kept {factor}x \
             faster than Telegram's; this is for tests only, never for a real deployment",
            crate::clock::PACING_VAR
        );
    }
    // Before anything polls, sends or schedules: a second daemon on the same
    // database would answer every update twice.
    let _run_lock = runlock::acquire(&config.storage.database, chrono::Utc::now())?;
    let mut conn = db::open(&config.storage.database)?;
    let key = keyfile::load(
        &config.storage.key_file,
        &db::accounts::sealed_values(&conn)?,
    )?;
    bot::add_allowed_chats(&mut conn, &config, crate::clock::now())?;
    announce_pairing(&conn, &config)?;
    let cut_short = db::runs::interrupt_unfinished(&conn, crate::clock::now())?;
    if cut_short > 0 {
        warn!(
            "{} cut short when storyline last stopped (storyline runs lists them)",
            crate::domain::markup::plural(cut_short, "background run was", "background runs were")
        );
    }
    let indexed = db::media::any_indexed(&conn)?;
    crate::media::create_missing_folder(&config.media.dir, indexed);
    let offset = db::last_update_id(&conn)?.map_or(0, |id| id.saturating_add(1));
    enqueue_all(
        &conn,
        &[telegram::set_my_commands(ui::COMMANDS)],
        crate::clock::now(),
    )?;
    info!(
        "storyline {} starting: database {}, {}, Telegram at {}",
        env!("CARGO_PKG_VERSION"),
        config.storage.database.display(),
        crate::domain::markup::plural(
            config.access.allowed_chat_ids.len(),
            "allowed chat",
            "allowed chats"
        ),
        config.telegram.api_url
    );

    let shutdown = Arc::new(AtomicBool::new(false));
    let (events_tx, events_rx) = mpsc::channel::<Event>();
    let (committed_tx, committed_rx) = mpsc::channel::<Option<i64>>();
    let (wake_tx, wake_rx) = mpsc::channel::<()>();

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
        delete_webhook: config.telegram.delete_webhook,
        admin_user_ids: config.access.admin_user_ids.clone(),
        role_cache: Default::default(),
    };
    threads.push(spawn("poller", move || poller.run())?);
    let outbox = Outbox {
        client,
        conn: db::open_without_migrating(&config.storage.database)?,
        wake: wake_rx,
        shutdown: shutdown.clone(),
        admin_user_ids: config.access.admin_user_ids.clone(),
    };
    threads.push(spawn("outbox", move || outbox.run())?);
    let signer = crate::signing::UrlSigner::new(&key);
    let key = Some(key);
    // One Graph API client (one agent, one connection pool) for every thread.
    let graph =
        crate::instagram::Graph::new(&config.instagram.graph_url, &config.instagram.api_url);
    let web_state = crate::web::WebState {
        signer,
        media_dir: config.media.dir.clone(),
        cache_dir: cache_dir(&config),
        db_path: config.storage.database.clone(),
        started,
        last_poll_unix: last_poll.clone(),
        poll_timeout_secs: config.telegram.poll_timeout_secs,
        oauth: Some(Box::new(crate::bot::oauth::ConnectPages {
            config: Arc::new(config.clone()),
            key,
            wake_outbox: wake_tx.clone(),
            graph: graph.clone(),
        })),
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
        let publisher = crate::runtime::publisher::Publisher {
            conn: db::open_without_migrating(&config.storage.database)?,
            graph: graph.clone(),
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
            refresh: crate::bot::accounts::GraphRefresh::sharing(
                &graph,
                &config.instagram.graph_url,
            ),
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
    let (paste_tx, paste_rx) = mpsc::channel::<PastedLogin>();
    {
        let events = events_tx.clone();
        let config = config.clone();
        let graph = graph.clone();
        threads.push(spawn("connect", move || {
            run_connector(&config, &graph, key.as_ref(), &paste_rx, &events)
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
        pastes: paste_tx,
        dispatched: Default::default(),
        trouble: Default::default(),
        room: Default::default(),
        last_poll: last_poll.clone(),
        limiter: crate::domain::limits::CommandLimiter::new(
            config.limits.commands_per_minute,
            config.limits.command_burst,
        ),
    };
    core.start_publishing();
    // On a first start (nothing indexed yet) the plan waits for the first scan.
    let reason = core.run(&events_rx, &committed_tx, !indexed);
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
    let mut scanner = crate::media::Scanner::checking_indexed_files();
    while let Ok(request) = requests.recv() {
        // A connection per scan: scans are minutes apart, and an idle Pi should
        // not keep a page cache for them.
        let outcome = db::open_without_migrating(db_path).and_then(|mut conn| {
            let mut run = db::runs::start(
                &conn,
                RunKind::Scan,
                request.requested_by,
                crate::clock::now(),
            );
            let scanned = scanner
                .scan(&mut conn, media_dir, crate::clock::now(), &mut |_| {})
                .and_then(|report| {
                    db::queue::sync_content(&conn, &report.touched_content)?;
                    Ok(report)
                });
            match &scanned {
                Ok(report) => {
                    run.count("new", report.new);
                    run.count("changed", report.changed);
                    run.count("gone", report.gone);
                    run.count("unchanged", report.unchanged);
                    run.count("unreadable", report.unreadable);
                    run.count(
                        "broken",
                        report.broken.values().map(Vec::len).sum::<usize>(),
                    );
                    run.finish(&conn, Ok(()), crate::clock::now());
                }
                Err(e) => run.finish(&conn, Err(&format!("{e:#}")), crate::clock::now()),
            }
            scanned
        });
        memory::release_free_memory();
        let outcome = match outcome {
            Ok(report) => {
                let summary = report.summary();
                info!("scan: {}", summary.lines().next().unwrap_or_default());
                Ok(ui::scan_text(&summary, &report.unsupported, &report.broken))
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

/// The connect worker: exchanges a pasted /connect code (up to three Graph
/// calls) on its own connection, as the web page's callback does, so the core
/// thread never waits on Instagram; then tells the core.
fn run_connector(
    config: &Config,
    graph: &crate::instagram::Graph,
    key: Option<&[u8; 32]>,
    pastes: &mpsc::Receiver<PastedLogin>,
    events: &Sender<Event>,
) {
    while let Ok(PastedLogin { state, code }) = pastes.recv() {
        let result = db::open_without_migrating(&config.storage.database).and_then(|mut conn| {
            let now = crate::clock::now();
            let finished =
                crate::bot::oauth::finish(&mut conn, config, graph, key, &state, &code, now)?;
            if let crate::bot::oauth::Finished::Failed { reason, .. } = &finished {
                crate::bot::oauth::log_failure(reason);
            }
            crate::bot::oauth::tell_chat(&mut conn, config, &finished, crate::clock::now())
        });
        if let Err(e) = result {
            error!("finishing a pasted Instagram login: {e:#}");
        }
        if events.send(Event::LoginFinished).is_err() {
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
    /// Pasted /connect codes, for the connect worker.
    pastes: Sender<PastedLogin>,
    /// Jobs handed to the publisher since start, so each goes once.
    dispatched: std::collections::HashSet<i64>,
    trouble: crate::logging::Trouble,
    /// The WAL's space, given back before a retry after a full disk.
    room: db::Room,
    /// Unix time (wall clock) of the poller's last successful getUpdates; 0: none yet.
    last_poll: Arc<std::sync::atomic::AtomicI64>,
    /// Each chat's bucket on commands and presses (`[limits]`); a restart refills them.
    limiter: crate::domain::limits::CommandLimiter,
}

impl Core<'_> {
    /// The loop, until shutdown. With `first_scan_pending` (nothing indexed yet)
    /// the scheduler waits for the first scan: planning an empty library would
    /// warn "only 0 items left" and leave slots without items. With an index, due
    /// slots do not wait for a rescan.
    fn run(
        &mut self,
        events: &mpsc::Receiver<Event>,
        committed: &Sender<Option<i64>>,
        mut first_scan_pending: bool,
    ) -> &'static str {
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
            if now >= next_tick && !first_scan_pending {
                next_tick = if self.scheduler_tick() {
                    self.next_tick_after(Instant::now())
                } else {
                    Instant::now() + SCHEDULER_RETRY
                };
            }
            let mut wake_at = next_housekeeping.min(next_scan);
            if !first_scan_pending {
                wake_at = wake_at.min(next_tick);
            }
            if watchdog_every.is_some() {
                wake_at = wake_at.min(next_watchdog);
            }
            match events.recv_timeout(wake_at.saturating_duration_since(Instant::now())) {
                Ok(Event::Updates {
                    updates,
                    offset,
                    roles,
                }) => {
                    let last = self.handle_batch(updates, offset, &roles);
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
                    first_scan_pending = false;
                    next_tick = Instant::now();
                }
                Ok(Event::LoginFinished) => {
                    let _ = self.wake.send(());
                }
                Ok(Event::Shutdown(signal)) => return signal,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return "all event sources stopped",
            }
        }
    }

    /// When to look at the queue next: the next pending slot, or a minute.
    fn next_tick_after(&self, now: Instant) -> Instant {
        let regular = now + crate::clock::real_duration(SCHEDULER_EVERY);
        let next_slot = db::queue::next_pending_time(self.conn)
            .ok()
            .flatten()
            .map(|t| (t - crate::clock::now()).to_std().unwrap_or(Duration::ZERO))
            .map(crate::clock::real_duration);
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
            crate::bot::publish::ask_about_unknown_outcomes(&tx, &mut out)?;
            enqueue_all(&tx, &out, crate::clock::now())?;
            tx.commit()?;
            for queue_id in crate::bot::publish::restartable_jobs(self.conn)? {
                db::publish::requeue(self.conn, queue_id)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            error!("resuming publish jobs: {e:#}");
        }
        self.dispatch_jobs();
    }

    /// Hands queued publish jobs to the publisher thread, each once.
    fn dispatch_jobs(&mut self) {
        match crate::bot::publish::queued_jobs(self.conn) {
            Ok(ids) => {
                // A job that left 'queued' is forgotten, so that a press queueing it
                // again (🔁 Publish again) hands it over again.
                self.dispatched.retain(|id| ids.contains(id));
                for id in ids {
                    if self.dispatched.insert(id) {
                        let _ = self.publish_jobs.send(id);
                    }
                }
            }
            Err(e) => error!("reading publish jobs: {e:#}"),
        }
    }

    /// Plans, fires due slots and reports missed ones, in one transaction; false
    /// when it could not.
    fn scheduler_tick(&mut self) -> bool {
        self.room.make(self.conn);
        let result = (|| -> Result<()> {
            let now = crate::clock::now();
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut out = Vec::new();
            crate::bot::posting::tick(&tx, self.config, self.key.as_ref(), now, &mut out)?;
            enqueue_all(&tx, &out, now)?;
            tx.commit()?;
            if !out.is_empty() {
                let _ = self.wake.send(());
            }
            Ok(())
        })();
        let done = result.is_ok();
        match result {
            Ok(()) => self.trouble.ended(SCHEDULING),
            Err(e) => {
                self.room.failed(&e);
                self.trouble.failed(SCHEDULING, &e)
            }
        }
        self.dispatch_jobs();
        done
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
        match enqueue_all(self.conn, &[call], crate::clock::now()) {
            Ok(()) => {
                let _ = self.wake.send(());
            }
            Err(e) => error!("reporting a scan to chat {chat_id}: {e:#}"),
        }
    }

    /// Handles a batch in order; returns the id of the last update of the batch
    /// that is now stored (handled now or before), None when nothing of it is.
    fn handle_batch(&mut self, updates: Vec<Update>, offset: i64, roles: &Roles) -> Option<i64> {
        self.room.make(self.conn);
        let mut last = None;
        let mut failure = None;
        for update in &updates {
            match self.handle_update(update, offset, roles) {
                Ok(()) => last = Some(update.update_id),
                Err(e) => {
                    failure = Some(e.context(format!("update {}", update.update_id)));
                    break;
                }
            }
        }
        // Telegram forgets these updates once the poller confirms them, so they
        // must survive a power cut, not just a crash, before the ack.
        if let Err(e) = db::sync_wal(self.conn, crate::clock::now()) {
            failure.get_or_insert(e.context("syncing the database"));
            last = None;
        }
        match failure {
            Some(e) => {
                self.room.failed(&e);
                self.trouble.failed(STORING_UPDATES, &e)
            }
            None => self.trouble.ended(STORING_UPDATES),
        }
        let _ = self.wake.send(());
        self.dispatch_jobs();
        last
    }

    /// One update, one transaction: its effects, its replies and the offset.
    /// `offset` is the one the batch was asked for with; `roles` what Telegram
    /// said about its senders.
    fn handle_update(&mut self, update: &Update, offset: i64, roles: &Roles) -> Result<()> {
        let now = crate::clock::now();
        let ctx = bot::Context {
            config: self.config,
            roles,
            now,
            uptime: self.started.elapsed(),
            last_poll_secs_ago: match self.last_poll.load(Ordering::Relaxed) {
                0 => None,
                at => Some((chrono::Utc::now().timestamp() - at).max(0)),
            },
            bot_username: self.bot_username.as_deref(),
            key: self.key.as_ref(),
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last = db::last_update_id(&tx)?;
        if !update_is_new(update.update_id, last, offset) {
            debug!("update {} was already handled", update.update_id);
            return Ok(());
        }
        if update.update_id < offset {
            info!(
                "Telegram restarted its update ids (update {} below offset {offset}); \
                 serving the new sequence",
                update.update_id
            );
        }
        let mut out = Vec::new();
        let username = self.bot_username.as_deref();
        if bot::limits::over_limit(
            &tx,
            self.config,
            &mut self.limiter,
            update,
            username,
            now,
            &mut out,
        )? {
            enqueue_all(&tx, &out, now)?;
            db::set_last_update_id(&tx, update.update_id)?;
            tx.commit()?;
            return Ok(());
        }
        match bot::handle_update(&tx, &ctx, update, &mut out) {
            // The storage failing is not the update's fault: it is kept for a retry
            // (the poller does not confirm it), never skipped with an apology.
            Err(e) if db::is_storage_error(&e) => return Err(e),
            Ok(follow_up) => {
                enqueue_all(&tx, &out, now)?;
                db::set_last_update_id(&tx, update.update_id)?;
                tx.commit()?;
                if let Some(chat_id) = follow_up.scan_requested {
                    let _ = self.scans.send(ScanRequest {
                        requested_by: Some(chat_id),
                    });
                }
                if let Some((state, code)) = follow_up.oauth_paste {
                    let _ = self.pastes.send(PastedLogin { state, code });
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
                    enqueue_all(&tx, &[reply], now)?;
                }
                db::set_last_update_id(&tx, update.update_id)?;
                tx.commit()?;
            }
        }
        Ok(())
    }

    fn housekeeping(&mut self) {
        memory::release_free_memory();
        let keep_from = crate::clock::now() - chrono::TimeDelta::days(db::runs::KEEP_DAYS);
        match db::runs::prune(self.conn, keep_from) {
            Ok(0) => {}
            Ok(n) => debug!(
                "pruned {n} background run(s) older than {} days",
                db::runs::KEEP_DAYS
            ),
            Err(e) => warn!("housekeeping: {e:#}"),
        }
        match db::delete_expired_inputs(self.conn, crate::clock::now()) {
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

/// Whether an update fetched with `offset` still needs handling, given the id
/// of the last one stored. Telegram sends only ids at or above the offset, so
/// one below it means Telegram restarted its ids (it does after a week without
/// updates): that is a new update, unless the stored id already moved into the
/// new sequence (below offset − 1), which happens when a batch is fetched again
/// because its commit could not be confirmed.
fn update_is_new(update_id: i64, last: Option<i64>, offset: i64) -> bool {
    let Some(last) = last else {
        return true;
    };
    update_id > last || (update_id < offset && last >= offset.saturating_sub(1))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_handled_once_across_restarted_ids() {
        // (update id, stored last id, offset asked for) → new?
        let cases = [
            (10, None, 0, true),
            (10, Some(9), 10, true),
            // Fetched again after a failed sync: already handled.
            (10, Some(11), 10, false),
            (11, Some(11), 10, false),
            (12, Some(11), 10, true),
            // Telegram restarted its ids below the offset: new.
            (5, Some(9), 10, true),
            // ... and fetched again before the offset moved: handled already.
            (5, Some(5), 10, false),
            (4, Some(5), 10, false),
            (6, Some(5), 10, true),
            // The largest id is handled once, without overflow.
            (i64::MAX, Some(i64::MAX - 1), i64::MAX, true),
            (i64::MAX, Some(i64::MAX), i64::MAX, false),
        ];
        for (id, last, offset, new) in cases {
            assert_eq!(
                update_is_new(id, last, offset),
                new,
                "update {id}, last {last:?}, offset {offset}"
            );
        }
    }

    #[test]
    fn a_job_queued_again_is_handed_to_the_publisher_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = db::open(&dir.path().join("s.db")).unwrap();
        let t: chrono::DateTime<chrono::Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let tx = conn.transaction().unwrap();
        db::insert_chat(&tx, 7, None, None, t).unwrap();
        tx.commit().unwrap();
        let (account, _) = db::accounts::upsert_account(&conn, "Brand", "178", None, t).unwrap();
        let slot = db::queue::insert_slot(&conn, 7, t, "2026-01-01", None, t).unwrap();
        crate::bot::publish::create_job(&conn, slot, 7, account, None, false, t).unwrap();
        let config = crate::config::parse(
            "[telegram]\nbot_token = \"1:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n",
            std::path::Path::new("storyline.toml"),
            dir.path(),
            &|_| None,
        )
        .unwrap();
        let (wake, _wake_rx) = mpsc::channel();
        let (scans, _scans_rx) = mpsc::channel();
        let (publish_jobs, jobs) = mpsc::channel();
        let mut core = Core {
            config: &config,
            conn: &mut conn,
            started: Instant::now(),
            bot_username: None,
            wake,
            scans,
            rescan_every: Duration::from_secs(60),
            key: None,
            publish_jobs,
            pastes: mpsc::channel().0,
            dispatched: Default::default(),
            trouble: Default::default(),
            room: Default::default(),
            last_poll: Default::default(),
            limiter: crate::domain::limits::CommandLimiter::new(1, 1),
        };
        core.dispatch_jobs();
        core.dispatch_jobs();
        assert_eq!(
            jobs.try_iter().collect::<Vec<_>>(),
            [slot],
            "handed over once"
        );
        // The publisher ends it (the outcome is unknown); a press queues it again.
        db::publish::set_state(
            core.conn,
            slot,
            crate::domain::status::JobState::Unknown,
            None,
            t,
        )
        .unwrap();
        core.dispatch_jobs();
        crate::bot::publish::create_job(core.conn, slot, 7, account, Some(42), false, t).unwrap();
        core.dispatch_jobs();
        assert_eq!(
            jobs.try_iter().collect::<Vec<_>>(),
            [slot],
            "handed over again"
        );
    }
}
