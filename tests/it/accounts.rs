//! Instagram accounts: `storyline accounts` on the command line, tokens sealed
//! at rest (and "reconnect needed" under another key), and choosing a chat's
//! account in /settings.

use std::io::Write;
use std::process::{Output, Stdio};

use crate::helpers::*;
use crate::support::{describe_output, Env, ADMIN, CHAT};

const TOKEN_A: &str = "IGQVJ-first-PLAINTEXT-token-0123456789";
const TOKEN_B: &str = "IGQVJ-second-PLAINTEXT-token-9876543210";

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `storyline accounts ARGS`, asserts it succeeded, returns stdout.
fn accounts_ok(env: &Env, args: &[&str]) -> String {
    let mut all = vec!["accounts"];
    all.extend_from_slice(args);
    let output = env.run(&all);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        describe_output(&output)
    );
    for token in [TOKEN_A, TOKEN_B] {
        assert!(
            !stdout(&output).contains(token) && !stderr(&output).contains(token),
            "the token was printed: {}",
            describe_output(&output)
        );
    }
    stdout(&output)
}

fn add(env: &Env, name: &str, instagram_id: &str, username: &str, token: &str) -> String {
    accounts_ok(
        env,
        &[
            "add",
            "--name",
            name,
            "--instagram-id",
            instagram_id,
            "--username",
            username,
            "--token",
            token,
        ],
    )
}

/// Every byte of the database and its WAL and shared-memory files.
fn database_bytes(env: &Env) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut path = env.db_path().into_os_string();
        path.push(suffix);
        if let Ok(file) = std::fs::read(&path) {
            bytes.extend(file);
        }
    }
    assert!(
        !bytes.is_empty(),
        "no database at {}",
        env.db_path().display()
    );
    bytes
}

fn assert_no_plaintext_tokens(env: &Env) {
    let bytes = database_bytes(env);
    for token in [TOKEN_A, TOKEN_B] {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "the database files hold the plaintext token {token}"
        );
        // Nor a recognisable piece of it.
        assert!(!bytes.windows(9).any(|w| w == b"PLAINTEXT"));
    }
    assert!(
        !env.log().contains("PLAINTEXT"),
        "a token reached the log:\n{}",
        env.log()
    );
}

fn sealed_value(env: &Env, account_id: i64) -> String {
    env.db()
        .query_row(
            "SELECT sealed_value FROM api_tokens WHERE account_id = ?1",
            [account_id],
            |r| r.get(0),
        )
        .unwrap()
}

/// Opens a stored token with the key file, as the daemon would.
fn stored_token(env: &Env, account_id: i64) -> String {
    let key: [u8; 32] = std::fs::read(env.path().join("secret.key"))
        .unwrap()
        .try_into()
        .unwrap();
    storyline::crypto::open(&key, &sealed_value(env, account_id)).unwrap()
}

#[test]
fn add_list_update_and_deactivate_on_the_command_line() {
    let env = Env::new();
    let listed = accounts_ok(&env, &["list"]);
    assert!(listed.contains("No Instagram accounts yet"), "{listed}");

    let added = add(&env, "Main Brand", "17841400000000001", "@brand", TOKEN_A);
    assert!(
        added.starts_with("Added account 1: Main Brand (@brand)"),
        "{added}"
    );
    assert!(added.contains("expires in 60 days"), "{added}");
    assert_eq!(stored_token(&env, 1), TOKEN_A);
    assert!(sealed_value(&env, 1).starts_with("v1:"));

    let listed = accounts_ok(&env, &["list"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    let columns: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        columns,
        ["ID", "NAME", "USERNAME", "ACTIVE", "TOKEN", "CHATS"]
    );
    assert!(lines[1].starts_with("1 "), "{listed}");
    // Added without --chat: the operator's, for every chat.
    assert!(lines[1].ends_with("every chat"), "{listed}");
    for part in ["Main Brand", "@brand", "yes", "60 days"] {
        assert!(lines[1].contains(part), "{part} missing: {listed}");
    }

    // The same Instagram id again updates the account and its token.
    let updated = accounts_ok(
        &env,
        &[
            "add",
            "--name=Brand Main",
            "--instagram-id=17841400000000001",
            "--username=brand_main",
            &format!("--token={TOKEN_B}"),
            "--expires-in-days=30",
        ],
    );
    assert!(
        updated.starts_with("Updated account 1: Brand Main"),
        "{updated}"
    );
    assert_eq!(stored_token(&env, 1), TOKEN_B);
    let listed = accounts_ok(&env, &["list"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    for part in ["Brand Main", "@brand_main", "30 days"] {
        assert!(listed.contains(part), "{part} missing: {listed}");
    }

    let deactivated = accounts_ok(&env, &["deactivate", "1"]);
    assert!(
        deactivated.contains("Deactivated account 1"),
        "{deactivated}"
    );
    let listed = accounts_ok(&env, &["list"]);
    assert!(listed.lines().nth(1).unwrap().contains(" no "), "{listed}");
    let again = accounts_ok(&env, &["deactivate", "1"]);
    assert!(again.contains("already deactivated"), "{again}");

    let unknown = env.run(&["accounts", "deactivate", "99"]);
    assert_eq!(
        unknown.status.code(),
        Some(1),
        "{}",
        describe_output(&unknown)
    );
    assert!(
        stderr(&unknown).contains("no account 99"),
        "{}",
        describe_output(&unknown)
    );

    // Adding it again brings it back.
    add(
        &env,
        "Brand Main",
        "17841400000000001",
        "brand_main",
        TOKEN_A,
    );
    let listed = accounts_ok(&env, &["list"]);
    assert!(listed.lines().nth(1).unwrap().contains(" yes "), "{listed}");
    assert_no_plaintext_tokens(&env);
}

#[test]
fn token_from_stdin_is_trimmed_and_an_empty_one_refused() {
    let env = Env::new();
    let run_with_stdin = |input: &str| {
        let mut child = env
            .command(&[
                "accounts",
                "add",
                "--name",
                "Main",
                "--instagram-id",
                "178",
                "--username",
                "brand",
                "--token",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };

    let empty = run_with_stdin("  \n");
    assert_eq!(empty.status.code(), Some(2), "{}", describe_output(&empty));
    assert!(
        stderr(&empty).contains("token is empty"),
        "{}",
        describe_output(&empty)
    );

    let output = run_with_stdin(&format!("  {TOKEN_A}\n"));
    assert!(output.status.success(), "{}", describe_output(&output));
    assert!(!stdout(&output).contains(TOKEN_A));
    assert!(
        stdout(&output).contains("Added account 1"),
        "{}",
        stdout(&output)
    );
    assert_eq!(stored_token(&env, 1), TOKEN_A);
    assert_no_plaintext_tokens(&env);
}

#[test]
fn bad_input_exits_2_with_a_message_and_adds_nothing() {
    let env = Env::new();
    // `accounts add` with one option replaced (None: left out).
    let add_with = |option: &str, value: Option<&str>| -> Vec<String> {
        let mut args = vec!["accounts".to_string(), "add".to_string()];
        for (name, default) in [
            ("--name", "Main"),
            ("--instagram-id", "178"),
            ("--username", "brand"),
            ("--token", TOKEN_A),
            ("--expires-in-days", "60"),
        ] {
            let value = if name == option { value } else { Some(default) };
            if let Some(value) = value {
                args.push(format!("{name}={value}"));
            }
        }
        args
    };
    for ((option, value), fragment) in [
        (("--name", Some(" ")), "--name is empty"),
        (
            ("--instagram-id", Some("@brand")),
            "not an Instagram user id",
        ),
        (("--username", Some("br and")), "not an Instagram username"),
        (("--token", None), "needs --token"),
        (("--token", Some("two words")), "spaces or line breaks"),
        (("--expires-in-days", Some("0")), "from 1 to 365"),
        (("--expires-in-days", Some("366")), "from 1 to 365"),
        (("--expires-in-days", Some("soon")), "from 1 to 365"),
    ] {
        let args = add_with(option, value);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = env.run(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            describe_output(&output)
        );
        assert!(
            stderr(&output).contains(fragment),
            "{fragment:?} missing for {args:?}: {}",
            describe_output(&output)
        );
        assert!(!stderr(&output).contains("panicked"));
    }
    for (args, fragment) in [
        (vec!["accounts"], "accounts add"),
        (vec!["accounts", "remove", "1"], "unknown accounts command"),
        (vec!["accounts", "deactivate", "one"], "not an account id"),
    ] {
        let output = env.run(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            describe_output(&output)
        );
        assert!(
            stderr(&output).contains(fragment),
            "{}",
            describe_output(&output)
        );
    }
    let help = accounts_ok(&env, &["--help"]);
    assert!(help.contains("--expires-in-days"), "{help}");
    let listed = accounts_ok(&env, &["list"]);
    assert!(listed.contains("No Instagram accounts yet"), "{listed}");
}

#[test]
fn another_key_is_listed_as_reconnect_needed_and_stops_the_daemon() {
    let env = Env::new();
    add(&env, "Main Brand", "178", "brand", TOKEN_A);
    let key_file = env.path().join("secret.key");
    std::fs::write(&key_file, [0x5a_u8; 32]).unwrap();
    let listed = accounts_ok(&env, &["list"]);
    assert!(listed.contains("reconnect needed"), "{listed}");

    // The daemon would run every chat without its account: it refuses instead
    // (before this, it ran and showed "reconnect needed"; see tests/it/trust.rs).
    let refused = env.run(&["run"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{}",
        describe_output(&refused)
    );
    assert!(
        stderr(&refused).contains("does not open 1 of 1 sealed"),
        "{}",
        describe_output(&refused)
    );

    // A key file of the wrong size reads as no key at all.
    std::fs::write(&key_file, b"short").unwrap();
    let listed = accounts_ok(&env, &["list"]);
    assert!(listed.contains("reconnect needed"), "{listed}");
    let refused = env.run(&[
        "accounts",
        "add",
        "--name=Other",
        "--instagram-id=179",
        "--username=other",
        &format!("--token={TOKEN_B}"),
    ]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{}",
        describe_output(&refused)
    );
    assert!(
        stderr(&refused).contains("is 5 bytes, not 32"),
        "{}",
        describe_output(&refused)
    );
    assert_no_plaintext_tokens(&env);
}

#[test]
fn settings_uses_the_only_account_and_lets_the_chat_choose_among_several() {
    let env = Env::new();
    add(&env, "Main Brand", "178", "brand", TOKEN_A);
    // The chat is created when the daemon starts, after the account was added.
    let _daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    assert!(
        menu.text
            .contains("Instagram account: <b>@brand</b> (60 days left)"),
        "{}",
        menu.text
    );
    assert!(buttons(&menu)
        .iter()
        .any(|(t, d)| t == "📸 Account: @brand" && d == "1:acct"));
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(
        status
            .text
            .contains("Instagram account: @brand (60 days left)"),
        "{}",
        status.text
    );

    add(&env, "Promo", "179", "promo", TOKEN_B);
    let menu = say(&env, CHAT, ADMIN, "/settings");
    assert!(
        menu.text.contains("Instagram account: <b>choose one</b>"),
        "{}",
        menu.text
    );
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(status.text.contains("not chosen yet"), "{}", status.text);

    let history_before = history_count(&env, CHAT);
    let (answer, selector) = press(&env, CHAT, &menu, "📸 Account: choose");
    assert!(!is_alert(&answer));
    assert!(
        selector.text.contains("Choose the account"),
        "{}",
        selector.text
    );
    assert_eq!(
        buttons(&selector),
        [
            ("Main Brand (@brand)".to_string(), "1:acct:1".to_string()),
            ("Promo (@promo)".to_string(), "1:acct:2".to_string()),
            ("➕ Add account".to_string(), "1:acct:add".to_string()),
            ("← Back".to_string(), "1:back".to_string()),
        ]
    );

    let (answer, menu) = press(&env, CHAT, &selector, "Promo");
    assert!(!is_alert(&answer), "{:?}", answer.params);
    assert!(
        menu.text
            .contains("Instagram account: <b>@promo</b> (60 days left)"),
        "{}",
        menu.text
    );
    assert_eq!(chat_column(&env, CHAT, "active_account_id"), Some(2));
    assert_eq!(history_count(&env, CHAT), history_before + 1);
    let (changes, snapshot, by): (String, String, i64) = env
        .db()
        .query_row(
            "SELECT changes, snapshot, changed_by FROM settings_history
             WHERE chat_id = ?1 AND valid_to IS NULL",
            [CHAT],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        changes,
        r#"[{"setting":"active_account_id","old":null,"new":2}]"#
    );
    assert!(snapshot.contains(r#""active_account_id":2"#), "{snapshot}");
    assert_eq!(by, ADMIN);

    // The selector marks the chat's account; Back returns to the menu.
    let (_, selector) = press(&env, CHAT, &menu, "📸 Account: @promo");
    assert!(buttons(&selector)
        .iter()
        .any(|(t, _)| t == "✅ Promo (@promo)"));
    let (_, back) = press(&env, CHAT, &selector, "← Back");
    assert!(back.text.starts_with("⚙️ <b>Settings</b>"), "{}", back.text);

    // A forged id and a deactivated account change nothing.
    let (_, selector) = press(&env, CHAT, &back, "📸 Account");
    let answer = press_data(&env, CHAT, ADMIN, selector.message_id, "1:acct:99");
    assert!(is_alert(&answer), "{:?}", answer.params);
    accounts_ok(&env, &["deactivate", "1"]);
    let answer = press_data(&env, CHAT, ADMIN, selector.message_id, "1:acct:1");
    assert!(is_alert(&answer), "{:?}", answer.params);
    assert_eq!(chat_column(&env, CHAT, "active_account_id"), Some(2));
    assert_eq!(history_count(&env, CHAT), history_before + 1);

    let listed = say(&env, CHAT, ADMIN, "/accounts");
    assert!(listed.text.contains("✅ Promo (@promo)"), "{}", listed.text);
    assert!(!listed.text.contains("Main Brand"), "{}", listed.text);

    // Promo goes too: no account is left to post to.
    accounts_ok(&env, &["deactivate", "2"]);
    let menu = say(&env, CHAT, ADMIN, "/settings");
    assert!(
        menu.text.contains("Instagram account: <b>none</b>"),
        "{}",
        menu.text
    );
    assert_no_plaintext_tokens(&env);
    assert_token_not_logged(&env);
}
