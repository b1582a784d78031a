//! The command line without the daemon: check, migrate, and configuration errors.

use std::os::unix::fs::PermissionsExt;

use crate::support::{describe_output, Env};

fn check_fails(env: &Env, config: &str, expected: &[&str]) {
    env.write_config_raw(config);
    let output = env.run(&["check"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{config}\n{}",
        describe_output(&output)
    );
    for fragment in expected {
        assert!(
            stderr.contains(fragment),
            "{fragment:?} missing for {config:?}:\n{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_config_files_exit_2_naming_the_key_and_line() {
    let env = Env::new();
    for (config, expected) in [
        (
            "[telegram]\nbot_tokn = \"x\"\n",
            vec!["telegram.bot_tokn", ":2:"],
        ),
        (
            "[defaults]\nposts_per_day = 0\n",
            vec!["defaults.posts_per_day", ":2:", "1–50"],
        ),
        (
            "\n[defaults]\nposting_hours_end = 24\n",
            vec!["defaults.posting_hours_end", ":3:"],
        ),
        (
            "[telegram]\npoll_timeout_secs = \"50\"\n",
            vec!["telegram.poll_timeout_secs", ":2:"],
        ),
        (
            "[defaults]\ntimezone = \"Mars/Base\"\n",
            vec!["defaults.timezone", "Mars/Base"],
        ),
        ("[web]\nlisten = \"nowhere\"\n", vec!["web.listen"]),
        ("[telegrm]\n", vec!["telegrm"]),
        ("[telegram\n", vec![":1:"]),
        (
            "[access]\nallowed_chat_ids = [1, \"two\"]\n",
            vec!["access.allowed_chat_ids"],
        ),
    ] {
        check_fails(&env, config, &expected);
    }
}

#[test]
fn run_without_a_token_exits_2_and_says_where_to_put_one() {
    let env = Env::new();
    env.write_config_raw("[log]\nlevel = \"info\"\n");
    let output = env.run(&["run"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        describe_output(&output)
    );
    assert!(
        stderr.contains("bot_token") && stderr.contains("STORYLINE_TELEGRAM_BOT_TOKEN"),
        "{stderr}"
    );
}

#[test]
fn a_missing_config_file_exits_2() {
    let output = std::process::Command::new(crate::support::bin())
        .args(["--config", "/nonexistent/storyline.toml", "check"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/storyline.toml"));
}

#[test]
fn check_prints_the_resolved_config_with_secrets_masked() {
    let env = Env::new();
    env.write_config("[instagram]\napp_secret = \"very-secret-app\"\n");
    let output = env.run(&["check"]);
    assert!(output.status.success(), "{}", describe_output(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("poll_timeout_secs = 2"), "{stdout}");
    assert!(
        stdout.contains(&env.db_path().display().to_string()),
        "{stdout}"
    );
    assert!(
        !stdout.contains("TEST-token-SECRET") && !stdout.contains("very-secret-app"),
        "{stdout}"
    );
    assert!(stdout.contains("********"));
}

#[test]
fn the_shipped_example_config_is_valid() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/storyline.toml");
    let output = std::process::Command::new(crate::support::bin())
        .args(["--config", shipped, "check"])
        .env_remove("STORYLINE_TELEGRAM_BOT_TOKEN")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe_output(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for key in [
        "bot_token",
        "api_url",
        "poll_timeout_secs",
        "admin_user_ids",
        "allowed_chat_ids",
        "database",
        "key_file",
        "dir",
        "rescan_minutes",
        "listen",
        "public_url",
        "app_id",
        "app_secret",
        "graph_url",
        "dry_run_mode",
        "enable_instagram_api",
        "posts_per_day",
        "posting_hours_start",
        "posting_hours_end",
        "timezone",
        "level",
    ] {
        assert!(
            stdout.contains(&format!("\n{key} = ")),
            "{key} missing:\n{stdout}"
        );
    }
}

#[test]
fn migrate_creates_a_private_database_and_is_idempotent() {
    let env = Env::new();
    let output = env.run(&["migrate"]);
    assert!(output.status.success(), "{}", describe_output(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("applied V1__foundation"));
    let mode = std::fs::metadata(env.db_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let output = env.run(&["migrate"]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("up to date"),
        "{}",
        describe_output(&output)
    );
    let tables: i64 = env
        .db()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('chats', 'settings_history', 'users', 'interactions', 'kv')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 5);
}

#[test]
fn help_and_version() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["check", "--help"],
        vec!["migrate", "--help"],
    ] {
        let output = std::process::Command::new(crate::support::bin())
            .args(&args)
            .output()
            .unwrap();
        assert!(output.status.success());
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage: storyline"),
            "{args:?}"
        );
    }
    let output = std::process::Command::new(crate::support::bin())
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn help_is_a_command_and_usage_errors_show_their_own_command_s_help() {
    let env = Env::new();
    let out = env.run(&["help"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Usage: storyline [--config PATH] [COMMAND]")
    );
    let out = env.run(&["help", "accounts"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("accounts forget-tokens --yes"));
    for args in [
        &["accounts"][..],
        &["accounts", "add", "--name", "Brand"][..],
        &["accounts", "deactivate", "x"][..],
    ] {
        let out = env.run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            describe_output(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("accounts add --name NAME")
                && !stderr.contains("Usage: storyline [--config PATH] [COMMAND]"),
            "{args:?}: the accounts help, not the overview:\n{stderr}"
        );
    }
}
