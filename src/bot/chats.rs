//! A chat's life beyond its settings, for whichever thread learns of it first:
//! which chats the bot serves; a group Telegram upgraded to a supergroup
//! (everything moves to the new id, the calls waiting for the old id are
//! readdressed, the chat is told once); and a chat Telegram no longer delivers
//! to (inactive, the admins told once, until the chat writes again).
//!
//! The core loop calls these for the service messages and updates it handles,
//! the outbox thread for Telegram's refusals, each inside its own transaction.

use anyhow::Result;
use chrono::{DateTime, Utc};
use log::{info, warn};
use rusqlite::{Connection, Transaction};

use crate::config::Config;
use crate::db;
use crate::domain::settings::{self, Change, ChatRow, ChatSettings};
use crate::domain::ui;
use crate::telegram::{self, ChatGone, Outgoing};

/// Supergroup (and channel) ids are -100 followed by the rest of the id.
const SUPERGROUP_IDS_BELOW: i64 = -1_000_000_000_000;

/// Whether the bot serves this chat: listed in the config, enabled by an admin,
/// or migrated from a chat listed in the config; and not switched off by an
/// admin (`storyline chats disable`), which wins over all of these.
pub fn is_served(conn: &Connection, config: &Config, chat_id: i64) -> Result<bool> {
    if db::health::is_disabled(conn, chat_id)? {
        return Ok(false);
    }
    let allowed = &config.access.allowed_chat_ids;
    if allowed.contains(&chat_id) || db::chat_is_authorized(conn, chat_id)? {
        return Ok(true);
    }
    Ok(db::chats::migrated_from(conn, chat_id)?.is_some_and(|old| allowed.contains(&old)))
}

/// Who is an admin: the ids `configured` in [access] admin_user_ids and those
/// who paired with a one-time code (`pairing`), in that order, each once.
pub fn admins(conn: &Connection, configured: &[i64]) -> Result<Vec<i64>> {
    let mut all = configured.to_vec();
    for paired in db::pairing::paired_admins(conn)? {
        if !all.contains(&paired.user_id) {
            all.push(paired.user_id);
        }
    }
    Ok(all)
}

/// Whether this user is an admin (see `admins`).
pub fn is_admin(conn: &Connection, config: &Config, user_id: i64) -> Result<bool> {
    Ok(admins(conn, &config.access.admin_user_ids)?.contains(&user_id))
}

/// Whether `from` → `to` is what Telegram does to a chat: a basic group
/// becomes a supergroup, never the other way, so following it cannot loop.
pub fn is_supergroup_upgrade(from: i64, to: i64) -> bool {
    from < 0 && from > SUPERGROUP_IDS_BELOW && to <= SUPERGROUP_IDS_BELOW
}

/// Moves group `from` to supergroup `to` in `tx`: every row of the chat, and
/// every call waiting in the outbox for it. Returns what to send: the notice
/// to the chat, only from the move that found the chat (so it is sent once,
/// whichever of the two service messages or a refused call comes first).
pub fn migrate(
    tx: &Transaction<'_>,
    from: i64,
    to: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Outgoing>> {
    if !is_supergroup_upgrade(from, to) {
        warn!("ignoring a move of chat {from} to {to}: not a group becoming a supergroup");
        return Ok(Vec::new());
    }
    let reason = format!("group {from} became supergroup {to}");
    let moved = db::chats::move_chat(tx, from, to, &reason, now)?;
    let readdressed = readdress_calls(tx, from, to)?;
    if readdressed > 0 {
        info!("chat {from}: {readdressed} waiting call(s) now go to supergroup {to}");
    }
    if !moved {
        return Ok(Vec::new());
    }
    info!("chat {from}: became supergroup {to}; moved its settings, queue and history");
    Ok(vec![telegram::send_message(
        to,
        &ui::chat_migrated_text(),
        None,
    )])
}

/// Telegram refused a call because it will deliver nothing more to `chat_id`:
/// the chat becomes inactive, and the first time, each admin (the configured
/// `admin_user_ids` and the paired ones) hears of it in private. Returns those
/// messages.
pub fn mark_unreachable(
    conn: &Connection,
    chat_id: i64,
    gone: ChatGone,
    admin_user_ids: &[i64],
    now: DateTime<Utc>,
) -> Result<Vec<Outgoing>> {
    if !db::chats::mark_inactive(conn, chat_id, gone.name(), now)? {
        return Ok(Vec::new());
    }
    warn!(
        "chat {chat_id}: Telegram no longer delivers to it ({}); its slots wait until it writes again",
        gone.name()
    );
    let title = db::chat(conn, chat_id)?.and_then(|row| row.title);
    let text = ui::chat_inactive_text(chat_id, title.as_deref(), gone);
    Ok(admins(conn, admin_user_ids)?
        .iter()
        .filter(|admin| **admin != chat_id)
        .map(|admin| telegram::send_message(*admin, &text, None))
        .collect())
}

/// Any update from a chat shows Telegram delivers there again.
pub fn came_back(conn: &Connection, chat_id: i64) -> Result<()> {
    if db::chats::clear_inactive(conn, chat_id)? {
        info!("chat {chat_id}: wrote again; serving it again");
    }
    Ok(())
}

/// The chats marked inactive, whose slots are neither planned nor sent.
pub fn inactive_chats(conn: &Connection) -> Result<Vec<i64>> {
    db::chats::inactive_chat_ids(conn)
}

/// What to record once a call is answered; stored as JSON beside the call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hook {
    /// A story sent to a chat: its queue row waits for the message id.
    Story {
        queue_id: i64,
        media_item_id: i64,
        chat_id: i64,
        name: String,
    },
    /// The /init wizard's message: its id is stored with the wizard, so that a
    /// newer message can take the old one's buttons away.
    WizardMessage { wizard_id: i64 },
}

impl Hook {
    /// The same hook for a call readdressed from chat `from` to chat `to`.
    fn readdressed(self, from: i64, to: i64) -> Hook {
        match self {
            Hook::Story {
                queue_id,
                media_item_id,
                chat_id,
                name,
            } => Hook::Story {
                queue_id,
                media_item_id,
                chat_id: if chat_id == from { to } else { chat_id },
                name,
            },
            Hook::WizardMessage { wizard_id } => Hook::WizardMessage { wizard_id },
        }
    }
}

/// Readdresses every call waiting for chat `from` (and its hook) to chat `to`;
/// returns how many. Part of moving a chat, in the caller's transaction.
pub fn readdress_calls(conn: &Connection, from: i64, to: i64) -> Result<usize> {
    let mut readdressed = 0;
    for row in db::chats::outbox_calls(conn)? {
        let Ok(mut params) = serde_json::from_str::<serde_json::Value>(&row.params) else {
            continue;
        };
        if telegram::call_chat_id(&params) != Some(from) {
            continue;
        }
        telegram::set_call_chat_id(&mut params, to);
        let hook = match row.on_result.as_deref() {
            Some(text) => match serde_json::from_str::<Hook>(text) {
                Ok(hook) => Some(serde_json::to_string(&hook.readdressed(from, to))?),
                Err(_) => Some(text.to_string()),
            },
            None => None,
        };
        db::chats::rewrite_outbox_call(conn, row.id, &params.to_string(), hook.as_deref())?;
        readdressed += 1;
    }
    Ok(readdressed)
}

/// The snapshot of a settings version: the effective settings and the
/// Instagram account the chat chose (null: the only account, or none).
pub fn settings_snapshot(tx: &Connection, chat_id: i64, resolved: &ChatSettings) -> Result<String> {
    let mut snapshot = serde_json::to_value(resolved)?;
    if let Some(fields) = snapshot.as_object_mut() {
        fields.insert(
            "active_account_id".to_string(),
            db::accounts::chat_active_account_id(tx, chat_id)?.into(),
        );
    }
    Ok(snapshot.to_string())
}

/// A settings version for changes made outside a Telegram update (the web
/// page's /connect callback), with the full snapshot.
pub fn record_change_version(
    tx: &Transaction<'_>,
    config: &Config,
    now: DateTime<Utc>,
    chat_id: i64,
    user_id: i64,
    changes: &[Change],
    reason: &str,
) -> Result<()> {
    let row = db::chat(tx, chat_id)?.unwrap_or_else(|| ChatRow::new(chat_id));
    let resolved = settings::resolve(&row, &config.defaults);
    db::record_settings_version(
        tx,
        chat_id,
        &settings_snapshot(tx, chat_id, &resolved)?,
        &serde_json::to_string(changes)?,
        Some(user_id),
        reason,
        now,
    )
}

/// Stores the core's decided calls in the outbox, in order, each within
/// Telegram's length limits (a long message becomes several).
pub fn enqueue_all(
    conn: &Connection,
    calls: &[telegram::Outgoing],
    now: DateTime<Utc>,
) -> Result<()> {
    for call in calls.iter().flat_map(telegram::fit_to_limits) {
        let hook = call.on_result.as_ref().map(|h| h.to_string());
        db::enqueue_with_hook(
            conn,
            call.method,
            &call.params.to_string(),
            telegram::call_chat_id(&call.params),
            hook.as_deref(),
            now,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: i64 = -5555;
    const SUPERGROUP: i64 = -1_000_000_005_555;

    fn database() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = db::open(&dir.path().join("s.db")).unwrap();
        (dir, conn)
    }

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_move_readdresses_waiting_calls_and_tells_the_chat_once() {
        let (_dir, mut conn) = database();
        let tx = conn.transaction().unwrap();
        db::insert_chat(&tx, GROUP, Some("Team"), Some(42), now()).unwrap();
        let story = crate::bot::chats::Hook::Story {
            queue_id: 3,
            media_item_id: 4,
            chat_id: GROUP,
            name: "a.jpg".into(),
        };
        let calls = [
            telegram::send_message(GROUP, "to the group", None),
            telegram::send_message(4242, "elsewhere", None),
            Outgoing {
                on_result: Some(serde_json::to_value(&story).unwrap()),
                ..telegram::send_message(GROUP, "a story", None)
            },
        ];
        crate::bot::chats::enqueue_all(&tx, &calls, now()).unwrap();
        let told = migrate(&tx, GROUP, SUPERGROUP, now()).unwrap();
        assert_eq!(told.len(), 1);
        assert_eq!(telegram::call_chat_id(&told[0].params), Some(SUPERGROUP));
        assert_eq!(told[0].params["text"], ui::chat_migrated_text());
        // The other service message, or a refused call, finds nothing to move.
        assert!(migrate(&tx, GROUP, SUPERGROUP, now()).unwrap().is_empty());
        tx.commit().unwrap();

        let rows = db::chats::outbox_calls(&conn).unwrap();
        let chats: Vec<Option<i64>> = rows
            .iter()
            .map(|r| telegram::call_chat_id(&serde_json::from_str(&r.params).unwrap()))
            .collect();
        assert_eq!(chats, [Some(SUPERGROUP), Some(4242), Some(SUPERGROUP)]);
        let hook: crate::bot::chats::Hook =
            serde_json::from_str(rows[2].on_result.as_deref().unwrap()).unwrap();
        assert!(
            matches!(
                hook,
                crate::bot::chats::Hook::Story {
                    chat_id: SUPERGROUP,
                    queue_id: 3,
                    ..
                }
            ),
            "{hook:?}"
        );
        assert!(db::chat(&conn, GROUP).unwrap().is_none());
        assert!(db::chat(&conn, SUPERGROUP).unwrap().is_some());
    }

    /// Admin 42, and GROUP served by the config.
    fn config_serving_group() -> crate::config::Config {
        let text = format!("[access]\nadmin_user_ids = [42]\nallowed_chat_ids = [{GROUP}]\n");
        crate::config::parse(
            &text,
            std::path::Path::new("storyline.toml"),
            std::path::Path::new("/srv"),
            &|_| None,
        )
        .unwrap()
    }

    #[test]
    fn served_by_the_config_through_the_id_it_was_migrated_from() {
        let (_dir, mut conn) = database();
        let config = config_serving_group();
        let tx = conn.transaction().unwrap();
        db::insert_chat(&tx, GROUP, None, None, now()).unwrap();
        assert!(is_served(&tx, &config, GROUP).unwrap());
        assert!(!is_served(&tx, &config, SUPERGROUP).unwrap());
        migrate(&tx, GROUP, SUPERGROUP, now()).unwrap();
        assert!(is_served(&tx, &config, SUPERGROUP).unwrap());
        // Not just any chat that was once another.
        db::insert_chat(&tx, -7, None, None, now()).unwrap();
        migrate(&tx, -7, -1_000_000_000_007, now()).unwrap();
        assert!(!is_served(&tx, &config, -1_000_000_000_007).unwrap());
        tx.commit().unwrap();
    }

    #[test]
    fn a_chat_switched_off_is_not_served_whatever_else_allows_it() {
        let (_dir, mut conn) = database();
        let config = config_serving_group();
        let tx = conn.transaction().unwrap();
        db::insert_chat(&tx, GROUP, None, None, now()).unwrap();
        db::insert_chat(&tx, -9, None, Some(42), now()).unwrap();
        db::authorize_chat(&tx, -9, 42, now()).unwrap();
        for chat in [GROUP, -9] {
            assert!(is_served(&tx, &config, chat).unwrap());
            db::health::set_disabled(&tx, chat, true, now()).unwrap();
            assert!(!is_served(&tx, &config, chat).unwrap());
            db::health::set_disabled(&tx, chat, false, now()).unwrap();
            assert!(is_served(&tx, &config, chat).unwrap());
        }
        tx.commit().unwrap();
    }

    #[test]
    fn admins_hear_once_that_a_chat_is_gone_until_it_writes_again() {
        let (_dir, mut conn) = database();
        let tx = conn.transaction().unwrap();
        db::insert_chat(&tx, 4242, Some("Ada"), None, now()).unwrap();
        tx.commit().unwrap();
        let admins = [42, 4242, 43];
        let told = mark_unreachable(&conn, 4242, ChatGone::Blocked, &admins, now()).unwrap();
        let to: Vec<Option<i64>> = told
            .iter()
            .map(|c| telegram::call_chat_id(&c.params))
            .collect();
        assert_eq!(to, [Some(42), Some(43)], "not the gone chat itself");
        assert!(
            mark_unreachable(&conn, 4242, ChatGone::Blocked, &admins, now())
                .unwrap()
                .is_empty()
        );
        assert_eq!(inactive_chats(&conn).unwrap(), [4242]);
        came_back(&conn, 4242).unwrap();
        assert!(inactive_chats(&conn).unwrap().is_empty());
        assert_eq!(
            mark_unreachable(&conn, 4242, ChatGone::Kicked, &admins, now())
                .unwrap()
                .len(),
            2,
            "gone again after coming back: told again"
        );
        // A chat without a row (one the bot only refused) is nobody's concern.
        assert!(
            mark_unreachable(&conn, 77, ChatGone::NotFound, &admins, now())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn only_a_group_becoming_a_supergroup_is_followed() {
        for (from, to, follow) in [
            (-5555, -1_000_000_005_555, true),
            (-999_999_999_999, -1_001_234_567_890, true),
            // A supergroup never moves again; a private chat never moves.
            (-1_000_000_005_555, -1_000_000_006_666, false),
            (4242, -1_000_000_004_242, false),
            (-5555, -6666, false),
            (-5555, 4242, false),
            (-5555, -5555, false),
        ] {
            assert_eq!(is_supergroup_upgrade(from, to), follow, "{from} → {to}");
        }
    }
}
