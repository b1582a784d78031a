//! /connect: connecting an Instagram account through the Pi's web page (or a
//! pasted URL), against the fake Instagram OAuth and Graph hosts.

use std::time::Duration;

use crate::helpers::*;
use crate::support::{wait_until, Env, FakeInstagram, ADMIN, CHAT};

const LONG_TOKEN: &str = "IGAA-connect-LONG-lived-SECRET";
const IG_USER: &str = "17841400000000077";
const CODE: &str = "AQD-the-authorization-code";

struct Setup {
    env: Env,
    ig: FakeInstagram,
    public: String,
}

fn setup() -> Setup {
    let env = Env::new();
    let ig = FakeInstagram::start();
    ig.set_token(LONG_TOKEN, IG_USER, "brand_main");
    ig.expect_code(CODE);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let public = format!("http://127.0.0.1:{port}");
    let config = env.base_config().replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\"\npublic_url = \"{public}\""),
    );
    env.write_config_raw(&format!(
        "{config}\n[instagram]\napp_id = \"123456789\"\napp_secret = \"app-SECRET-value\"\napi_url = \"{url}\"\ngraph_url = \"{url}\"\n",
        url = ig.url()
    ));
    Setup { env, ig, public }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// /connect and the link of its button.
fn connect(s: &Setup) -> String {
    let reply = say(&s.env, CHAT, ADMIN, "/connect");
    let markup = reply.reply_markup.expect("a button");
    markup["inline_keyboard"][0][0]["url"]
        .as_str()
        .expect("a url button")
        .to_string()
}

fn get(url: &str) -> (u16, String, Option<String>, Option<String>) {
    let mut response = agent().get(url).call().expect("an answer");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let csp = response
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.body_mut().read_to_string().unwrap_or_default();
    (status, body, location, csp)
}

fn state_of(link: &str) -> String {
    link.split("state=").nth(1).unwrap().to_string()
}

#[test]
fn connect_through_the_web_page_stores_a_sealed_active_account() {
    let s = setup();
    let _daemon = s.env.start_polling();
    let link = connect(&s);
    assert!(
        link.starts_with(&format!("{}/oauth/start?state=", s.public)),
        "{link}"
    );
    let state = state_of(&link);
    assert_eq!(state.len(), 32);
    let (status, _, location, _) = wait_until("the web page", WAIT, || {
        std::panic::catch_unwind(|| get(&link)).ok()
    });
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(
        location.starts_with(&format!("{}/oauth/authorize?", s.ig.url())),
        "{location}"
    );
    for part in [
        "client_id=123456789",
        &format!(
            "redirect_uri={}",
            storyline::bot::oauth::encode(&format!("{}/oauth/callback", s.public))
        ),
        "response_type=code",
        "scope=instagram_business_basic%2Cinstagram_business_content_publish%2Cinstagram_business_manage_insights",
        &format!("state={state}"),
    ] {
        assert!(location.contains(part), "{part} missing from {location}");
    }
    let callback = format!("{}/oauth/callback?code={CODE}&state={state}", s.public);
    let (status, body, _, csp) = get(&callback);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("You can close this tab"), "{body}");
    assert!(!body.contains("<script"));
    assert!(csp.unwrap().contains("default-src 'none'"));
    let told = wait_until("the chat to be told", WAIT, || {
        s.env
            .tg
            .messages(CHAT)
            .into_iter()
            .find(|m| m.text.contains("is connected"))
    });
    assert!(told.text.contains("@brand_main"), "{}", told.text);
    let (user_id, active): (String, Option<i64>) = s
        .env
        .db()
        .query_row(
            "SELECT a.instagram_user_id, c.active_account_id FROM instagram_accounts a, chats c WHERE c.chat_id = ?1",
            [CHAT],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(user_id, IG_USER);
    assert!(active.is_some());
    // The account is the chat's that connected it, and no other's.
    let (owner, others, every_chat): (i64, i64, bool) = s
        .env
        .db()
        .query_row(
            "SELECT (SELECT chat_id FROM account_chats WHERE is_owner = 1),
                    (SELECT count(*) FROM account_chats WHERE is_owner = 0),
                    (SELECT every_chat FROM instagram_accounts)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((owner, others, every_chat), (CHAT, 0, false));
    let reason: String = s
        .env
        .db()
        .query_row(
            "SELECT reason FROM settings_history WHERE chat_id = ?1 AND valid_to IS NULL",
            [CHAT],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reason, "/connect");
    // The same link and code again: refused, nothing more stored.
    let (status, body, _, _) = get(&callback);
    assert_eq!(status, 400);
    assert!(body.contains("already used or has expired"), "{body}");
    let (status, _, _, _) = get(&link);
    assert_eq!(status, 400);
    // No secret in the database file or the log.
    for file in ["storyline.db", "storyline.db-wal"] {
        let bytes = std::fs::read(s.env.path().join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(LONG_TOKEN) && !text.contains(CODE),
            "a secret is stored in clear in {file}"
        );
    }
    let log = s.env.log();
    assert!(
        !log.contains(LONG_TOKEN) && !log.contains(CODE) && !log.contains("app-SECRET"),
        "{log}"
    );
}

#[test]
fn expired_forged_and_refused_logins_store_nothing() {
    let s = setup();
    let _daemon = s.env.start_polling();
    let link = connect(&s);
    let state = state_of(&link);
    s.env
        .db()
        .execute(
            "UPDATE oauth_states SET expires_at = '2000-01-01T00:00:00Z'",
            [],
        )
        .unwrap();
    let (status, body, _, _) = wait_until("the web page", WAIT, || {
        std::panic::catch_unwind(|| {
            get(&format!(
                "{}/oauth/callback?code={CODE}&state={state}",
                s.public
            ))
        })
        .ok()
    });
    assert_eq!(status, 400, "{body}");
    let (status, _, _, _) = get(&format!(
        "{}/oauth/callback?code={CODE}&state={}",
        s.public,
        "f".repeat(32)
    ));
    assert_eq!(status, 400);
    // Instagram refuses a wrong code: the page and the chat say so.
    let link = connect(&s);
    let (status, body, _, _) = get(&format!(
        "{}/oauth/callback?code=WRONG-code&state={}",
        s.public,
        state_of(&link)
    ));
    assert_eq!(status, 400);
    assert!(
        body.contains("Instagram did not accept the login"),
        "{body}"
    );
    wait_until("the chat to be told", WAIT, || {
        s.env
            .tg
            .messages(CHAT)
            .into_iter()
            .find(|m| m.text.contains("Connecting Instagram failed"))
    });
    let accounts: i64 = s
        .env
        .db()
        .query_row("SELECT count(*) FROM instagram_accounts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(accounts, 0);
}

#[test]
fn a_pasted_redirect_url_finishes_the_connection() {
    let s = setup();
    let _daemon = s.env.start_polling();
    let link = connect(&s);
    let pasted = format!(
        "{}/oauth/callback?code={CODE}#_&state={}",
        s.public,
        state_of(&link)
    );
    let reply = say(&s.env, CHAT, ADMIN, &pasted);
    assert!(
        reply.text.contains("Connecting Instagram"),
        "{}",
        reply.text
    );
    wait_until("the chat to be told", WAIT, || {
        s.env
            .tg
            .messages(CHAT)
            .into_iter()
            .find(|m| m.text.contains("@brand_main is connected"))
    });
    assert!(s.ig.calls_to("/oauth/access_token").len() == 1);
}

#[test]
fn connect_without_the_app_keys_says_which_to_set() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let reply = say(&env, CHAT, ADMIN, "/connect");
    for key in ["app_id", "app_secret", "public_url"] {
        assert!(reply.text.contains(key), "{key}: {}", reply.text);
    }
    assert!(reply.reply_markup.is_none(), "no dead link");
}

#[test]
fn add_account_in_the_selector_sends_the_connect_link() {
    let s = setup();
    let _daemon = s.env.start_polling();
    let menu = say(&s.env, CHAT, ADMIN, "/settings");
    let (_, selector) = press(&s.env, CHAT, &menu, "📸");
    let before = s.env.tg.messages(CHAT).len();
    press_data(
        &s.env,
        CHAT,
        ADMIN,
        selector.message_id,
        &button_data(&selector, "➕ Add account"),
    );
    let link = next_reply(&s.env, CHAT, before, "the connect link");
    let url = link.reply_markup.expect("a button")["inline_keyboard"][0][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        url.starts_with(&format!("{}/oauth/start?state=", s.public)),
        "{url}"
    );
}

#[test]
fn an_account_connected_without_insights_is_told_once_how_to_grant_them() {
    let s = setup();
    s.ig.deny_insights_permission(IG_USER);
    let _daemon = s.env.start_polling();
    for (round, code) in [CODE, "AQD-a-second-code"].into_iter().enumerate() {
        // A code is good for one login, as Instagram's are.
        s.ig.expect_code(code);
        let link = connect(&s);
        let pasted = format!(
            "{}/oauth/callback?code={code}#_&state={}",
            s.public,
            state_of(&link)
        );
        say(&s.env, CHAT, ADMIN, &pasted);
        wait_until("the chat to be told", WAIT, || {
            let told: Vec<_> = s
                .env
                .tg
                .messages(CHAT)
                .into_iter()
                .filter(|m| m.text.contains("@brand_main is connected"))
                .collect();
            (told.len() == round + 1).then_some(told)
        });
    }
    let connected: Vec<String> = s
        .env
        .tg
        .messages(CHAT)
        .into_iter()
        .map(|m| m.text)
        .filter(|t| t.contains("@brand_main is connected"))
        .collect();
    // The first connection says how to grant the permission; the second, still
    // without it, does not say it again.
    assert!(
        connected[0].contains("instagram_business_manage_insights")
            && connected[0].contains("/connect"),
        "{}",
        connected[0]
    );
    assert!(
        !connected[1].contains("instagram_business_manage_insights"),
        "{}",
        connected[1]
    );
    let granted: Option<i64> = s
        .env
        .db()
        .query_row(
            "SELECT insights_granted FROM instagram_accounts WHERE instagram_user_id = ?1",
            [IG_USER],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(granted, Some(0));
}
