//! The Telegram poller thread: long-polls getUpdates and hands each batch to the
//! core loop, then waits until the core has committed it before asking for more.
//! Telegram forgets an update only when a later getUpdates carries a higher
//! offset, so an update the core has not committed is fetched again after a crash.
//!
//! Before handing a batch over, it asks Telegram (getChatMember) what the
//! senders who need a role are in their group (`roles::question`), keeping the
//! answers for `roles::ROLE_TTL`: this thread does HTTP anyway, and the core
//! must not wait on Telegram inside its write transaction. For the same reason
//! it downloads the small .json documents of the batch (a settings file to
//! import) and hands them over inside their updates.
//!
//! A 409 Conflict has two causes: another program polling with the token, or a
//! webhook set on it. getWebhookInfo tells them apart, so the log says which,
//! and a webhook is removed when the configuration allows it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use log::{debug, error, info, warn};

use crate::backoff::Backoff;
use crate::bot::roles::{self, Role, RoleCache, Roles};
use crate::bot::settings_file;
use crate::domain::settings_file::MAX_FILE_BYTES;
use crate::runtime::{sleep_unless, Event};
use crate::telegram::{ApiError, Client, Fetched, Update};

pub struct Poller {
    pub client: Client,
    pub poll_timeout_secs: u64,
    /// The first update id not yet committed.
    pub offset: i64,
    pub events: Sender<Event>,
    /// The core answers each batch with the id of the last of its updates that
    /// is stored, or None when nothing of it could be committed.
    pub committed: Receiver<Option<i64>>,
    pub shutdown: Arc<AtomicBool>,
    /// Unix time of the last successful getUpdates, for /healthz.
    pub last_poll: Arc<std::sync::atomic::AtomicI64>,
    /// Remove a webhook that blocks polling (telegram.delete_webhook).
    pub delete_webhook: bool,
    /// `[access] admin_user_ids`: Telegram is never asked about them.
    pub admin_user_ids: Vec<i64>,
    /// Telegram's recent answers to getChatMember.
    pub role_cache: RoleCache,
}

/// Why Telegram answered getUpdates with 409.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Conflict {
    /// A webhook is set on the token; only its host, never its path or query.
    Webhook {
        host: String,
    },
    OtherPoller,
    /// getWebhookInfo failed too, so either may be true.
    Unknown(String),
}

impl Poller {
    pub fn run(mut self) {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let mut identified = false;
        // The 409 cause already logged in this outage.
        let mut conflict_reported: Option<Conflict> = None;
        while !self.shutdown.load(Ordering::Relaxed) {
            if !identified {
                match self.client.call("getMe", &serde_json::json!({})) {
                    Ok(me) => {
                        identified = true;
                        let username = me
                            .get("username")
                            .and_then(|u| u.as_str())
                            .map(str::to_string);
                        info!(
                            "connected to Telegram as @{}",
                            username.as_deref().unwrap_or("?")
                        );
                        recovered(&mut backoff);
                        if self.events.send(Event::BotIdentity { username }).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        self.wait_after(&e, &mut backoff);
                        continue;
                    }
                }
            }
            match self.client.get_updates(self.offset, self.poll_timeout_secs) {
                Ok(updates) => {
                    recovered(&mut backoff);
                    conflict_reported = None;
                    self.last_poll
                        .store(chrono::Utc::now().timestamp(), Ordering::Relaxed);
                    if updates.is_empty() {
                        continue;
                    }
                    let last = updates
                        .iter()
                        .map(|u| u.update_id)
                        .max()
                        .unwrap_or(self.offset);
                    debug!("received {} update(s) up to {last}", updates.len());
                    let mut updates = updates;
                    let roles = self.ask_roles(&updates);
                    self.fetch_documents(&mut updates);
                    let batch = Event::Updates {
                        updates,
                        offset: self.offset,
                        roles,
                    };
                    if self.events.send(batch).is_err() {
                        return;
                    }
                    match self.wait_for_commit() {
                        // Below the old offset too, when Telegram restarted its ids.
                        Some(Some(committed)) => match committed.checked_add(1) {
                            Some(next) => self.offset = next,
                            None => {
                                debug!("update id {committed} is the largest there is; waiting for Telegram to restart its ids");
                                sleep_unless(&self.shutdown, Duration::from_secs(1));
                            }
                        },
                        Some(None) => {
                            // The core could not commit (it logged why); retry the same
                            // updates after a pause instead of spinning.
                            sleep_unless(&self.shutdown, Duration::from_secs(1));
                        }
                        None => return,
                    }
                }
                Err(e) if e.is_conflict() => {
                    self.after_conflict(&e, &mut backoff, &mut conflict_reported)
                }
                Err(e) => self.wait_after(&e, &mut backoff),
            }
        }
    }

    /// A 409: finds out why, says so once per cause and outage, removes a webhook
    /// when allowed (then polls again at once, the first time), else waits.
    fn after_conflict(&self, e: &ApiError, backoff: &mut Backoff, reported: &mut Option<Conflict>) {
        let cause = match self.client.webhook_host() {
            Ok(Some(host)) => Conflict::Webhook { host },
            Ok(None) => Conflict::OtherPoller,
            Err(why) => Conflict::Unknown(why.to_string()),
        };
        // An outage is one cause; the text of a failing getWebhookInfo may vary.
        let first_time = match (reported.as_ref(), &cause) {
            (Some(Conflict::Unknown(_)), Conflict::Unknown(_)) => false,
            (before, now) => before != Some(now),
        };
        let backoff_delay = backoff.next_delay();
        let delay = e.retry_after().unwrap_or(backoff_delay);
        if let (Conflict::Webhook { host }, true) = (&cause, self.delete_webhook) {
            match self.client.delete_webhook() {
                Ok(()) => {
                    if first_time {
                        warn!(
                            "a webhook to {host} was set on this bot token and blocked polling \
                             (409 Conflict); removed it as telegram.delete_webhook = true asks \
                             (pending updates kept)"
                        );
                    } else {
                        debug!("removed the webhook to {host} again");
                    }
                    *reported = Some(cause);
                    // Something that keeps setting it again must not make this a busy loop.
                    if backoff.failures() > 1 {
                        sleep_unless(&self.shutdown, crate::clock::real_duration(delay));
                    }
                    return;
                }
                Err(why) => {
                    error!("removing the webhook to {host} failed ({why}); retrying with back-off")
                }
            }
        }
        if first_time {
            log_conflict(&cause);
            *reported = Some(cause);
        } else {
            debug!("getUpdates still refused (409, {cause:?}); next try in {delay:?}");
        }
        sleep_unless(&self.shutdown, crate::clock::real_duration(delay));
    }

    /// Telegram's word on each sender of the batch who needs a role, from the
    /// cache or by getChatMember. A user Telegram does not know in the chat
    /// (400 "user not found") is a member. After one call fails for an outage,
    /// the rest of the batch is not asked (Unknown): a slow Telegram must not
    /// hold the batch for a timeout per user.
    fn ask_roles(&mut self, updates: &[Update]) -> Roles {
        let now = crate::clock::now();
        let mut found = Roles::default();
        let mut reachable = true;
        for update in updates {
            let Some((chat_id, user_id)) = roles::question(update, &self.admin_user_ids) else {
                continue;
            };
            if found.contains(chat_id, user_id) {
                continue;
            }
            let role = match self.role_cache.fresh(chat_id, user_id, now) {
                Some(role) => role,
                None if !reachable || self.shutdown.load(Ordering::Relaxed) => Role::Unknown,
                None => match self.client.is_chat_admin(chat_id, user_id) {
                    Ok(admin) => {
                        self.role_cache.remember(chat_id, user_id, admin, now);
                        if admin {
                            Role::Administrator
                        } else {
                            Role::Member
                        }
                    }
                    Err(e) if !e.is_transient() => {
                        debug!("getChatMember for user {user_id} in chat {chat_id}: {e}; not an administrator");
                        self.role_cache.remember(chat_id, user_id, false, now);
                        Role::Member
                    }
                    Err(e) => {
                        warn!(
                            "could not ask Telegram whether user {user_id} administers chat \
                             {chat_id} ({e}); what needs an administrator is refused until it answers"
                        );
                        reachable = false;
                        Role::Unknown
                    }
                },
            };
            found.insert(chat_id, user_id, role);
        }
        found
    }

    /// Downloads the documents the core may read as settings files
    /// (`settings_file::document_to_fetch`), at most `MAX_FILE_BYTES` each: a
    /// file declared larger is not downloaded. A failure is handed over too, so
    /// the core can ask for the file again; the batch is not held for it.
    fn fetch_documents(&self, updates: &mut [Update]) {
        for update in updates {
            if self.shutdown.load(Ordering::Relaxed) {
                return;
            }
            let Some(document) = settings_file::document_to_fetch(update) else {
                continue;
            };
            let fetched = match document.file_size {
                Some(size) if size > MAX_FILE_BYTES => Fetched::TooBig,
                _ => self.client.download_file(&document.file_id, MAX_FILE_BYTES),
            };
            if let Fetched::Failed(why) = &fetched {
                warn!("could not download a document sent to the bot: {why}");
            }
            document.fetched = Some(fetched);
        }
    }

    fn wait_for_commit(&self) -> Option<Option<i64>> {
        loop {
            match self.committed.recv_timeout(Duration::from_millis(200)) {
                Ok(id) => return Some(id),
                Err(RecvTimeoutError::Timeout) if !self.shutdown.load(Ordering::Relaxed) => {
                    continue
                }
                Err(_) => return None,
            }
        }
    }

    /// Waits before the next try: what a 429 asks for, otherwise the back-off.
    /// One line per outage at WARN/ERROR; the retries of the same outage go to DEBUG.
    fn wait_after(&self, e: &ApiError, backoff: &mut Backoff) {
        let backoff_delay = backoff.next_delay();
        let delay = e.retry_after().unwrap_or(backoff_delay);
        if backoff.failures() == 1 {
            log_outage(e, delay);
        } else {
            debug!("Telegram still unavailable ({e}); next try in {delay:?}");
        }
        sleep_unless(&self.shutdown, crate::clock::real_duration(delay));
    }
}

fn log_outage(e: &ApiError, delay: Duration) {
    match e {
        ApiError::Api { code: 429, .. } => {
            warn!(
                "Telegram asks us to slow down (429): waiting {}s, and as long as it asks",
                delay.as_secs()
            )
        }
        ApiError::Api { code: 401, .. } => {
            error!("Telegram refused the bot token (401 Unauthorized); check telegram.bot_token. Retrying with back-off")
        }
        _ => warn!("Telegram unreachable ({e}); retrying with back-off"),
    }
}

fn log_conflict(cause: &Conflict) {
    match cause {
        Conflict::Webhook { host } => error!(
            "Telegram refuses getUpdates (409 Conflict) because a webhook is set on this bot \
             token, to {host}; Storyline polls instead. Remove the webhook with \
             `storyline doctor --fix`, or set telegram.delete_webhook = true. Retrying with back-off"
        ),
        Conflict::OtherPoller => error!(
            "another program is polling with this bot token (409 Conflict; no webhook is set): \
             only one may poll, so stop the other one. Retrying with back-off"
        ),
        Conflict::Unknown(why) => error!(
            "Telegram refuses getUpdates (409 Conflict): another program polls with this bot \
             token or a webhook is set on it; asking which failed ({why}). Retrying with back-off"
        ),
    }
}

fn recovered(backoff: &mut Backoff) {
    let failures = backoff.succeed();
    if failures > 0 {
        info!("Telegram reachable again after {failures} failed attempt(s)");
    }
}
