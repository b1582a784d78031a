//! The /init set-up wizard end to end: five steps in one message, Back, typed
//! values, categories, cancelling, resuming after a restart, and who may set up
//! a chat the bot does not serve yet.

use std::fs;

use crate::helpers::*;
use crate::support::{wait_until, Env, SentMessage, ADMIN, CHAT};

const STRANGER: i64 = 77;

/// "step 3 of 5" → 3.
fn step_of(message: &SentMessage) -> u32 {
    let at = message
        .text
        .find(" of 5")
        .unwrap_or_else(|| panic!("not a wizard step: {}", message.text));
    message.text[..at]
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no step number in {}", message.text))
}

/// Presses the step's forward button (Next, or Skip for now on the Instagram
/// step when no account is chosen).
fn forward(env: &Env, chat: i64, message: &SentMessage) -> SentMessage {
    let label = if buttons(message).iter().any(|(t, _)| t == "Next →") {
        "Next →"
    } else {
        "Skip for now"
    };
    let step = step_of(message);
    let (answer, now) = press(env, chat, message, label);
    assert!(!is_alert(&answer), "{answer:?}");
    assert_eq!(step_of(&now), step + 1, "{}", now.text);
    now
}

fn forward_to(env: &Env, chat: i64, mut message: SentMessage, step: u32) -> SentMessage {
    while step_of(&message) < step {
        message = forward(env, chat, &message);
    }
    message
}

fn setup_rows(env: &Env, chat: i64) -> Vec<String> {
    let db = env.db();
    let mut stmt = db
        .prepare(
            "SELECT changes FROM settings_history WHERE chat_id = ?1 AND reason = 'initial setup'",
        )
        .unwrap();
    let rows = stmt
        .query_map([chat], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows
}

fn wizard_rows(env: &Env) -> i64 {
    env.db()
        .query_row("SELECT count(*) FROM setup_wizards", [], |r| r.get(0))
        .unwrap()
}

/// Writes a valid file of the path's kind with distinct content under the media
/// folder.
fn put(env: &Env, path: &str) {
    let full = env.media_dir().join(path);
    fs::create_dir_all(full.parent().unwrap()).unwrap();
    fs::write(full, crate::support::media::sized(path, 1000)).unwrap();
}

#[test]
fn start_in_a_new_chat_runs_all_five_steps_and_complete_records_one_version() {
    let env = Env::new();
    let _daemon = env.start_polling();
    // A chat that was never set up gets the wizard on /start.
    let wizard = say(&env, CHAT, ADMIN, "/start");
    assert_eq!(step_of(&wizard), 1, "{}", wizard.text);
    assert!(wizard.text.contains("/settings"), "{}", wizard.text);
    assert!(
        wizard.text.contains("Dry run: <b>ON</b>"),
        "{}",
        wizard.text
    );

    let summary = forward_to(&env, CHAT, wizard.clone(), 5);
    assert_eq!(summary.message_id, wizard.message_id, "one message, edited");
    for expected in [
        "Mode: 🧪 Dry run",
        "Instagram: not connected yet",
        "Schedule: <b>3 posts a day</b>, <b>14:00–02:00</b> UTC",
    ] {
        assert!(
            summary.text.contains(expected),
            "{expected}: {}",
            summary.text
        );
    }
    // Nothing is applied before Complete.
    assert!(setup_rows(&env, CHAT).is_empty());
    let (answer, done) = press(&env, CHAT, &summary, "✅ Complete");
    assert!(!is_alert(&answer));
    assert!(done.text.contains("Storyline is set up"), "{}", done.text);
    assert!(done.reply_markup.is_none());
    assert_eq!(wizard_rows(&env), 0);

    let menu = say(&env, CHAT, ADMIN, "/settings");
    for expected in [
        "Dry run: <b>ON</b>",
        "Posts per day: <b>3</b>",
        "Hours: <b>14:00–02:00 UTC</b>",
        "Categories: <b>every category alike</b>",
    ] {
        assert!(menu.text.contains(expected), "{expected}: {}", menu.text);
    }
    assert_eq!(setup_rows(&env, CHAT), vec!["[]".to_string()]);
    assert_eq!(history_count(&env, CHAT), 2, "created, then the set-up");
    // Set up now: /start says welcome.
    let welcome = say(&env, CHAT, ADMIN, "/start");
    assert!(
        welcome.text.contains("Welcome to Storyline"),
        "{}",
        welcome.text
    );
}

#[test]
fn chosen_and_typed_values_are_applied_in_one_version() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let wizard = say(&env, CHAT, STRANGER, "/init");
    let (_, wizard) = press(&env, CHAT, &wizard, "Dry run off");
    assert!(
        wizard.text.contains("Dry run: <b>off</b>"),
        "{}",
        wizard.text
    );
    let wizard = forward_to(&env, CHAT, wizard, 4);

    let prompt = open_prompt(&env, CHAT, &wizard, "✏️ Custom");
    assert!(prompt.text.contains("from 1 to 50"), "{}", prompt.text);
    for (value, expected) in [("0", "between 1 and 50"), ("abc", "whole number")] {
        let reply = say(&env, CHAT, ADMIN, value);
        assert!(reply.text.contains(expected), "{value}: {}", reply.text);
        assert!(reply.text.contains("Nothing was changed"), "{}", reply.text);
    }
    let reply = say(&env, CHAT, ADMIN, "7");
    assert!(reply.text.contains("Posts per day: 7"), "{}", reply.text);
    let wizard = wait_until("the step to show 7", WAIT, || {
        env.tg
            .message(CHAT, wizard.message_id)
            .filter(|m| buttons(m).iter().any(|(t, _)| t == "✅ ✏️ 7"))
    });
    assert_eq!(step_of(&wizard), 4);
    assert_eq!(chat_column(&env, CHAT, "posts_per_day"), None);

    let (_, wizard) = press(&env, CHAT, &wizard, "09:00–21:00");
    assert!(wizard.text.contains("09:00–21:00"), "{}", wizard.text);
    open_prompt(&env, CHAT, &wizard, "🌍 Time zone");
    let bad = say(&env, CHAT, ADMIN, "Mars/Base");
    assert!(bad.text.contains("IANA"), "{}", bad.text);
    let good = say(&env, CHAT, ADMIN, "europe/berlin");
    assert!(good.text.contains("Europe/Berlin"), "{}", good.text);
    let wizard = wait_until("the step to show the zone", WAIT, || {
        env.tg
            .message(CHAT, wizard.message_id)
            .filter(|m| m.text.contains("(Europe/Berlin)"))
    });
    let summary = forward(&env, CHAT, &wizard);
    assert!(
        summary
            .text
            .contains("<b>7 posts a day</b>, <b>09:00–21:00</b> Europe/Berlin"),
        "{}",
        summary.text
    );
    assert!(summary.text.contains("🚀 Live"), "{}", summary.text);
    press(&env, CHAT, &summary, "✅ Complete");

    let menu = say(&env, CHAT, ADMIN, "/settings");
    for expected in [
        "Dry run: <b>off</b>",
        "Posts per day: <b>7</b>",
        "Hours: <b>09:00–21:00 Europe/Berlin</b>",
    ] {
        assert!(menu.text.contains(expected), "{expected}: {}", menu.text);
    }
    let rows = setup_rows(&env, CHAT);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let changes: serde_json::Value = serde_json::from_str(&rows[0]).unwrap();
    let settings: Vec<&str> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["setting"].as_str().unwrap())
        .collect();
    assert_eq!(
        settings,
        [
            "dry_run_mode",
            "posts_per_day",
            "posting_hours_start",
            "posting_hours_end",
            "timezone"
        ]
    );
    assert_eq!(history_count(&env, CHAT), 2);
    let by: i64 = env
        .db()
        .query_row(
            "SELECT changed_by FROM settings_history WHERE chat_id = ?1 AND valid_to IS NULL",
            [CHAT],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(by, ADMIN, "the user who pressed Complete");
}

#[test]
fn back_from_every_step_and_stale_or_foreign_presses_change_nothing() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let wizard = say(&env, CHAT, ADMIN, "/init");
    assert!(
        !buttons(&wizard).iter().any(|(t, _)| t == "← Back"),
        "nothing before step 1"
    );
    let step_one_next = button_data(&wizard, "Next →");
    let mut wizard = forward_to(&env, CHAT, wizard, 5);
    for step in (1..5).rev() {
        let (answer, now) = press(&env, CHAT, &wizard, "← Back");
        assert!(!is_alert(&answer));
        assert_eq!(step_of(&now), step, "{}", now.text);
        wizard = now;
    }
    let wizard = forward_to(&env, CHAT, wizard, 3);

    // A button of a step the wizard has left.
    let answer = press_data(&env, CHAT, ADMIN, wizard.message_id, &step_one_next);
    assert!(is_alert(&answer), "{answer:?}");
    assert!(answer.params["text"]
        .as_str()
        .unwrap()
        .contains("out of date"));

    // Another chat's wizard: its buttons pressed here name another wizard.
    let other = -100_321;
    say(&env, other, ADMIN, "/start");
    let other_wizard = say(&env, other, ADMIN, "/init");
    let foreign = button_data(&other_wizard, "Next →");
    let answer = press_data(&env, CHAT, ADMIN, wizard.message_id, &foreign);
    assert!(is_alert(&answer), "{answer:?}");
    // Forged data is refused like any other.
    let answer = press_data(&env, CHAT, ADMIN, wizard.message_id, "1:wz:1:3:ppd:99");
    assert!(is_alert(&answer), "{answer:?}");
    assert_eq!(
        step_of(&env.tg.message(CHAT, wizard.message_id).unwrap()),
        3
    );
    assert_eq!(
        step_of(&env.tg.message(other, other_wizard.message_id).unwrap()),
        1
    );
    let stored_step: i64 = env
        .db()
        .query_row(
            "SELECT step FROM setup_wizards WHERE chat_id = ?1",
            [CHAT],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored_step, 3);
}

#[test]
fn categories_switched_off_get_weight_zero_in_the_mix() {
    let env = Env::new();
    put(&env, "quotes/monday.jpg");
    put(&env, "quotes/tuesday.jpg");
    put(&env, "products/mug.jpg");
    let out = env.run(&["scan"]);
    assert!(
        out.status.success(),
        "{}",
        crate::support::describe_output(&out)
    );
    let _daemon = env.start_polling();
    let wizard = say(&env, CHAT, ADMIN, "/init");
    let wizard = forward_to(&env, CHAT, wizard, 3);
    let labels: Vec<String> = buttons(&wizard).into_iter().map(|(t, _)| t).collect();
    assert!(
        labels.contains(&"✅ products · 1 item".to_string()),
        "{labels:?}"
    );
    assert!(
        labels.contains(&"✅ quotes · 2 items".to_string()),
        "{labels:?}"
    );

    let (_, wizard) = press(&env, CHAT, &wizard, "✅ products");
    assert!(buttons(&wizard)
        .iter()
        .any(|(t, _)| t == "⬜ products · 1 item"));
    // The last category on cannot go off.
    let data = button_data(&wizard, "✅ quotes");
    let answer = press_data(&env, CHAT, ADMIN, wizard.message_id, &data);
    assert!(is_alert(&answer), "{answer:?}");
    // Off, on, off again: the buttons carry the state they set.
    let (_, wizard) = press(&env, CHAT, &wizard, "⬜ products");
    let (_, wizard) = press(&env, CHAT, &wizard, "✅ products");

    let summary = forward_to(&env, CHAT, wizard, 5);
    assert!(summary.text.contains("Media: quotes"), "{}", summary.text);
    press(&env, CHAT, &summary, "✅ Complete");
    let weights: Vec<(String, i64)> = {
        let db = env.db();
        let mut stmt = db
            .prepare(
                "SELECT category, weight FROM chat_categories WHERE chat_id = ?1 ORDER BY category",
            )
            .unwrap();
        let rows = stmt
            .query_map([CHAT], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows
    };
    assert_eq!(
        weights,
        [("products".to_string(), 0), ("quotes".to_string(), 1)]
    );
    let menu = say(&env, CHAT, ADMIN, "/settings");
    assert!(
        menu.text
            .contains("Categories: <b>products 0% · quotes 100%</b>"),
        "{}",
        menu.text
    );
    assert!(
        setup_rows(&env, CHAT)[0].contains("category_mix"),
        "{:?}",
        setup_rows(&env, CHAT)
    );
}

#[test]
fn cancelling_leaves_the_settings_untouched() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let wizard = say(&env, CHAT, ADMIN, "/init");
    let (_, wizard) = press(&env, CHAT, &wizard, "Dry run off");
    let wizard = forward_to(&env, CHAT, wizard, 4);
    let (_, wizard) = press(&env, CHAT, &wizard, "10");
    // A prompt left open is dropped with the set-up.
    open_prompt(&env, CHAT, &wizard, "✏️ Custom");
    let (answer, cancelled) = press(&env, CHAT, &wizard, "✖️ Cancel setup");
    assert!(!is_alert(&answer));
    assert!(
        cancelled.text.contains("nothing was changed"),
        "{}",
        cancelled.text
    );
    assert!(cancelled.reply_markup.is_none());
    let reply = say(&env, CHAT, ADMIN, "/cancel");
    assert!(reply.text.contains("nothing to cancel"), "{}", reply.text);

    for column in [
        "dry_run_mode",
        "posts_per_day",
        "posting_hours_start",
        "timezone",
    ] {
        assert_eq!(chat_column(&env, CHAT, column), None, "{column}");
    }
    assert_eq!(history_count(&env, CHAT), 1);
    assert_eq!(wizard_rows(&env), 0);
    // Still never set up: /start offers a fresh wizard, from the chat's settings.
    let again = say(&env, CHAT, ADMIN, "/start");
    assert_eq!(step_of(&again), 1);
    assert!(again.text.contains("Dry run: <b>ON</b>"), "{}", again.text);
    let answer = press_data(
        &env,
        CHAT,
        ADMIN,
        wizard.message_id,
        &button_data(&wizard, "Next →"),
    );
    assert!(
        is_alert(&answer),
        "the cancelled message's buttons are dead"
    );
}

#[test]
fn a_restart_mid_wizard_resumes_at_the_same_step_with_the_values() {
    let env = Env::new();
    let daemon = env.start_polling();
    let wizard = say(&env, CHAT, ADMIN, "/init");
    let (_, wizard) = press(&env, CHAT, &wizard, "Dry run off");
    let wizard = forward_to(&env, CHAT, wizard, 4);
    let (_, wizard) = press(&env, CHAT, &wizard, "5");
    let (status, _) = daemon.terminate();
    assert!(status.success(), "{status}");

    let _daemon = env.start_polling();
    let resumed = say(&env, CHAT, ADMIN, "/init");
    assert_ne!(resumed.message_id, wizard.message_id);
    assert_eq!(step_of(&resumed), 4, "{}", resumed.text);
    assert!(
        buttons(&resumed).iter().any(|(t, _)| t == "✅ 5"),
        "{:?}",
        buttons(&resumed)
    );
    // The older message's buttons stop working once it is shown again.
    let answer = press_data(
        &env,
        CHAT,
        ADMIN,
        wizard.message_id,
        &button_data(&wizard, "Next →"),
    );
    assert!(is_alert(&answer), "{answer:?}");
    let (_, back) = press(&env, CHAT, &resumed, "← Back");
    assert_eq!(step_of(&back), 3);
    let summary = forward_to(&env, CHAT, back, 5);
    assert!(summary.text.contains("🚀 Live"), "{}", summary.text);
    assert!(
        summary.text.contains("<b>5 posts a day</b>"),
        "{}",
        summary.text
    );
    press(&env, CHAT, &summary, "✅ Complete");
    assert_eq!(chat_column(&env, CHAT, "dry_run_mode"), Some(0));
    assert_eq!(chat_column(&env, CHAT, "posts_per_day"), Some(5));
    assert_eq!(setup_rows(&env, CHAT).len(), 1);
}

/// The message id stored with the chat's running wizard, once the outbox recorded it.
fn wizard_message_id(env: &Env) -> Option<i64> {
    env.db()
        .query_row(
            "SELECT message_id FROM setup_wizards WHERE chat_id = ?1",
            [CHAT],
            |r| r.get(0),
        )
        .unwrap_or(None)
}

/// Waits until the message no longer has buttons; returns it.
fn without_buttons(env: &Env, message_id: i64) -> SentMessage {
    wait_until("the old message to lose its buttons", WAIT, || {
        env.tg
            .message(CHAT, message_id)
            .filter(|m| m.reply_markup.is_none())
    })
}

#[test]
fn init_again_moves_the_set_up_and_the_old_message_says_where_without_buttons() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let first = say(&env, CHAT, ADMIN, "/init");
    let first = forward(&env, CHAT, &first);
    wait_until("the wizard's message id to be stored", WAIT, || {
        (wizard_message_id(&env) == Some(first.message_id)).then_some(())
    });

    let resumed = say(&env, CHAT, ADMIN, "/init");
    assert_ne!(resumed.message_id, first.message_id);
    assert_eq!(step_of(&resumed), 2, "{}", resumed.text);
    let old = without_buttons(&env, first.message_id);
    assert!(
        old.text
            .contains("This set-up moved to a newer message below (now at step 2 of 5"),
        "{}",
        old.text
    );
    // The set-up goes on in the new message.
    let media = forward(&env, CHAT, &resumed);
    assert_eq!(media.message_id, resumed.message_id);

    // A message whose id was never stored (Telegram had not answered yet when
    // /init came again) keeps its buttons until pressed; the press then says
    // it is out of date and takes them away.
    wait_until("the second message id to be stored", WAIT, || {
        (wizard_message_id(&env) == Some(resumed.message_id)).then_some(())
    });
    env.db()
        .execute("UPDATE setup_wizards SET message_id = NULL", [])
        .unwrap();
    let newest = say(&env, CHAT, ADMIN, "/init");
    assert_eq!(step_of(&newest), 3, "{}", newest.text);
    assert!(
        env.tg
            .message(CHAT, media.message_id)
            .is_some_and(|m| m.reply_markup.is_some()),
        "an old message whose id is unknown is not edited on /init"
    );
    let answer = press_data(
        &env,
        CHAT,
        ADMIN,
        media.message_id,
        &button_data(&media, "Next →"),
    );
    assert!(is_alert(&answer), "{answer:?}");
    let old = without_buttons(&env, media.message_id);
    assert!(
        old.text.contains("moved to a newer message below"),
        "{}",
        old.text
    );
    let newest_now = env.tg.message(CHAT, newest.message_id).unwrap();
    assert_eq!(step_of(&newest_now), 3);
    assert!(newest_now.reply_markup.is_some());
}

#[test]
fn only_an_admin_sets_up_a_chat_that_is_not_served_and_completing_enables_it() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let new_chat = -100_999;
    let refused = say(&env, new_chat, STRANGER, "/init");
    assert!(refused.text.contains("-100999"), "{}", refused.text);
    assert!(refused.reply_markup.is_none());
    let chats: i64 = env
        .db()
        .query_row(
            "SELECT count(*) FROM chats WHERE chat_id = ?1",
            [new_chat],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(chats, 0, "nothing stored for a refused /init");

    let wizard = say(&env, new_chat, ADMIN, "/init");
    assert_eq!(step_of(&wizard), 1, "{}", wizard.text);
    // Not served yet: a member's press is refused.
    let answer = press_data(
        &env,
        new_chat,
        STRANGER,
        wizard.message_id,
        &button_data(&wizard, "Dry run off"),
    );
    assert!(is_alert(&answer), "{answer:?}");
    let wizard = forward_to(&env, new_chat, wizard, 4);
    // The admin's typed values work before the chat is served.
    open_prompt(&env, new_chat, &wizard, "✏️ Custom");
    let bad = say(&env, new_chat, ADMIN, "abc");
    assert!(bad.text.contains("whole number"), "{}", bad.text);
    let good = say(&env, new_chat, ADMIN, "4");
    assert!(good.text.contains("Posts per day: 4"), "{}", good.text);
    let wizard = wait_until("the step to show 4", WAIT, || {
        env.tg
            .message(new_chat, wizard.message_id)
            .filter(|m| buttons(m).iter().any(|(t, _)| t == "✅ ✏️ 4"))
    });
    assert_eq!(
        env.db()
            .query_row(
                "SELECT authorized_by FROM chats WHERE chat_id = ?1",
                [new_chat],
                |r| r.get::<_, Option<i64>>(0),
            )
            .unwrap(),
        None,
        "not served before Complete"
    );
    let summary = forward(&env, new_chat, &wizard);
    let (_, done) = press(&env, new_chat, &summary, "✅ Complete");
    assert!(done.text.contains("now enabled"), "{}", done.text);

    let authorized_by: Option<i64> = env
        .db()
        .query_row(
            "SELECT authorized_by FROM chats WHERE chat_id = ?1",
            [new_chat],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(authorized_by, Some(ADMIN));
    assert_eq!(chat_column(&env, new_chat, "posts_per_day"), Some(4));
    assert_eq!(setup_rows(&env, new_chat).len(), 1);
    let status = say(&env, new_chat, STRANGER, "/status");
    assert!(status.text.contains("Posts per day: 4"), "{}", status.text);
}

/// Runs `storyline accounts add` for an account.
fn add_account(env: &Env, name: &str, instagram_id: &str, username: &str) {
    let output = env.run(&[
        "accounts",
        "add",
        "--name",
        name,
        "--instagram-id",
        instagram_id,
        "--username",
        username,
        "--token",
        "IGQVJ-wizard-PLAINTEXT-token-0123456789",
    ]);
    assert!(
        output.status.success(),
        "{}",
        crate::support::describe_output(&output)
    );
}

#[test]
fn the_instagram_step_picks_an_account_or_sends_the_connect_message() {
    let env = Env::new();
    add_account(&env, "Main Brand", "17841400000000001", "brand_main");
    add_account(&env, "<Promo>", "17841400000000002", "promo");
    let _daemon = env.start_polling();
    let wizard = say(&env, CHAT, ADMIN, "/init");
    let wizard = forward(&env, CHAT, &wizard);
    assert_eq!(step_of(&wizard), 2);
    assert!(wizard.text.contains("pick an account"), "{}", wizard.text);

    // 🔗 Connect Instagram sends what /connect sends (here: which keys to set).
    let before = env.tg.messages(CHAT).len();
    press_data(
        &env,
        CHAT,
        ADMIN,
        wizard.message_id,
        &button_data(&wizard, "🔗 Connect Instagram"),
    );
    let from_wizard = next_reply(&env, CHAT, before, "the connect message");
    let from_command = say(&env, CHAT, ADMIN, "/connect");
    assert_eq!(from_wizard.text, from_command.text);
    assert!(from_wizard.text.contains("app_id"), "{}", from_wizard.text);

    let (_, media) = press(&env, CHAT, &wizard, "<Promo> (@promo)");
    assert_eq!(step_of(&media), 3);
    let (_, wizard) = press(&env, CHAT, &media, "← Back");
    assert!(
        buttons(&wizard)
            .iter()
            .any(|(t, _)| t == "✅ <Promo> (@promo)"),
        "{:?}",
        buttons(&wizard)
    );
    assert!(
        wizard.text.contains("Chosen: <b>@promo</b>"),
        "{}",
        wizard.text
    );
    let summary = forward_to(&env, CHAT, wizard, 5);
    assert!(
        summary.text.contains("Instagram: <b>@promo</b>"),
        "{}",
        summary.text
    );
    press(&env, CHAT, &summary, "✅ Complete");
    let (chosen, promo): (Option<i64>, i64) = env
        .db()
        .query_row(
            "SELECT (SELECT active_account_id FROM chats WHERE chat_id = ?1),
                    (SELECT id FROM instagram_accounts WHERE username = 'promo')",
            [CHAT],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(chosen, Some(promo));
    let rows = setup_rows(&env, CHAT);
    assert!(rows[0].contains("active_account_id"), "{rows:?}");
}
