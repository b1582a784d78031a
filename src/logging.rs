//! Logging to stderr through `log` + simplelog, shaped for journald: under
//! systemd (JOURNAL_STREAM set) no timestamps, since the journal adds its own.
//! Only Storyline's own records pass; dependencies (rustls, ureq) stay quiet.
//! Nothing logged anywhere in the program may contain a token or secret.

use log::LevelFilter;
use simplelog::{ConfigBuilder, WriteLogger};

pub fn init(level: LevelFilter) {
    let mut builder = ConfigBuilder::new();
    builder
        .add_filter_allow_str("storyline")
        .set_thread_level(LevelFilter::Off)
        .set_target_level(LevelFilter::Off)
        .set_location_level(LevelFilter::Off);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.set_time_level(LevelFilter::Off);
    } else {
        builder.set_time_format_rfc3339();
    }
    // A second init (tests, or a subcommand after `run`) keeps the first logger.
    let _ = WriteLogger::init(level, builder.build(), std::io::stderr());
}
