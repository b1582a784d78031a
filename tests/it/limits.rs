//! What the real Bot API refuses, and how the daemon copes: texts over 4096 and
//! captions over 1024 characters, a webhook that blocks polling (409), a video
//! Telegram keeps as a document.

use std::fs;
use std::time::Duration;

use crate::helpers::*;
use crate::support::{describe_output, wait_until, Env, SentMessage, ADMIN, CHAT};

/// Writes a valid file of the path's kind with content no other file has.
fn put(env: &Env, path: &str) {
    let full = env.media_dir().join(path);
    fs::create_dir_all(full.parent().unwrap()).unwrap();
    fs::write(full, crate::support::media::file(path, path.as_bytes())).unwrap();
}

fn scan(env: &Env) {
    let out = env.run(&["scan"]);
    assert!(out.status.success(), "{}", describe_output(&out));
}

fn outbox_len(env: &Env) -> i64 {
    env.db()
        .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
        .unwrap()
}

/// The next message after `before` that is not text (a story).
fn story_after(env: &Env, before: usize) -> SentMessage {
    wait_until("a story", WAIT, || {
        env.tg
            .messages(CHAT)
            .into_iter()
            .skip(before)
            .find(|m| m.kind != "text")
    })
}

fn wait_for_text(env: &Env, message_id: i64, fragment: &str) -> SentMessage {
    wait_until(
        &format!("message {message_id} to say {fragment:?}"),
        Duration::from_secs(60),
        || {
            env.tg
                .message(CHAT, message_id)
                .filter(|m| m.text.contains(fragment))
        },
    )
}

fn assert_every_call_accepted(env: &Env, method: &str) {
    let calls = env.tg.calls_of(method);
    assert!(!calls.is_empty(), "no {method} call");
    for call in calls {
        assert_eq!(call.status, Some(200), "{method} refused: {}", call.params);
    }
}

#[test]
fn a_fortnight_at_50_posts_a_day_comes_as_several_messages_holding_every_line() {
    let env = Env::new();
    env.write_config("[defaults]\nposts_per_day = 50\n");
    let category = "a-category-with-a-rather-long-folder-name";
    let paths: Vec<String> = (0..30)
        .map(|i| {
            format!("{category}/holiday-photo-{i:02}-with-a-long-and-descriptive-file-name.jpg")
        })
        .collect();
    for path in &paths {
        put(&env, path);
    }
    scan(&env);
    let _daemon = env.start_polling();
    // Paused, so no story or "running dry" notice lands between the parts.
    say(&env, CHAT, ADMIN, "/pause");
    let before = env.tg.messages(CHAT).len();
    env.tg.push_message(CHAT, ADMIN, "ada", "/schedule 14");
    // All parts are committed with the update; once the first is in the chat,
    // an empty outbox means every part was delivered.
    next_reply(&env, CHAT, before, "the schedule");
    wait_until("every part delivered", WAIT, || {
        (outbox_len(&env) == 0).then_some(())
    });
    assert_every_call_accepted(&env, "sendMessage");
    let parts: Vec<SentMessage> = env
        .tg
        .messages(CHAT)
        .into_iter()
        .skip(before)
        .filter(|m| m.kind == "text")
        .collect();
    assert!(parts.len() >= 4, "{} part(s)", parts.len());
    assert!(
        parts[0]
            .text
            .starts_with("📅 <b>Schedule</b> (UTC)\n⏸️ Posting is paused"),
        "{}",
        parts[0].text
    );

    // Every line is whole: the title, the pause line, a day, or a slot whose file
    // is one of the library's (or none left).
    let mut days: Vec<usize> = Vec::new();
    for line in parts.iter().flat_map(|p| p.text.lines()) {
        if line.is_empty() || line.starts_with("📅 ") || line.starts_with("⏸️ ") {
            continue;
        }
        if let Some(day) = line
            .strip_prefix("<b>")
            .and_then(|l| l.strip_suffix("</b>"))
        {
            assert_eq!(day.len(), "Mon 01 Jan".len(), "a day header: {line:?}");
            days.push(0);
            continue;
        }
        let slot = line
            .strip_prefix("• ")
            .unwrap_or_else(|| panic!("not a line of the schedule: {line:?}"));
        let (time, item) = slot.split_at(5);
        assert!(
            time.as_bytes()[2] == b':' && time.replace(':', "").parse::<u32>().is_ok(),
            "{line:?}"
        );
        let item = item.trim_start();
        assert!(
            item == "(nothing left to pick)" || paths.iter().any(|p| p == item),
            "a cut or unknown slot line: {line:?}"
        );
        *days.last_mut().expect("a slot under a day") += 1;
    }
    // Exactly the days asked, each by the slots' local date: the default window
    // runs 09:00 to 09:00, so a day holds the previous window's slots before 09:00
    // and its own after, 50 a window in all.
    assert_eq!(days.len(), 14, "{days:?}");
    assert!(
        days.iter().all(|slots| (1..=100).contains(slots)),
        "{days:?}"
    );
    let after_today: usize = days[1..].iter().sum();
    assert!(
        (50 * 12..=50 * 14).contains(&after_today),
        "13 days hold about 13 windows of 50: {days:?}"
    );
    // Only the last part may carry a keyboard; this reply has none.
    assert!(parts.iter().all(|p| p.reply_markup.is_none()));
}

#[test]
fn a_caption_too_long_for_telegram_is_shortened_and_keeps_the_outcome_after_a_press() {
    // A damaged JPEG deep in long folders: its publishing fails with an error that
    // quotes the whole path, which makes the story's caption far too long.
    let long = |c: char| c.to_string().repeat(200);
    let path = format!(
        "{}/{}/{}/{}.jpg",
        long('c'),
        long('d'),
        long('e'),
        long('n')
    );
    let mut damaged = vec![0xFF, 0xD8, 0xFF, 0xD9];
    damaged.extend_from_slice(b"not an image");
    let s = crate::publishing::setup(&[(path.as_str(), damaged)], false, false);
    let env = &s.env;
    let _daemon = env.start_polling();
    let before = env.tg.messages(CHAT).len();
    env.tg.push_message(CHAT, ADMIN, "ada", "/next");
    let story = story_after(env, before);
    // The press must find the story's message id recorded, which happens when the
    // outbox takes Telegram's answer, a moment after the fake saw the call.
    wait_for_empty_outbox(env);
    press_data(
        env,
        CHAT,
        ADMIN,
        story.message_id,
        &button_data(&story, "🤖 Auto post"),
    );
    let fallen = wait_for_text(env, story.message_id, "Not published automatically");
    assert!(
        fallen.text.contains('…'),
        "the error text was shortened: {}",
        fallen.text
    );
    assert!(
        fallen.text.starts_with(&format!(
            "📸 <b>{}</b> · {}.jpg\n🕑 Slot",
            long('c'),
            long('n')
        )),
        "the category and the file name stay whole while the error gives way: {}",
        fallen.text
    );
    assert!(
        button_data(&fallen, "✅ Posted").contains(":st:"),
        "the buttons come back"
    );

    press_data(
        env,
        CHAT,
        ADMIN,
        story.message_id,
        &button_data(&fallen, "✅ Posted"),
    );
    let decided = wait_for_text(env, story.message_id, "Posted by @ada at");
    assert!(decided.text.starts_with("📸 <b>"), "{}", decided.text);
    assert!(decided.reply_markup.is_none());
    assert_every_call_accepted(env, "editMessageCaption");
    assert!(
        !env.tg
            .messages(CHAT)
            .iter()
            .any(|m| m.text.contains("Telegram refused")),
        "a refusal reached the chat"
    );
}

/// Sets a webhook whose path and query hold secrets, as webhook URLs do.
const WEBHOOK: &str = "https://hooks.example.org/hook/123456:SECRET-PATH?token=SECRET-QUERY";

fn assert_no_webhook_secret(text: &str) {
    for secret in ["SECRET-PATH", "SECRET-QUERY", "/hook/"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
}

#[test]
fn a_webhook_on_the_token_is_named_once_and_doctor_fix_removes_it() {
    let env = Env::new();
    env.tg.set_webhook(WEBHOOK);
    let _daemon = env.start();
    // Three refused polls: the first and two retries after back-off.
    wait_until("three refused polls", WAIT, || {
        let refused = env
            .tg
            .calls_of("getUpdates")
            .iter()
            .filter(|call| call.status == Some(409))
            .count();
        (refused >= 3).then_some(())
    });
    assert!(!env.tg.calls_of("getWebhookInfo").is_empty());
    let log = env.log();
    let explanation = "because a webhook is set on this bot token, to hooks.example.org";
    assert_eq!(log.matches(explanation).count(), 1, "{log}");
    assert!(!log.contains("another program is polling"), "{log}");
    assert_no_webhook_secret(&log);
    assert_eq!(env.tg.webhook_url(), WEBHOOK, "removed without being asked");

    let output = env.run(&["doctor"]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!output.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains(" webhook "))
        .unwrap_or_else(|| panic!("no webhook line:\n{text}"));
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(line.contains("hooks.example.org"), "{line}");
    assert!(line.contains("storyline doctor --fix"), "{line}");
    assert_no_webhook_secret(&text);

    let from = env.tg.calls().len();
    let output = env.run(&["doctor", "--fix"]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}", describe_output(&output));
    assert!(text.contains("removed it (pending updates kept)"), "{text}");
    assert_eq!(env.tg.webhook_url(), "");
    let (_, delete) = env.tg.wait_for_method(from, "deleteWebhook", WAIT);
    assert_eq!(delete.params["drop_pending_updates"], false);

    // Polling resumes by itself.
    let reply = say(&env, CHAT, ADMIN, "/help");
    assert!(!reply.text.is_empty());
    assert!(env.log().contains("Telegram reachable again"));
    assert_token_not_logged(&env);
}

#[test]
fn with_delete_webhook_the_daemon_removes_it_and_serves_what_was_pending() {
    let env = Env::new();
    let config = env.base_config().replace(
        "poll_timeout_secs = 2",
        "poll_timeout_secs = 2\ndelete_webhook = true",
    );
    env.write_config_raw(&config);
    env.tg.set_webhook(WEBHOOK);
    env.tg.push_message(CHAT, ADMIN, "ada", "/help");
    let _daemon = env.start();
    let (_, delete) = env.tg.wait_for_method(0, "deleteWebhook", WAIT);
    assert_eq!(delete.params["drop_pending_updates"], false);
    // The update sent while the webhook was set is answered.
    next_reply(&env, CHAT, 0, "the answer to /help");
    assert_eq!(env.tg.webhook_url(), "");
    let log = env.log();
    assert!(
        log.contains("a webhook to hooks.example.org was set on this bot token"),
        "{log}"
    );
    assert_no_webhook_secret(&log);
}

#[test]
fn a_mov_kept_as_a_document_keeps_its_file_id_and_goes_out_again_as_one() {
    let env = Env::new();
    put(&env, "clips/holiday.mov");
    scan(&env);
    env.tg.answer_videos_as_documents();
    let _daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    open_prompt(&env, CHAT, &menu, "🔒 Locks");
    say(&env, CHAT, ADMIN, "0 0");
    let before = env.tg.messages(CHAT).len();
    env.tg.push_message(CHAT, ADMIN, "ada", "/next");
    let story = story_after(&env, before);
    assert_eq!(story.kind, "document");
    let upload = &env.tg.calls_of("sendVideo")[0];
    assert!(upload.params["video"].is_object(), "{}", upload.params);
    let stored = wait_until("the document's file_id", WAIT, || {
        env.db()
            .query_row("SELECT telegram_file_id FROM media_items", [], |r| {
                r.get::<_, Option<String>>(0)
            })
            .ok()
            .flatten()
    });
    assert!(stored.starts_with("document:fake-document-"), "{stored}");

    press_data(
        &env,
        CHAT,
        ADMIN,
        story.message_id,
        &button_data(&story, "⏭ Skip"),
    );
    wait_for_text(&env, story.message_id, "Skipped by");
    let before = env.tg.messages(CHAT).len();
    env.tg.push_message(CHAT, ADMIN, "ada", "/next");
    let again = story_after(&env, before);
    assert_eq!(again.kind, "document");
    let resend = env.tg.wait_for_method(0, "sendDocument", WAIT).1;
    assert_eq!(
        resend.params["document"].as_str(),
        stored.strip_prefix("document:"),
        "sent again by file_id, not uploaded"
    );
    assert_eq!(env.tg.calls_of("sendVideo").len(), 1);
    assert!(button_data(&again, "✅ Posted").contains(":st:"));
}
