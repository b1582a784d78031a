//! The pure core: schedules, the picker, settings resolution, the wizard's
//! steps, the button codec, and every text and keyboard as plain data. It takes
//! `now` and rows and returns decisions.
//!
//! Never: IO of any kind (no database, network, file or clock), and no import
//! of `db`, the adapters (`telegram`, `instagram`, `web`, `media`), `bot`,
//! `runtime` or `cli`. `tests/modules.rs` checks the imports.

pub mod callback;
pub mod history;
pub mod html_fit;
pub mod insights;
pub mod limits;
pub mod markup;
pub mod picker;
pub mod rows;
pub mod schedule;
pub mod settings;
pub mod settings_file;
pub mod status;
pub mod summary;
pub mod tune;
pub mod ui;
pub mod wizard;
