//! Roles in a group: settings, posting mode, accounts, /init and /connect are
//! for the chat's Telegram administrators (asked with getChatMember, once per
//! user within five minutes) and the configured admins; members read and press
//! a story's buttons unless the chat keeps those for its administrators. An
//! Instagram account is its chat's until an admin shares it.

use std::fs;

use crate::helpers::*;
use crate::support::{describe_output, wait_until, Call, Env, SentMessage, ADMIN, CHAT};

/// A basic group the config allows besides CHAT.
const GROUP: i64 = -5555;
/// Telegram says: an administrator of GROUP.
const GROUP_ADMIN: i64 = 501;
/// Telegram says: a member of GROUP.
const MEMBER: i64 = 502;
/// Telegram does not know this user in GROUP ("user not found").
const STRANGER: i64 = 503;

fn setup() -> Env {
    let env = Env::new();
    let config = env.base_config().replace(
        &format!("allowed_chat_ids = [{CHAT}]"),
        &format!("allowed_chat_ids = [{CHAT}, {GROUP}]"),
    );
    env.write_config_raw(&config);
    env.tg.set_member(GROUP, GROUP_ADMIN, "administrator");
    env.tg.set_member(GROUP, MEMBER, "member");
    env
}

/// The getChatMember calls that asked about `user`.
fn member_calls(env: &Env, user: i64) -> usize {
    env.tg
        .calls_of("getChatMember")
        .iter()
        .filter(|c| c.params["user_id"] == user)
        .count()
}

fn admins_only(command: &str) -> String {
    format!("🔒 /{command} is for this chat's administrators.")
}

/// Presses `prefix` on `message` as `user`; returns the press's answer.
fn press_as(env: &Env, user: i64, message: &SentMessage, prefix: &str) -> Call {
    press_data(
        env,
        GROUP,
        user,
        message.message_id,
        &button_data(message, prefix),
    )
}

fn alert_text(answer: &Call) -> String {
    assert!(is_alert(answer), "not an alert: {:?}", answer.params);
    answer.params["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn in_a_group_only_its_administrators_change_settings_and_telegram_is_asked_once_per_user() {
    let env = setup();
    let _daemon = env.start_polling();
    let history = history_count(&env, GROUP);

    // A member's admin commands are refused, and change nothing.
    for command in ["settings", "init", "connect", "accounts", "next", "pause"] {
        let reply = say(&env, GROUP, MEMBER, &format!("/{command}"));
        assert_eq!(reply.text, admins_only(command));
    }
    let reply = say(&env, GROUP, MEMBER, "/dryrun off");
    assert_eq!(reply.text, admins_only("dryrun"));
    assert_eq!(chat_column(&env, GROUP, "dry_run_mode"), None);
    assert_eq!(chat_column(&env, GROUP, "is_paused"), Some(0));
    // Someone Telegram does not know in the group is no administrator either.
    let reply = say(&env, GROUP, STRANGER, "/settings");
    assert_eq!(reply.text, admins_only("settings"));
    // Reading stays open to members.
    let status = say(&env, GROUP, MEMBER, "/status");
    assert!(status.text.contains("<b>Status</b>"), "{}", status.text);

    // The group's administrator gets the menu...
    let menu = say(&env, GROUP, GROUP_ADMIN, "/settings");
    assert!(menu.text.starts_with("⚙️ <b>Settings</b>"), "{}", menu.text);
    // ...whose buttons refuse the member, with an alert, and change nothing.
    for prefix in ["✅ Dry run", "📸 Account", "Posts/Day", "🔄 Refresh"] {
        let answer = press_as(&env, MEMBER, &menu, prefix);
        assert_eq!(
            alert_text(&answer),
            "🔒 Only this chat's administrators can change its settings."
        );
    }
    assert_eq!(chat_column(&env, GROUP, "dry_run_mode"), None);
    assert_eq!(env.tg.message(GROUP, menu.message_id).unwrap(), menu);
    assert_eq!(history_count(&env, GROUP), history);

    // The administrator's press works.
    let answer = press_as(&env, GROUP_ADMIN, &menu, "✅ Dry run");
    assert!(!is_alert(&answer), "{:?}", answer.params);
    wait_until("dry run off", WAIT, || {
        (chat_column(&env, GROUP, "dry_run_mode") == Some(0)).then_some(())
    });
    let changed_by: i64 = env
        .db()
        .query_row(
            "SELECT changed_by FROM settings_history WHERE chat_id = ?1 AND valid_to IS NULL",
            [GROUP],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(changed_by, GROUP_ADMIN);
    // A configured admin needs no question to Telegram.
    let menu = say(&env, GROUP, ADMIN, "/settings");
    assert!(menu.text.starts_with("⚙️ <b>Settings</b>"), "{}", menu.text);

    // One getChatMember per user within five minutes, however many updates;
    // none for /status, none for the configured admin.
    assert_eq!(member_calls(&env, MEMBER), 1);
    assert_eq!(member_calls(&env, GROUP_ADMIN), 1);
    assert_eq!(member_calls(&env, STRANGER), 1);
    assert_eq!(member_calls(&env, ADMIN), 0);
    let member_call = &env.tg.calls_of("getChatMember")[0];
    assert_eq!(member_call.params["chat_id"], GROUP);
    assert_token_not_logged(&env);
}

#[test]
fn when_telegram_cannot_say_the_member_is_asked_to_try_again() {
    let env = setup();
    let _daemon = env.start_polling();
    env.tg
        .fail_next("getChatMember", 1, crate::support::Fault::bad_gateway());
    let reply = say(&env, GROUP, GROUP_ADMIN, "/settings");
    assert_eq!(
        reply.text,
        "⏳ Telegram did not say whether you are an administrator here. Please try again in a minute."
    );
    // The failure is not remembered: the next try asks again and works.
    let menu = say(&env, GROUP, GROUP_ADMIN, "/settings");
    assert!(menu.text.starts_with("⚙️ <b>Settings</b>"), "{}", menu.text);
    assert_eq!(member_calls(&env, GROUP_ADMIN), 2);
}

#[test]
fn in_a_private_chat_its_user_runs_it_without_asking_telegram() {
    let env = setup();
    let _daemon = env.start_polling();
    // CHAT is a private chat the config serves; its user is no configured admin.
    let menu = say(&env, CHAT, CHAT, "/settings");
    assert!(menu.text.starts_with("⚙️ <b>Settings</b>"), "{}", menu.text);
    let answer = press_data(
        &env,
        CHAT,
        CHAT,
        menu.message_id,
        &button_data(&menu, "✅ Dry run"),
    );
    assert!(!is_alert(&answer), "{:?}", answer.params);
    wait_until("dry run off", WAIT, || {
        (chat_column(&env, CHAT, "dry_run_mode") == Some(0)).then_some(())
    });
    assert!(env.tg.calls_of("getChatMember").is_empty());
}

/// Three photos in the media folder, scanned.
fn library(env: &Env) {
    for (index, name) in ["one.jpg", "two.jpg", "three.jpg"].iter().enumerate() {
        let mut bytes = Vec::new();
        let image = image::RgbImage::from_fn(64, 96, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 2) as u8, (index * 80) as u8])
        });
        image::DynamicImage::ImageRgb8(image)
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        fs::write(env.media_dir().join(name), bytes).unwrap();
    }
    let output = env.run(&["scan"]);
    assert!(output.status.success(), "{}", describe_output(&output));
}

/// /next from the configured admin in GROUP; returns the story.
fn next_story(env: &Env) -> SentMessage {
    let before = env.tg.messages(GROUP).len();
    env.tg.push_message(GROUP, ADMIN, "ada", "/next");
    let story = wait_until("a story", WAIT, || {
        env.tg
            .messages(GROUP)
            .into_iter()
            .skip(before)
            .find(|m| m.kind != "text")
    });
    // Its message id is stored once Telegram took it; presses are checked against it.
    wait_until("the story's message id", WAIT, || {
        env.db()
            .query_row(
                "SELECT 1 FROM posting_queue WHERE chat_id = ?1 AND telegram_message_id = ?2",
                rusqlite::params![GROUP, story.message_id],
                |_| Ok(()),
            )
            .ok()
    });
    story
}

fn queue_status(env: &Env, story: &SentMessage) -> String {
    env.db()
        .query_row(
            "SELECT status FROM posting_queue WHERE chat_id = ?1 AND telegram_message_id = ?2",
            rusqlite::params![GROUP, story.message_id],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn story_buttons_are_the_members_unless_the_chat_keeps_them_for_administrators() {
    let env = setup();
    library(&env);
    let _daemon = env.start_polling();

    // A member decides a story.
    let story = next_story(&env);
    let answer = press_as(&env, MEMBER, &story, "⏭ Skip");
    assert!(!is_alert(&answer), "{:?}", answer.params);
    wait_until("the skip to be recorded", WAIT, || {
        (queue_status(&env, &story) == "skipped").then_some(())
    });

    // An administrator keeps story buttons for administrators.
    let menu = say(&env, GROUP, GROUP_ADMIN, "/settings");
    assert!(
        menu.text.contains("Story buttons: <b>everyone</b>"),
        "{}",
        menu.text
    );
    let answer = press_as(&env, MEMBER, &menu, "👥 Story buttons");
    assert!(is_alert(&answer), "{:?}", answer.params);
    assert_eq!(chat_column(&env, GROUP, "story_buttons_admins_only"), None);
    let answer = press_as(&env, GROUP_ADMIN, &menu, "👥 Story buttons");
    assert!(!is_alert(&answer), "{:?}", answer.params);
    let menu = wait_until("the menu to show it", WAIT, || {
        env.tg
            .message(GROUP, menu.message_id)
            .filter(|m| m.text.contains("Story buttons: <b>admins only</b>"))
    });
    assert!(buttons(&menu)
        .iter()
        .any(|(text, data)| text == "🔒 Story buttons: admins only" && data == "1:set:sbtn:0"));
    assert_eq!(
        chat_column(&env, GROUP, "story_buttons_admins_only"),
        Some(1)
    );

    // Now the member's press is refused and changes nothing...
    let story = next_story(&env);
    let answer = press_as(&env, MEMBER, &story, "⏭ Skip");
    assert_eq!(
        alert_text(&answer),
        "🔒 In this chat only administrators decide stories."
    );
    assert_eq!(queue_status(&env, &story), "sent");
    assert_eq!(env.tg.message(GROUP, story.message_id).unwrap(), story);
    // ...and the administrator's works.
    let answer = press_as(&env, GROUP_ADMIN, &story, "⏭ Skip");
    assert!(!is_alert(&answer), "{:?}", answer.params);
    wait_until("the skip to be recorded", WAIT, || {
        (queue_status(&env, &story) == "skipped").then_some(())
    });
    let skipped_by: i64 = env
        .db()
        .query_row(
            "SELECT user_id FROM posting_history WHERE chat_id = ?1 ORDER BY id DESC LIMIT 1",
            [GROUP],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(skipped_by, GROUP_ADMIN);
    // Telegram was asked about each of them once.
    assert_eq!(member_calls(&env, MEMBER), 1);
    assert_eq!(member_calls(&env, GROUP_ADMIN), 1);
}

fn accounts(env: &Env, args: &[&str]) -> std::process::Output {
    let mut all = vec!["accounts"];
    all.extend_from_slice(args);
    env.run(&all)
}

fn accounts_ok(env: &Env, args: &[&str]) -> String {
    let output = accounts(env, args);
    assert!(output.status.success(), "{}", describe_output(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn accounts_err(env: &Env, args: &[&str]) -> String {
    let output = accounts(env, args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe_output(&output)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_account_is_its_chats_until_an_admin_shares_it() {
    let env = setup();
    // The chats' rows: `queue` adds the allowed chats, as `run` does.
    let output = env.run(&["queue"]);
    assert!(output.status.success(), "{}", describe_output(&output));
    let chat = CHAT.to_string();
    let group = GROUP.to_string();
    let added = accounts_ok(
        &env,
        &[
            "add",
            "--name",
            "Brand",
            "--instagram-id",
            "178",
            "--username",
            "brand",
            "--token",
            "IGQVJ-roles-SECRET-token",
            "--chat",
            &chat,
        ],
    );
    assert!(
        added.contains("Chats that may use it: 4242 (owner)."),
        "{added}"
    );
    let _daemon = env.start_polling();

    // The owner uses it; the group neither lists nor picks it.
    let menu = say(&env, CHAT, ADMIN, "/settings");
    assert!(
        menu.text.contains("Instagram account: <b>@brand</b>"),
        "{}",
        menu.text
    );
    let menu = say(&env, GROUP, ADMIN, "/settings");
    assert!(
        menu.text.contains("Instagram account: <b>none</b>"),
        "{}",
        menu.text
    );
    let listed = say(&env, GROUP, ADMIN, "/accounts");
    assert!(
        listed
            .text
            .contains("This chat has no Instagram account yet"),
        "{}",
        listed.text
    );
    assert!(!listed.text.contains("brand"), "{}", listed.text);
    let answer = press_data(&env, GROUP, ADMIN, menu.message_id, "1:acct:1");
    assert_eq!(
        alert_text(&answer),
        "That account is not available any more. Pick another one."
    );
    assert_eq!(chat_column(&env, GROUP, "active_account_id"), None);

    // Shared, the group lists and uses it.
    let shared = accounts_ok(&env, &["share", "1", "--chat", &group]);
    assert!(
        shared.contains("chat -5555 may now list and use it"),
        "{shared}"
    );
    let listed = say(&env, GROUP, ADMIN, "/accounts");
    assert!(listed.text.contains("Brand (@brand)"), "{}", listed.text);
    let menu = say(&env, GROUP, ADMIN, "/settings");
    assert!(
        menu.text.contains("Instagram account: <b>@brand</b>"),
        "{}",
        menu.text
    );
    let list = accounts_ok(&env, &["list"]);
    assert!(list.lines().next().unwrap().ends_with("CHATS"), "{list}");
    assert!(list.contains("4242 (owner), -5555"), "{list}");

    // Unshared, it is gone from the group again; never from its owner.
    let unshared = accounts_ok(&env, &["unshare", "1", "--chat", &group]);
    assert!(
        unshared.contains("no longer shared with chat -5555"),
        "{unshared}"
    );
    assert!(
        unshared.contains("now it has no Instagram account"),
        "{unshared}"
    );
    let menu = say(&env, GROUP, ADMIN, "/settings");
    assert!(
        menu.text.contains("Instagram account: <b>none</b>"),
        "{}",
        menu.text
    );
    let refused = accounts_err(&env, &["unshare", "1", "--chat", &chat]);
    assert!(refused.contains("belongs to chat 4242"), "{refused}");
    let refused = accounts_err(&env, &["share", "1", "--chat", "999"]);
    assert!(refused.contains("does not know chat 999"), "{refused}");
    let refused = accounts_err(&env, &["share", "7", "--chat", &group]);
    assert!(refused.contains("there is no account 7"), "{refused}");
    let menu = say(&env, CHAT, ADMIN, "/settings");
    assert!(
        menu.text.contains("Instagram account: <b>@brand</b>"),
        "{}",
        menu.text
    );
}
