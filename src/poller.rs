//! The Telegram poller thread: long-polls getUpdates and hands each batch to the
//! core loop, then waits until the core has committed it before asking for more.
//! Telegram forgets an update only when a later getUpdates carries a higher
//! offset, so an update the core has not committed is fetched again after a crash.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use log::{debug, error, info, warn};

use crate::backoff::Backoff;
use crate::daemon::{sleep_unless, Event};
use crate::telegram::{ApiError, Client};

pub struct Poller {
    pub client: Client,
    pub poll_timeout_secs: u64,
    /// The first update id not yet committed.
    pub offset: i64,
    pub events: Sender<Event>,
    /// The core answers each batch with the id of the last update it committed.
    pub committed: Receiver<i64>,
    pub shutdown: Arc<AtomicBool>,
    /// Unix time of the last successful getUpdates, for /healthz.
    pub last_poll: Arc<std::sync::atomic::AtomicI64>,
}

impl Poller {
    pub fn run(mut self) {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let mut identified = false;
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
                    if self.events.send(Event::Updates(updates)).is_err() {
                        return;
                    }
                    match self.wait_for_commit() {
                        Some(committed) if committed >= self.offset => self.offset = committed + 1,
                        Some(_) => {
                            // The core could not commit (it logged why); retry the same
                            // updates after a pause instead of spinning.
                            sleep_unless(&self.shutdown, Duration::from_secs(1));
                        }
                        None => return,
                    }
                }
                Err(e) => self.wait_after(&e, &mut backoff),
            }
        }
    }

    fn wait_for_commit(&self) -> Option<i64> {
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

    fn wait_after(&self, e: &ApiError, backoff: &mut Backoff) {
        let delay = match e.retry_after() {
            Some(retry_after) => {
                warn!(
                    "Telegram asks us to slow down: waiting {}s",
                    retry_after.as_secs()
                );
                retry_after
            }
            None => {
                let delay = backoff.next_delay();
                if backoff.failures() == 1 {
                    log_outage(e);
                } else {
                    debug!("Telegram still unavailable ({e}); next try in {delay:?}");
                }
                delay
            }
        };
        sleep_unless(&self.shutdown, delay);
    }
}

fn log_outage(e: &ApiError) {
    match e {
        ApiError::Api { code: 401, .. } => {
            error!("Telegram refused the bot token (401 Unauthorized); check telegram.bot_token. Retrying with back-off")
        }
        ApiError::Api { code: 409, .. } => {
            error!("another program is polling with this bot token (409 Conflict); retrying with back-off")
        }
        _ => warn!("Telegram unreachable ({e}); retrying with back-off"),
    }
}

fn recovered(backoff: &mut Backoff) {
    let failures = backoff.succeed();
    if failures > 0 {
        info!("Telegram reachable again after {failures} failed attempt(s)");
    }
}
