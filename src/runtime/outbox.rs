//! The outbox thread: delivers the Bot API calls the core stored in the outbox
//! table, oldest first, and deletes each once Telegram has taken it. A call waits
//! out 429s and outages (with back-off) and is dropped only when Telegram refuses
//! that call for good (a 4xx such as "message to edit not found").
//!
//! The core commits a reply in the same transaction as its update, so a crash
//! never loses one. A delivered call's result (a story's message id) and its
//! delete are one commit, so a crash between Telegram's answer and that commit
//! repeats at most that one call. When the database cannot take the commit (a
//! full or read-only disk), the call is held in memory and recorded before
//! anything else goes out: it is not sent again while the process lives.
//!
//! Two refusals are about the chat rather than the call: a group that became a
//! supergroup (the chat moves to its new id and the call is sent there), and a
//! chat Telegram no longer delivers to (it becomes inactive; see `chats`).
//!
//! It keeps to Telegram's limits (`domain::limits::Pacer`: about 30 calls a second
//! overall, one a second per chat in bursts, 20 a minute per group), in daemon
//! time. A chat that must wait, for those limits or for a 429's `retry_after`, is
//! passed over while other chats' calls go (`db::outbox::next_skipping`); its own
//! calls keep their order. Only an outage (5xx, no network) holds every chat.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use log::{debug, error, info, warn};
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::backoff::Backoff;
use crate::bot::chats::{self, enqueue_all};
use crate::db;
use crate::domain::limits::{Blocker, Pacer};
use crate::runtime::sleep_unless;
use crate::telegram::{self, ApiError, Client};

pub use crate::bot::chats::{readdress_calls, Hook};

pub struct Outbox {
    pub client: Client,
    pub conn: Connection,
    /// A message here means "there is something new in the outbox".
    pub wake: Receiver<()>,
    pub shutdown: Arc<AtomicBool>,
    /// Told in private when a chat stops receiving the bot's messages.
    pub admin_user_ids: Vec<i64>,
}

const RECORDING: &str =
    "outbox: recording a delivered call (it is not sent again; later replies wait; retrying)";
const READING: &str = "outbox: reading the outbox (replies wait; retrying)";
/// How long an idle outbox waits for a wake-up before it looks again.
const IDLE_LOOK: Duration = Duration::from_secs(5);

/// What Telegram did with a call, for recording it.
enum Delivered {
    Taken(serde_json::Value),
    /// "message is not modified": taken, with nothing to record.
    NotModified,
    /// Refused for good (a 4xx): the reason, and whether the chat itself is
    /// gone for the bot (then nobody there would read why).
    Refused {
        reason: String,
        chat_gone: bool,
    },
}

impl Outbox {
    pub fn run(self) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        // A call Telegram took whose result could not be written (a full or read-only
        // disk): it is recorded before anything else goes out, and never sent again.
        let mut unrecorded: Option<(db::OutboxRow, Delivered)> = None;
        let mut trouble = crate::logging::Trouble::default();
        let mut room = db::Room::default();
        let mut pacer = Pacer::telegram(crate::clock::pacing_duration);
        // Chats whose calls wait until then (a 429, or Telegram's limits).
        let mut waiting: HashMap<i64, Instant> = HashMap::new();
        while !self.shutdown.load(Ordering::Relaxed) {
            room.make(&self.conn);
            if let Some((row, delivered)) = unrecorded.take() {
                match self.record(&row, &delivered) {
                    Ok(()) => trouble.ended(RECORDING),
                    Err(e) => {
                        room.failed(&e);
                        trouble.failed(RECORDING, &e);
                        unrecorded = Some((row, delivered));
                        sleep_unless(&self.shutdown, Duration::from_secs(1));
                        continue;
                    }
                }
            }
            let now = Instant::now();
            waiting.retain(|_, until| *until > now);
            let skipped: Vec<i64> = waiting.keys().copied().collect();
            let next = match db::outbox::next_skipping(&self.conn, &skipped) {
                Ok(next) => next,
                Err(e) => {
                    room.failed(&e);
                    trouble.failed(READING, &e);
                    sleep_unless(&self.shutdown, Duration::from_secs(1));
                    continue;
                }
            };
            trouble.ended(READING);
            let Some(row) = next else {
                // Nothing to send now: wait for new calls, or for a waiting chat's turn.
                let look = waiting.values().min().map_or(IDLE_LOOK, |until| {
                    until.saturating_duration_since(now).min(IDLE_LOOK)
                });
                match self.wake.recv_timeout(look) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            };
            // Checked, not built: the stored text is what goes to Telegram.
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&row.params) {
                error!("dropping unreadable outbox entry {}: {e}", row.id);
                unrecorded = Some((row, Delivered::NotModified));
                continue;
            }
            let chat = row.chat_id;
            match pacer.wait(chat, now) {
                None => {}
                Some((until, Blocker::Chat)) => {
                    if let Some(chat) = chat {
                        waiting.insert(chat, until);
                    }
                    continue;
                }
                Some((until, Blocker::Overall)) => {
                    sleep_unless(&self.shutdown, until.saturating_duration_since(now));
                    continue;
                }
            }
            let answer = self.client.deliver_stored(&row.method, &row.params);
            // Telegram counted it (or refused it for its limits: then it did not).
            if !answer.as_ref().is_err_and(|e| e.retry_after().is_some()) {
                let answered = Instant::now();
                pacer.sent(chat, answered);
                // When that used up the chat's turn, its next call is passed over
                // until then without being read first.
                if let (Some(chat), Some((until, Blocker::Chat))) =
                    (chat, pacer.wait(chat, answered))
                {
                    waiting.insert(chat, until);
                }
            }
            match answer {
                Ok(result) => {
                    ended_outage(&mut backoff);
                    unrecorded = Some((row, Delivered::Taken(result)));
                }
                Err(e) if e.is_not_modified() => {
                    ended_outage(&mut backoff);
                    unrecorded = Some((row, Delivered::NotModified));
                }
                Err(e) if e.retry_after().is_some() && chat.is_some() => {
                    // Flood control for this chat: it waits, the others go on.
                    if let Err(e) = db::outbox_attempted(&self.conn, row.id) {
                        debug!("recording an outbox attempt: {e:#}");
                    }
                    if let (Some(chat), Some(wait)) = (chat, e.retry_after()) {
                        warn!(
                            "Telegram asks to slow down for chat {chat} ({e}); its calls wait \
                             {}s, other chats' go on",
                            wait.as_secs()
                        );
                        waiting.insert(chat, Instant::now() + crate::clock::real_duration(wait));
                    }
                }
                Err(e) if e.is_transient() => {
                    if let Err(e) = db::outbox_attempted(&self.conn, row.id) {
                        debug!("recording an outbox attempt: {e:#}");
                    }
                    // One line per outage; its retries go to DEBUG.
                    let backoff_delay = backoff.next_delay();
                    let delay = e.retry_after().unwrap_or(backoff_delay);
                    if backoff.failures() == 1 {
                        warn!(
                            "cannot deliver {} ({e}); holding replies and retrying in {}s",
                            row.method,
                            delay.as_secs_f32().ceil()
                        );
                    } else {
                        debug!("{} still failing ({e}); next try in {delay:?}", row.method);
                    }
                    sleep_unless(&self.shutdown, crate::clock::real_duration(delay));
                }
                Err(e) if e.migrate_to_chat_id().is_some() => {
                    ended_outage(&mut backoff);
                    // Moved: the call waits under the new id and goes out next.
                    if let Err(moving) = self.follow_migration(chat, &e) {
                        warn!(
                            "Telegram refused {}, dropping it: {e} (cannot follow: {moving:#})",
                            row.method
                        );
                        let reason = e.to_string();
                        unrecorded = Some((
                            row,
                            Delivered::Refused {
                                reason,
                                chat_gone: false,
                            },
                        ));
                    }
                }
                Err(e) => {
                    ended_outage(&mut backoff);
                    log_refusal(&row.method, &e);
                    let chat_gone = e.chat_unreachable().is_some();
                    if chat_gone {
                        self.chat_unreachable(chat, &e);
                    }
                    let reason = e.to_string();
                    unrecorded = Some((row, Delivered::Refused { reason, chat_gone }));
                }
            }
        }
    }

    /// The call went to a group that became a supergroup: the chat moves to
    /// its new id, with this call and every other one waiting for it, which
    /// the loop then sends again. A move Telegram does not make is refused.
    fn follow_migration(&self, chat: Option<i64>, e: &ApiError) -> Result<()> {
        match (chat, e.migrate_to_chat_id()) {
            (Some(from), Some(to)) if chats::is_supergroup_upgrade(from, to) => {
                self.in_transaction(|tx, now| chats::migrate(tx, from, to, now))
            }
            _ => Err(anyhow::anyhow!("not a group becoming a supergroup")),
        }
    }

    /// Telegram will deliver nothing more to the call's chat: it becomes
    /// inactive, and the admins hear of it once.
    fn chat_unreachable(&self, chat: Option<i64>, e: &ApiError) {
        let (Some(chat_id), Some(gone)) = (chat, e.chat_unreachable()) else {
            return;
        };
        let marked = self.in_transaction(|tx, now| {
            chats::mark_unreachable(tx, chat_id, gone, &self.admin_user_ids, now)
        });
        if let Err(e) = marked {
            error!("chat {chat_id}: marking it inactive: {e:#}");
        }
    }

    /// Runs `change` and stores the calls it returns, in one transaction on
    /// the outbox's connection.
    fn in_transaction(
        &self,
        change: impl FnOnce(
            &Transaction<'_>,
            chrono::DateTime<chrono::Utc>,
        ) -> Result<Vec<telegram::Outgoing>>,
    ) -> Result<()> {
        let now = crate::clock::now();
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let calls = change(&tx, now)?;
        enqueue_all(&tx, &calls, now)?;
        tx.commit()?;
        Ok(())
    }

    /// Records a delivered (or refused) call in one transaction: what it means for
    /// the rest of the program (a story's message id and file_id, or its failure)
    /// and its removal from the outbox. A crash before the commit sends it again:
    /// the one repeat per crash the outbox allows.
    fn record(&self, row: &db::OutboxRow, delivered: &Delivered) -> anyhow::Result<()> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        apply_hook(&tx, row, delivered)?;
        db::outbox_done(&tx, row.id)?;
        tx.commit()?;
        Ok(())
    }
}

/// What a delivered or refused call means for the rest of the program. An
/// unreadable hook is logged and skipped; a database error is returned.
fn apply_hook(conn: &Connection, row: &db::OutboxRow, delivered: &Delivered) -> anyhow::Result<()> {
    let Some(hook) = row.on_result.as_deref() else {
        return Ok(());
    };
    let hook: Hook = match serde_json::from_str(hook) {
        Ok(h) => h,
        Err(e) => {
            error!("outbox entry {}: unreadable hook: {e}", row.id);
            return Ok(());
        }
    };
    match (hook, delivered) {
        (_, Delivered::NotModified) => Ok(()),
        (Hook::WizardMessage { wizard_id }, Delivered::Taken(result)) => {
            match telegram::sent_message_info(result).0 {
                Some(message_id) => db::wizard::set_wizard_message(conn, wizard_id, message_id),
                None => Ok(()),
            }
        }
        // Nothing was shown; a later /init sends the wizard again.
        (Hook::WizardMessage { .. }, Delivered::Refused { .. }) => Ok(()),
        (
            Hook::Story {
                queue_id,
                media_item_id,
                ..
            },
            Delivered::Taken(result),
        ) => {
            let (message_id, file_id) = telegram::sent_message_info(result);
            db::queue::story_delivered(
                conn,
                queue_id,
                message_id.unwrap_or(0),
                media_item_id,
                file_id.as_deref(),
            )
        }
        (
            Hook::Story {
                queue_id,
                media_item_id,
                chat_id,
                name,
            },
            Delivered::Refused { reason, chat_gone },
        ) => {
            db::queue::story_failed(conn, queue_id, media_item_id, reason)?;
            if *chat_gone {
                // Nobody there would read why.
                return Ok(());
            }
            let text = crate::domain::ui::story_refused_text(&name, reason);
            let message = telegram::send_message(chat_id, &text, None);
            // Through the same fitting as every reply: Instagram's or Telegram's
            // reason can be long.
            enqueue_all(conn, &[message], crate::clock::now())
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
