//! Publishing stories through the Instagram Graph API, against the fake Graph
//! server and the real binary's own web server (which Instagram fetches from).

use std::fs;
use std::time::Duration;

use chrono::Utc;

use crate::helpers::*;
use crate::support::{
    describe_output, wait_until, Env, FakeInstagram, IgFault, MetaError, SentMessage, ADMIN, CHAT,
};

const IG_TOKEN: &str = "IGAA-long-lived-SECRET-token";
const IG_USER: &str = "17841400000000001";

/// An Env whose config points Instagram at a fake and serves the web page on a
/// free port; an account is added on the command line; the chat is live (API on,
/// dry run off) and in auto mode unless `manual`.
pub(crate) struct Setup {
    pub env: Env,
    pub ig: FakeInstagram,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn setup(files: &[(&str, Vec<u8>)], auto: bool, dry_run: bool) -> Setup {
    let env = Env::new();
    let ig = FakeInstagram::start();
    ig.set_token(IG_TOKEN, IG_USER, "brand");
    let port = free_port();
    let config = env.base_config().replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\""),
    );
    env.write_config_raw(&format!(
        "{config}\n[instagram]\napi_url = \"{url}\"\ngraph_url = \"{url}\"\n\
         [defaults]\nenable_instagram_api = true\ndry_run_mode = {dry_run}\n",
        url = ig.url()
    ));
    for (path, bytes) in files {
        let full = env.media_dir().join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, bytes).unwrap();
    }
    let out = env.run(&["scan"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let out = env.run(&[
        "accounts",
        "add",
        "--name",
        "Brand",
        "--instagram-id",
        IG_USER,
        "--username",
        "brand",
        "--token",
        IG_TOKEN,
    ]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let out = env.run(&["queue"]); // creates the allowed chat's row
    assert!(out.status.success(), "{}", describe_output(&out));
    if auto {
        env.db()
            .execute(
                "UPDATE chats SET posting_mode = 'auto' WHERE chat_id = ?1",
                [CHAT],
            )
            .unwrap();
    }
    Setup { env, ig }
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    bytes
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(y % 256) as u8, 40, (x % 256) as u8])
    });
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}

/// Adds a pending slot for the first media item, due in `secs`.
fn slot_in(env: &Env, secs: i64) -> i64 {
    let at = (Utc::now() + chrono::Duration::seconds(secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let db = env.db();
    let sha: String = db
        .query_row(
            "SELECT sha256 FROM media_items ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    db.execute(
        "INSERT INTO posting_queue (chat_id, scheduled_for, window_date, sha256, created_at) VALUES (?1, ?2, '2000-01-01', ?3, ?2)",
        rusqlite::params![CHAT, at, sha],
    )
    .unwrap();
    db.last_insert_rowid()
}

fn history(env: &Env) -> Vec<(String, String, Option<String>)> {
    let db = env.db();
    let mut stmt = db
        .prepare("SELECT outcome, method, instagram_media_id FROM posting_history ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn story_with(env: &Env, fragment: &str) -> SentMessage {
    wait_until(
        &format!("a story saying {fragment:?}"),
        Duration::from_secs(60),
        || {
            env.tg
                .messages(CHAT)
                .into_iter()
                .find(|m| m.kind != "text" && m.text.contains(fragment))
        },
    )
}

#[test]
fn an_auto_slot_publishes_a_jpeg_through_the_graph_api() {
    let original = jpeg(1080, 1920);
    let s = setup(&[("quotes/morning.jpg", original.clone())], true, false);
    s.ig.in_progress_polls(1);
    let slot = slot_in(&s.env, 3);
    let _daemon = s.env.start_polling();
    let report = story_with(&s.env, "Published to Instagram as @brand");
    assert!(
        report.reply_markup.is_none(),
        "a published story needs no buttons"
    );
    let fetched = s.ig.fetched_media();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].status, 200);
    assert_eq!(fetched[0].content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(fetched[0].bytes, original, "a JPEG is served as it is");
    let media = s.ig.calls_to("/media");
    assert_eq!(media[0].params["media_type"], "STORIES");
    assert!(
        s.ig.calls_to("/content_publishing_limit").len() == 1,
        "the quota is read first"
    );
    assert!(s.ig.calls_to("/media_publish").len() == 1);
    let published = s.ig.published();
    assert_eq!(
        history(&s.env),
        vec![(
            "posted".into(),
            "instagram_api".into(),
            Some(published[0].clone())
        )]
    );
    let status: String = s
        .env
        .db()
        .query_row(
            "SELECT status FROM posting_queue WHERE id = ?1",
            [slot],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, "posted");
    assert!(
        !s.env.log().contains(IG_TOKEN),
        "the Instagram token reached the log"
    );
    assert_token_not_logged(&s.env);
}

#[test]
fn a_png_is_converted_to_a_jpeg_that_fits_1080_by_1920() {
    let s = setup(&[("products/big.png", png(2160, 3840))], true, false);
    slot_in(&s.env, 3);
    let _daemon = s.env.start_polling();
    story_with(&s.env, "Published to Instagram");
    let fetched = s.ig.fetched_media();
    assert_eq!(fetched[0].content_type.as_deref(), Some("image/jpeg"));
    let decoded =
        image::load_from_memory_with_format(&fetched[0].bytes, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (1080, 1920));
}

#[test]
fn the_auto_post_button_publishes_a_manual_story() {
    let s = setup(&[("quotes/morning.jpg", jpeg(720, 1280))], false, false);
    let _daemon = s.env.start_polling();
    s.env.tg.push_message(CHAT, ADMIN, "ada", "/next");
    let story = wait_until("the story", WAIT, || {
        s.env
            .tg
            .messages(CHAT)
            .into_iter()
            .find(|m| m.kind != "text")
    });
    let data = button_data(&story, "🤖 Auto post");
    let answer = press_data(&s.env, CHAT, ADMIN, story.message_id, &data);
    assert!(!is_alert(&answer), "{answer:?}");
    let done = wait_until("the edited story", Duration::from_secs(60), || {
        s.env
            .tg
            .message(CHAT, story.message_id)
            .filter(|m| m.text.contains("Published to Instagram as @brand"))
    });
    assert!(done.reply_markup.is_none());
    let (_, method, _) = history(&s.env).pop().unwrap();
    assert_eq!(method, "instagram_api");
    let by: Option<i64> = s
        .env
        .db()
        .query_row("SELECT user_id FROM posting_history", [], |r| r.get(0))
        .unwrap();
    assert_eq!(by, Some(ADMIN));
}

#[test]
fn dry_run_makes_no_graph_call_and_says_what_would_have_been_published() {
    let s = setup(&[("quotes/morning.jpg", jpeg(720, 1280))], true, true);
    slot_in(&s.env, 3);
    let _daemon = s.env.start_polling();
    let report = story_with(&s.env, "would have been published to Instagram as @brand");
    assert!(report.text.contains("[dry run]"));
    assert!(
        s.ig.calls().is_empty(),
        "dry run called Instagram: {:?}",
        s.ig.calls()
    );
    assert_eq!(history(&s.env)[0].1, "dry_run");
}

#[test]
fn a_container_error_falls_back_to_the_manual_buttons_with_the_reason() {
    let s = setup(&[("quotes/morning.jpg", jpeg(720, 1280))], true, false);
    s.ig.next_container_ends("ERROR");
    slot_in(&s.env, 3);
    let _daemon = s.env.start_polling();
    let story = story_with(&s.env, "Not published automatically");
    assert!(story.text.contains("could not process"), "{}", story.text);
    // Instagram's own reason, the container's `status` text, reaches the chat.
    assert!(
        story.text.contains(
            "Instagram said: “Error: the media could not be processed (reason: scripted by \
             the test)”"
        ),
        "{}",
        story.text
    );
    assert_eq!(
        s.ig.calls_to("/media").len(),
        1,
        "an error without a reason a new container could fix makes no second one"
    );
    let labels: Vec<String> = buttons(&story).into_iter().map(|(t, _)| t).collect();
    assert!(labels.contains(&"✅ Posted".to_string()), "{labels:?}");
    assert!(s.ig.published().is_empty());
    assert!(history(&s.env).is_empty());
    // The person can still decide (once the story's message id is recorded: a
    // press faster than that commit is not a person's).
    wait_for_empty_outbox(&s.env);
    let answer = press_data(
        &s.env,
        CHAT,
        ADMIN,
        story.message_id,
        &button_data(&story, "✅ Posted"),
    );
    assert!(!is_alert(&answer), "{answer:?}");
}

#[test]
fn a_server_error_2207001_is_retried_and_the_story_published_once() {
    let s = setup(&[("quotes/morning.jpg", jpeg(720, 1280))], true, false);
    s.ig.fail_next(
        "media_publish",
        1,
        IgFault::Meta(MetaError::row(-1, 2_207_001)),
    );
    slot_in(&s.env, 3);
    let _daemon = s.env.start_polling();
    let report = story_with(&s.env, "Published to Instagram as @brand");
    assert!(report.reply_markup.is_none(), "{}", report.text);

    let publishes = s.ig.calls_to("media_publish");
    let statuses: Vec<Option<u16>> = publishes.iter().map(|call| call.status).collect();
    assert_eq!(statuses, [Some(400), Some(200)]);
    assert_eq!(
        publishes[0].params["creation_id"], publishes[1].params["creation_id"],
        "tried again with the same container"
    );
    assert!(
        publishes[1].at - publishes[0].at >= Duration::from_secs(2),
        "tried again after a pause, not at once"
    );
    assert_eq!(s.ig.calls_to("/media").len(), 1, "one container");
    let published = s.ig.published();
    assert_eq!(published.len(), 1, "published once");
    assert_eq!(
        history(&s.env),
        vec![(
            "posted".into(),
            "instagram_api".into(),
            Some(published[0].clone())
        )]
    );
    let log = s.env.log();
    assert!(
        log.contains("-1/2207001") && log.contains("trying again in 2 s (attempt 2 of 4)"),
        "the retry is recorded:\n{log}"
    );
}

#[test]
fn an_anti_spam_block_is_not_retried_and_the_chat_is_told_why() {
    let s = setup(&[("quotes/morning.jpg", jpeg(720, 1280))], true, false);
    let block = MetaError::row(4, 2_207_051);
    s.ig.fail_next("media_publish", 1, IgFault::Meta(block));
    let slot = slot_in(&s.env, 3);
    let _daemon = s.env.start_polling();
    let story = story_with(&s.env, "Not published automatically");
    for words in [
        "Instagram blocked the post: it restricts activity it takes for spam.",
        "Storyline does not try again",
        "post this story by hand",
        block.user_message,
    ] {
        assert!(story.text.contains(words), "{words:?} in {}", story.text);
    }
    let labels: Vec<String> = buttons(&story).into_iter().map(|(t, _)| t).collect();
    assert!(labels.contains(&"✅ Posted".to_string()), "{labels:?}");

    // The story message comes after the job ended, so these counts are final.
    assert_eq!(s.ig.calls_to("media_publish").len(), 1, "not retried");
    assert_eq!(s.ig.calls_to("/media").len(), 1, "no new container either");
    assert!(s.ig.published().is_empty());
    assert!(history(&s.env).is_empty());
    let (state, error): (String, Option<String>) = s
        .env
        .db()
        .query_row(
            "SELECT state, error FROM publish_jobs WHERE queue_id = ?1",
            [slot],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(state, "failed");
    assert!(
        error.is_some_and(|error| error.contains("spam")),
        "the reason is kept with the job"
    );
}

#[test]
fn at_the_quota_it_falls_back_to_manual_with_a_message() {
    let s = setup(&[("quotes/morning.jpg", jpeg(720, 1280))], true, false);
    s.ig.set_quota(25, 25);
    slot_in(&s.env, 3);
    let _daemon = s.env.start_polling();
    let story = story_with(&s.env, "publishing limit");
    assert!(story.text.contains("25 of 25"), "{}", story.text);
    assert!(
        s.ig.calls_to("/media").is_empty(),
        "no container past the limit"
    );
}

#[test]
fn an_unknown_outcome_after_a_crash_is_asked_not_retried() {
    let s = setup(&[("quotes/morning.jpg", jpeg(720, 1280))], true, false);
    let slot = slot_in(&s.env, -60);
    let db = s.env.db();
    let sha: String = db
        .query_row("SELECT sha256 FROM media_items LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let item: i64 = db
        .query_row("SELECT id FROM media_items LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let account: i64 = db
        .query_row("SELECT id FROM instagram_accounts", [], |r| r.get(0))
        .unwrap();
    db.execute(
        "UPDATE posting_queue SET status = 'sending', media_item_id = ?2 WHERE id = ?1",
        rusqlite::params![slot, item],
    )
    .unwrap();
    db.execute(
        "INSERT INTO publish_jobs (queue_id, chat_id, account_id, dry_run, state, container_id, created_at, updated_at)
         VALUES (?1, ?2, ?3, 0, 'publishing', 'c-1', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
        rusqlite::params![slot, CHAT, account],
    )
    .unwrap();
    drop(db);
    let _daemon = s.env.start_polling();
    let question = wait_until("the question", WAIT, || {
        s.env
            .tg
            .messages(CHAT)
            .into_iter()
            .find(|m| m.text.contains("could not tell whether"))
    });
    assert!(
        s.ig.calls_to("/media_publish").is_empty(),
        "retried blindly"
    );
    let (_, now) = press(&s.env, CHAT, &question, "✅ It is on Instagram");
    assert!(now.text.contains("Recorded as published"), "{}", now.text);
    assert_eq!(history(&s.env)[0].1, "instagram_api");
    let locked: Option<String> = s
        .env
        .db()
        .query_row(
            "SELECT locked_until FROM chat_media WHERE sha256 = ?1",
            [&sha],
            |r| r.get(0),
        )
        .unwrap();
    assert!(locked.is_some());
    let again = press_data(
        &s.env,
        CHAT,
        ADMIN,
        question.message_id,
        &button_data(&question, "🔁 Publish again"),
    );
    assert!(is_alert(&again), "a second answer changes nothing");
}

#[test]
fn the_web_server_refuses_bad_signatures_and_serves_health() {
    let s = setup(&[("quotes/morning.jpg", jpeg(100, 100))], false, false);
    let _daemon = s.env.start_polling();
    let config = fs::read_to_string(s.env.config_path()).unwrap();
    let public = config
        .lines()
        .find_map(|l| l.strip_prefix("public_url = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let get = |path: &str| -> u16 {
        wait_until("the web server", WAIT, || {
            agent.get(&format!("{public}{path}")).call().ok()
        })
        .status()
        .as_u16()
    };
    let exp = Utc::now().timestamp() + 600;
    assert_eq!(
        get(&format!("/media/1?exp={exp}&sig={}", "0".repeat(64))),
        403
    );
    assert_eq!(get("/media/1?exp=1&sig=00"), 403);
    let traversal = get("/media/../../etc/passwd");
    assert!(traversal == 403 || traversal == 404, "{traversal}");
    assert_eq!(get("/nothing"), 404);
    let health = wait_until("health", WAIT, || {
        agent.get(&format!("{public}/healthz")).call().ok()
    });
    assert_eq!(health.status().as_u16(), 200);
}

#[test]
fn a_token_three_days_from_expiry_is_refreshed() {
    let s = setup(&[("quotes/morning.jpg", jpeg(100, 100))], false, false);
    let three_days =
        (Utc::now() + chrono::Duration::days(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let long_ago = (Utc::now() - chrono::Duration::days(57))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    s.env
        .db()
        .execute(
            "UPDATE api_tokens SET expires_at = ?1, issued_at = ?2",
            rusqlite::params![three_days, long_ago],
        )
        .unwrap();
    let sealed_before: String = s
        .env
        .db()
        .query_row("SELECT sealed_value FROM api_tokens", [], |r| r.get(0))
        .unwrap();
    let _daemon = s.env.start_polling();
    s.ig.wait_for(0, WAIT, |c| c.path.ends_with("/refresh_access_token"));
    let days = wait_until("the new expiry", WAIT, || {
        let expires: String = s
            .env
            .db()
            .query_row("SELECT expires_at FROM api_tokens", [], |r| r.get(0))
            .ok()?;
        let expires = chrono::DateTime::parse_from_rfc3339(&expires)
            .ok()?
            .with_timezone(&Utc);
        let days = (expires - Utc::now()).num_days();
        (days > 30).then_some(days)
    });
    assert!((59..=60).contains(&days), "{days}");
    let sealed_after: String = s
        .env
        .db()
        .query_row("SELECT sealed_value FROM api_tokens", [], |r| r.get(0))
        .unwrap();
    assert_ne!(sealed_before, sealed_after);
    assert!(!s.env.log().contains(IG_TOKEN));
}
