//! Rate limits: each chat's bucket on commands and presses (`[limits]`), and the
//! outbox keeping to Telegram's own limits against a fake that enforces them
//! (`support::flood`): a 429 holds back only its chat, a group gets at most 20 a
//! minute. The fake's strictness itself is tested here too.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;
use crate::support::{wait_until, Call, Env, FakeTelegram, ADMIN, CHAT, TOKEN};

const OTHER: i64 = 4343;
const GROUP: i64 = -4242;

/// The base config serving `chats`, followed by `extra`.
fn serve(env: &Env, chats: &[i64], extra: &str) {
    let ids: Vec<String> = chats.iter().map(i64::to_string).collect();
    let base = env.base_config().replace(
        &format!("allowed_chat_ids = [{CHAT}]"),
        &format!("allowed_chat_ids = [{}]", ids.join(", ")),
    );
    assert!(base.contains(&ids.join(", ")), "{base}");
    env.write_config_raw(&format!("{base}\n{extra}"));
}

fn outbox_len(env: &Env) -> i64 {
    env.db()
        .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
        .unwrap()
}

/// Waits until Telegram was told every update up to `last` is handled and the
/// outbox sent everything.
fn wait_settled(env: &Env, last: i64) {
    wait_until("every update confirmed", WAIT, || {
        (env.tg.confirmed_offset() > last).then_some(())
    });
    wait_until("an empty outbox", WAIT, || {
        (outbox_len(env) == 0).then_some(())
    });
}

fn is_slow_down(text: &str) -> bool {
    text.starts_with("🐢")
}

#[test]
fn sixty_status_commands_get_a_few_replies_and_one_notice_and_presses_no_effect() {
    let env = Env::new();
    // One token a minute, so nothing refills while the test runs.
    env.write_config("[limits]\ncommands_per_minute = 1\ncommand_burst = 3\n");
    let _daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    let before = env.tg.messages(CHAT).len();
    let mut last = 0;
    for _ in 0..60 {
        last = env.tg.push_message(CHAT, ADMIN, "ada", "/status");
    }
    wait_settled(&env, last);
    // Nothing was kept to answer later.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(outbox_len(&env), 0);
    let sent: Vec<String> = env
        .tg
        .messages(CHAT)
        .into_iter()
        .skip(before)
        .filter(|m| !is_notice(m))
        .map(|m| m.text)
        .collect();
    let statuses = sent.iter().filter(|t| t.starts_with("📊")).count();
    let notices: Vec<&String> = sent.iter().filter(|t| is_slow_down(t)).collect();
    assert_eq!(statuses, 2, "the burst of 3 less /settings: {sent:#?}");
    assert_eq!(notices.len(), 1, "{sent:#?}");
    assert!(
        notices[0].contains("answer again in about"),
        "{}",
        notices[0]
    );
    assert_eq!(sent.len(), 3, "{sent:#?}");
    let stored: String = env
        .db()
        .query_row(
            "SELECT value FROM kv WHERE key = 'telegram.last_update_id'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        stored,
        last.to_string(),
        "every update is stored as handled"
    );

    // A press over the limit is answered, briefly, and changes nothing.
    let from = env.tg.calls().len();
    let data = button_data(&menu, "🔄");
    let answer = press_data(&env, CHAT, ADMIN, menu.message_id, &data);
    let text = answer.params["text"].as_str().unwrap_or_default();
    assert!(text.contains("Too many presses"), "{text}");
    std::thread::sleep(Duration::from_millis(500));
    let edits = env.tg.calls()[from..]
        .iter()
        .filter(|c| c.method.starts_with("edit") || c.method == "sendMessage")
        .count();
    assert_eq!(edits, 0, "the press had an effect");
}

/// The successful calls naming `chat`, in order.
fn delivered_to(env: &Env, chat: i64) -> Vec<Call> {
    env.tg
        .calls()
        .into_iter()
        .filter(|c| c.status == Some(200) && c.params["chat_id"] == json!(chat))
        .collect()
}

#[test]
fn a_429_for_one_chat_holds_back_that_chat_only_and_keeps_its_order() {
    let env = Env::new();
    serve(&env, &[CHAT, OTHER], "");
    let _daemon = env.start_polling();
    let retry_after = 4;
    env.tg.flood_chat(CHAT, retry_after);
    env.tg.push_message(CHAT, ADMIN, "ada", "/help");
    env.tg.push_message(CHAT, ADMIN, "ada", "/status");
    env.tg.push_message(OTHER, ADMIN, "ada", "/help");
    let (_, refused) = env.tg.wait_for(0, WAIT, |c| c.status == Some(429));
    assert_eq!(refused.params["chat_id"], json!(CHAT));
    let other = wait_until("the other chat's reply", WAIT, || {
        delivered_to(&env, OTHER).into_iter().next()
    });
    assert!(
        other.at < refused.at + Duration::from_secs(retry_after),
        "the other chat waited for the held one: {:?}",
        other.at - refused.at
    );
    let text_of = |c: &Call| c.params["text"].as_str().unwrap_or_default().to_string();
    let held: Vec<String> = wait_until("the held chat's replies", WAIT, || {
        let calls: Vec<Call> = delivered_to(&env, CHAT)
            .into_iter()
            .filter(|c| c.at > refused.at)
            .collect();
        calls
            .iter()
            .any(|c| text_of(c).starts_with("📊"))
            .then_some(calls)
    })
    .iter()
    .map(|c| {
        assert!(
            c.at >= refused.at + Duration::from_millis(retry_after * 1000 - 100),
            "retry_after not kept: {:?}",
            c.at - refused.at
        );
        assert!(other.at < c.at);
        text_of(c)
    })
    .collect();
    // The chat's calls kept their order: the refused one first, /help before /status.
    assert_eq!(held[0], text_of(&refused));
    let help = held.iter().position(|t| t.starts_with("📖"));
    let status = held.iter().position(|t| t.starts_with("📊"));
    assert!(help.is_some() && help < status, "{held:#?}");
}

#[test]
fn a_burst_of_forty_messages_to_a_group_is_spread_to_twenty_a_minute() {
    let env = Env::new();
    serve(
        &env,
        &[CHAT, GROUP],
        "[limits]\ncommands_per_minute = 600\ncommand_burst = 50\n",
    );
    // 60x: a daemon minute is a real second, and the fake counts in daemon time.
    let speed = 60.0;
    let anchor = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let clock = format!("2030-03-04T10:00:00Z,{anchor},{speed}");
    let from = env.tg.calls().len();
    let _daemon = env.start_with_env(&[
        ("STORYLINE_TEST_CLOCK", clock.as_str()),
        ("STORYLINE_TEST_PACING", "1"),
    ]);
    env.tg.wait_for_method(from, "getUpdates", WAIT);
    for _ in 0..40 {
        env.tg.push_message(GROUP, ADMIN, "ada", "/help");
    }
    let helps = wait_until("40 replies in the group", WAIT, || {
        let helps: Vec<Call> = delivered_to(&env, GROUP)
            .into_iter()
            .filter(|c| {
                c.params["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("📖"))
            })
            .collect();
        (helps.len() >= 40).then_some(helps)
    });
    assert_eq!(helps.len(), 40);
    let refused: Vec<Call> = env
        .tg
        .calls()
        .into_iter()
        .filter(|c| c.status == Some(429))
        .collect();
    assert!(refused.is_empty(), "the fake refused: {refused:#?}");
    // Everything the group got, the fake's way: no 21 within a (daemon) minute.
    let times: Vec<Instant> = delivered_to(&env, GROUP).iter().map(|c| c.at).collect();
    let minute = Duration::from_secs(60).div_f64(speed);
    for (i, at) in times.iter().enumerate().skip(20) {
        assert!(*at - times[i - 20] >= minute, "call {i}: {times:?}");
    }
    // And spread, not sent at once: the 21st a minute after the first.
    assert!(times[20] - times[0] >= minute);
}

// ---- the fake's flood control ---------------------------------------------------

fn post(tg: &FakeTelegram, method: &str, params: Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(format!("{}/bot{TOKEN}/{method}", tg.url()))
        .send_json(&params)
        .unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap())
}

fn send(tg: &FakeTelegram, chat: i64) -> (u16, Value) {
    post(tg, "sendMessage", json!({"chat_id": chat, "text": "x"}))
}

fn assert_flood(answer: (u16, Value)) -> u64 {
    let (status, body) = answer;
    assert_eq!(status, 429, "{body}");
    let retry_after = body["parameters"]["retry_after"].as_u64().unwrap();
    assert!(retry_after >= 1, "{body}");
    assert_eq!(
        body["description"],
        json!(format!("Too Many Requests: retry after {retry_after}"))
    );
    retry_after
}

#[test]
fn the_fake_refuses_a_sixth_message_to_a_chat_within_five_seconds() {
    let tg = FakeTelegram::start(TOKEN);
    for _ in 0..5 {
        assert_eq!(send(&tg, 9).0, 200);
    }
    assert!(assert_flood(send(&tg, 9)) <= 5);
    // Other chats, and calls naming no chat, go on.
    assert_eq!(send(&tg, 10).0, 200);
    assert_eq!(post(&tg, "getMe", json!({})).0, 200);
    // getChatMember is a question, not a message.
    for _ in 0..6 {
        post(&tg, "getChatMember", json!({"chat_id": 11, "user_id": 1}));
    }
    assert_eq!(send(&tg, 11).0, 200);
}

#[test]
fn the_fake_refuses_a_twenty_first_message_to_a_group_within_a_minute() {
    let tg = FakeTelegram::start(TOKEN);
    // A daemon minute is 5 real seconds; a chat's burst of 5 in 5 s is 417 ms.
    tg.set_speed(12.0);
    let burst_pause = Duration::from_millis(450);
    let start = Instant::now();
    for i in 0..20 {
        if i % 5 == 0 && i > 0 {
            std::thread::sleep(burst_pause);
        }
        assert_eq!(send(&tg, -77).0, 200, "message {i}");
    }
    assert!(start.elapsed() < Duration::from_secs(4), "too slow to tell");
    let retry_after = assert_flood(send(&tg, -77));
    assert!((2..=60).contains(&retry_after), "{retry_after}");
    // A private chat may have more than 20 a minute.
    for round in 0..5 {
        for i in 0..5 {
            assert_eq!(send(&tg, 77).0, 200, "round {round}, message {i}");
        }
        std::thread::sleep(burst_pause);
    }
}

#[test]
fn the_fake_refuses_a_thirty_first_message_within_a_second_and_a_forced_429() {
    let tg = FakeTelegram::start(TOKEN);
    let start = Instant::now();
    for chat in 1..=30 {
        assert_eq!(send(&tg, chat).0, 200);
    }
    if start.elapsed() < Duration::from_millis(900) {
        assert_eq!(assert_flood(send(&tg, 31)), 1);
    }
    let tg = FakeTelegram::start(TOKEN);
    tg.flood_chat(5, 7);
    assert_eq!(assert_flood(send(&tg, 5)), 7);
    assert_eq!(send(&tg, 6).0, 200);
    assert_eq!(send(&tg, 5).0, 200);
}
