//! The `storyline` binary: parse the command line, dispatch, and turn the outcome
//! into a message and an exit code (0 ok, 1 runtime failure, 2 bad usage or config).

use std::process::ExitCode;

use storyline::cli::{self, Parsed};
use storyline::memory;

fn main() -> ExitCode {
    memory::use_one_arena();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    match cli::parse_args(args.iter().cloned()) {
        Ok(Parsed::Print(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(Parsed::Command { config, command }) => cli::dispatch::run(config.as_deref(), command),
        Err(cli::UsageError(e)) => {
            eprintln!("storyline: {e}\n\n{}", cli::help_after_error(&args));
            ExitCode::from(2)
        }
    }
}
