//! Set-up with only the token: the one-time pairing code of a fresh install, a
//! token that cannot be one, `doctor` without a token or with a readable secret,
//! and the commands that must say what is wrong or write nothing (`backup` into a
//! missing folder, `plan`).

use std::os::unix::fs::PermissionsExt;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{say, WAIT};
use crate::support::{describe_output, wait_until, Env, ADMIN, CHAT, TOKEN};

/// The user who pairs, in a private chat with the bot (its chat id is theirs).
const OWNER: i64 = 777;
/// A group the owner sets up once paired.
const GROUP: i64 = -555;
/// Someone else, who must not get in.
const STRANGER: i64 = 888;

/// The base config without any admin or allowed chat, as the shipped one.
fn unpaired_config(env: &Env) -> String {
    let config = env
        .base_config()
        .replace(
            &format!("admin_user_ids = [{ADMIN}]"),
            "admin_user_ids = []",
        )
        .replace(
            &format!("allowed_chat_ids = [{CHAT}]"),
            "allowed_chat_ids = []",
        );
    assert!(config.contains("admin_user_ids = []") && config.contains("allowed_chat_ids = []"));
    config
}

/// The codes the daemons of this env printed, in order.
fn printed_codes(env: &Env) -> Vec<String> {
    env.log()
        .lines()
        .filter_map(|line| {
            let at = line.find("pairing code ")? + "pairing code ".len();
            line.get(at..at + 8).map(str::to_string)
        })
        .collect()
}

/// `storyline <args>` with extra environment variables, killed after 30 s.
fn run_with(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut child = env
        .command(args)
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("storyline {args:?} still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A real JPEG of one colour, so the scanner takes it whatever it checks.
fn jpeg(shade: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(8, 8, image::Rgb([shade, 0, 0])))
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    bytes
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn admins_in_db(env: &Env) -> Vec<i64> {
    let db = env.db();
    let mut statement = db
        .prepare("SELECT user_id FROM admins ORDER BY user_id")
        .unwrap();
    statement
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn enabled_by(env: &Env, chat: i64) -> Option<i64> {
    env.db()
        .query_row(
            "SELECT authorized_by FROM chats WHERE chat_id = ?1",
            [chat],
            |r| r.get(0),
        )
        .unwrap_or(None)
}

/// A code that differs from `code` in its first character.
fn wrong(code: &str) -> String {
    let first = if code.starts_with('A') { 'B' } else { 'A' };
    format!("{first}{}", &code[1..])
}

#[test]
fn the_pairing_code_makes_its_first_sender_admin_and_nobody_after() {
    let env = Env::new();
    env.write_config_raw(&unpaired_config(&env));
    // Before any start, check and doctor say how to pair, and check creates nothing.
    let check = env.run(&["check"]);
    assert!(check.status.success(), "{}", describe_output(&check));
    assert!(
        stdout(&check).contains("# pairing pending"),
        "{}",
        stdout(&check)
    );
    assert!(!env.db_path().exists(), "check created the database");

    let daemon = env.start_polling();
    let codes = printed_codes(&env);
    assert_eq!(codes.len(), 1, "one code per start:\n{}", env.log());
    let code = codes[0].clone();
    assert!(
        code.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "{code}"
    );
    let doctor = env.run(&["doctor"]);
    let text = stdout(&doctor);
    assert!(
        text.lines()
            .any(|l| l.starts_with("note  access") && l.contains("pairing pending")),
        "{text}"
    );
    assert!(text.contains("a pairing code is live until"), "{text}");
    assert!(!text.contains(&code), "doctor showed the code:\n{text}");

    // A wrong code gets the usual refusal, and nobody becomes admin.
    let refused = say(
        &env,
        STRANGER,
        STRANGER,
        &format!("/start {}", wrong(&code)),
    );
    assert!(refused.text.contains("not set up"), "{}", refused.text);
    assert_eq!(admins_in_db(&env), Vec::<i64>::new());

    // The right one, typed in lower case: the owner is admin, the chat served.
    let paired = say(
        &env,
        OWNER,
        OWNER,
        &format!("/start {}", code.to_lowercase()),
    );
    assert!(paired.text.contains("Paired"), "{}", paired.text);
    assert!(!paired.text.contains(&code), "{}", paired.text);
    assert_eq!(admins_in_db(&env), vec![OWNER]);
    assert_eq!(enabled_by(&env, OWNER), Some(OWNER));
    let status = say(&env, OWNER, OWNER, "/status");
    assert!(!status.text.contains("not set up"), "{}", status.text);

    // Used: nobody else gets in with it, in a new chat or the stranger's.
    for chat in [GROUP, -556] {
        let refused = say(&env, chat, STRANGER, &format!("/start {code}"));
        assert!(refused.text.contains("not set up"), "{}", refused.text);
        assert_eq!(enabled_by(&env, chat), None);
    }
    assert_eq!(admins_in_db(&env), vec![OWNER]);
    // The paired admin counts as a configured one: their /start sets up a group.
    let welcome = say(&env, -557, OWNER, "/start");
    assert!(
        welcome.text.contains("set up for this chat"),
        "{}",
        welcome.text
    );
    assert_eq!(enabled_by(&env, -557), Some(OWNER));

    let (status, _) = daemon.terminate();
    assert!(status.success());
    // Paired: a start prints no new code, and the code never shows again.
    let daemon = env.start_polling();
    let (status, _) = daemon.terminate();
    assert!(status.success());
    let log = env.log();
    assert_eq!(printed_codes(&env), vec![code.clone()], "{log}");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&code)).collect();
    assert_eq!(lines.len(), 1, "the code is in the log once: {lines:?}");
    let used_at = log
        .find("paired with the one-time code")
        .expect("a pairing line");
    assert!(!log[used_at..].contains(&code), "{log}");
    assert!(!log.contains(&code.to_lowercase()), "{log}");

    // check and doctor show who paired and which chats they serve.
    let check = stdout(&env.run(&["check"]));
    assert!(
        check.contains(&format!("# admins: {OWNER} (paired in chat {OWNER} at ")),
        "{check}"
    );
    assert!(
        check.contains(&format!(
            "# served chats: -557 (enabled by {OWNER}), {OWNER} (enabled by {OWNER})"
        )),
        "{check}"
    );
    let doctor = stdout(&env.run(&["doctor"]));
    let access = doctor
        .lines()
        .find(|l| l.starts_with("ok    access"))
        .unwrap_or_else(|| panic!("no ok access line:\n{doctor}"));
    assert!(
        access.contains(&format!("admins: {OWNER} (paired")),
        "{doctor}"
    );
    assert!(!doctor.contains(&code), "{doctor}");
}

#[test]
fn an_expired_or_replaced_pairing_code_lets_nobody_in() {
    // One virtual hour is five real seconds.
    const SPEED: i64 = 720;
    let env = Env::new();
    env.write_config_raw(&unpaired_config(&env));
    let started = chrono::Utc::now();
    let clock = format!(
        "{},{},{SPEED}",
        started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        started.timestamp_millis()
    );
    let vars = [("STORYLINE_TEST_CLOCK", clock.as_str())];
    let first = env.start_with_env(&vars);
    wait_until("a first code", WAIT, || {
        (printed_codes(&env).len() == 1).then_some(())
    });
    let (status, _) = first.terminate();
    assert!(status.success());
    let from = env.tg.calls().len();
    let _second = env.start_with_env(&vars);
    env.tg.wait_for_method(from, "getUpdates", WAIT);
    let codes = printed_codes(&env);
    assert_eq!(codes.len(), 2, "a new code on each start:\n{}", env.log());
    assert_ne!(codes[0], codes[1]);
    let second_printed = std::time::Instant::now();

    // The first start's code died with the second start.
    let refused = say(&env, OWNER, OWNER, &format!("/start {}", codes[0]));
    assert!(refused.text.contains("not set up"), "{}", refused.text);
    // The second's expires an hour (of the test clock) after it was made.
    std::thread::sleep(Duration::from_secs(6).saturating_sub(second_printed.elapsed()));
    let refused = say(&env, STRANGER, STRANGER, &format!("/start {}", codes[1]));
    assert!(refused.text.contains("not set up"), "{}", refused.text);
    assert_eq!(admins_in_db(&env), Vec::<i64>::new());
    assert_eq!(enabled_by(&env, STRANGER), None);
}

#[test]
fn a_token_that_cannot_be_a_bot_token_exits_2_naming_the_shape() {
    let env = Env::new();
    let bad = "not a token";
    // From the environment: it wins over the file's good token.
    let output = run_with(&env, &["run"], &[("STORYLINE_TELEGRAM_BOT_TOKEN", bad)]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        describe_output(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("STORYLINE_TELEGRAM_BOT_TOKEN (environment) is not a Telegram bot token")
            && stderr.contains("digits, a colon, then 30 or more letters, digits, - or _"),
        "{stderr}"
    );
    assert!(!stderr.contains(bad), "{stderr}");
    assert_eq!(
        env.tg.calls().len(),
        0,
        "it asked Telegram with a bad token"
    );
    // From the file, with its line.
    let short = "123456:TEST-token-SECRET-short";
    env.write_config_raw(&env.base_config().replace(TOKEN, short));
    for command in ["run", "check"] {
        let output = env.run(&[command]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{}",
            describe_output(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("storyline.toml:2: telegram.bot_token is not a Telegram bot token"),
            "{stderr}"
        );
        assert!(!stderr.contains("TEST-token-SECRET"), "{stderr}");
    }
    assert!(!env.db_path().exists());
}

#[test]
fn doctor_without_a_token_fails_as_run_would() {
    let env = Env::new();
    env.write_config_raw(
        &env.base_config()
            .replace(&format!("bot_token = \"{TOKEN}\""), ""),
    );
    let run = env.run(&["run"]);
    assert_eq!(run.status.code(), Some(2), "{}", describe_output(&run));
    let output = env.run(&["doctor"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe_output(&output)
    );
    let text = stdout(&output);
    let line = text
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with("telegram")))
        .unwrap_or_else(|| panic!("no telegram line:\n{text}"));
    assert!(
        line.starts_with("FAIL") && line.contains("no bot token") && line.contains("exit 2"),
        "{text}"
    );
    assert!(line.contains("STORYLINE_TELEGRAM_BOT_TOKEN=..."), "{text}");
}

#[test]
fn doctor_warns_when_the_config_holds_a_secret_others_can_read() {
    let env = Env::new();
    let secrets_line = |mode: u32| {
        std::fs::set_permissions(env.config_path(), std::fs::Permissions::from_mode(mode)).unwrap();
        let output = env.run(&["doctor"]);
        assert!(output.status.success(), "{}", describe_output(&output));
        let text = stdout(&output);
        assert!(!text.contains("TEST-token-SECRET"), "{text}");
        text.lines()
            .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with("secrets")))
            .map(|l| (l.to_string(), text.clone()))
    };
    let (line, text) = secrets_line(0o644).expect("a warning for 0644");
    assert!(
        line.starts_with("WARN")
            && line.contains("holds telegram.bot_token and is mode 0644, readable by everyone")
            && line.contains("chmod 600"),
        "{text}"
    );
    assert!(
        text.ends_with("All checks passed, with 1 warning to act on.\n"),
        "{text}"
    );
    let (line, _) = secrets_line(0o640).expect("a warning for 0640");
    assert!(line.contains("readable by its group"), "{line}");
    assert_eq!(secrets_line(0o600), None);
    // No secret in the file (the token comes from the environment): nothing to say.
    env.write_config_raw(
        &env.base_config()
            .replace(&format!("bot_token = \"{TOKEN}\""), ""),
    );
    std::fs::set_permissions(env.config_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = run_with(
        &env,
        &["doctor"],
        &[("STORYLINE_TELEGRAM_BOT_TOKEN", TOKEN)],
    );
    assert!(output.status.success(), "{}", describe_output(&output));
    assert!(!stdout(&output).contains("secrets"), "{}", stdout(&output));
}

#[test]
fn backup_into_a_missing_folder_names_the_folder() {
    let env = Env::new();
    assert!(env.run(&["migrate"]).status.success());
    let missing = env.path().join("missing");
    for target in [missing.join("x.db"), missing.join("")] {
        let output = env.run(&["backup", target.to_str().unwrap()]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}",
            describe_output(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("folder {} does not exist", missing.display())),
            "{stderr}"
        );
        assert!(!stderr.contains("partial"), "{stderr}");
    }
    assert!(!missing.exists());
}

/// The names and contents of every file in the env's folder, media aside.
fn files(env: &Env) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(env.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn plan_is_a_preview_that_writes_nothing() {
    let env = Env::new();
    std::fs::create_dir(env.media_dir().join("quotes")).unwrap();
    std::fs::write(env.media_dir().join("quotes/a.jpg"), jpeg(10)).unwrap();
    // No database yet: plan previews without creating one.
    let before = files(&env);
    let output = env.run(&["plan", "--days", "1"]);
    assert!(output.status.success(), "{}", describe_output(&output));
    assert!(stdout(&output).contains("Media: "), "{}", stdout(&output));
    assert!(stdout(&output).contains("Chat 4242"), "{}", stdout(&output));
    assert_eq!(files(&env), before, "plan wrote a file");
    assert!(!env.db_path().exists());

    // An existing database (the daemon stopped, so no -wal beside it) stays as it was.
    let daemon = env.start_polling();
    wait_until("the daemon's first scan", WAIT, || {
        let items: i64 = env
            .db()
            .query_row("SELECT count(*) FROM media_items", [], |r| r.get(0))
            .ok()?;
        (items == 1).then_some(())
    });
    let (status, _) = daemon.terminate();
    assert!(status.success());
    std::fs::write(env.media_dir().join("quotes/b.jpg"), jpeg(200)).unwrap();
    let before = files(&env);
    assert!(before.iter().any(|(name, _)| name == "storyline.db"));
    let output = env.run(&["plan"]);
    assert!(output.status.success(), "{}", describe_output(&output));
    assert!(stdout(&output).contains("1 new"), "{}", stdout(&output));
    assert_eq!(files(&env), before, "plan changed or added a file");
}

/// `scripts/ensure-toolchain` on a machine without cargo: it installs Debian's
/// packages without their recommendations, and when what it got is older than
/// Cargo.toml's rust-version it stops and says how to get a new enough one,
/// instead of a build failing later with a page of unrelated errors.
#[test]
fn ensure_toolchain_installs_without_recommends_and_refuses_a_too_old_rust() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("apt.log");
    let script = |name: &str, body: &str| {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // Debian's package tool, as plain bookworm would answer: its rustc-web is 1.85.
    script(
        "apt-get",
        &format!(
            "echo \"$*\" >> {log}\n\
             case \"$*\" in *install*) printf '#!/bin/sh\\necho \"rustc 1.85.0 (built from a source tarball)\"\\n' > {bin}/rustc; chmod +x {bin}/rustc; printf '#!/bin/sh\\nexit 0\\n' > {bin}/cargo; chmod +x {bin}/cargo;; esac",
            log = log.display(),
            bin = bin.display()
        ),
    );
    script("sudo", "exec \"$@\"");
    script("cc", "exit 0");
    script("python3", "exit 0");
    // Only the tools a fresh machine has, and the fakes: no cargo, no rustc (which
    // Debian's packages put in /usr/bin, so that is not on the PATH).
    let tools = dir.path().join("tools");
    std::fs::create_dir(&tools).unwrap();
    for tool in [
        "awk", "cat", "dirname", "env", "head", "id", "sed", "chmod", "printf",
    ] {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| std::path::Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{tool} not found"));
        std::os::unix::fs::symlink(found, tools.join(tool)).unwrap();
    }
    let path = format!("{}:{}", bin.display(), tools.display());
    // By its full path: the child's PATH has no bash.
    let bash = ["/usr/bin/bash", "/bin/bash"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("bash");
    let out = std::process::Command::new(bash)
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ensure-toolchain"))
        .env("PATH", path)
        .env_remove("STORYLINE_NEED_LINTS")
        .output()
        .unwrap();
    let apt = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        apt.lines().any(|l| l.contains("install")
            && l.contains("--no-install-recommends")
            && l.contains("cargo-web rustc-web")),
        "{apt}"
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("needs Rust 1.92 or newer"), "{said}");
    assert!(said.contains("has 1.85.0"), "{said}");
    assert!(said.contains("bookworm-security"), "{said}");
}
