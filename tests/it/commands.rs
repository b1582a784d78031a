//! Commands and access control: who is served, who is refused, and what they see.

use crate::helpers::*;
use crate::support::{wait_until, Env, ADMIN, CHAT};

const STRANGER: i64 = 77;

#[test]
fn help_start_status_pause_resume_dryrun() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let help = say(&env, CHAT, STRANGER, "/help");
    for command in [
        "/settings",
        "/status",
        "/pause",
        "/resume",
        "/dryrun",
        "/help",
    ] {
        assert!(
            help.text.contains(command),
            "{command} missing from {}",
            help.text
        );
    }
    let start = say(&env, CHAT, STRANGER, "/start");
    assert!(start.text.contains("/settings"), "{}", start.text);

    let status = say(&env, CHAT, STRANGER, "/status");
    assert!(status.text.contains("Mode: 🧪 Dry run"), "{}", status.text);
    assert!(
        status.text.contains("Posting: ▶️ Active"),
        "{}",
        status.text
    );
    assert!(status.text.contains("Uptime: "), "{}", status.text);

    let paused = say(&env, CHAT, STRANGER, "/pause");
    assert!(paused.text.contains("paused by @ada"), "{}", paused.text);
    let again = say(&env, CHAT, STRANGER, "/pause");
    assert!(again.text.contains("already paused"), "{}", again.text);
    assert_eq!(chat_column(&env, CHAT, "paused_by"), Some(STRANGER));
    let resumed = say(&env, CHAT, STRANGER, "/resume");
    assert!(resumed.text.contains("resumed"), "{}", resumed.text);
    assert_eq!(chat_column(&env, CHAT, "is_paused"), Some(0));

    let off = say(&env, CHAT, STRANGER, "/dryrun off");
    assert!(off.text.contains("Dry run is <b>off</b>"), "{}", off.text);
    assert_eq!(chat_column(&env, CHAT, "dry_run_mode"), Some(0));
    let toggled = say(&env, CHAT, STRANGER, "/dryrun");
    assert!(
        toggled.text.contains("Dry run is <b>ON</b>"),
        "{}",
        toggled.text
    );
    let bad = say(&env, CHAT, STRANGER, "/dryrun maybe");
    assert!(bad.text.contains("/dryrun on"), "{}", bad.text);
    let unknown = say(&env, CHAT, STRANGER, "/frobnicate");
    assert!(unknown.text.contains("/help"), "{}", unknown.text);

    // pause, resume, off, on: four versions after the first.
    assert_eq!(history_count(&env, CHAT), 5);
    let commands = env.tg.calls_of("setMyCommands");
    assert!(!commands.is_empty());
    let registered = commands[0].params["commands"].to_string();
    assert!(registered.contains("\"settings\"") && registered.contains("\"status\""));
}

#[test]
fn status_shows_times_in_the_chats_zone_and_what_happens_at_a_slot() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    open_prompt(&env, CHAT, &menu, "🌍 Time zone");
    let set = say(&env, CHAT, ADMIN, "Europe/Berlin");
    assert!(set.text.contains("Europe/Berlin"), "{}", set.text);

    say(&env, CHAT, ADMIN, "/pause");
    let paused_at: String = env
        .db()
        .query_row(
            "SELECT paused_at FROM chats WHERE chat_id = ?1",
            [CHAT],
            |r| r.get(0),
        )
        .unwrap();
    let since = chrono::DateTime::parse_from_rfc3339(&paused_at)
        .unwrap()
        .with_timezone(&"Europe/Berlin".parse::<storyline::zone::Tz>().unwrap())
        .format("since %a %d %b %H:%M %Z")
        .to_string();
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(
        status.text.contains(&format!("Paused by @ada {since}")),
        "{since}: {}",
        status.text
    );
    assert!(!status.text.contains("UTC"), "{}", status.text);
    assert!(
        status.text.contains("Mode: 🧪 Dry run: stories come here"),
        "{}",
        status.text
    );

    // Live with the Instagram API on but Auto post off: a person posts.
    say(&env, CHAT, ADMIN, "/dryrun off");
    let menu = say(&env, CHAT, ADMIN, "/settings");
    press(&env, CHAT, &menu, "⬜ Instagram API");
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(
        status
            .text
            .contains("Mode: ✋ Stories come here at their slots for someone to post by hand\n"),
        "{}",
        status.text
    );
    assert!(!status.text.contains("🚀"), "{}", status.text);
    // Auto post on, but nothing to publish with: still by hand, and why.
    let menu = say(&env, CHAT, ADMIN, "/settings");
    press(&env, CHAT, &menu, "⬜ Auto post");
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(
        status
            .text
            .contains("by hand. Auto post is on but cannot publish: "),
        "{}",
        status.text
    );
}

#[test]
fn an_unknown_chat_is_refused_once_with_its_id_and_sees_nothing_else() {
    let env = Env::new();
    let _daemon = env.start_polling();
    // Some data in the served chat that must never leak.
    say(&env, CHAT, ADMIN, "/pause");

    let stranger_chat = -100_777;
    let refusal = say(&env, stranger_chat, STRANGER, "/settings");
    assert!(refusal.text.contains("-100777"), "{}", refusal.text);
    assert!(refusal.reply_markup.is_none());
    env.tg
        .push_message(stranger_chat, STRANGER, "eve", "/status");
    env.tg
        .push_message(stranger_chat, STRANGER, "eve", "/start");
    let answer = press_data(&env, stranger_chat, STRANGER, 1, "1:set:pause:0");
    assert!(is_alert(&answer));
    // A later update in the served chat proves the ones before were handled.
    say(&env, CHAT, ADMIN, "/status");
    let to_stranger = env.tg.messages(stranger_chat);
    assert_eq!(to_stranger.len(), 1, "{to_stranger:?}");
    assert!(!to_stranger[0].text.contains("@ada") && !to_stranger[0].text.contains("Paused"));
    let db = env.db();
    let rows: i64 = db
        .query_row(
            "SELECT (SELECT count(*) FROM chats WHERE chat_id = ?1) + (SELECT count(*) FROM interactions WHERE chat_id = ?1)",
            [stranger_chat],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        rows, 0,
        "nothing of the refused chat is stored but the refusal"
    );
    assert_eq!(chat_column(&env, CHAT, "is_paused"), Some(1));
}

#[test]
fn an_admin_enables_a_new_chat_with_start() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let new_chat = -100_555;
    let refused = say(&env, new_chat, STRANGER, "/start");
    assert!(refused.text.contains("-100555"));
    let welcome = say(&env, new_chat, ADMIN, "/start");
    assert!(welcome.text.contains("now set up"), "{}", welcome.text);
    let status = say(&env, new_chat, STRANGER, "/status");
    assert!(status.text.contains("Status"), "{}", status.text);
    let authorized_by: Option<i64> = env
        .db()
        .query_row(
            "SELECT authorized_by FROM chats WHERE chat_id = ?1",
            [new_chat],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(authorized_by, Some(ADMIN));
}

#[test]
fn html_in_names_is_escaped() {
    let env = Env::new();
    // /pause in a group is for its administrators: Telegram says Eve is one.
    env.tg.set_member(CHAT, 5, "administrator");
    let _daemon = env.start_polling();
    env.tg.push_raw_update(serde_json::json!({
        "update_id": 5000,
        "message": {
            "message_id": 900, "date": 0, "text": "/pause",
            "chat": {"id": CHAT, "type": "group", "title": "t"},
            "from": {"id": 5, "is_bot": false, "first_name": "<b>Eve</b>"}
        }
    }));
    let reply = wait_until("the pause reply", WAIT, || {
        env.tg.messages(CHAT).into_iter().find(|m| !is_notice(m))
    });
    assert!(
        reply.text.contains("&lt;b&gt;Eve&lt;/b&gt;"),
        "{}",
        reply.text
    );
}

#[test]
fn updates_it_cannot_read_are_skipped_not_fatal() {
    let env = Env::new();
    let _daemon = env.start_polling();
    env.tg
        .push_raw_update(serde_json::json!({"update_id": 6000, "message": {"chat": "nonsense"}}));
    env.tg
        .push_raw_update(serde_json::json!({"update_id": 6001, "edited_message": {}}));
    env.tg.push_raw_update(serde_json::json!({
        "update_id": 6002,
        "callback_query": {"id": "q1", "from": {"id": ADMIN, "is_bot": false, "first_name": "A"}, "data": "1:refresh"}
    }));
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(status.text.contains("Status"));
    wait_until("everything confirmed", WAIT, || {
        (env.tg.pending_updates() == 0).then_some(())
    });
}
