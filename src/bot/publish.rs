//! Whether a story is published through the Instagram Graph API or handed to
//! people (`route`), the publish jobs seen from the core (unknown outcomes to ask
//! about, queued jobs to hand on), and how a published story is recorded. The
//! publisher thread that walks a job through the Graph API is
//! `runtime::publisher`.

use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::bot::accounts::{self, AccountChoice, TokenState};
use crate::config::Config;
use crate::db::queue::{self, QueueRow};
use crate::db::{self, media::MediaItem};
use crate::domain::settings::ChatSettings;
use crate::domain::status::JobState;
use crate::domain::ui;
use crate::telegram::{self, Outgoing};

/// What happens to a story at its slot (or on "Auto post").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To the chat with buttons; `offer_auto_post` when the API could publish
    /// it on a press; `note` says why it was not published when it was meant to be.
    Manual {
        offer_auto_post: bool,
        note: Option<String>,
    },
    /// Published by the publisher thread (without Graph calls in dry run).
    Publish { account_id: i64, dry_run: bool },
}

/// Why the chat cannot publish through the API now, or the account it would use.
pub fn publishable_account(
    conn: &Connection,
    config: &Config,
    key: Option<&[u8; 32]>,
    chat_id: i64,
    s: &ChatSettings,
    now: DateTime<Utc>,
) -> Result<std::result::Result<i64, String>> {
    if !s.enable_instagram_api {
        return Ok(Err("the Instagram API is off for this chat".into()));
    }
    if config.web.public_url.is_none() {
        return Ok(Err(
            "[web] public_url is not set in storyline.toml, so Instagram cannot fetch the file"
                .into(),
        ));
    }
    let account = match accounts::active_account_for_chat(conn, chat_id)? {
        AccountChoice::Account(account) => account,
        AccountChoice::NeedsChoice(_) => {
            return Ok(Err("choose the Instagram account in /settings".into()))
        }
        AccountChoice::None => return Ok(Err("no Instagram account is connected".into())),
    };
    Ok(match accounts::usable_token(conn, key, account.id, now)? {
        TokenState::Valid { .. } => Ok(account.id),
        TokenState::Expired => Err(format!(
            "the access token of @{} has expired; reconnect the account",
            account.username.as_deref().unwrap_or(&account.display_name)
        )),
        TokenState::ReconnectNeeded => Err(format!(
            "the access token of @{} cannot be read (was the key file replaced?); reconnect the account",
            account.username.as_deref().unwrap_or(&account.display_name)
        )),
    })
}

/// The route of a scheduled story.
pub fn route(
    conn: &Connection,
    config: &Config,
    key: Option<&[u8; 32]>,
    chat_id: i64,
    s: &ChatSettings,
    now: DateTime<Utc>,
) -> Result<Route> {
    let account = publishable_account(conn, config, key, chat_id, s, now)?;
    Ok(match (account, s.auto_post) {
        (Ok(account_id), true) => Route::Publish {
            account_id,
            dry_run: s.dry_run_mode,
        },
        (Ok(_), false) => Route::Manual {
            offer_auto_post: true,
            note: None,
        },
        // Auto mode that cannot publish says why, so nobody waits for a post
        // that will not happen.
        (Err(reason), true) if s.enable_instagram_api => Route::Manual {
            offer_auto_post: false,
            note: Some(reason),
        },
        (Err(_), _) => Route::Manual {
            offer_auto_post: false,
            note: None,
        },
    })
}

// ---- jobs -----------------------------------------------------------------------------

pub use crate::db::publish::{create_job, job, restartable_jobs, Job};

pub fn set_job_state(
    conn: &Connection,
    queue_id: i64,
    state: JobState,
    error: Option<&str>,
) -> Result<()> {
    db::publish::set_state(conn, queue_id, state, error, crate::clock::now())
}

/// At start: a job that was sending media_publish when the process died has an
/// unknown outcome. Its chat is asked, once.
pub fn ask_about_unknown_outcomes(conn: &Connection, out: &mut Vec<Outgoing>) -> Result<()> {
    for queue_id in db::publish::jobs_in(conn, JobState::Publishing)? {
        set_job_state(
            conn,
            queue_id,
            JobState::Unknown,
            Some("the process stopped during media_publish"),
        )?;
        if let Some(message) = unknown_outcome_message(conn, queue_id)? {
            out.push(message);
        }
    }
    Ok(())
}

pub fn unknown_outcome_message(conn: &Connection, queue_id: i64) -> Result<Option<Outgoing>> {
    let Some(job) = job(conn, queue_id)? else {
        return Ok(None);
    };
    let path = queue::queue_item(conn, queue_id)?
        .and_then(|row| row.media_item_id)
        .map(|id| db::media::item_by_id(conn, id))
        .transpose()?
        .flatten()
        .map(|item| item.path)
        .unwrap_or_else(|| "a story".into());
    let username = account_name(conn, job.account_id)?;
    Ok(Some(telegram::send_message(
        job.chat_id,
        &ui::unknown_outcome_text(&path, &username),
        Some(&ui::unknown_outcome_keyboard(queue_id)),
    )))
}

pub fn account_name(conn: &Connection, account_id: i64) -> Result<String> {
    Ok(db::accounts::account(conn, account_id)?
        .map(|a| a.username.unwrap_or(a.display_name))
        .unwrap_or_else(|| "?".into()))
}

/// History, lock and queue status of a published story.
#[allow(clippy::too_many_arguments)]
pub fn record_published(
    conn: &Connection,
    job: &Job,
    slot: &QueueRow,
    item: &MediaItem,
    s: &ChatSettings,
    method: &str,
    media_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let by = job.requested_by;
    queue::mark_posted(conn, slot.id, by, now)?;
    queue::record_history(
        conn,
        job.chat_id,
        Some(slot.id),
        Some(item.id),
        &item.sha256,
        "posted",
        method,
        by,
        now,
    )?;
    if let Some(media_id) = media_id {
        queue::set_history_media_id(conn, slot.id, media_id)?;
        if method == "instagram_api" {
            crate::bot::insights::track_published(
                conn,
                slot.id,
                job.chat_id,
                job.account_id,
                &item.category,
                media_id,
                now,
            )?;
        }
    }
    let until = (s.posted_lock_days > 0)
        .then(|| now + chrono::Duration::days(i64::from(s.posted_lock_days)));
    queue::record_decision(conn, job.chat_id, &item.sha256, true, until, "posted", now)
}

/// Queued jobs, for the core to hand to the publisher thread.
pub fn queued_jobs(conn: &Connection) -> Result<Vec<i64>> {
    db::publish::jobs_in(conn, JobState::Queued)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::settings;

    const CHAT: i64 = -1_007;
    const KEY: [u8; 32] = [7; 32];

    /// `route` as a table: each case is an in-memory database and a chat's settings,
    /// and the route a story at its slot takes.
    #[test]
    fn route_publishes_or_hands_the_story_to_people() {
        #[derive(Clone, Copy)]
        enum Accounts {
            None,
            Valid,
            Expired,
            Two,
        }
        let manual = |offer_auto_post: bool, note: Option<&str>| Route::Manual {
            offer_auto_post,
            note: note.map(str::to_string),
        };
        let no_url =
            "[web] public_url is not set in storyline.toml, so Instagram cannot fetch the file";
        // (auto_post, api on, public_url set, accounts, key readable, dry run, route)
        let cases = [
            (true, true, true, Accounts::Valid, true, false, Route::Publish { account_id: 1, dry_run: false }),
            (true, true, true, Accounts::Valid, true, true, Route::Publish { account_id: 1, dry_run: true }),
            (false, true, true, Accounts::Valid, true, false, manual(true, None)),
            (true, false, true, Accounts::Valid, true, false, manual(false, None)),
            (false, false, true, Accounts::Valid, true, false, manual(false, None)),
            (true, true, false, Accounts::Valid, true, false, manual(false, Some(no_url))),
            (false, true, false, Accounts::Valid, true, false, manual(false, None)),
            (true, true, true, Accounts::None, true, false, manual(false, Some("no Instagram account is connected"))),
            (true, true, true, Accounts::Two, true, false, manual(false, Some("choose the Instagram account in /settings"))),
            (true, true, true, Accounts::Expired, true, false, manual(false, Some("the access token of @brand has expired; reconnect the account"))),
            (true, true, true, Accounts::Valid, false, false, manual(false, Some("the access token of @brand cannot be read (was the key file replaced?); reconnect the account"))),
            (false, true, true, Accounts::Expired, true, false, manual(false, None)),
        ];
        let now = chrono::DateTime::parse_from_rfc3339("2030-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let dir = tempfile::tempdir().unwrap();
        for (i, (auto_post, api, url, accounts, key_readable, dry_run, expected)) in
            cases.into_iter().enumerate()
        {
            let mut conn = Connection::open_in_memory().unwrap();
            db::migrate(&mut conn).unwrap();
            let t = now;
            let tx = conn.transaction().unwrap();
            db::insert_chat(&tx, CHAT, None, None, t).unwrap();
            tx.commit().unwrap();
            let add = |name: &str, user: &str, expires: chrono::Duration| {
                accounts::add_or_update_account(
                    &conn,
                    &KEY,
                    name,
                    user,
                    Some("brand"),
                    &crate::config::Secret::new("IGAA-token"),
                    now + expires,
                    accounts::Owner::Operator,
                    now - chrono::Duration::days(1),
                )
                .unwrap();
            };
            match accounts {
                Accounts::None => {}
                Accounts::Valid => add("Brand", "178", chrono::Duration::days(60)),
                Accounts::Expired => add("Brand", "178", -chrono::Duration::hours(1)),
                Accounts::Two => {
                    add("Brand", "178", chrono::Duration::days(60));
                    add("Other", "179", chrono::Duration::days(60));
                }
            }
            let toml = if url {
                "[telegram]\nbot_token = \"1:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n[web]\npublic_url = \"https://stories.example.org\"\n"
            } else {
                "[telegram]\nbot_token = \"1:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n"
            };
            let config = crate::config::parse(
                toml,
                std::path::Path::new("storyline.toml"),
                dir.path(),
                &|_| None,
            )
            .unwrap();
            let row = db::chat(&conn, CHAT).unwrap().unwrap();
            let mut s = settings::resolve(&row, &config.defaults);
            s.auto_post = auto_post;
            s.enable_instagram_api = api;
            s.dry_run_mode = dry_run;
            let other_key = [9; 32];
            let key = if key_readable { &KEY } else { &other_key };
            let route = route(&conn, &config, Some(key), CHAT, &s, now).unwrap();
            assert_eq!(route, expected, "case {i}");
        }
    }
}
