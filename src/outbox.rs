//! The outbox thread: delivers the Bot API calls the core stored in the outbox
//! table, oldest first, and deletes each once Telegram has taken it. A call waits
//! out 429s and outages (with back-off) and is dropped only when Telegram refuses
//! that call for good (a 4xx such as "message to edit not found").
//!
//! The core commits a reply in the same transaction as its update, so a crash
//! never loses one; a crash between Telegram's answer and the delete can repeat
//! at most that one call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use log::{debug, error, info, warn};
use rusqlite::Connection;

use crate::backoff::Backoff;
use crate::daemon::sleep_unless;
use crate::db;
use crate::telegram::{ApiError, Client};

pub struct Outbox {
    pub client: Client,
    pub conn: Connection,
    /// A message here means "there is something new in the outbox".
    pub wake: Receiver<()>,
    pub shutdown: Arc<AtomicBool>,
}

impl Outbox {
    pub fn run(self) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        while !self.shutdown.load(Ordering::Relaxed) {
            let next = match db::outbox_next(&self.conn) {
                Ok(next) => next,
                Err(e) => {
                    error!("reading the outbox: {e:#}");
                    sleep_unless(&self.shutdown, Duration::from_secs(1));
                    continue;
                }
            };
            let Some(row) = next else {
                match self.wake.recv_timeout(Duration::from_secs(5)) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            };
            let params: serde_json::Value = match serde_json::from_str(&row.params) {
                Ok(p) => p,
                Err(e) => {
                    error!("dropping unreadable outbox entry {}: {e}", row.id);
                    self.finish(row.id);
                    continue;
                }
            };
            match self.client.call(&row.method, &params) {
                Ok(_) => {
                    ended_outage(&mut backoff);
                    self.finish(row.id);
                }
                Err(e) if e.is_not_modified() => {
                    ended_outage(&mut backoff);
                    self.finish(row.id);
                }
                Err(e) if e.is_transient() => {
                    if let Err(e) = db::outbox_attempted(&self.conn, row.id) {
                        error!("recording an outbox attempt: {e:#}");
                    }
                    let delay = match e.retry_after() {
                        Some(d) => {
                            warn!(
                                "Telegram rate limit on {}: waiting {}s",
                                row.method,
                                d.as_secs()
                            );
                            d
                        }
                        None => {
                            let d = backoff.next_delay();
                            if backoff.failures() == 1 {
                                warn!(
                                    "cannot deliver {} ({e}); holding replies and retrying",
                                    row.method
                                );
                            } else {
                                debug!("{} still failing ({e}); next try in {d:?}", row.method);
                            }
                            d
                        }
                    };
                    sleep_unless(&self.shutdown, delay);
                }
                Err(e) => {
                    ended_outage(&mut backoff);
                    log_refusal(&row.method, &e);
                    self.finish(row.id);
                }
            }
        }
    }

    fn finish(&self, id: i64) {
        if let Err(e) = db::outbox_done(&self.conn, id) {
            error!("removing delivered outbox entry {id}: {e:#}");
        }
    }
}

fn log_refusal(method: &str, e: &ApiError) {
    // Late answers to button presses are routine after an outage.
    if method == "answerCallbackQuery" {
        debug!("Telegram refused {method}: {e}");
    } else {
        warn!("Telegram refused {method}, dropping it: {e}");
    }
}

fn ended_outage(backoff: &mut Backoff) {
    let failures = backoff.succeed();
    if failures > 0 {
        info!("delivering replies again after {failures} failed attempt(s)");
    }
}
