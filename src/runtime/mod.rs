//! Part `runtime/`: `storyline run` — the core loop (`daemon`), its threads
//! (`poller`, `outbox`, `publisher`, the scanner and connect workers) and the
//! vocabulary between them. It owns threads, channels, timers and shutdown, and
//! hands each decision to `bot`; it decides nothing about a chat itself and has
//! no SQL (that is `db`'s).
//!
//! The daemon's runtime vocabulary, below every thread: the `Event`s the core
//! loop reacts to, the scanner's `ScanRequest`, `spawn` (a named thread with a
//! small stack), `sleep_unless` (a sleep that shutdown cuts short) and where
//! converted images wait. Threads import this, never the daemon.

pub mod daemon;
pub mod outbox;
pub mod poller;
pub mod publisher;

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::bot::roles::Roles;
use crate::telegram::Update;

const THREAD_STACK: usize = 512 * 1024;

/// Everything the core loop reacts to.
pub enum Event {
    /// A batch from getUpdates asked for with `offset`, with what Telegram said
    /// about the senders who need a role (`roles::question`); the poller waits
    /// for the commit answer.
    Updates {
        updates: Vec<Update>,
        offset: i64,
        roles: Roles,
    },
    /// getMe answered: the bot's own @username.
    BotIdentity {
        username: Option<String>,
    },
    /// The scanner thread finished a scan (asked for by a chat, or not).
    ScanFinished {
        requested_by: Option<i64>,
        outcome: std::result::Result<String, String>,
    },
    /// The connect worker finished a pasted /connect code (its result and the
    /// chat's message are stored; the outbox has them).
    LoginFinished,
    Shutdown(&'static str),
}

/// A pasted /connect login for the connect worker: `(state, code)`.
pub struct PastedLogin {
    pub state: String,
    pub code: String,
}

/// A scan for the scanner thread; the chat to tell, if /scan asked for it.
pub struct ScanRequest {
    pub requested_by: Option<i64>,
}

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

/// Starts a named thread with the daemon's small stack.
pub fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .stack_size(THREAD_STACK)
        .spawn(f)
        .with_context(|| format!("starting the {name} thread"))
}
