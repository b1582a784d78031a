//! Photos beyond what Telegram's sendPhoto takes (sides adding up to more than
//! 10,000, more than 20:1, over 10 MB): the chat gets a preview the fake accepts,
//! the original stays for Instagram, and a photo that cannot be shown at all is
//! reported and locked instead of failing at every slot.

use std::fs;
use std::sync::OnceLock;

use image::{ImageFormat, RgbImage};
use serde_json::Value;

use crate::helpers::*;
use crate::support::{wait_until, Env, SentMessage, ADMIN, CHAT};

/// A solid colour JPEG: small on disk whatever its size in pixels.
fn solid_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(RgbImage::from_pixel(
        width,
        height,
        image::Rgb([20, 120, 200]),
    ))
    .write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Jpeg)
    .unwrap();
    bytes
}

/// A real 9000×1500 photo: 10,500 pixels of sides, more than Telegram shows. Encoding
/// it takes seconds in a debug build, so the tests share one.
fn too_wide_jpeg() -> &'static [u8] {
    static JPEG: OnceLock<Vec<u8>> = OnceLock::new();
    JPEG.get_or_init(|| solid_jpeg(9000, 1500))
}

/// A small JPEG whose frame header claims `width`×`height`: what Telegram (and
/// the daemon) reads of a picture before deciding it is too long to show.
fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = solid_jpeg(64, 8);
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

fn put(env: &Env, path: &str, bytes: &[u8]) {
    let full = env.media_dir().join(path);
    fs::create_dir_all(full.parent().unwrap()).unwrap();
    fs::write(full, bytes).unwrap();
}

fn scan(env: &Env) {
    let out = env.run(&["scan"]);
    assert!(
        out.status.success(),
        "{}",
        crate::support::describe_output(&out)
    );
}

/// Sends /next and returns the messages up to and including the first story
/// or the "nothing to post" answer, notices left out.
fn next(env: &Env) -> Vec<SentMessage> {
    let before = env.tg.messages(CHAT).len();
    env.tg.push_message(CHAT, ADMIN, "ada", "/next");
    wait_until("a story or nothing to post", WAIT, || {
        let new: Vec<SentMessage> = env
            .tg
            .messages(CHAT)
            .into_iter()
            .skip(before)
            .filter(|m| !is_notice(m))
            .collect();
        let end = new
            .iter()
            .position(|m| m.kind != "text" || m.text.starts_with("📭"))?;
        Some(new[..=end].to_vec())
    })
}

fn lock_of(env: &Env, file: &str) -> (Option<String>, Option<String>) {
    env.db()
        .query_row(
            "SELECT c.locked_until, c.lock_reason FROM chat_media c
             JOIN media_items m ON m.sha256 = c.sha256 WHERE c.chat_id = ?1 AND m.path = ?2",
            rusqlite::params![CHAT, file],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[test]
fn the_fake_refuses_photos_beyond_telegram_limits() {
    let env = Env::new();
    let upload = |bytes: &[u8]| -> (u16, Value) {
        let boundary = "b0undary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n{CHAT}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut response = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent()
            .post(format!(
                "{}/bot{}/sendPhoto",
                env.tg.url(),
                crate::support::TOKEN
            ))
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .send(&body[..])
            .unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_json().unwrap())
    };
    let (status, answer) = upload(too_wide_jpeg());
    assert_eq!(
        (status, answer["description"].as_str()),
        (400, Some("Bad Request: PHOTO_INVALID_DIMENSIONS"))
    );
    let (status, answer) = upload(&jpeg_claiming(30_000, 1000));
    assert_eq!(
        (status, answer["description"].as_str()),
        (400, Some("Bad Request: PHOTO_INVALID_DIMENSIONS"))
    );
    let mut big = solid_jpeg(64, 64);
    big.resize(10_000_001, 0);
    let (status, answer) = upload(&big);
    assert_eq!(
        (status, answer["description"].as_str()),
        (400, Some("Bad Request: file is too big"))
    );
    let (status, answer) = upload(&solid_jpeg(2560, 427));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["photo"][1]["width"], 2560);
}

#[test]
fn a_photo_too_wide_for_telegram_is_shown_as_a_preview() {
    let env = Env::new();
    let original = too_wide_jpeg();
    put(&env, "panoramas/harbour.jpg", original);
    scan(&env);
    let _daemon = env.start_polling();

    let messages = next(&env);
    let story = messages.last().unwrap();
    assert_eq!(story.kind, "photo", "{messages:?}");
    assert!(story.text.contains("harbour.jpg"), "{}", story.text);
    let labels: Vec<String> = buttons(story).into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        labels,
        ["✅ Posted", "⏭ Skip", "🚫 Reject", "📲 Open Instagram"]
    );

    let upload = env.tg.calls_of("sendPhoto").pop().unwrap();
    assert_eq!(upload.status, Some(200));
    let photo = &upload.params["photo"];
    let (width, height) = (
        photo["width"].as_u64().unwrap(),
        photo["height"].as_u64().unwrap(),
    );
    assert_eq!((width, height), (2560, 427));
    assert!(photo["size"].as_u64().unwrap() <= 10_000_000, "{photo}");
    assert_eq!(photo["file_name"], "harbour.jpg");
    // The original stays as it was, for Instagram.
    assert_eq!(
        fs::read(env.media_dir().join("panoramas/harbour.jpg")).unwrap(),
        original
    );
    // Telegram's copy is reused from now on: its file_id is stored.
    wait_until("the preview's file_id to be stored", WAIT, || {
        env.db()
            .query_row(
                "SELECT telegram_file_id FROM media_items WHERE path = 'panoramas/harbour.jpg'",
                [],
                |r| r.get::<_, Option<String>>(0),
            )
            .unwrap()
    });
    assert_eq!(lock_of(&env, "panoramas/harbour.jpg").1, None);
}

#[test]
fn a_photo_too_long_to_show_is_reported_and_locked() {
    let env = Env::new();
    put(&env, "strips/film.jpg", &jpeg_claiming(30_000, 1000));
    scan(&env);
    let _daemon = env.start_polling();

    let messages = next(&env);
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "⚠️ strips/film.jpg cannot be shown in this chat: it is 30000×1000 pixels, more than 20 \
             times as long as it is wide, and Telegram shows no photo that long. It was not sent \
             and will not be picked again.",
            "📭 Nothing to post: every item is resting after a recent post or skip, or the media \
             folder is empty. Add photos or videos to the media folder, then /scan.",
        ]
    );
    assert!(env.tg.calls_of("sendPhoto").is_empty());
    let (until, reason) = lock_of(&env, "strips/film.jpg");
    assert!(until.is_some_and(|u| u.starts_with("9999")));
    assert_eq!(reason.as_deref(), Some("cannot be shown in Telegram"));

    // The next slot does not try it again.
    let messages = next(&env);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].text.starts_with("📭"), "{}", messages[0].text);
    assert!(env.tg.calls_of("sendPhoto").is_empty());
}
