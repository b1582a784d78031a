//! Runs one parsed command and turns its outcome into an exit code: 0 ok, 1 a
//! runtime failure, 2 bad configuration or a refusal the operator must fix (the
//! daemon already running, the key file lost).

use std::path::Path;
use std::process::ExitCode;

use crate::bot::accounts;
use crate::bot::keyfile;
use crate::cli::ops;
use crate::cli::{self, Command};
use crate::runtime::daemon;
use crate::{logging, runlock};

/// Loads the configuration (except for `doctor`, which reports on a broken one)
/// and runs `command`.
pub fn run(config_path: Option<&Path>, command: Command) -> ExitCode {
    if let Command::Doctor { fix } = command {
        // Doctor loads the configuration itself: a broken one is a line of its report.
        let report = ops::doctor(config_path, fix);
        print!("{}", report.render());
        return if report.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let config = match cli::load_config(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("storyline: configuration error\n{e}");
            return ExitCode::from(2);
        }
    };
    let print = |result: anyhow::Result<String>| match result {
        Ok(text) => {
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("storyline: {e:#}");
            ExitCode::FAILURE
        }
    };
    match command {
        Command::Scan => {
            logging::init(config.log.level);
            print(cli::scan(&config))
        }
        Command::Queue { chat } => print(cli::queue(&config, chat)),
        Command::Plan { days, chat } => print(cli::plan(&config, days, chat)),
        Command::CategoriesShow { chat } => print(cli::categories(&config, chat, None)),
        Command::CategoriesSet { chat, mix } => print(cli::categories(&config, chat, Some(&mix))),
        Command::Backup { path, force } => print(cli::health::backup(&config, &path, force)),
        Command::Runs { since, json } => print(cli::health::runs(&config, since, json)),
        Command::Chats(command) => print(cli::health::chats(&config, &command)),
        Command::History(args) => print(cli::history::history(&config, &args)),
        Command::Insights(args) => print(cli::insights::run(&config, &args)),
        Command::SettingsShow { chat, at } => print(cli::history::settings_show(&config, chat, at)),
        // Handled before the configuration is loaded.
        Command::Doctor { .. } => ExitCode::SUCCESS,
        Command::Accounts(command) => match accounts::run_command(&config, &command) {
            Err(e) if e.is::<accounts::BadInput>() || e.is::<keyfile::KeyRefused>() => {
                eprintln!("storyline: {e}");
                ExitCode::from(2)
            }
            result => print(result),
        },
        Command::Settings(command) => match cli::settings_file::run(&config, &command) {
            Err(e) if e.is::<cli::settings_file::Refused>() => {
                eprintln!("storyline: {e}");
                ExitCode::from(2)
            }
            result => print(result),
        },
        Command::Check => {
            print!("{}", cli::check(&config));
            ExitCode::SUCCESS
        }
        Command::Migrate => {
            logging::init(config.log.level);
            match cli::migrate(&config) {
                Ok(applied) if applied.is_empty() => {
                    println!("{}: up to date", config.storage.database.display());
                    ExitCode::SUCCESS
                }
                Ok(applied) => {
                    println!(
                        "{}: applied {}",
                        config.storage.database.display(),
                        applied.join(", ")
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("storyline: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run => {
            let Some(token) = config.telegram.bot_token.clone() else {
                eprintln!(
                    "storyline: no Telegram bot token.\n\
                     Set bot_token under [telegram] in {} or the environment variable \
                     STORYLINE_TELEGRAM_BOT_TOKEN. Get a token from @BotFather in Telegram.",
                    config.source.display()
                );
                return ExitCode::from(2);
            };
            logging::init(config.log.level);
            match daemon::run(config, token) {
                Ok(()) => ExitCode::SUCCESS,
                // Refusals to start are the operator's to fix, like a bad config.
                Err(e) if e.is::<runlock::AlreadyRunning>() || e.is::<keyfile::KeyRefused>() => {
                    log::error!("{e:#}");
                    ExitCode::from(2)
                }
                Err(e) => {
                    log::error!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
