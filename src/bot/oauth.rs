//! Connecting an Instagram account from Telegram (Instagram Login OAuth through
//! the Pi's own web page): the single-use state behind a /connect link, the
//! redirect to Instagram's authorize page, and finishing the exchange — from the
//! callback page or from a URL or code pasted into the chat — into a stored
//! account with a sealed long-lived token. The code and the tokens never reach
//! a log line or a page.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Duration, Utc};
use log::{info, warn};
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::Connection;

use crate::bot::accounts::{self, PickOutcome};
use crate::config::{Config, Secret};
use crate::db;
use crate::instagram::Graph;
use crate::telegram::escape_html;
use crate::web::{OAuthPages, Page};

/// How long a /connect link works.
pub const STATE_LIFETIME_MINUTES: i64 = 10;
/// What /connect asks Instagram for: the profile, publishing, and the stories'
/// insights (`instagram::INSIGHTS_PERMISSION`), which a person may decline; then only
/// the insights are missing.
pub const SCOPE: &str = "instagram_business_basic,instagram_business_content_publish,\
                         instagram_business_manage_insights";

/// What /connect needs from storyline.toml, or which keys are missing.
pub struct OAuthApp {
    pub app_id: String,
    pub app_secret: Secret,
    pub public_url: String,
}

pub fn app(config: &Config) -> std::result::Result<OAuthApp, String> {
    let mut missing = Vec::new();
    if config.instagram.app_id.is_none() {
        missing.push("app_id under [instagram]");
    }
    if config.instagram.app_secret.is_none() {
        missing.push("app_secret under [instagram] (or STORYLINE_INSTAGRAM_APP_SECRET)");
    }
    if config.web.public_url.is_none() {
        missing.push("public_url under [web]");
    }
    match (
        &config.instagram.app_id,
        &config.instagram.app_secret,
        &config.web.public_url,
    ) {
        (Some(app_id), Some(app_secret), Some(public_url)) => Ok(OAuthApp {
            app_id: app_id.clone(),
            app_secret: app_secret.clone(),
            public_url: public_url.trim_end_matches('/').to_string(),
        }),
        _ => Err(format!(
            "To connect Instagram from here, set {} in storyline.toml and restart Storyline. \
             (Or add the account on the Pi with `storyline accounts add`.)",
            missing.join(", ")
        )),
    }
}

pub fn redirect_uri(app: &OAuthApp) -> String {
    format!("{}/oauth/callback", app.public_url)
}

/// A new single-use state for this chat and user; returns the /connect link.
pub fn new_link(
    conn: &Connection,
    app: &OAuthApp,
    chat_id: i64,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    let state: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    db::oauth::insert_state(
        conn,
        &state,
        chat_id,
        user_id,
        now,
        now + Duration::minutes(STATE_LIFETIME_MINUTES),
    )?;
    Ok(format!("{}/oauth/start?state={state}", app.public_url))
}

pub use crate::db::oauth::StateRow;

/// A state that is known, unused and unexpired at `now`.
pub fn live_state(conn: &Connection, state: &str, now: DateTime<Utc>) -> Result<Option<StateRow>> {
    db::oauth::live_state(conn, state, now)
}

/// The newest live state of a user in a chat, for a pasted bare code.
pub fn live_state_of(
    conn: &Connection,
    chat_id: i64,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    db::oauth::live_state_of(conn, chat_id, user_id, now)
}

/// Marks a live state used; false when it was unknown, used or expired.
fn consume(conn: &Connection, state: &str, now: DateTime<Utc>) -> Result<Option<StateRow>> {
    let row = live_state(conn, state, now)?;
    if row.is_some() {
        db::oauth::mark_used(conn, state, now)?;
    }
    Ok(row)
}

/// Instagram's authorize URL for a live state, or None.
pub fn authorize_url(
    config: &Config,
    app: &OAuthApp,
    conn: &Connection,
    state: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    if live_state(conn, state, now)?.is_none() {
        return Ok(None);
    }
    Ok(Some(format!(
        "{}/oauth/authorize?client_id={}&redirect_uri={}&response_type=code&scope={}&state={}",
        config.instagram.api_url.trim_end_matches('/'),
        encode(&app.app_id),
        encode(&redirect_uri(app)),
        encode(SCOPE),
        encode(state)
    )))
}

/// Percent-encoding for a query value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes a query value; None for broken escapes or non-UTF-8.
pub fn decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                // Two hex digits exactly: from_str_radix would also take "+f".
                let &[high, low] = bytes.get(i + 1..i + 3)? else {
                    return None;
                };
                out.push(hex_digit(high)? << 4 | hex_digit(low)?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// A query parameter of a URL or query string.
pub fn query_param(url_or_query: &str, name: &str) -> Option<String> {
    let query = url_or_query
        .split_once('?')
        .map_or(url_or_query, |(_, q)| q);
    let query = query.split('#').next().unwrap_or(query);
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| decode(v))
}

/// What a person pasted after /connect: the redirected URL (state and code) or
/// just the code. None when it does not look like either, or the code is empty
/// (sending that to Instagram would only use up the /connect link).
pub fn parse_pasted(text: &str) -> Option<(Option<String>, String)> {
    // Instagram ends the code with "#_", which would otherwise start a fragment.
    let cleaned = text.trim().replace("#_", "");
    let text = cleaned.as_str();
    if text.contains("code=") {
        let code = strip_code(&query_param(text, "code")?);
        return (!code.is_empty()).then(|| (query_param(text, "state"), code));
    }
    let looks_like_code = text.len() >= 20
        && text.len() <= 2048
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.#".contains(&b));
    looks_like_code.then(|| (None, strip_code(text)))
}

/// Instagram appends "#_" to the code in the redirect.
fn strip_code(code: &str) -> String {
    code.trim().trim_end_matches("#_").trim().to_string()
}

/// How finishing a connection ended, in words for a page and the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    Connected {
        chat_id: i64,
        username: String,
        changed_choice: Option<(Option<i64>, i64)>,
        user_id: i64,
        account_id: i64,
        /// What the login granted of instagram_business_manage_insights (None: not said).
        insights_granted: Option<bool>,
    },
    Failed {
        chat_id: Option<i64>,
        reason: String,
    },
}

/// Uses the state and exchanges the code: short-lived token → long-lived token →
/// profile → account with sealed token, made the chat's account. The state is
/// used up first, so the same link or code cannot be replayed.
pub fn finish(
    conn: &mut Connection,
    config: &Config,
    graph: &Graph,
    key: Option<&[u8; 32]>,
    state: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Finished> {
    let Ok(app) = app(config) else {
        return Ok(Finished::Failed {
            chat_id: None,
            reason: "Connecting Instagram is not configured on this Storyline.".into(),
        });
    };
    let Some(row) = consume(conn, state, now)? else {
        return Ok(Finished::Failed {
            chat_id: None,
            reason: "This link was already used or has expired. Send /connect in Telegram for a new one.".into(),
        });
    };
    let fail = |reason: String| {
        Ok(Finished::Failed {
            chat_id: Some(row.chat_id),
            reason,
        })
    };
    let Some(key) = key else {
        return fail("The key file that protects stored tokens is missing or damaged, so the account cannot be stored.".into());
    };
    let short = match graph.exchange_code(
        &app.app_id,
        &app.app_secret,
        &redirect_uri(&app),
        &strip_code(code),
    ) {
        Ok(short) => short,
        Err(e) => {
            return fail(format!(
                "Instagram did not accept the login: {}",
                e.plain_words()
            ))
        }
    };
    let (long, expires_in) = match graph.long_lived_token(&app.app_secret, &short.token) {
        Ok(answer) => answer,
        Err(e) => {
            return fail(format!(
                "Instagram did not give a long-lived token: {}",
                e.plain_words()
            ))
        }
    };
    let profile = match graph.profile(&long) {
        Ok(profile) => profile,
        Err(e) => {
            return fail(format!(
                "Instagram did not show the account's profile: {}",
                e.plain_words()
            ))
        }
    };
    let expires_at = now + Duration::seconds(expires_in.max(0));
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (account, created) = accounts::add_or_update_account(
        &tx,
        key,
        &profile.username,
        &profile.user_id,
        Some(&profile.username),
        &long,
        expires_at,
        accounts::Owner::Chat(row.chat_id),
        now,
    )
    .context("storing the connected account")?;
    // What the login granted; unknown (Instagram did not say) is found out at
    // the first read. Without it, the chat is told once (`tell_chat`).
    db::insights::set_permission(&tx, account.id, short.has_insights_permission())?;
    if short.has_insights_permission() == Some(true) {
        // Granted: a later loss of it is told again (once).
        db::insights::clear_permission_told(&tx, account.id)?;
    }
    let changed_choice = match accounts::choose_account(&tx, row.chat_id, account.id, now)? {
        PickOutcome::Changed { account, old } => Some((old, account.id)),
        _ => None,
    };
    tx.commit()?;
    info!(
        "chat {}: Instagram account @{} {} through /connect",
        row.chat_id,
        profile.username,
        if created { "connected" } else { "reconnected" }
    );
    Ok(Finished::Connected {
        chat_id: row.chat_id,
        username: profile.username,
        changed_choice,
        user_id: row.user_id,
        account_id: account.id,
        insights_granted: short.has_insights_permission(),
    })
}

/// The person declined on Instagram's page (or the callback came without a
/// code): the state is used up and the chat is told.
pub fn cancel(
    conn: &Connection,
    state: &str,
    denied: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Finished> {
    let row = consume(conn, state, now)?;
    let reason = match denied {
        Some(why) => format!(
            "Instagram did not give access: {}",
            why.chars().take(200).collect::<String>()
        ),
        None => "Instagram sent no authorization code back.".to_string(),
    };
    Ok(Finished::Failed {
        chat_id: row.map(|r| r.chat_id),
        reason,
    })
}

/// Tells the chat how connecting ended, and records a changed account choice
/// in settings_history; through the outbox.
pub fn tell_chat(
    conn: &mut Connection,
    config: &Config,
    finished: &Finished,
    now: DateTime<Utc>,
) -> Result<()> {
    let (chat_id, mut text) = match finished {
        Finished::Connected { chat_id, username, .. } => (
            *chat_id,
            format!(
                "✅ Instagram account @{} is connected and chosen for this chat. /settings shows it.",
                escape_html(username)
            ),
        ),
        Finished::Failed { chat_id: Some(chat_id), reason } => {
            (*chat_id, format!("⚠️ Connecting Instagram failed: {} Send /connect to try again.", escape_html(reason)))
        }
        Finished::Failed { chat_id: None, .. } => return Ok(()),
    };
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Connected without the insights permission: said once, here, with how to grant it.
    if let Finished::Connected {
        username,
        account_id,
        insights_granted: Some(false),
        ..
    } = finished
    {
        if db::insights::mark_permission_told(&tx, *account_id, now)? {
            text.push_str("\n\n");
            text.push_str(&crate::domain::ui::insights_permission_text(username));
        }
    }
    if let Finished::Connected {
        changed_choice: Some((old, new)),
        user_id,
        ..
    } = finished
    {
        let change = crate::domain::settings::Change {
            setting: "active_account_id",
            old: (*old).into(),
            new: (*new).into(),
        };
        crate::bot::chats::record_change_version(
            &tx,
            config,
            now,
            chat_id,
            *user_id,
            &[change],
            "/connect",
        )?;
    }
    let message = crate::telegram::send_message(chat_id, &text, None);
    crate::bot::chats::enqueue_all(&tx, &[message], now)?;
    tx.commit()?;
    Ok(())
}

/// The connection pages of the web page (`web::OAuthPages`): what they need is
/// the configuration, the key that seals tokens, the one Graph client, and a
/// way to wake the outbox for the chat's message. Each request opens its own
/// connection: these pages are visited a few times a year.
pub struct ConnectPages {
    pub config: std::sync::Arc<Config>,
    pub key: Option<[u8; 32]>,
    pub wake_outbox: std::sync::mpsc::Sender<()>,
    pub graph: Graph,
}

impl OAuthPages for ConnectPages {
    /// A 302 to Instagram's authorize page for a live state.
    fn start(&self, target: &str) -> Page {
        let Ok(app) = app(&self.config) else {
            return Page::html(
                404,
                "Not available",
                "Connecting Instagram is not configured on this Storyline.",
            );
        };
        let oauth_state = query_param(target, "state").unwrap_or_default();
        let found = db::open_without_migrating(&self.config.storage.database).and_then(|conn| {
            authorize_url(&self.config, &app, &conn, &oauth_state, crate::clock::now())
        });
        match found {
            Ok(Some(location)) => Page::Redirect(location),
            Ok(None) => Page::html(
                400,
                "Link expired",
                "This link was already used or has expired. Send /connect in Telegram for a new one.",
            ),
            Err(e) => {
                warn!("web: /oauth/start: {e:#}");
                Page::html(
                    500,
                    "Something went wrong",
                    "Storyline could not read its database. Try again in a moment.",
                )
            }
        }
    }

    /// Finishes the connection and tells the chat.
    fn callback(&self, target: &str) -> Page {
        let state = query_param(target, "state").unwrap_or_default();
        let code = query_param(target, "code");
        let denied =
            query_param(target, "error_description").or_else(|| query_param(target, "error"));
        let now = crate::clock::now();
        let outcome = (|| -> Result<Finished> {
            let mut conn = db::open_without_migrating(&self.config.storage.database)?;
            match (code, denied) {
                (Some(code), _) => finish(
                    &mut conn,
                    &self.config,
                    &self.graph,
                    self.key.as_ref(),
                    &state,
                    &code,
                    now,
                ),
                (None, denied) => cancel(&conn, &state, denied.as_deref(), now),
            }
            .and_then(|finished| {
                tell_chat(&mut conn, &self.config, &finished, now)?;
                Ok(finished)
            })
        })();
        let _ = self.wake_outbox.send(());
        match outcome {
            Ok(Finished::Connected { username, .. }) => Page::html(
                200,
                "Instagram connected",
                &format!("@{username} is connected to Storyline. You can close this tab and go back to Telegram."),
            ),
            Ok(Finished::Failed { reason, .. }) => {
                log_failure(&reason);
                Page::html(400, "Not connected", &reason)
            }
            Err(e) => {
                warn!("web: /oauth/callback: {e:#}");
                Page::html(500, "Something went wrong", "Storyline could not finish the connection. Send /connect in Telegram to try again.")
            }
        }
    }
}

/// Logs a failure without the code or a token (they are not in `reason`).
pub fn log_failure(reason: &str) {
    warn!("Instagram connection failed: {reason}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_urls_and_codes() {
        let url = "https://pi.example/oauth/callback?code=AQBx-y_z123#_&state=abc123";
        assert_eq!(
            parse_pasted(url),
            Some((Some("abc123".into()), "AQBx-y_z123".into()))
        );
        let url = "https://pi.example/oauth/callback?state=s1&code=AQD%2Bq#_";
        assert_eq!(parse_pasted(url), Some((Some("s1".into()), "AQD+q".into())));
        assert_eq!(
            parse_pasted("  AQDxxxxxxxxxxxxxxxxxxxxxxxx#_ "),
            Some((None, "AQDxxxxxxxxxxxxxxxxxxxxxxxx".into()))
        );
        assert_eq!(parse_pasted("hello there"), None);
        assert_eq!(parse_pasted("short"), None);
        assert_eq!(parse_pasted("code=%zz"), None);
    }

    /// Cases the property tests below found.
    #[test]
    fn found_by_fuzzing() {
        // from_str_radix takes a sign, so "%+0" used to decode to a NUL.
        for broken in ["%+0", "%+f", "%-0", "a%+fb", "%0", "%"] {
            assert_eq!(decode(broken), None, "{broken:?}");
        }
        assert_eq!(decode("%2B%2b"), Some("++".into()));
        // An empty code used to be accepted and sent to Instagram, using up the
        // /connect link.
        for pasted in [
            "https://pi.example/oauth/callback?code=",
            "https://pi.example/oauth/callback?code=#_&state=abc",
            "https://pi.example/oauth/callback?state=abc&code=%20%20",
            "code=",
        ] {
            assert_eq!(parse_pasted(pasted), None, "{pasted:?}");
        }
        assert_eq!(
            parse_pasted("https://pi.example/oauth/callback?code=a%20%23_&state=s"),
            Some((Some("s".into()), "a".into()))
        );
    }

    #[test]
    fn encoding_round_trips() {
        for s in ["a b&c=d/é", "", "~-_."] {
            assert_eq!(decode(&encode(s)).as_deref(), Some(s));
        }
        assert_eq!(decode("%4"), None);
    }

    #[test]
    fn pages_escape_and_parsers_never_panic() {
        assert!(crate::web::page("<x>", "a&b").contains("&lt;x&gt;"));
        let mut seed: u64 = 7;
        for _ in 0..5000 {
            let mut s = String::new();
            for _ in 0..(seed % 30) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push(
                    [
                        '%', '=', '&', '?', 'c', 'o', 'd', 'e', '#', '_', 'A', '4', 'é',
                    ][(seed % 13) as usize],
                );
            }
            let _ = parse_pasted(&s);
            let _ = query_param(&s, "code");
        }
    }

    // ---- property tests (`cargo test --lib fuzz_oauth`) ----

    use crate::fuzz_input::{self, mutate_text, mutations, text_from};
    use proptest::prelude::*;

    const PASTE_ALPHABET: &str = "%=&?#_codestaAQB4f+ /:.-";

    const URL_PIECES: &[&[u8]] = &[
        b"code=",
        b"state=",
        b"&",
        b"?",
        b"#_",
        b"#",
        b"%",
        b"%2",
        b"%zz",
        b"%+f",
        b"%C3",
        b"+",
        b" ",
        b"\xc3\xa9",
    ];

    /// Whether every '%' in `text` starts an escape of two hex digits.
    fn escapes_are_well_formed(text: &str) -> bool {
        let bytes = text.as_bytes();
        bytes.iter().enumerate().all(|(i, b)| {
            *b != b'%'
                || bytes
                    .get(i + 1..i + 3)
                    .is_some_and(|pair| pair.iter().all(u8::is_ascii_hexdigit))
        })
    }

    /// A code as Instagram makes them, and a state as `new_link` makes them.
    fn any_code() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9_-]{1,200}",
            // Anything without surrounding spaces survives percent-encoding too.
            "[^\\s]([^\\n]{0,40}[^\\s])?"
                .prop_filter("Instagram's #_ is stripped", |c| !c.ends_with("#_")),
        ]
    }

    fn any_state() -> impl Strategy<Value = String> {
        "[0-9a-f]{32}"
    }

    proptest! {
        #![proptest_config(fuzz_input::config(1024))]

        /// The redirect URL, pasted as the browser shows it, gives back the state
        /// and code: parameters in either order, others around them, Instagram's
        /// "#_" after the code or at the end, spaces around the paste.
        #[test]
        fn fuzz_oauth_pasted_url_gives_state_and_code(
            state in any_state(),
            code in any_code(),
            code_first in any::<bool>(),
            extra in proptest::option::of("[a-z]{1,8}=[a-zA-Z0-9%]{0,8}"),
            hash_after_code in any::<bool>(),
            hash_at_end in any::<bool>(),
            padding in " {0,2}",
        ) {
            let code_param = format!("code={}{}", encode(&code), if hash_after_code { "#_" } else { "" });
            let state_param = format!("state={}", encode(&state));
            let mut params = if code_first { vec![code_param, state_param] } else { vec![state_param, code_param] };
            if let Some(extra) = extra {
                params.insert(1, extra);
            }
            let url = format!(
                "{padding}https://pi.example/oauth/callback?{}{}{padding}",
                params.join("&"),
                if hash_at_end { "#_" } else { "" }
            );
            prop_assert_eq!(parse_pasted(&url), Some((Some(state), code)));
        }

        /// A bare code, with "#_" or not, is taken as it is.
        #[test]
        fn fuzz_oauth_pasted_code_is_taken_as_is(
            code in "[A-Za-z0-9_.-]{20,300}",
            hash in any::<bool>(),
            padding in "[ \n\t]{0,2}",
        ) {
            let pasted = format!("{padding}{code}{}{padding}", if hash { "#_" } else { "" });
            prop_assert_eq!(parse_pasted(&pasted), Some((None, code)));
        }

        /// Arbitrary text never panics; what is accepted has a code, and a code
        /// without spaces around it.
        #[test]
        fn fuzz_oauth_arbitrary_paste(text in text_from(PASTE_ALPHABET, 120)) {
            if let Some((_, code)) = parse_pasted(&text) {
                prop_assert!(!code.is_empty(), "{:?} gave an empty code", text);
                prop_assert_eq!(code.trim(), code.as_str());
            }
            let _ = query_param(&text, "code");
            let _ = query_param(&text, "state");
        }

        /// Redirect URLs truncated, flipped or spliced never panic, and an empty
        /// code is never accepted.
        #[test]
        fn fuzz_oauth_mutated_paste(
            state in any_state(),
            code in any_code(),
            changes in mutations(URL_PIECES),
        ) {
            let url = format!(
                "https://pi.example/oauth/callback?code={}#_&state={state}",
                encode(&code)
            );
            let pasted = mutate_text(&url, &changes);
            if let Some((_, code)) = parse_pasted(&pasted) {
                prop_assert!(!code.is_empty(), "{:?} gave an empty code", pasted);
            }
        }

        /// decode undoes encode, and accepts only well-formed escapes.
        #[test]
        fn fuzz_oauth_decode_inverts_encode(value in ".{0,64}") {
            prop_assert_eq!(decode(&encode(&value)), Some(value));
        }

        #[test]
        fn fuzz_oauth_decode_is_strict(text in text_from("%0123456789abcdefABCDEFxyz+-", 40)) {
            if decode(&text).is_some() {
                prop_assert!(escapes_are_well_formed(&text), "{:?} was decoded", text);
            }
        }
    }
}
