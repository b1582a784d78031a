//! Who may do what in a chat. Settings, posting mode, accounts, /init and
//! /connect belong to the configured admins and, in a group, to the chat's
//! Telegram administrators; everyone else may read (/status, /queue, …) and
//! press a story's buttons, unless the chat keeps those for its administrators.
//! In a private chat its one user runs it, as before.
//!
//! Pure: `question` says which updates need Telegram's word on the sender, the
//! poller asks getChatMember for those (through `RoleCache`, so at most once per
//! user and chat every `ROLE_TTL`) and hands the answers to the core as `Roles`
//! beside the batch; `decide` is the core's verdict. The HTTP happens on the
//! poller thread, before the core opens the update's write transaction.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};

use crate::telegram::Update;

/// How long Telegram's answer about a user stays good: a demoted administrator
/// keeps their rights for at most this long, and a chat's busy minute costs one
/// getChatMember per person.
pub const ROLE_TTL: TimeDelta = TimeDelta::minutes(5);

/// Commands for the configured admins and the chat's administrators. /start
/// also runs the set-up in a chat never set up, for them only.
pub const ADMIN_COMMANDS: &[&str] = &[
    "settings", "init", "connect", "accounts", "pause", "resume", "dryrun", "next",
];

/// What Telegram says a user is in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// "creator" or "administrator".
    Administrator,
    /// Anything else, including a user Telegram does not know in the chat.
    Member,
    /// Telegram could not be asked (an outage, a timeout): nobody is let in on it.
    Unknown,
}

/// The roles the poller found for one batch, by (chat, user).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles {
    known: HashMap<(i64, i64), Role>,
}

impl Roles {
    pub fn insert(&mut self, chat_id: i64, user_id: i64, role: Role) {
        self.known.insert((chat_id, user_id), role);
    }

    pub fn contains(&self, chat_id: i64, user_id: i64) -> bool {
        self.known.contains_key(&(chat_id, user_id))
    }

    /// Unknown when nobody asked.
    pub fn get(&self, chat_id: i64, user_id: i64) -> Role {
        self.known
            .get(&(chat_id, user_id))
            .copied()
            .unwrap_or(Role::Unknown)
    }
}

/// The core's verdict on a user acting in a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    NotAdministrator,
    /// Telegram's answer is missing: refused, with "try again".
    Unknown,
}

/// Whether a user may administer a chat: a configured admin anywhere, the user
/// of a private chat, in a group whoever Telegram calls an administrator.
pub fn decide(configured_admin: bool, private_chat: bool, role: Role) -> Verdict {
    if configured_admin || private_chat {
        return Verdict::Allowed;
    }
    match role {
        Role::Administrator => Verdict::Allowed,
        Role::Member => Verdict::NotAdministrator,
        Role::Unknown => Verdict::Unknown,
    }
}

pub fn command_is_for_admins(name: &str) -> bool {
    ADMIN_COMMANDS.contains(&name)
}

/// The (chat, user) whose Telegram role the core may need for this update: a
/// button press, an admin command or /start, from someone who is not a
/// configured admin, in a group; or a document replying to a message (it may
/// import settings). Other plain messages never need it (a value typed for a
/// prompt answers a prompt its sender opened).
pub fn question(update: &Update, admin_user_ids: &[i64]) -> Option<(i64, i64)> {
    let (chat, user) = if let Some(query) = &update.callback_query {
        (&query.message.as_ref()?.chat, &query.from)
    } else {
        let message = update.message.as_ref()?;
        // A document replying to a message may be a settings file sent back
        // to its export: an import, for administrators.
        let maybe_import = message.document.is_some() && message.reply_to_message.is_some();
        if !maybe_import {
            let name = command_name(message.text.as_deref()?)?;
            if name != "start" && !command_is_for_admins(&name) {
                return None;
            }
        }
        (&message.chat, message.from.as_ref()?)
    };
    if chat.is_private() || user.is_bot || admin_user_ids.contains(&user.id) {
        return None;
    }
    Some((chat.id, user.id))
}

/// "/Settings@some_bot now" → "settings". Loose on purpose: asking about a
/// command meant for another bot costs one cached call, the core parses strictly.
fn command_name(text: &str) -> Option<String> {
    let word = text.strip_prefix('/')?.split_whitespace().next()?;
    let name = word.split('@').next().unwrap_or(word);
    (!name.is_empty()).then(|| name.to_ascii_lowercase())
}

/// Telegram's recent answers, on the poller thread: (chat, user) → whether an
/// administrator, and when Telegram said so.
#[derive(Debug, Default)]
pub struct RoleCache {
    answers: HashMap<(i64, i64), (bool, DateTime<Utc>)>,
}

impl RoleCache {
    /// The answer still good at `now`, if any.
    pub fn fresh(&self, chat_id: i64, user_id: i64, now: DateTime<Utc>) -> Option<Role> {
        let (admin, at) = self.answers.get(&(chat_id, user_id))?;
        is_fresh(*at, now).then_some(if *admin {
            Role::Administrator
        } else {
            Role::Member
        })
    }

    /// Keeps an answer, and forgets those gone stale (so the cache holds only
    /// the people of the last few minutes).
    pub fn remember(&mut self, chat_id: i64, user_id: i64, admin: bool, now: DateTime<Utc>) {
        self.answers.retain(|_, (_, at)| is_fresh(*at, now));
        self.answers.insert((chat_id, user_id), (admin, now));
    }

    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }
}

/// An answer from `at` is good until `ROLE_TTL` later; a clock that went back
/// makes it stale rather than good for longer.
fn is_fresh(at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let age = now - at;
    age >= TimeDelta::zero() && age < ROLE_TTL
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ADMIN: i64 = 42;

    fn update(value: serde_json::Value) -> Update {
        serde_json::from_value(value).unwrap()
    }

    fn message(chat: serde_json::Value, from: i64, text: &str) -> Update {
        update(json!({"update_id": 1, "message": {
            "message_id": 5, "chat": chat, "text": text,
            "from": {"id": from, "is_bot": false, "first_name": "A"},
        }}))
    }

    fn press(chat: serde_json::Value, from: i64, data: &str) -> Update {
        update(json!({"update_id": 1, "callback_query": {
            "id": "q", "data": data,
            "from": {"id": from, "is_bot": false, "first_name": "A"},
            "message": {"message_id": 5, "chat": chat},
        }}))
    }

    #[test]
    fn questions_are_asked_for_group_commands_and_presses_of_others() {
        let group = json!({"id": -100, "type": "supergroup", "title": "T"});
        let private = json!({"id": 7, "type": "private"});
        for (update, expected) in [
            (message(group.clone(), 7, "/settings"), Some((-100, 7))),
            (
                message(group.clone(), 7, "/Settings@bot now"),
                Some((-100, 7)),
            ),
            (message(group.clone(), 7, "/dryrun off"), Some((-100, 7))),
            (message(group.clone(), 7, "/start"), Some((-100, 7))),
            (message(group.clone(), 7, "/init"), Some((-100, 7))),
            (message(group.clone(), 7, "/connect"), Some((-100, 7))),
            (message(group.clone(), 7, "/status"), None),
            (message(group.clone(), 7, "/queue"), None),
            (message(group.clone(), 7, "/help"), None),
            (message(group.clone(), 7, "5"), None),
            (message(group.clone(), 7, "/"), None),
            (message(group.clone(), ADMIN, "/settings"), None),
            (message(private.clone(), 7, "/settings"), None),
            (press(group.clone(), 7, "1:set:dry:0"), Some((-100, 7))),
            (press(group.clone(), 7, "1:st:s:3"), Some((-100, 7))),
            (press(group.clone(), ADMIN, "1:set:dry:0"), None),
            (press(private, 7, "1:set:dry:0"), None),
        ] {
            assert_eq!(question(&update, &[ADMIN]), expected, "{update:?}");
        }
        // A bot, and an update without a sender or a message, need nothing.
        let bot = update(json!({"update_id": 1, "message": {
            "message_id": 5, "chat": group, "text": "/settings",
            "from": {"id": 9, "is_bot": true, "first_name": "B"},
        }}));
        assert_eq!(question(&bot, &[]), None);
        let inline = update(json!({"update_id": 1, "callback_query": {
            "id": "q", "data": "1:refresh", "from": {"id": 7, "first_name": "A"},
        }}));
        assert_eq!(question(&inline, &[]), None);
        // A document replying to something may import settings; one alone may not.
        let document = |reply: bool| {
            let mut message = json!({
                "message_id": 6, "chat": {"id": -100, "type": "supergroup"},
                "from": {"id": 7, "first_name": "A"},
                "document": {"file_id": "f", "file_name": "s.json"},
            });
            if reply {
                message["reply_to_message"] = json!({"message_id": 5, "chat": {"id": -100}});
            }
            update(json!({"update_id": 1, "message": message}))
        };
        assert_eq!(question(&document(true), &[]), Some((-100, 7)));
        assert_eq!(question(&document(false), &[]), None);
    }

    #[test]
    fn verdicts() {
        use Role::*;
        // (configured admin, private chat, Telegram's role, verdict)
        for (configured, private, role, verdict) in [
            (true, false, Member, Verdict::Allowed),
            (true, false, Unknown, Verdict::Allowed),
            (false, true, Member, Verdict::Allowed),
            (false, true, Unknown, Verdict::Allowed),
            (false, false, Administrator, Verdict::Allowed),
            (false, false, Member, Verdict::NotAdministrator),
            (false, false, Unknown, Verdict::Unknown),
        ] {
            assert_eq!(
                decide(configured, private, role),
                verdict,
                "{configured} {private} {role:?}"
            );
        }
        let mut roles = Roles::default();
        roles.insert(-1, 7, Administrator);
        assert_eq!(roles.get(-1, 7), Administrator);
        assert_eq!(roles.get(-1, 8), Unknown);
        assert_eq!(roles.get(-2, 7), Unknown);
    }

    #[test]
    fn answers_are_kept_for_five_minutes() {
        let t0 = DateTime::parse_from_rfc3339("2026-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut cache = RoleCache::default();
        assert_eq!(cache.fresh(-1, 7, t0), None);
        cache.remember(-1, 7, true, t0);
        cache.remember(-1, 8, false, t0);
        let later = |secs| t0 + TimeDelta::seconds(secs);
        assert_eq!(cache.fresh(-1, 7, later(0)), Some(Role::Administrator));
        assert_eq!(cache.fresh(-1, 8, later(299)), Some(Role::Member));
        assert_eq!(cache.fresh(-2, 7, later(1)), None);
        assert_eq!(cache.fresh(-1, 7, later(300)), None);
        assert_eq!(cache.fresh(-1, 7, later(-1)), None);
        // Remembering drops what went stale.
        cache.remember(-1, 9, true, later(200));
        assert_eq!(cache.len(), 3);
        cache.remember(-1, 9, true, later(400));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.fresh(-1, 9, later(401)), Some(Role::Administrator));
    }
}
