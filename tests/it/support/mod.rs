//! Test support for the integration tests: a temporary home for one daemon (config,
//! media folder, database, log), the fake Telegram server it talks to, and the
//! helpers that start, signal and wait for the real binary.
//!
//! Not every test uses every helper, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod daemon;
pub mod fake_http;
pub mod fake_instagram;
pub mod fake_telegram;
pub mod flood;
pub mod load;
#[path = "../../../src/samples.rs"]
pub mod media;

#[allow(unused_imports)]
pub use daemon::Daemon;
#[allow(unused_imports)]
pub use fake_instagram::*;
#[allow(unused_imports)]
pub use fake_telegram::*;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The bot token of every test; tests grep logs for "TEST-token-SECRET" to prove it
/// never leaks.
pub const TOKEN: &str = "123456:TEST-token-SECRET-value-0123456789";
/// How much faster than Telegram's the tests' daemons keep its sending limits.
pub const DEFAULT_TEST_PACING: &str = "20";
/// The admin user of every test.
pub const ADMIN: i64 = 42;
/// A chat the base config allows.
pub const CHAT: i64 = 4242;

/// How long `Env::run` lets a command run before killing it.
const RUN_DEADLINE: Duration = Duration::from_secs(30);
const LOG_FILE: &str = "storyline.log";
const CONFIG_FILE: &str = "storyline.toml";
const DATABASE_FILE: &str = "storyline.db";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_storyline")
}

/// A temp dir holding storyline.toml, media/, the database and the daemon's log, with
/// the fake Telegram server the config points at.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub tg: FakeTelegram,
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

impl Env {
    /// Starts a fake Telegram server and writes the base config for it.
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("storyline-it-")
            .tempdir()
            .expect("create a temp dir");
        fs::create_dir(dir.path().join("media")).expect("create media/");
        let env = Env {
            dir,
            tg: FakeTelegram::start(TOKEN),
        };
        env.write_config("");
        env
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join(CONFIG_FILE)
    }

    pub fn media_dir(&self) -> PathBuf {
        self.path().join("media")
    }

    pub fn db_path(&self) -> PathBuf {
        self.path().join(DATABASE_FILE)
    }

    pub fn log_path(&self) -> PathBuf {
        self.path().join(LOG_FILE)
    }

    /// The config `Env::new` writes: the fake server, the test token, ADMIN and CHAT.
    /// Relative paths are relative to the temp dir, which is also the daemon's
    /// working directory.
    pub fn base_config(&self) -> String {
        format!(
            r#"[telegram]
bot_token = "{TOKEN}"
api_url = "{url}"
poll_timeout_secs = 2

[access]
admin_user_ids = [{ADMIN}]
allowed_chat_ids = [{CHAT}]

[storage]
database = "{DATABASE_FILE}"
key_file = "secret.key"

[media]
dir = "media"

[web]
listen = "127.0.0.1:0"

[log]
level = "debug"
"#,
            url = self.tg.url(),
        )
    }

    /// Rewrites storyline.toml as the base config followed by `extra`, raw TOML that
    /// may add sections (a section already in the base cannot be repeated).
    pub fn write_config(&self, extra: &str) {
        let mut config = self.base_config();
        if !extra.is_empty() {
            config.push('\n');
            config.push_str(extra);
            if !extra.ends_with('\n') {
                config.push('\n');
            }
        }
        self.write_config_raw(&config);
    }

    /// Writes storyline.toml exactly as given, for tests of bad configs. Mode 0600,
    /// as a file holding the bot token should be (`doctor` warns otherwise).
    pub fn write_config_raw(&self, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        fs::write(self.config_path(), text).expect("write storyline.toml");
        fs::set_permissions(self.config_path(), fs::Permissions::from_mode(0o600))
            .expect("make storyline.toml private");
    }

    /// Opens the daemon's database read/write for assertions; waits up to 5 s on a
    /// lock the daemon holds.
    pub fn db(&self) -> rusqlite::Connection {
        let path = self.db_path();
        let connection = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
        )
        .unwrap_or_else(|error| panic!("open {}: {error}", path.display()));
        connection
            .busy_timeout(Duration::from_secs(5))
            .expect("set busy_timeout");
        connection
    }

    /// `storyline --config <path> <args...>` in the temp dir, without the secret
    /// environment variables of whoever runs the tests.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(bin());
        command
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .current_dir(self.path())
            .env_remove("STORYLINE_TELEGRAM_BOT_TOKEN")
            .env_remove("STORYLINE_INSTAGRAM_APP_SECRET")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null());
        command
    }

    /// Starts `storyline --config <path> run`, its stdout and stderr appended to
    /// storyline.log.
    pub fn start(&self) -> Daemon {
        self.start_with_env(&[])
    }

    /// `start`, with extra environment variables (the test clock, for one).
    pub fn start_with_env(&self, vars: &[(&str, &str)]) -> Daemon {
        // Telegram's sending limits, 20x faster unless a test asks for the real ones
        // (STORYLINE_TEST_PACING=1): most tests exchange dozens of messages with one
        // chat, and the rate-limit tests prove the real windows.
        let mut vars = vars.to_vec();
        if !vars.iter().any(|(k, _)| *k == "STORYLINE_TEST_PACING") {
            vars.push(("STORYLINE_TEST_PACING", DEFAULT_TEST_PACING));
        }
        let pacing: f64 = vars
            .iter()
            .find(|(k, _)| *k == "STORYLINE_TEST_PACING")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(1.0);
        // The fake holds the daemon to Telegram's limits in the daemon's time.
        let clock_speed: f64 = vars
            .iter()
            .find(|(k, _)| *k == "STORYLINE_TEST_CLOCK")
            .and_then(|(_, clock)| clock.rsplit(',').next())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1.0);
        self.tg.set_speed(clock_speed * pacing);
        let vars = vars.as_slice();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open storyline.log");
        let stderr_log = log.try_clone().expect("clone the log handle");
        let child = self
            .command(&["run"])
            .envs(vars.iter().copied())
            .stdout(log)
            .stderr(stderr_log)
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", bin()));
        Daemon::new(child)
    }

    /// Starts the daemon and waits (up to 20 s) until it long-polls the fake server.
    pub fn start_polling(&self) -> Daemon {
        let from = self.tg.calls().len();
        let daemon = self.start();
        self.tg
            .wait_for_method(from, "getUpdates", Duration::from_secs(20));
        daemon
    }

    /// Runs `storyline --config <path> <args...>` to completion and returns its output;
    /// kills it and panics after 30 s.
    pub fn run(&self, args: &[&str]) -> Output {
        let child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", bin()));
        let pid = child.id();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(child.wait_with_output());
        });
        match receiver.recv_timeout(RUN_DEADLINE) {
            Ok(output) => output.expect("wait for storyline"),
            Err(_) => {
                if let Err(e) = daemon::send_signal(pid, "KILL") {
                    eprintln!("could not kill storyline (pid {pid}): {e}");
                }
                let output = receiver.recv().ok().and_then(Result::ok);
                panic!(
                    "storyline {args:?} did not finish within {RUN_DEADLINE:?}; output: {}",
                    output.map_or_else(String::new, |output| describe_output(&output))
                );
            }
        }
    }

    /// What the daemons of this Env wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Env {
    /// A failing test shows what the daemon logged and what it asked of Telegram.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(200)..];
        eprintln!(
            "---- storyline.log (last {} lines) ----\n{}\n---- telegram calls ----",
            tail.len(),
            tail.join("\n")
        );
        for (index, call) in self.tg.calls().iter().enumerate() {
            eprintln!("#{index} {} {:?} {}", call.method, call.status, call.params);
        }
    }
}

/// Stdout and stderr of a finished command, for assertion messages.
pub fn describe_output(output: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Polls `check` until it returns `Some`, for state that no fake call announces (a
/// database row, a file); panics with `what` after `timeout`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
