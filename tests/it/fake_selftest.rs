//! Tests of the test support itself: the fake Telegram server must behave like the
//! real Bot API where the daemon depends on it (long polling, offsets, edits, callback
//! answers, error shapes) and inject each fault as documented, or every daemon test
//! built on it proves nothing. Driven with ureq, without the daemon.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{Env, FakeTelegram, Fault, ADMIN, CHAT, TOKEN};

const NOT_MODIFIED: &str = "Bad Request: message is not modified: specified new message \
     content and reply markup are exactly the same as a current content and reply markup \
     of the message";

struct Client {
    agent: ureq::Agent,
    base: String,
}

fn client(tg: &FakeTelegram) -> Client {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    Client {
        agent,
        base: format!("{}/bot{TOKEN}", tg.url()),
    }
}

impl Client {
    /// Posts JSON and returns the status and the body as text, or the transport error.
    fn try_call(&self, method: &str, params: &Value) -> Result<(u16, String), ureq::Error> {
        let mut response = self
            .agent
            .post(format!("{}/{method}", self.base))
            .send_json(params)?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string()?;
        Ok((status, body))
    }

    fn call(&self, method: &str, params: Value) -> (u16, Value) {
        let (status, body) = self
            .try_call(method, &params)
            .unwrap_or_else(|error| panic!("{method}: {error}"));
        let body =
            serde_json::from_str(&body).unwrap_or_else(|error| panic!("{method}: {error}: {body}"));
        (status, body)
    }

    fn ok(&self, method: &str, params: Value) -> Value {
        let (status, body) = self.call(method, params);
        assert_eq!(status, 200, "{method}: {body}");
        assert_eq!(body["ok"], json!(true), "{method}: {body}");
        body["result"].clone()
    }
}

fn keyboard(data: &str) -> Value {
    json!({"inline_keyboard": [[{"text": "Posted", "callback_data": data}]]})
}

#[test]
fn long_poll_returns_a_pushed_update_at_once() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    let update_id = tg.push_message(CHAT, ADMIN, "admin", "/start now");
    assert_eq!(update_id, 1000);

    let started = Instant::now();
    let updates = api.ok("getUpdates", json!({"offset": 0, "timeout": 5}));
    assert!(started.elapsed() < Duration::from_secs(2));
    let message = &updates[0]["message"];
    assert_eq!(updates[0]["update_id"], json!(1000));
    assert_eq!(message["text"], json!("/start now"));
    assert_eq!(message["from"]["id"], json!(ADMIN));
    assert_eq!(message["from"]["is_bot"], json!(false));
    assert_eq!(message["from"]["username"], json!("admin"));
    assert_eq!(message["chat"]["id"], json!(CHAT));
    assert_eq!(message["chat"]["type"], json!("private"));
    assert_eq!(
        message["entities"],
        json!([{"offset": 0, "length": 6, "type": "bot_command"}])
    );
    let group_update = tg.push_message(-77, ADMIN, "admin", "hello");
    let updates = api.ok("getUpdates", json!({"offset": group_update}));
    assert_eq!(updates[0]["message"]["chat"]["type"], json!("group"));
    assert!(updates[0]["message"].get("entities").is_none());
}

#[test]
fn long_poll_waits_for_a_push_or_the_timeout() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);

    let started = Instant::now();
    let updates = api.ok("getUpdates", json!({"timeout": 1}));
    assert_eq!(updates, json!([]));
    assert!(started.elapsed() >= Duration::from_millis(900));

    let from = tg.calls().len();
    std::thread::scope(|scope| {
        let poll = scope.spawn(|| {
            let started = Instant::now();
            (
                api.ok("getUpdates", json!({"timeout": 5})),
                started.elapsed(),
            )
        });
        tg.wait_for_method(from, "getUpdates", Duration::from_secs(5));
        let update_id = tg.push_message(CHAT, ADMIN, "admin", "hi");
        let (updates, elapsed) = poll.join().unwrap();
        assert_eq!(updates[0]["update_id"], json!(update_id));
        assert!(elapsed < Duration::from_secs(4), "woke after {elapsed:?}");
    });
}

#[test]
fn an_offset_confirms_and_forgets_older_updates() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    let first = tg.push_message(CHAT, ADMIN, "admin", "one");
    let second = tg.push_message(CHAT, ADMIN, "admin", "two");

    assert_eq!(api.ok("getUpdates", json!({})).as_array().unwrap().len(), 2);
    assert_eq!(
        api.ok("getUpdates", json!({"limit": 1}))[0]["update_id"],
        json!(first)
    );
    assert_eq!(tg.pending_updates(), 2);
    assert_eq!(tg.confirmed_offset(), 0);

    let updates = api.ok("getUpdates", json!({"offset": first + 1}));
    assert_eq!(updates.as_array().unwrap().len(), 1);
    assert_eq!(updates[0]["update_id"], json!(second));
    assert_eq!(tg.pending_updates(), 1);
    assert_eq!(tg.confirmed_offset(), first + 1);

    // A lower offset later cannot bring a confirmed update back.
    let updates = api.ok("getUpdates", json!({"offset": first}));
    assert_eq!(updates[0]["update_id"], json!(second));

    assert_eq!(
        api.ok("getUpdates", json!({"offset": second + 1})),
        json!([])
    );
    assert_eq!(tg.pending_updates(), 0);
    assert_eq!(tg.confirmed_offset(), second + 1);

    let raw = tg.push_raw_update(json!({"edited_message": {"text": "x"}}));
    assert_eq!(raw, second + 1);
    let updates = api.ok("getUpdates", json!({"offset": second + 1}));
    assert_eq!(updates[0]["edited_message"]["text"], json!("x"));
}

#[test]
fn messages_are_stored_and_edited_like_the_real_api() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    let sent = api.ok(
        "sendMessage",
        json!({"chat_id": CHAT.to_string(), "text": "<b>Queue</b>", "parse_mode": "HTML",
               "reply_markup": keyboard("v1:q")}),
    );
    assert_eq!(sent["message_id"], json!(1));
    assert_eq!(sent["chat"]["id"], json!(CHAT));
    assert_eq!(sent["text"], json!("<b>Queue</b>"));
    assert_eq!(sent["reply_markup"], keyboard("v1:q"));

    // Users' and the bot's messages share one counter per chat.
    tg.push_message(CHAT, ADMIN, "admin", "hello");
    let second = api.ok("sendMessage", json!({"chat_id": CHAT, "text": "plain"}));
    assert_eq!(second["message_id"], json!(3));
    let other_chat = api.ok("sendMessage", json!({"chat_id": 5, "text": "x"}));
    assert_eq!(other_chat["message_id"], json!(1));

    let same = json!({"chat_id": CHAT, "message_id": 1, "text": "<b>Queue</b>",
                      "parse_mode": "HTML", "reply_markup": keyboard("v1:q")});
    let (status, body) = api.call("editMessageText", same);
    assert_eq!(status, 400);
    assert_eq!(body["error_code"], json!(400));
    assert_eq!(body["description"], json!(NOT_MODIFIED));

    let edited = api.ok(
        "editMessageText",
        json!({"chat_id": CHAT, "message_id": 1, "text": "<b>Queue</b> (2)",
               "parse_mode": "HTML", "reply_markup": keyboard("v1:q")}),
    );
    assert_eq!(edited["text"], json!("<b>Queue</b> (2)"));
    let stored = tg.message(CHAT, 1).unwrap();
    assert_eq!(stored.text, "<b>Queue</b> (2)");
    assert_eq!(stored.reply_markup, Some(keyboard("v1:q")));
    assert_eq!(stored.parse_mode.as_deref(), Some("HTML"));

    let (status, body) = api.call(
        "editMessageText",
        json!({"chat_id": CHAT, "message_id": 99, "text": "x"}),
    );
    assert_eq!(status, 400);
    assert_eq!(
        body["description"],
        json!("Bad Request: message to edit not found")
    );

    let no_keyboard = json!({"chat_id": CHAT, "message_id": 1,
                             "reply_markup": {"inline_keyboard": []}});
    api.ok("editMessageReplyMarkup", no_keyboard.clone());
    assert_eq!(tg.message(CHAT, 1).unwrap().reply_markup, None);
    let (status, body) = api.call("editMessageReplyMarkup", no_keyboard);
    assert_eq!((status, &body["description"]), (400, &json!(NOT_MODIFIED)));

    assert_eq!(
        api.ok("deleteMessage", json!({"chat_id": CHAT, "message_id": 3})),
        json!(true)
    );
    let texts: Vec<(String, bool)> = tg
        .messages(CHAT)
        .into_iter()
        .map(|message| (message.text, message.deleted))
        .collect();
    assert_eq!(
        texts,
        [
            ("<b>Queue</b> (2)".to_string(), false),
            ("plain".to_string(), true)
        ]
    );
    assert!(
        tg.message(CHAT, 2).is_none(),
        "user messages are not the bot's"
    );
}

#[test]
fn bad_html_and_oversized_callback_data_are_refused() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    let (status, body) = api.call(
        "sendMessage",
        json!({"chat_id": CHAT, "text": "file <holiday>.jpg", "parse_mode": "HTML"}),
    );
    assert_eq!(status, 400);
    assert_eq!(
        body["description"],
        json!(
            "Bad Request: can't parse entities: Unsupported start tag \"holiday\" at byte offset 5"
        )
    );
    let (status, body) = api.call(
        "sendMessage",
        json!({"chat_id": CHAT, "text": "<b>open", "parse_mode": "HTML"}),
    );
    assert_eq!(status, 400, "{body}");
    api.ok(
        "sendMessage",
        json!({"chat_id": CHAT, "text": "file &lt;holiday&gt;.jpg & <i>more</i>", "parse_mode": "HTML"}),
    );

    let (status, body) = api.call(
        "sendMessage",
        json!({"chat_id": CHAT, "text": "x", "reply_markup": keyboard(&"d".repeat(65))}),
    );
    assert_eq!(
        (status, &body["description"]),
        (400, &json!("Bad Request: BUTTON_DATA_INVALID"))
    );
    assert_eq!(tg.messages(CHAT).len(), 1);
}

#[test]
fn a_callback_query_carries_its_message_and_is_answered_once() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    let sent = api.ok(
        "sendMessage",
        json!({"chat_id": CHAT, "text": "Story 1", "reply_markup": keyboard("v1:post:1")}),
    );
    let message_id = sent["message_id"].as_i64().unwrap();
    let update_id = tg.push_callback(CHAT, ADMIN, "admin", message_id, "v1:post:1");

    let updates = api.ok("getUpdates", json!({}));
    let query = &updates[0]["callback_query"];
    assert_eq!(updates[0]["update_id"], json!(update_id));
    assert_eq!(query["data"], json!("v1:post:1"));
    assert_eq!(query["from"]["id"], json!(ADMIN));
    assert_eq!(query["message"]["message_id"], json!(message_id));
    assert_eq!(query["message"]["text"], json!("Story 1"));
    assert_eq!(query["message"]["from"]["is_bot"], json!(true));
    assert_eq!(query["message"]["reply_markup"], keyboard("v1:post:1"));
    assert!(query["chat_instance"].is_string());

    let answer = json!({"callback_query_id": query["id"], "text": "Done"});
    assert_eq!(api.ok("answerCallbackQuery", answer.clone()), json!(true));
    let (status, body) = api.call("answerCallbackQuery", answer);
    assert_eq!(status, 400);
    assert_eq!(
        body["description"],
        json!("Bad Request: query is too old and response timeout expired or query ID is invalid")
    );
    let call = tg.wait_for_callback_answer(update_id, Duration::from_secs(1));
    assert_eq!(call.params["text"], json!("Done"));
    assert_eq!(call.status, Some(200));
}

#[test]
fn a_wrong_token_or_an_unknown_method_gets_the_real_errors() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    let wrong = Client {
        agent: api.agent.clone(),
        base: format!("{}/bot123456:wrong", tg.url()),
    };
    let (status, body) = wrong.call("getMe", json!({}));
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    let (status, body) = api.call("sendStory", json!({}));
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 404, "description": "Not Found"})
    );
    let me = api.ok("getMe", json!({}));
    assert_eq!(me["username"], json!("storyline_test_bot"));
    assert_eq!(me["is_bot"], json!(true));

    let calls = tg.calls();
    let seen: Vec<(&str, bool, Option<u16>)> = calls
        .iter()
        .map(|call| (call.method.as_str(), call.token_ok, call.status))
        .collect();
    assert_eq!(
        seen,
        [
            ("getMe", false, Some(401)),
            ("sendStory", true, Some(404)),
            ("getMe", true, Some(200))
        ]
    );
}

#[test]
fn an_upgraded_group_refuses_with_its_new_id_and_announces_the_move() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    let group = -5555;
    tg.push_message(group, ADMIN, "admin", "hello");
    api.ok("sendMessage", json!({"chat_id": group, "text": "before"}));
    let supergroup = tg.upgrade_to_supergroup(group);
    assert_eq!(supergroup, -1_000_000_005_555);

    let (status, body) = api.call("sendMessage", json!({"chat_id": group, "text": "after"}));
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 400,
               "description": "Bad Request: group chat was upgraded to a supergroup chat",
               "parameters": {"migrate_to_chat_id": supergroup}})
    );
    let (status, _) = api.call(
        "editMessageText",
        json!({"chat_id": group, "message_id": 2, "text": "x"}),
    );
    assert_eq!(status, 400);
    let sent = api.ok(
        "sendMessage",
        json!({"chat_id": supergroup.to_string(), "text": "there"}),
    );
    assert_eq!(sent["chat"]["type"], json!("supergroup"));
    assert_eq!(sent["chat"]["title"], json!("Test group -5555"));

    let updates = api.ok("getUpdates", json!({"offset": 0, "timeout": 0}));
    let messages: Vec<&Value> = updates
        .as_array()
        .unwrap()
        .iter()
        .map(|u| &u["message"])
        .collect();
    assert_eq!(messages.len(), 3, "{updates}");
    assert_eq!(messages[1]["chat"]["id"], json!(group));
    assert_eq!(messages[1]["migrate_to_chat_id"], json!(supergroup));
    assert_eq!(messages[1]["from"]["id"], json!(ADMIN));
    assert_eq!(messages[2]["chat"]["id"], json!(supergroup));
    assert_eq!(messages[2]["migrate_from_chat_id"], json!(group));
    assert_eq!(messages[2]["from"]["is_bot"], json!(true));
}

#[test]
fn a_blocked_or_deleted_chat_refuses_every_call_naming_it() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    let (group, supergroup) = (-77, -1_000_000_000_077);
    tg.block_bot(CHAT);
    tg.block_bot(group);
    tg.block_bot(supergroup);
    tg.delete_chat(-88);
    for (chat, code, description) in [
        (CHAT, 403, "Forbidden: bot was blocked by the user"),
        (group, 403, "Forbidden: bot was kicked from the group chat"),
        (
            supergroup,
            403,
            "Forbidden: bot was kicked from the supergroup chat",
        ),
        (-88, 400, "Bad Request: chat not found"),
    ] {
        for method in ["sendMessage", "sendPhoto", "editMessageText"] {
            let (status, body) = api.call(
                method,
                json!({"chat_id": chat, "text": "x", "photo": "id", "message_id": 1}),
            );
            assert_eq!(status, code, "{method} to {chat}");
            assert_eq!(
                body,
                json!({"ok": false, "error_code": code, "description": description})
            );
        }
    }
    // Other chats and calls naming no chat are answered as usual.
    api.ok("sendMessage", json!({"chat_id": 99, "text": "x"}));
    api.ok("getMe", json!({}));
    tg.unblock_bot(CHAT);
    api.ok("sendMessage", json!({"chat_id": CHAT, "text": "back"}));
    assert_eq!(tg.messages(CHAT).len(), 1);
}

#[test]
fn get_chat_member_answers_the_status_a_test_set_and_refuses_strangers() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    let group = -77;
    tg.set_member(group, 7, "administrator");
    tg.set_member(group, 8, "member");
    tg.set_member(-1_000_000_000_077, 8, "creator");
    for (chat, user, status) in [
        (group, 7, "administrator"),
        (group, 8, "member"),
        (-1_000_000_000_077, 8, "creator"),
    ] {
        let member = api.ok("getChatMember", json!({"chat_id": chat, "user_id": user}));
        assert_eq!(member["status"], json!(status), "{member}");
        assert_eq!(member["user"]["id"], json!(user), "{member}");
    }
    // Form-encoded ids, as some clients send them, are read too.
    let member = api.ok(
        "getChatMember",
        json!({"chat_id": group.to_string(), "user_id": "7"}),
    );
    assert_eq!(member["status"], json!("administrator"));
    // A user set in another chat, or in none, is unknown here: the real 400.
    for (chat, user, description) in [
        (group, 9, "Bad Request: user not found"),
        (-78, 7, "Bad Request: user not found"),
        (group, 0, "Bad Request: invalid user_id specified"),
    ] {
        let (status, body) = api.call("getChatMember", json!({"chat_id": chat, "user_id": user}));
        assert_eq!(status, 400, "{chat} {user}");
        assert_eq!(
            body,
            json!({"ok": false, "error_code": 400, "description": description})
        );
    }
    let (status, _) = api.call("getChatMember", json!({"user_id": 7}));
    assert_eq!(status, 400);
    // A demotion shows at once.
    tg.set_member(group, 7, "member");
    let member = api.ok("getChatMember", json!({"chat_id": group, "user_id": 7}));
    assert_eq!(member["status"], json!("member"));
    assert_eq!(tg.calls_of("getChatMember").len(), 9);
}

#[test]
fn held_updates_wait_until_released() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    tg.hold_updates(true);
    tg.push_message(CHAT, ADMIN, "admin", "/start");
    let started = Instant::now();
    let updates = api.ok("getUpdates", json!({"offset": 0, "timeout": 1}));
    assert_eq!(updates, json!([]));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "a full long poll"
    );
    assert_eq!(tg.pending_updates(), 1);
    tg.hold_updates(false);
    let updates = api.ok("getUpdates", json!({"offset": 0, "timeout": 5}));
    assert_eq!(updates[0]["message"]["text"], json!("/start"));
}

#[test]
fn status_faults_are_used_in_order_then_calls_succeed() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    tg.fail_next("sendMessage", 1, Fault::too_many_requests(3));
    tg.fail_next("sendMessage", 1, Fault::bad_gateway());
    let message = json!({"chat_id": CHAT, "text": "hi"});

    let (status, body) = api.call("sendMessage", message.clone());
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3",
               "parameters": {"retry_after": 3}})
    );
    assert_eq!(api.ok("getMe", json!({}))["is_bot"], json!(true));
    let (status, body) = api.call("sendMessage", message.clone());
    assert_eq!(status, 502);
    assert!(body.get("parameters").is_none());
    api.ok("sendMessage", message);

    let statuses: Vec<Option<u16>> = tg
        .calls_of("sendMessage")
        .iter()
        .map(|call| call.status)
        .collect();
    assert_eq!(statuses, [Some(429), Some(502), Some(200)]);
    assert_eq!(tg.messages(CHAT).len(), 1, "a failed call stores nothing");
}

#[test]
fn fail_until_covers_every_method_until_its_instant() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    tg.fail_until("getMe", Instant::now(), Fault::bad_gateway());
    api.ok("getMe", json!({}));

    tg.fail_until(
        "*",
        Instant::now() + Duration::from_secs(60),
        Fault::status(500, "Internal Server Error"),
    );
    for method in ["getMe", "sendMessage", "getUpdates"] {
        let (status, body) = api.call(method, json!({"chat_id": CHAT, "text": "x"}));
        assert_eq!(status, 500, "{method}");
        assert_eq!(body["description"], json!("Internal Server Error"));
    }
}

#[test]
fn a_slow_call_does_not_hold_up_the_others() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    tg.fail_next("getMe", 1, Fault::Slow(Duration::from_millis(1500)));
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| {
            let started = Instant::now();
            api.ok("getMe", json!({}));
            started.elapsed()
        });
        let (index, _) = tg.wait_for_method(0, "getMe", Duration::from_secs(5));
        api.ok("sendMessage", json!({"chat_id": CHAT, "text": "meanwhile"}));
        assert_eq!(
            tg.calls()[index].status,
            None,
            "the slow call is still pending"
        );
        assert!(slow.join().unwrap() >= Duration::from_millis(1500));
    });
    let (_, call) = tg.wait_for(0, Duration::from_secs(1), |call| {
        call.method == "getMe" && call.status == Some(200)
    });
    assert_eq!(call.method, "getMe");
}

#[test]
fn a_dropped_connection_gets_no_response_and_nothing_is_done() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    tg.fail_next("sendMessage", 1, Fault::Drop);
    let started = Instant::now();
    let result = api.try_call("sendMessage", &json!({"chat_id": CHAT, "text": "lost"}));
    assert!(
        result.is_err(),
        "expected a transport error, got {result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the connection was closed, not left hanging"
    );
    let calls = tg.calls_of("sendMessage");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].status, None);
    assert_eq!(calls[0].params["text"], json!("lost"));
    assert!(tg.messages(CHAT).is_empty());
    api.ok("sendMessage", json!({"chat_id": CHAT, "text": "again"}));
}

#[test]
fn garbage_is_a_200_that_is_not_json() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    tg.fail_next("getUpdates", 1, Fault::Garbage);
    let (status, body) = api.try_call("getUpdates", &json!({})).unwrap();
    assert_eq!((status, body.as_str()), (200, "{\"ok\":tru<<<not json"));
    assert_eq!(api.ok("getUpdates", json!({})), json!([]));
}

#[test]
fn a_newer_long_poll_ends_the_older_one_with_a_conflict() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    std::thread::scope(|scope| {
        let older = scope.spawn(|| api.call("getUpdates", json!({"timeout": 5})));
        tg.wait_for_method(0, "getUpdates", Duration::from_secs(5));
        assert_eq!(api.ok("getUpdates", json!({"timeout": 0})), json!([]));
        let (status, body) = older.join().unwrap();
        assert_eq!(status, 409);
        assert!(body["description"]
            .as_str()
            .unwrap()
            .starts_with("Conflict: terminated by other getUpdates request"));
    });
}

#[test]
fn wait_for_panics_with_the_recorded_calls_after_its_timeout() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    api.ok("getMe", json!({}));
    let started = Instant::now();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        tg.wait_for_method(0, "sendMessage", Duration::from_millis(200))
    }));
    let elapsed = started.elapsed();
    let payload = result.expect_err("wait_for should time out");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("within 200ms"), "{message}");
    assert!(message.contains("#0 getMe (200)"), "{message}");
    assert!(elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(2));
    // The fake still works after a panic in a waiter.
    api.ok("getMe", json!({}));
}

#[test]
fn form_query_and_multipart_bodies_are_recorded() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    let url = |method: &str| format!("{}/bot{TOKEN}/{method}", tg.url());

    let markup = keyboard("v1:a").to_string();
    let chat = CHAT.to_string();
    let response = api
        .agent
        .post(url("sendMessage"))
        .send_form([
            ("chat_id", chat.as_str()),
            ("text", "a & b = c"),
            ("reply_markup", markup.as_str()),
        ])
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let stored = &tg.messages(CHAT)[0];
    assert_eq!(stored.text, "a & b = c");
    assert_eq!(stored.reply_markup, Some(keyboard("v1:a")));

    let response = api
        .agent
        .post(url("sendChatAction"))
        .query("chat_id", &chat)
        .query("action", "upload photo")
        .send_empty()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let action = &tg.calls_of("sendChatAction")[0].params;
    assert_eq!(action["action"], json!("upload photo"));

    let boundary = "XyZ-boundary";
    let mut body = Vec::new();
    for (name, value) in [
        ("chat_id", chat.as_str()),
        ("caption", "Story <b>1</b>"),
        ("parse_mode", "HTML"),
    ] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.jpg\"\r\n\
             Content-Type: image/jpeg\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&[0xff, 0xd8, 0xff, 0x00, b'\r', b'\n', 0xd9]);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut response = api
        .agent
        .post(url("sendPhoto"))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .send(&body[..])
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let result: Value = response.body_mut().read_json().unwrap();
    assert!(
        result["result"]["photo"][1]["file_id"].is_string(),
        "{result}"
    );
    assert_eq!(result["result"]["caption"], json!("Story <b>1</b>"));
    let params = &tg.calls_of("sendPhoto")[0].params;
    assert_eq!(params["chat_id"], json!(chat));
    // A JPEG's magic bytes name its format, but the picture does not decode.
    assert_eq!(
        params["photo"],
        json!({
            "file_name": "a.jpg",
            "content_type": "image/jpeg",
            "size": 7,
            "format": "jpg",
            "decodes": false,
            "sha256": "d69817ba6a7889086b8f53995840ccc3ff93b197961c4865b1c2064c241f919f"
        })
    );
    let photo = &tg.messages(CHAT)[1];
    assert_eq!(
        (photo.kind, photo.text.as_str()),
        ("photo", "Story <b>1</b>")
    );
}

#[test]
fn env_writes_a_config_for_the_fake_and_appends_extra_toml() {
    let env = Env::new();
    assert!(env.media_dir().is_dir());
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    let config: toml::Table = text.parse().unwrap();
    assert_eq!(config["telegram"]["bot_token"].as_str(), Some(TOKEN));
    assert_eq!(
        config["telegram"]["api_url"].as_str(),
        Some(env.tg.url().as_str())
    );
    assert_eq!(
        config["telegram"]["poll_timeout_secs"].as_integer(),
        Some(2)
    );
    assert_eq!(
        config["access"]["admin_user_ids"].as_array().unwrap()[0].as_integer(),
        Some(ADMIN)
    );

    env.write_config("[defaults]\nposts_per_day = 3");
    let config: toml::Table = std::fs::read_to_string(env.config_path())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(config["defaults"]["posts_per_day"].as_integer(), Some(3));
    assert_eq!(config["storage"]["database"].as_str(), Some("storyline.db"));

    rusqlite::Connection::open(env.db_path()).unwrap();
    let one: i64 = env
        .db()
        .query_row("select 1", [], |row| row.get(0))
        .unwrap();
    assert_eq!(one, 1);
    assert_eq!(env.log(), "");
}

#[test]
fn texts_and_captions_are_limited_in_utf16_units_after_entities_parsing() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    let send = |text: String| {
        api.call(
            "sendMessage",
            json!({"chat_id": CHAT, "text": text, "parse_mode": "HTML"}),
        )
    };
    // Tags are free and an entity is one character; an emoji is two UTF-16 units.
    for fits in [
        format!("<b>{}</b>", "a".repeat(4096)),
        "&amp;".repeat(4096),
        "😀".repeat(2048),
    ] {
        let (status, body) = send(fits);
        assert_eq!(status, 200, "{body}");
    }
    for too_long in [
        "a".repeat(4097),
        "😀".repeat(2049),
        "&#128512;".repeat(2049),
    ] {
        let (status, body) = send(too_long);
        assert_eq!(
            (status, &body["description"]),
            (400, &json!("Bad Request: message is too long"))
        );
    }
    let photo = |caption: String| {
        api.call(
            "sendPhoto",
            json!({"chat_id": CHAT, "photo": "AgAD-x", "caption": caption, "parse_mode": "HTML"}),
        )
    };
    let (status, body) = photo("😀".repeat(512));
    assert_eq!(status, 200, "{body}");
    let message_id = body["result"]["message_id"].clone();
    let (status, body) = photo("😀".repeat(513));
    assert_eq!(
        (status, &body["description"]),
        (400, &json!("Bad Request: message caption is too long"))
    );
    let (status, body) = api.call(
        "editMessageCaption",
        json!({"chat_id": CHAT, "message_id": message_id, "caption": "é".repeat(1025)}),
    );
    assert_eq!(
        (status, &body["description"]),
        (400, &json!("Bad Request: message caption is too long"))
    );
    assert_eq!(tg.messages(CHAT).len(), 4);
}

#[test]
fn a_webhook_makes_get_updates_a_conflict_until_it_is_deleted() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    let info = api.ok("getWebhookInfo", json!({}));
    assert_eq!(info["url"], json!(""));
    std::thread::scope(|scope| {
        // A long poll that is waiting ends when a webhook is set.
        let pending = scope.spawn(|| api.call("getUpdates", json!({"timeout": 5})));
        tg.wait_for_method(0, "getUpdates", Duration::from_secs(5));
        tg.set_webhook("https://hooks.example.org/secret-path");
        let (status, body) = pending.join().unwrap();
        assert_eq!(status, 409, "{body}");
    });
    tg.push_message(CHAT, ADMIN, "admin", "/status");
    let (status, body) = api.call("getUpdates", json!({}));
    assert_eq!(
        (status, &body["description"]),
        (
            409,
            &json!(
                "Conflict: can't use getUpdates method while webhook is active; \
                 use deleteWebhook to delete the webhook first"
            )
        )
    );
    let info = api.ok("getWebhookInfo", json!({}));
    assert_eq!(info["url"], json!("https://hooks.example.org/secret-path"));
    assert_eq!(
        api.ok("deleteWebhook", json!({"drop_pending_updates": false})),
        json!(true)
    );
    assert_eq!(tg.webhook_url(), "");
    // Nothing pending was dropped.
    let updates = api.ok("getUpdates", json!({}));
    assert_eq!(updates.as_array().map(Vec::len), Some(1));
}

#[test]
fn a_video_upload_can_come_back_as_a_document_and_file_types_must_match() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    tg.answer_videos_as_documents();
    let boundary = "b-1";
    let chat = CHAT.to_string();
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n{chat}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"clip.mov\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(b"moov-bytes");
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut response = api
        .agent
        .post(format!("{}/bot{TOKEN}/sendVideo", tg.url()))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .send(&body[..])
        .unwrap();
    let result: Value = response.body_mut().read_json().unwrap();
    let document = &result["result"]["document"];
    assert_eq!(document["file_name"], json!("clip.mov"), "{result}");
    assert!(result["result"].get("video").is_none(), "{result}");
    let file_id = document["file_id"].as_str().unwrap().to_string();
    assert_eq!(tg.messages(CHAT)[0].kind, "document");

    let (status, body) = api.call("sendVideo", json!({"chat_id": CHAT, "video": file_id}));
    assert_eq!(
        (status, &body["description"]),
        (400, &json!("Bad Request: type of file mismatch"))
    );
    let again = api.ok(
        "sendDocument",
        json!({"chat_id": CHAT, "document": file_id}),
    );
    assert_eq!(again["document"]["file_id"], json!(file_id));
}

/// A multipart upload of one file under `field`, as the daemon's client sends it.
fn upload(
    tg: &FakeTelegram,
    method: &str,
    field: &str,
    name: &str,
    content: &[u8],
) -> (u16, Value) {
    let boundary = "b-2";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n{CHAT}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut response = client(tg)
        .agent
        .post(format!("{}/bot{TOKEN}/{method}", tg.url()))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .send(&body[..])
        .unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_json().unwrap())
}

#[test]
fn files_are_fetched_with_get_file_and_their_path_as_telegram_serves_them() {
    let tg = FakeTelegram::start(TOKEN);
    let api = client(&tg);
    let download = |path: &str, token: &str| {
        let mut response = api
            .agent
            .get(format!("{}/file/bot{token}/{path}", tg.url()))
            .call()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_vec().unwrap())
    };

    // A user's document: getFile names its path, the path serves its bytes.
    tg.push_document(CHAT, ADMIN, "ada", "s.json", b"{\"a\": 1}", None);
    let updates = api.ok("getUpdates", json!({"offset": 0}));
    let document = &updates[0]["message"]["document"];
    assert_eq!(document["file_name"], json!("s.json"));
    assert_eq!(document["mime_type"], json!("application/json"));
    assert_eq!(document["file_size"], json!(8));
    let file = api.ok("getFile", json!({"file_id": document["file_id"]}));
    let path = file["file_path"].as_str().unwrap().to_string();
    assert_eq!(download(&path, TOKEN), (200, b"{\"a\": 1}".to_vec()));
    assert_eq!(download(&path, "1:wrong").0, 404);
    assert_eq!(download("documents/nothing", TOKEN).0, 404);
    assert_eq!(tg.calls_of("file").len(), 3);
    let (status, body) = api.call("getFile", json!({"file_id": "no-such-file"}));
    assert_eq!(
        (status, &body["description"]),
        (400, &json!("Bad Request: invalid file_id"))
    );

    // A document the bot uploads is kept too, and an empty one is refused.
    let (status, sent) = upload(&tg, "sendDocument", "document", "x.json", b"{}");
    assert_eq!(status, 200, "{sent}");
    let file_id = sent["result"]["document"]["file_id"].as_str().unwrap();
    assert_eq!(tg.file_content(file_id), Some(b"{}".to_vec()));
    let (status, refused) = upload(&tg, "sendDocument", "document", "x.json", b"");
    assert_eq!(
        (status, &refused["description"]),
        (400, &json!("Bad Request: file must be non-empty"))
    );
}
