//! Storyline: a self-hosted Instagram Stories scheduler driven from Telegram.
//! The library holds everything; `main.rs` only parses the command line and
//! turns errors into exit codes. ARCHITECTURE.md maps the modules.

pub mod backoff;
pub mod bot;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
#[cfg(test)]
mod fuzz_input;
pub mod hex;
pub mod http;
pub mod instagram;
pub mod logging;
pub mod media;
pub mod memory;
pub mod runlock;
pub mod runtime;
#[cfg(test)]
mod samples;
pub mod secret;
pub mod signing;
pub mod telegram;
pub mod web;
pub mod zone;
