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

/// Failures that repeat while a condition lasts (a full or read-only disk), logged
/// at ERROR once when each kind starts and at INFO once when it ends, not once per
/// retry; the retries in between go to debug.
#[derive(Default)]
pub struct Trouble {
    since: std::collections::HashMap<&'static str, std::time::Instant>,
}

impl Trouble {
    /// `what` says what failed and what happens meanwhile, e.g. "storing Telegram
    /// updates (Telegram keeps them until they are stored)".
    pub fn failed(&mut self, what: &'static str, e: &anyhow::Error) {
        match self.since.entry(what) {
            std::collections::hash_map::Entry::Vacant(entry) => {
                log::error!("{what}: {e:#}");
                entry.insert(std::time::Instant::now());
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                log::debug!("{what}: still failing: {e:#}")
            }
        }
    }

    pub fn ended(&mut self, what: &'static str) {
        if let Some(since) = self.since.remove(what) {
            log::info!("{what}: works again after {}s", since.elapsed().as_secs());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trouble_is_remembered_until_it_ends() {
        let mut trouble = Trouble::default();
        let e = anyhow::anyhow!("database or disk is full");
        trouble.failed("storing", &e);
        trouble.failed("storing", &e);
        trouble.failed("scheduling", &e);
        assert_eq!(trouble.since.len(), 2);
        trouble.ended("storing");
        trouble.ended("storing");
        assert_eq!(trouble.since.len(), 1);
    }
}
