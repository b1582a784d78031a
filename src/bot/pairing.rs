//! Set-up with only the token. While no admin is configured and no chat is
//! served, each start of `storyline run` makes a one-time pairing code (8
//! characters of an unambiguous alphabet, from the system's random source),
//! logs it once, and keeps only a salted HMAC of it. `/start CODE` in a chat,
//! within the hour, makes the sender an admin and serves that chat; the code is
//! then used up and never logged again, and a new one comes only while nobody
//! has paired. Guesses are checked in constant time (`ring::hmac::verify`).

use anyhow::{anyhow, Result};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use log::info;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::Connection;

use crate::bot::chats;
use crate::config::Config;
use crate::db::{self, pairing::PairedAdmin};

/// No 0/O, 1/I: a code read off a terminal is typed right. 32 characters, so a
/// random byte's low five bits pick one uniformly.
const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// 8 characters of 32: 40 bits.
pub const CODE_LEN: usize = 8;
/// How long a code works after the start that made it.
pub const LIFETIME_MINUTES: i64 = 60;

/// Whether pairing is open: no admin (configured or paired) and no chat served
/// (listed in the config or enabled by an admin).
pub fn is_open(conn: &Connection, config: &Config) -> Result<bool> {
    Ok(config.access.allowed_chat_ids.is_empty()
        && chats::admins(conn, &config.access.admin_user_ids)?.is_empty()
        && db::pairing::authorized_chats(conn)?.is_empty())
}

/// At the start of `run`: while pairing is open, a new code (stored, every older
/// unused one dropped) to show the operator; otherwise none, and no code left
/// that could still be used.
pub fn start(conn: &Connection, config: &Config, now: DateTime<Utc>) -> Result<Option<String>> {
    if !is_open(conn, config)? {
        db::pairing::drop_unused_codes(conn)?;
        return Ok(None);
    }
    let code = new_code()?;
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| anyhow!("the system random number generator failed"))?;
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &salt), code.as_bytes());
    db::pairing::replace_code(
        conn,
        &salt,
        tag.as_ref(),
        now,
        now + Duration::minutes(LIFETIME_MINUTES),
    )?;
    Ok(Some(code))
}

fn new_code() -> Result<String> {
    let mut bytes = [0u8; CODE_LEN];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow!("the system random number generator failed"))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect())
}

/// A code as typed: case, spaces and dashes do not matter. None when it cannot
/// be a code at all.
fn normalize(given: &str) -> Option<String> {
    let code: String = given
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// `/start CODE` from `user_id` in `chat_id`: when pairing is open and `given` is
/// the live code, uses it up and makes the user an admin (the caller enables the
/// chat in the same transaction). False for anything else: a wrong, expired or
/// used code, or pairing closed.
pub fn redeem(
    conn: &Connection,
    config: &Config,
    given: &str,
    user_id: i64,
    chat_id: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let Some(code) = normalize(given) else {
        return Ok(false);
    };
    if !is_open(conn, config)? {
        return Ok(false);
    }
    let Some(live) = db::pairing::live_code(conn, now)? else {
        return Ok(false);
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, &live.salt);
    if hmac::verify(&key, code.as_bytes(), &live.tag).is_err() {
        return Ok(false);
    }
    if !db::pairing::use_code(conn, live.id, user_id, chat_id, now)? {
        return Ok(false);
    }
    db::pairing::add_admin(conn, user_id, chat_id, now)?;
    info!("chat {chat_id}: paired with the one-time code; user {user_id} is now an admin");
    Ok(true)
}

/// Who runs this Storyline and where, for `check` and `doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub configured_admins: Vec<i64>,
    pub paired_admins: Vec<PairedAdmin>,
    pub configured_chats: Vec<i64>,
    /// Chats an admin enabled: (chat, admin).
    pub enabled_chats: Vec<(i64, i64)>,
    /// When the live pairing code expires, if one is live.
    pub code_expires: Option<DateTime<Utc>>,
}

impl Access {
    pub fn read(conn: &Connection, config: &Config, now: DateTime<Utc>) -> Result<Access> {
        Ok(Access {
            configured_admins: config.access.admin_user_ids.clone(),
            paired_admins: db::pairing::paired_admins(conn)?,
            configured_chats: config.access.allowed_chat_ids.clone(),
            enabled_chats: db::pairing::authorized_chats(conn)?,
            code_expires: db::pairing::live_code_expiry(conn, now)?,
        })
    }

    /// Nobody paired or configured yet (no database counts as such).
    pub fn from_config(config: &Config) -> Access {
        Access {
            configured_admins: config.access.admin_user_ids.clone(),
            paired_admins: Vec::new(),
            configured_chats: config.access.allowed_chat_ids.clone(),
            enabled_chats: Vec::new(),
            code_expires: None,
        }
    }

    pub fn pairing_pending(&self) -> bool {
        self.configured_admins.is_empty()
            && self.paired_admins.is_empty()
            && self.configured_chats.is_empty()
            && self.enabled_chats.is_empty()
    }

    /// Plain text lines (no HTML): the admins and chats with where each comes
    /// from, or how to pair.
    pub fn lines(&self) -> Vec<String> {
        if self.pairing_pending() {
            let mut lines = vec![
                "pairing pending: no admin and no chat yet. `storyline run` prints a one-time \
                 pairing code (valid for an hour); send /start CODE to the bot in the chat it \
                 should serve"
                    .to_string(),
            ];
            if let Some(until) = self.code_expires {
                lines.push(format!(
                    "a pairing code is live until {} (see the log of `storyline run`)",
                    utc_text(until)
                ));
            }
            return lines;
        }
        let list = |items: Vec<String>| {
            if items.is_empty() {
                "none".to_string()
            } else {
                items.join(", ")
            }
        };
        let admins = self
            .configured_admins
            .iter()
            .map(|id| format!("{id} (storyline.toml)"))
            .chain(self.paired_admins.iter().map(|a| {
                format!(
                    "{} (paired in chat {} at {})",
                    a.user_id,
                    a.chat_id,
                    utc_text(a.added_at)
                )
            }))
            .collect();
        let chats = self
            .configured_chats
            .iter()
            .map(|id| format!("{id} (storyline.toml)"))
            .chain(
                self.enabled_chats
                    .iter()
                    .map(|(chat, by)| format!("{chat} (enabled by {by})")),
            )
            .collect();
        vec![
            format!("admins: {}", list(admins)),
            format!("served chats: {}", list(chats)),
        ]
    }
}

/// "2026-03-01T10:00:00Z": how `check` and `doctor` have always shown these times.
fn utc_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn config(access: &str) -> Config {
        crate::config::parse(
            access,
            std::path::Path::new("storyline.toml"),
            std::path::Path::new("/srv"),
            &|_| None,
        )
        .unwrap()
    }

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(minute)
    }

    #[test]
    fn codes_are_eight_unambiguous_characters_and_differ() {
        let codes: Vec<String> = (0..50).map(|_| new_code().unwrap()).collect();
        for code in &codes {
            assert_eq!(code.len(), CODE_LEN, "{code}");
            assert!(
                !code.contains(['0', 'O', '1', 'I']),
                "{code} has an ambiguous character"
            );
            assert_eq!(normalize(code).as_deref(), Some(code.as_str()));
        }
        let distinct: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), codes.len());
    }

    #[test]
    fn typed_codes_are_forgiven_case_spaces_and_dashes() {
        assert_eq!(normalize(" abcd-efgh ").as_deref(), Some("ABCDEFGH"));
        assert_eq!(normalize("ABCD EFGH").as_deref(), Some("ABCDEFGH"));
        assert_eq!(normalize("ABCDEFG"), None);
        assert_eq!(normalize("ABCDEFGHJ"), None);
        assert_eq!(normalize("ABCDEFG0"), None);
        assert_eq!(normalize(""), None);
    }

    #[test]
    fn a_code_pairs_once_within_the_hour_and_only_while_nobody_has() {
        let open = config("");
        let mut conn = db::open_in_memory_for_tests();
        let code = start(&conn, &open, at(0)).unwrap().unwrap();
        assert!(is_open(&conn, &open).unwrap());
        // A start later makes a new code; the old one is dead.
        let old = code;
        let code = start(&conn, &open, at(1)).unwrap().unwrap();
        assert_ne!(old, code);
        assert!(!redeem(&conn, &open, &old, 7, -5, at(2)).unwrap());
        let wrong = format!(
            "{}{}",
            if code.starts_with('A') { 'B' } else { 'A' },
            &code[1..]
        );
        assert!(!redeem(&conn, &open, &wrong, 7, -5, at(2)).unwrap());
        // Expired an hour after it was made.
        assert!(!redeem(&conn, &open, &code, 7, -5, at(61)).unwrap());
        let code = start(&conn, &open, at(100)).unwrap().unwrap();
        let typed = code.to_lowercase();
        assert!(redeem(&conn, &open, &typed, 7, -5, at(101)).unwrap());
        assert_eq!(chats::admins(&conn, &[]).unwrap(), vec![7]);
        // Used: nobody else gets in with it.
        assert!(!redeem(&conn, &open, &code, 8, -6, at(102)).unwrap());
        // The caller enables the chat; then pairing is closed and a start makes no code.
        let tx = conn.transaction().unwrap();
        db::insert_chat(&tx, -5, None, Some(7), at(101)).unwrap();
        tx.commit().unwrap();
        assert!(!is_open(&conn, &open).unwrap());
        assert_eq!(start(&conn, &open, at(103)).unwrap(), None);
        let access = Access::read(&conn, &open, at(104)).unwrap();
        assert!(!access.pairing_pending());
        assert_eq!(
            access.lines(),
            [
                "admins: 7 (paired in chat -5 at 2026-03-01T10:41:00Z)",
                "served chats: -5 (enabled by 7)"
            ]
        );
    }

    #[test]
    fn configured_admins_or_chats_close_pairing() {
        let conn = db::open_in_memory_for_tests();
        for access in [
            "[access]\nadmin_user_ids = [42]\n",
            "[access]\nallowed_chat_ids = [-5]\n",
        ] {
            let config = config(access);
            assert!(!is_open(&conn, &config).unwrap(), "{access}");
            assert_eq!(start(&conn, &config, at(0)).unwrap(), None, "{access}");
        }
        // A code made while open dies when the config gains an admin.
        let code = start(&conn, &config(""), at(0)).unwrap().unwrap();
        let closed = config("[access]\nadmin_user_ids = [42]\n");
        assert!(!redeem(&conn, &closed, &code, 7, -5, at(1)).unwrap());
        assert_eq!(start(&conn, &closed, at(2)).unwrap(), None);
        assert!(!redeem(&conn, &config(""), &code, 7, -5, at(3)).unwrap());
        let access = Access::read(&conn, &closed, at(4)).unwrap();
        assert_eq!(
            access.lines(),
            ["admins: 42 (storyline.toml)", "served chats: none"]
        );
    }

    #[test]
    fn pending_access_says_how_to_pair() {
        let conn = db::open_in_memory_for_tests();
        let open = config("");
        start(&conn, &open, at(0)).unwrap();
        let lines = Access::read(&conn, &open, at(1)).unwrap().lines();
        expect_test::expect![[r#"
            [
                "pairing pending: no admin and no chat yet. `storyline run` prints a one-time pairing code (valid for an hour); send /start CODE to the bot in the chat it should serve",
                "a pairing code is live until 2026-03-01T10:00:00Z (see the log of `storyline run`)",
            ]
        "#]]
        .assert_debug_eq(&lines);
    }
}
