//! History (issue 12): /history pages in the chat (◀ ▶ edit the same message; a
//! page that is not there is answered and changes nothing), its narrowing, and
//! the command line: `storyline history` (text and --json) and `storyline
//! settings show --at` between two changes.

use serde_json::Value;

use crate::helpers::*;
use crate::support::{describe_output, Env, ADMIN, CHAT};

/// Another user, named in the seeded history.
const BO: i64 = 7;

/// `settings` closed settings versions by @bo (reason "settings menu"), hours
/// apart from 2025-01-06 10:00 UTC, and `posts` posted stories of one item,
/// in the hours after them. Works beside a running daemon (the versions are
/// closed, so the daemon's current one stays the only current one).
fn seed(env: &Env, settings: u32, posts: u32) {
    let db = env.db();
    db.execute_batch(
        "INSERT OR IGNORE INTO users (user_id, username, first_name, role, first_seen, last_seen)
         VALUES (7, 'bo', 'Bo', 'member', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z');
         INSERT INTO media_items (id, path, category, kind, size, mtime_ns, sha256, first_seen, last_seen)
         VALUES (900, 'quotes/<q1>.jpg', 'quotes', 'image', 1, 1, 'ab', '2025-01-01T00:00:00Z',
                 '2025-01-01T00:00:00Z');",
    )
    .unwrap();
    let hour = |n: u32| format!("2025-01-{:02}T{:02}:00:00Z", 6 + n / 24, n % 24);
    for i in 0..settings {
        db.execute(
            "INSERT INTO settings_history (chat_id, snapshot, changes, changed_by, reason, valid_from, valid_to)
             VALUES (?1, '{}', ?2, ?3, 'settings menu', ?4, ?5)",
            rusqlite::params![
                CHAT,
                format!(
                    r#"[{{"setting":"posts_per_day","old":{},"new":{}}}]"#,
                    i + 1,
                    i + 2
                ),
                BO,
                hour(10 + i),
                hour(11 + i)
            ],
        )
        .unwrap();
    }
    for i in 0..posts {
        db.execute(
            "INSERT INTO posting_history (chat_id, media_item_id, sha256, outcome, method, user_id, created_at)
             VALUES (?1, 900, 'ab', 'posted', 'manual', ?2, ?3)",
            rusqlite::params![CHAT, BO, format!("2025-01-06T{:02}:30:00Z", 10 + i)],
        )
        .unwrap();
    }
}

fn page_of(message: &crate::support::SentMessage) -> String {
    message
        .text
        .lines()
        .find(|l| l.starts_with("Page "))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn history_pages_edit_the_same_message_and_a_page_that_is_not_there_changes_nothing() {
    let env = Env::new();
    env.write_config("[defaults]\ntimezone = \"Europe/Berlin\"\n");
    let _daemon = env.start_polling();
    seed(&env, 12, 6);
    // A change made now, through the bot: the newest entry.
    say(&env, CHAT, ADMIN, "/dryrun off");

    let first = say(&env, CHAT, ADMIN, "/history");
    // 12 + 6 seeded, the chat's first version, /dryrun: 20 entries, 3 pages.
    assert!(
        first.text.starts_with(
            "🕘 <b>History</b>, newest first\nPage 1 of 3 · 20 entries · times in Europe/Berlin"
        ),
        "{}",
        first.text
    );
    let newest = first.text.split("\n\n").nth(1).unwrap_or_default();
    assert!(
        newest.contains("— @ada\n⚙️ Dry run on → off <i>(/dryrun)</i>"),
        "{newest}"
    );
    let labels: Vec<String> = buttons(&first).into_iter().map(|(t, _)| t).collect();
    assert_eq!(labels, ["Older ▶"]);

    let (answer, second) = press(&env, CHAT, &first, "Older ▶");
    assert!(!is_alert(&answer), "{answer:?}");
    assert_eq!(answer.params["text"], "Page 2 of 3");
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(
        page_of(&second),
        "Page 2 of 3 · 20 entries · times in Europe/Berlin"
    );
    // Seeded in January: Berlin's winter time, the item's name escaped.
    assert!(second.text.contains("CET</b> — @bo"), "{}", second.text);
    assert!(
        second
            .text
            .contains("✅ quotes/&lt;q1&gt;.jpg posted <i>(by hand)</i>"),
        "{}",
        second.text
    );
    let labels: Vec<String> = buttons(&second).into_iter().map(|(t, _)| t).collect();
    assert_eq!(labels, ["◀ Newer", "Older ▶"]);

    let (_, third) = press(&env, CHAT, &second, "Older ▶");
    assert_eq!(
        page_of(&third),
        "Page 3 of 3 · 20 entries · times in Europe/Berlin"
    );
    assert!(
        third
            .text
            .trim_end()
            .ends_with("⚙️ Posts per day 1 → 2 <i>(menu)</i>"),
        "the oldest entry is the first seeded change: {}",
        third.text
    );
    // New entries after /history do not shift its pages.
    say(&env, CHAT, ADMIN, "/dryrun on");
    let (_, back) = press(&env, CHAT, &third, "◀ Newer");
    assert_eq!(back.text, second.text);
    let (_, back) = press(&env, CHAT, &back, "◀ Newer");
    assert_eq!(
        back.text, first.text,
        "page 1 as it was when /history was sent"
    );
    assert_eq!(
        env.tg
            .messages(CHAT)
            .iter()
            .filter(|m| m.text.starts_with("🕘"))
            .count(),
        1
    );

    // A page past the end, and a list from the future: answered, nothing edited.
    let older = button_data(&back, "Older ▶");
    let anchor = older.splitn(5, ':').nth(4).unwrap_or_default().to_string();
    let (at, ids) = anchor.split_once(':').unwrap_or_default();
    for data in [
        format!("1:hist:a:3:{anchor}"),
        format!("1:hist:s:2:{anchor}"),
        format!("1:hist:a:0:99999999999:{ids}"),
        format!("1:hist:z:1:{anchor}"),
        format!("1:hist:a:1:{at}:{ids}:1"),
    ] {
        let from = env.tg.calls().len();
        let answer = press_data(&env, CHAT, ADMIN, back.message_id, &data);
        assert!(is_alert(&answer), "{data}: {answer:?}");
        wait_for_empty_outbox(&env);
        let edits = env.tg.calls()[from..]
            .iter()
            .filter(|c| c.method == "editMessageText")
            .count();
        assert_eq!(edits, 0, "{data}");
        assert_eq!(
            env.tg.message(CHAT, back.message_id).unwrap().text,
            first.text
        );
    }
    assert_token_not_logged(&env);
}

#[test]
fn history_narrows_to_settings_or_posts() {
    let env = Env::new();
    let _daemon = env.start_polling();
    seed(&env, 3, 2);
    let entries =
        |text: &str| -> Vec<String> { text.split("\n\n").skip(1).map(str::to_string).collect() };

    let settings = say(&env, CHAT, ADMIN, "/history settings");
    assert!(
        settings.text.starts_with("🕘 <b>Settings history</b>"),
        "{}",
        settings.text
    );
    assert_eq!(entries(&settings.text).len(), 4, "{}", settings.text);
    assert!(
        entries(&settings.text).iter().all(|e| e.contains("⚙️")),
        "{}",
        settings.text
    );
    assert!(buttons(&settings).is_empty(), "one page, no buttons");

    let posts = say(&env, CHAT, ADMIN, "/history posts");
    assert!(
        posts.text.starts_with("🕘 <b>Posting history</b>"),
        "{}",
        posts.text
    );
    assert_eq!(entries(&posts.text).len(), 2, "{}", posts.text);
    assert!(
        entries(&posts.text).iter().all(|e| e.contains("✅")),
        "{}",
        posts.text
    );

    let all = say(&env, CHAT, ADMIN, "/history");
    assert_eq!(entries(&all.text).len(), 6, "{}", all.text);

    let usage = say(&env, CHAT, ADMIN, "/history everything");
    assert!(usage.text.contains("/history settings"), "{}", usage.text);
    assert_eq!(handled_commands(&env, "history"), 4);
}

/// A database with CHAT (UTC) and its history, and no daemon.
fn seeded_database() -> Env {
    let env = Env::new();
    let output = env.run(&["migrate"]);
    assert!(output.status.success(), "{}", describe_output(&output));
    env.db()
        .execute_batch(&format!(
            "INSERT INTO chats (chat_id, created_at, updated_at)
             VALUES ({CHAT}, '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z');
             INSERT INTO settings_history (chat_id, snapshot, changes, changed_by, reason, valid_from, valid_to)
             VALUES ({CHAT}, '{{\"posts_per_day\":3,\"dry_run_mode\":true}}', '[]', NULL, 'chat created',
                     '2025-01-01T00:00:00Z', '2025-01-10T00:00:00Z'),
                    ({CHAT}, '{{\"posts_per_day\":5,\"dry_run_mode\":true}}',
                     '[{{\"setting\":\"posts_per_day\",\"old\":3,\"new\":5}}]', {BO}, 'settings menu',
                     '2025-01-10T00:00:00Z', '2025-01-20T00:00:00Z'),
                    ({CHAT}, '{{\"posts_per_day\":9,\"dry_run_mode\":false}}',
                     '[{{\"setting\":\"posts_per_day\",\"old\":5,\"new\":9}},
                       {{\"setting\":\"category_mix\",\"old\":\"every category alike\",\"new\":\"quotes 2\"}}]',
                     NULL, 'import', '2025-01-20T00:00:00Z', NULL);"
        ))
        .unwrap();
    seed(&env, 0, 2);
    env
}

fn stdout(env: &Env, args: &[&str]) -> String {
    let output = env.run(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        describe_output(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn storyline_history_prints_text_and_json() {
    let env = seeded_database();
    let chat = CHAT.to_string();
    let text = stdout(&env, &["history", "--chat", &chat]);
    assert_eq!(
        text,
        format!(
            "Chat {CHAT} (UTC): 5 entries, newest first
  2025-01-20 00:00 UTC  settings  Storyline: Posts per day 5 → 9; Category mix every category alike → quotes 2 (import)
  2025-01-10 00:00 UTC  settings  @bo: Posts per day 3 → 5 (menu)
  2025-01-06 11:30 UTC  post      @bo: quotes/<q1>.jpg posted (by hand)
  2025-01-06 10:30 UTC  post      @bo: quotes/<q1>.jpg posted (by hand)
  2025-01-01 00:00 UTC  settings  Storyline: settings recorded as they were (new chat)
"
        )
    );
    let settings = stdout(&env, &["history", "--settings", "--since", "2025-01-10"]);
    assert!(
        settings.starts_with(&format!("Chat {CHAT} (UTC): 2 entries")),
        "{settings}"
    );
    assert!(!settings.contains("post "), "{settings}");
    let posts = stdout(&env, &["history", "--posts", "--chat", &chat]);
    assert_eq!(posts.lines().count(), 3, "{posts}");

    let json: Value = serde_json::from_str(&stdout(&env, &["history", "--json", "--chat", &chat]))
        .expect("--json prints one JSON document");
    let entries = json.as_array().expect("an array of entries");
    assert_eq!(entries.len(), 5);
    assert_eq!(
        entries[0],
        serde_json::json!({
            "chat_id": CHAT,
            "at": "2025-01-20T00:00:00Z",
            "local_time": "2025-01-20T00:00:00+00:00",
            "kind": "settings",
            "user_id": null,
            "who": "Storyline",
            "what": "Posts per day 5 → 9; Category mix every category alike → quotes 2",
            "why": "import",
            "reason": "import",
            "source": "import",
            "changes": [
                {"setting": "posts_per_day", "old": 5, "new": 9},
                {"setting": "category_mix", "old": "every category alike", "new": "quotes 2"}
            ]
        })
    );
    assert_eq!(
        entries[2],
        serde_json::json!({
            "chat_id": CHAT,
            "at": "2025-01-06T11:30:00Z",
            "local_time": "2025-01-06T11:30:00+00:00",
            "kind": "post",
            "user_id": BO,
            "who": "@bo",
            "what": "quotes/<q1>.jpg posted",
            "why": "by hand",
            "item": "quotes/<q1>.jpg",
            "outcome": "posted",
            "method": "manual",
            "error": null
        })
    );

    // Argument errors: the command's own usage, exit 2.
    for args in [
        &["history", "--settings", "--posts"][..],
        &["history", "--since", "last week"],
        &["history", "--chat"],
    ] {
        let output = env.run(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            describe_output(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("Usage: storyline [--config PATH] history"),
            "{stderr}"
        );
    }
    let output = env.run(&["history", "--chat", "555"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe_output(&output)
    );
}

#[test]
fn storyline_settings_show_at_a_time_between_two_changes() {
    let env = seeded_database();
    let chat = CHAT.to_string();
    let between = stdout(
        &env,
        &[
            "settings",
            "show",
            "--chat",
            &chat,
            "--at",
            "2025-01-15T12:00:00Z",
        ],
    );
    assert_eq!(
        between,
        format!(
            "Chat {CHAT}: settings at 2025-01-15 12:00 UTC (2025-01-15T12:00:00Z):
  version from 2025-01-10 00:00 UTC, until 2025-01-20 00:00 UTC; by @bo (menu)
  that version changed: Posts per day 3 → 5
  Dry run: on
  Posts per day: 5
  Category mix: every category alike
"
        )
    );
    // A day alone is its midnight: the second version's first moment.
    let at_start = stdout(
        &env,
        &["settings", "show", "--chat", &chat, "--at", "2025-01-10"],
    );
    assert!(at_start.contains("Posts per day: 5"), "{at_start}");
    let before = stdout(
        &env,
        &[
            "settings",
            "show",
            "--chat",
            &chat,
            "--at",
            "2025-01-09T23:59",
        ],
    );
    assert!(before.contains("Posts per day: 3"), "{before}");
    let current = stdout(&env, &["settings", "show", "--chat", &chat]);
    assert!(
        current.contains("still current; by Storyline (import)"),
        "{current}"
    );
    assert!(current.contains("Posts per day: 9"), "{current}");
    assert!(current.contains("Dry run: off"), "{current}");
    assert!(current.contains("Category mix: quotes 2"), "{current}");

    let output = env.run(&["settings", "show", "--chat", &chat, "--at", "2024-12-31"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe_output(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("had no settings yet"),
        "{}",
        describe_output(&output)
    );
    let output = env.run(&["settings", "show", "--at", "2025-01-10"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        describe_output(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("Usage: storyline [--config PATH] settings show"),
        "{}",
        describe_output(&output)
    );
}
