//! The one integration-test binary: each module tests the real `storyline` binary
//! (or, in fake_selftest, the fakes it runs against), with helpers from `support`.

mod accounts;
mod capacity;
mod chat_photos;
mod chats;
mod cli;
mod commands;
mod connect;
mod crash;
mod fake_selftest;
mod health;
mod helpers;
mod history;
mod insights;
mod instagram_fake_selftest;
mod limits;
mod ops;
mod posting;
mod publishing;
mod rate_limits;
mod resilience;
mod roles;
mod settings_file;
mod settings_menu;
mod setup;
mod summary;
mod support;
mod trust;
mod tune;
mod web;
mod wizard;
