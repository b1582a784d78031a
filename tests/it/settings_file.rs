//! Settings export and import: /settings export sends a JSON document, a file
//! sent back shows its differences with Apply / Cancel, a bad file changes
//! nothing and names the field; `storyline settings export|import` on the
//! command line; an export imported again is a no-op.

use serde_json::Value;

use crate::helpers::*;
use crate::support::{describe_output, wait_until, Env, SentMessage, ADMIN, CHAT};

/// `/settings export`: the document message and the file's text.
fn export(env: &Env) -> (SentMessage, String) {
    let from = env.tg.calls().len();
    env.tg.push_message(CHAT, ADMIN, "ada", "/settings export");
    let (_, call) = env.tg.wait_for(from, WAIT, |c| {
        c.method == "sendDocument" && c.status == Some(200)
    });
    let content = call.params["document"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no file content in {:?}", call.params))
        .to_string();
    let message = wait_until("the export message", WAIT, || {
        env.tg
            .messages(CHAT)
            .into_iter()
            .rev()
            .find(|m| m.kind == "document")
    });
    (message, content)
}

/// Sends `content` as a document (a reply to `reply_to`); returns the bot's answer.
fn send_file(env: &Env, name: &str, content: &str, reply_to: Option<i64>) -> SentMessage {
    let before = env.tg.messages(CHAT).len();
    env.tg
        .push_document(CHAT, ADMIN, "ada", name, content.as_bytes(), reply_to);
    next_reply(env, CHAT, before, &format!("the answer to {name}"))
}

fn current_version(env: &Env) -> (String, Option<i64>, String) {
    env.db()
        .query_row(
            "SELECT reason, changed_by, changes FROM settings_history
             WHERE chat_id = ?1 AND valid_to IS NULL",
            [CHAT],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

fn edited(content: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut file: Value = serde_json::from_str(content).unwrap();
    edit(&mut file);
    serde_json::to_string_pretty(&file).unwrap()
}

#[test]
fn an_export_sent_back_changes_nothing_and_an_edited_one_applies_on_apply() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let (document, content) = export(&env);
    assert!(
        document.text.contains("send this file back as a reply"),
        "{}",
        document.text
    );
    let file: Value = serde_json::from_str(&content).unwrap();
    assert_eq!(file["storyline_settings"], 1);
    assert_eq!(file["settings"]["posts_per_day"], 3);
    assert_eq!(file["chat"]["id"], CHAT);
    assert!(!content.to_lowercase().contains("token"), "{content}");
    let uploads = env.tg.calls_of("sendDocument");
    let upload = &uploads[0].params["document"];
    assert!(
        upload["file_name"]
            .as_str()
            .is_some_and(|n| n.starts_with("storyline-settings-") && n.ends_with(".json")),
        "{upload}"
    );
    let versions = history_count(&env, CHAT);

    // Round trip: the export, sent back as a reply to itself, is a no-op.
    let answer = send_file(&env, "mine.json", &content, Some(document.message_id));
    assert!(answer.text.contains("nothing to change"), "{}", answer.text);
    assert_eq!(history_count(&env, CHAT), versions);
    assert!(
        !env.tg.calls_of("file").is_empty(),
        "the file was downloaded"
    );

    let changed = edited(&content, |f| {
        f["settings"]["posts_per_day"] = 5.into();
        f["settings"]["timezone"] = "Europe/Berlin".into();
        f["settings"]["dry_run_mode"] = false.into();
        f["locks"]["skipped_days"] = 7.into();
    });
    let preview = send_file(&env, "mine.json", &changed, Some(document.message_id));
    for line in [
        "This file changes 4 settings",
        "Posts per day: 3 → <b>5</b>",
        "Time zone: UTC → <b>Europe/Berlin</b>",
        "Dry run: on → <b>off</b>",
        "Lock after Skip: 45 days → <b>7 days</b>",
    ] {
        assert!(preview.text.contains(line), "{line}\n{}", preview.text);
    }
    // Nothing changes before Apply.
    assert_eq!(history_count(&env, CHAT), versions);
    assert_eq!(chat_column(&env, CHAT, "posts_per_day"), None);

    let (answer, applied) = press(&env, CHAT, &preview, "✅ Apply");
    assert!(!is_alert(&answer));
    assert!(
        applied.text.contains("Imported: 4 settings changed"),
        "{}",
        applied.text
    );
    assert_eq!(history_count(&env, CHAT), versions + 1, "one version");
    let (reason, by, changes) = current_version(&env);
    assert_eq!((reason.as_str(), by), ("import", Some(ADMIN)));
    let changes: Vec<Value> = serde_json::from_str(&changes).unwrap();
    let settings: Vec<&str> = changes
        .iter()
        .map(|c| c["setting"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        settings,
        [
            "posts_per_day",
            "timezone",
            "dry_run_mode",
            "skipped_lock_days"
        ]
    );
    assert_eq!(chat_column(&env, CHAT, "posts_per_day"), Some(5));
    assert_eq!(chat_column(&env, CHAT, "dry_run_mode"), Some(0));
    // Untouched settings keep following the defaults.
    assert_eq!(chat_column(&env, CHAT, "posting_hours_start"), None);

    // A second press on the same buttons finds nothing waiting.
    let again = press_data(
        &env,
        CHAT,
        ADMIN,
        preview.message_id,
        &button_data(&preview, "✅ Apply"),
    );
    assert!(is_alert(&again), "{again:?}");
    assert_eq!(history_count(&env, CHAT), versions + 1);

    // The settings now exported are the imported ones.
    let (_, content) = export(&env);
    let file: Value = serde_json::from_str(&content).unwrap();
    assert_eq!(file["settings"]["timezone"], "Europe/Berlin");
    assert_eq!(file["locks"]["skipped_days"], 7);
    assert_token_not_logged(&env);
}

#[test]
fn a_bad_file_changes_nothing_and_says_which_field_and_why() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let (_, content) = export(&env);
    let versions = history_count(&env, CHAT);

    let prompt = say(&env, CHAT, ADMIN, "/settings import");
    assert!(
        prompt.text.contains("Send me the settings file"),
        "{}",
        prompt.text
    );
    // Typed text does not answer it; the prompt keeps waiting for the file.
    let typed = say(&env, CHAT, ADMIN, "posts_per_day 5");
    assert!(typed.text.contains("not a settings file"), "{}", typed.text);

    let bad = edited(&content, |f| f["settings"]["posts_per_day"] = 51.into());
    let answer = send_file(&env, "bad.json", &bad, None);
    assert!(
        answer.text.contains("<code>settings.posts_per_day</code>")
            && answer.text.contains("between 1 and 50")
            && answer.text.contains("Nothing was changed"),
        "{}",
        answer.text
    );

    // The prompt was used up: a plain document now is none of the bot's business,
    // so each further file is sent after /settings import again.
    for (file, expected) in [
        (
            edited(&content, |f| f["settings"]["colour"] = "red".into()),
            "<code>settings.colour</code>: is not a field Storyline knows",
        ),
        (
            edited(&content, |f| f["storyline_settings"] = 2.into()),
            "comes from a newer Storyline",
        ),
        (
            edited(&content, |f| f["category_mix"]["nope"] = 3.into()),
            "<code>category_mix.nope</code>",
        ),
        (
            edited(&content, |f| f["instagram_account"] = "someone".into()),
            "<code>instagram_account</code>: @someone is not an Instagram account",
        ),
        ("not json at all".to_string(), "is not valid JSON"),
    ] {
        say(&env, CHAT, ADMIN, "/settings import");
        let answer = send_file(&env, "bad.json", &file, None);
        assert!(
            answer.text.contains(expected),
            "{expected}\n{}",
            answer.text
        );
    }

    // A file far too big is refused without being downloaded.
    let downloads = env.tg.calls_of("file").len();
    say(&env, CHAT, ADMIN, "/settings import");
    let huge = " ".repeat(70 * 1024);
    let answer = send_file(&env, "huge.json", &huge, None);
    assert!(answer.text.contains("over 64 KB"), "{}", answer.text);
    assert_eq!(env.tg.calls_of("file").len(), downloads);

    // Cancel under the differences keeps everything as it was.
    say(&env, CHAT, ADMIN, "/settings import");
    let good = edited(&content, |f| f["settings"]["posts_per_day"] = 9.into());
    let preview = send_file(&env, "good.json", &good, None);
    let (_, cancelled) = press(&env, CHAT, &preview, "✖️ Cancel");
    assert!(
        cancelled.text.contains("Import cancelled"),
        "{}",
        cancelled.text
    );

    assert_eq!(history_count(&env, CHAT), versions);
    assert_eq!(chat_column(&env, CHAT, "posts_per_day"), None);
}

#[test]
fn the_command_line_exports_and_imports_and_a_round_trip_is_a_no_op() {
    let env = Env::new();
    let chat = CHAT.to_string();
    let output = env.run(&["settings", "export", "--chat", &chat]);
    assert!(output.status.success(), "{}", describe_output(&output));
    let content = String::from_utf8(output.stdout).unwrap();
    let file: Value = serde_json::from_str(&content).unwrap();
    assert_eq!(file["storyline_settings"], 1);
    let versions = history_count(&env, CHAT);

    let path = env.path().join("settings.json");
    std::fs::write(&path, &content).unwrap();
    let path_text = path.display().to_string();
    let output = env.run(&["settings", "import", "--chat", &chat, &path_text]);
    assert!(output.status.success(), "{}", describe_output(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("nothing to change"),
        "{}",
        describe_output(&output)
    );
    assert_eq!(
        history_count(&env, CHAT),
        versions,
        "a round trip is a no-op"
    );

    std::fs::write(
        &path,
        edited(&content, |f| f["settings"]["posts_per_day"] = 6.into()),
    )
    .unwrap();
    let output = env.run(&[
        "settings",
        "import",
        "--chat",
        &chat,
        &path_text,
        "--dry-run",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}", describe_output(&output));
    assert!(
        stdout.contains("1 setting would change") && stdout.contains("Posts per day: 3 -> 6"),
        "{stdout}"
    );
    assert_eq!(history_count(&env, CHAT), versions);

    let output = env.run(&["settings", "import", "--chat", &chat, &path_text]);
    assert!(output.status.success(), "{}", describe_output(&output));
    assert_eq!(history_count(&env, CHAT), versions + 1);
    let (reason, by, _) = current_version(&env);
    assert_eq!((reason.as_str(), by), ("import (CLI)", None));
    assert_eq!(chat_column(&env, CHAT, "posts_per_day"), Some(6));

    std::fs::write(
        &path,
        edited(&content, |f| f["locks"]["posted_days"] = "soon".into()),
    )
    .unwrap();
    let output = env.run(&["settings", "import", "--chat", &chat, &path_text]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        describe_output(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("locks.posted_days: must be a number"),
        "{stderr}"
    );
    assert_eq!(history_count(&env, CHAT), versions + 1);
}
