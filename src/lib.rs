//! Storyline: a self-hosted Instagram Stories scheduler driven from Telegram.
//! The library holds everything; `main.rs` only parses the command line and
//! turns errors into exit codes. ARCHITECTURE.md maps the modules.

pub mod accounts;
pub mod backoff;
pub mod bot;
pub mod callback;
pub mod chats;
pub mod cli;
pub mod clock;
pub mod config;
pub mod convert;
pub mod crypto;
pub mod daemon;
pub mod db;
#[cfg(test)]
mod fuzz_input;
pub mod html_fit;
pub mod instagram;
pub mod keyfile;
pub mod logging;
pub mod markup;
pub mod media;
pub mod memory;
pub mod oauth;
pub mod ops;
pub mod outbox;
pub mod picker;
pub mod poller;
pub mod posting;
pub mod publish;
pub mod rows;
pub mod runlock;
pub mod runtime;
#[cfg(test)]
mod samples;
pub mod schedule;
pub mod secret;
pub mod settings;
pub mod signing;
pub mod status;
pub mod telegram;
pub mod ui;
pub mod web;
pub mod wizard;
