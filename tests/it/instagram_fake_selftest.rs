//! Tests of the fake Instagram server, driven with the real client
//! (`storyline::instagram::Graph`): the publish sequence with a media download from a
//! local file server, container states, publish errors, quota, token errors, outages,
//! refresh, the OAuth exchange, story insights and the live stories list. If the fake
//! and the client disagreed here, every daemon test built on the fake would prove
//! nothing. No daemon runs.

use std::net::TcpListener;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Span, DurationRound, Utc};
use serde_json::{json, Value};
use storyline::config::Secret;
use storyline::instagram::{
    Call, ContainerStatus, ErrorAction, Graph, GraphError, LiveStory, MediaType, Navigation,
    Profile, Quota, StatusCode, StoryInsights, StoryMedia, StoryNumbers,
};

use crate::support::{FakeInstagram, FakeStoryNumbers, IgFault, IgInsights, MetaError};

const IG_TOKEN: &str = "IGAA-test-SECRET-long-lived";
const IG_USER: &str = "17841400000000042";
const USERNAME: &str = "storyline_shop";
const APP_ID: &str = "1234567890";
const APP_SECRET: &str = "app-SECRET-value";
const REDIRECT_URI: &str = "https://pi.example/oauth/callback";
/// The start of a JPEG file; the fake checks images for it, as Instagram takes JPEG only.
const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 0xFF, 0xD9,
];
const PNG: &[u8] = &[0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n'];
const MP4: &[u8] = &[
    0, 0, 0, 0x18, b'f', b't', b'y', b'p', b'm', b'p', b'4', b'2',
];

fn token() -> Secret {
    Secret::new(IG_TOKEN)
}

/// A fake with the test account's token set, and a client for it.
fn fake() -> (FakeInstagram, Graph) {
    let ig = FakeInstagram::start();
    ig.set_token(IG_TOKEN, IG_USER, USERNAME);
    let graph = Graph::new(&format!("{}/", ig.url()), &ig.url());
    (ig, graph)
}

/// A tiny file server standing in for the daemon's signed media URLs.
struct MediaServer {
    server: Arc<tiny_http::Server>,
    worker: Option<JoinHandle<()>>,
    base: String,
}

impl MediaServer {
    /// Serves `/story.jpg`, `/story.png` and `/story.mp4`; anything else is 404.
    fn start() -> MediaServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("media: bind"));
        let base = format!("http://{}", server.server_addr());
        let worker = {
            let server = Arc::clone(&server);
            std::thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    let file = match request.url() {
                        "/story.jpg" => Some(("image/jpeg", JPEG)),
                        "/story.png" => Some(("image/png", PNG)),
                        "/story.mp4" => Some(("video/mp4", MP4)),
                        _ => None,
                    };
                    let response = match file {
                        Some((content_type, bytes)) => tiny_http::Response::from_data(bytes)
                            .with_header(
                                tiny_http::Header::from_bytes("Content-Type", content_type)
                                    .expect("a valid header"),
                            ),
                        None => {
                            tiny_http::Response::from_data(&b"not found"[..]).with_status_code(404)
                        }
                    };
                    let _ = request.respond(response);
                }
            })
        };
        MediaServer {
            server,
            worker: Some(worker),
            base,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for MediaServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// A URL on which nothing listens: connections are refused at once.
fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let address = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{address}")
}

fn api_code(error: &GraphError) -> (u16, Option<i64>, Option<i64>) {
    match error {
        GraphError::Api {
            http_status,
            code,
            subcode,
            ..
        } => (*http_status, *code, *subcode),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn status_of(graph: &Graph, container_id: &str) -> ContainerStatus {
    graph
        .container_status(container_id, &token())
        .expect("container status")
}

#[test]
fn a_story_is_published_after_the_fake_downloads_it() {
    let (ig, graph) = fake();
    let media = MediaServer::start();
    ig.set_quota(3, 25);
    ig.in_progress_polls(2);

    let quota = graph.publishing_limit(IG_USER, &token()).expect("quota");
    assert_eq!(quota, Quota { used: 3, total: 25 });

    let image_url = media.url("/story.jpg");
    let container_id = graph
        .create_story_container(IG_USER, &token(), &StoryMedia::Image(image_url.clone()))
        .expect("container");
    let fetched = ig.fetched_media();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].url, image_url);
    assert_eq!(fetched[0].status, 200);
    assert_eq!(fetched[0].content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(fetched[0].bytes, JPEG);

    for _ in 0..2 {
        assert_eq!(
            status_of(&graph, &container_id).code,
            StatusCode::InProgress
        );
    }
    let finished = status_of(&graph, &container_id);
    assert_eq!(finished.code, StatusCode::Finished);
    assert!(finished.detail.is_some_and(|d| d.starts_with("Finished")));

    let media_id = graph
        .publish(IG_USER, &token(), &container_id)
        .expect("publish");
    assert_ne!(media_id, container_id);
    assert_eq!(ig.published(), vec![media_id]);
    assert_eq!(status_of(&graph, &container_id).code, StatusCode::Published);
    assert_eq!(
        graph
            .publishing_limit(IG_USER, &token())
            .expect("quota")
            .used,
        4,
        "a publish counts against the quota"
    );

    // What went over the wire: the token in a POST's body, never in its URL.
    let create = &ig.calls_to("/media")[0];
    assert_eq!(create.method, "POST");
    assert_eq!(create.path, format!("/v26.0/{IG_USER}/media"));
    assert_eq!(create.params["media_type"], json!("STORIES"));
    assert_eq!(create.params["image_url"], json!(image_url));
    assert_eq!(create.params["access_token"], json!(IG_TOKEN));
    assert!(create.query_keys.is_empty(), "{:?}", create.query_keys);
    let publish = &ig.calls_to("media_publish")[0];
    assert_eq!(publish.params["creation_id"], json!(container_id));
    assert!(publish.query_keys.is_empty());
    let poll = &ig.calls_to(&format!("/{container_id}"))[0];
    assert_eq!(poll.method, "GET");
    assert_eq!(poll.params["fields"], json!("status_code,status"));
    assert!(poll.query_keys.contains(&"access_token".to_string()));
    assert!(ig.calls().iter().all(|call| call.status.is_some()));
}

#[test]
fn a_video_story_is_downloaded_from_its_video_url() {
    let (ig, graph) = fake();
    let media = MediaServer::start();
    let video_url = media.url("/story.mp4");
    let container_id = graph
        .create_story_container(IG_USER, &token(), &StoryMedia::Video(video_url.clone()))
        .expect("container");
    assert_eq!(
        ig.calls_to("/media")[0].params["video_url"],
        json!(video_url)
    );
    assert!(ig.calls_to("/media")[0].params.get("image_url").is_none());
    assert_eq!(ig.fetched_media()[0].bytes, MP4);
    assert_eq!(status_of(&graph, &container_id).code, StatusCode::Finished);
    graph
        .publish(IG_USER, &token(), &container_id)
        .expect("publish");
}

#[test]
fn containers_end_in_error_or_expired_with_the_reason() {
    let (ig, graph) = fake();
    let media = MediaServer::start();
    let create = |url: String| {
        graph
            .create_story_container(IG_USER, &token(), &StoryMedia::Image(url))
            .expect("container")
    };
    let dead = dead_url();
    let cases = [
        (
            Some("ERROR"),
            media.url("/story.jpg"),
            StatusCode::Error,
            "reason",
        ),
        (
            Some("EXPIRED"),
            media.url("/story.jpg"),
            StatusCode::Expired,
            "reason",
        ),
        (
            None,
            media.url("/gone.jpg"),
            StatusCode::Error,
            "could not download the media",
        ),
        (
            None,
            format!("{dead}/story.jpg"),
            StatusCode::Error,
            "could not download the media",
        ),
        (None, media.url("/story.png"), StatusCode::Error, "JPEG"),
    ];
    for (scripted, url, code, reason) in cases {
        if let Some(end) = scripted {
            ig.next_container_ends(end);
        }
        let container_id = create(url.clone());
        let status = status_of(&graph, &container_id);
        assert_eq!(status.code, code, "{url}");
        let detail = status.detail.unwrap_or_default();
        assert!(detail.contains(reason), "{url}: {detail}");

        let error = graph
            .publish(IG_USER, &token(), &container_id)
            .expect_err("a failed container cannot be published");
        assert!(!error.is_not_ready(), "{error}");
        assert_eq!(error.action(Call::Publish), ErrorAction::GiveUp, "{error}");
        assert!(error
            .plain_words()
            .starts_with("Instagram refused the request"));
    }
    let statuses: Vec<u16> = ig.fetched_media().iter().map(|f| f.status).collect();
    assert_eq!(statuses, [200, 200, 404, 0, 200]);
    assert!(ig.published().is_empty());
}

#[test]
fn publishing_too_early_is_error_9007() {
    let (ig, graph) = fake();
    let media = MediaServer::start();
    ig.in_progress_polls(1);
    let container_id = graph
        .create_story_container(
            IG_USER,
            &token(),
            &StoryMedia::Image(media.url("/story.jpg")),
        )
        .expect("container");

    // Still IN_PROGRESS: the real service answers 9007 too.
    let error = graph
        .publish(IG_USER, &token(), &container_id)
        .expect_err("not finished yet");
    assert_eq!(api_code(&error), (400, Some(9007), Some(2_207_027)));
    assert!(error.is_not_ready() && !error.is_token_problem());
    assert_eq!(
        error.plain_words(),
        "Instagram has not finished processing the media yet."
    );

    assert_eq!(
        status_of(&graph, &container_id).code,
        StatusCode::InProgress
    );
    assert_eq!(status_of(&graph, &container_id).code, StatusCode::Finished);
    ig.publish_too_early(2);
    for _ in 0..2 {
        let error = graph
            .publish(IG_USER, &token(), &container_id)
            .expect_err("scripted 9007");
        assert!(error.is_not_ready(), "{error}");
    }
    graph
        .publish(IG_USER, &token(), &container_id)
        .expect("the third attempt publishes");
    assert_eq!(ig.published().len(), 1);
}

#[test]
fn the_quota_is_reported_and_enforced() {
    let (ig, graph) = fake();
    let media = MediaServer::start();
    ig.set_quota(25, 25);
    let quota = graph.publishing_limit(IG_USER, &token()).expect("quota");
    assert!(quota.is_reached() && quota.remaining() == 0, "{quota:?}");

    let container_id = graph
        .create_story_container(
            IG_USER,
            &token(),
            &StoryMedia::Image(media.url("/story.jpg")),
        )
        .expect("container");
    let error = graph
        .publish(IG_USER, &token(), &container_id)
        .expect_err("at the limit");
    assert_eq!(api_code(&error), (400, Some(9), Some(2_207_042)));
    assert!(!error.is_rate_limited());
    assert_eq!(error.action(Call::Publish), ErrorAction::GiveUp);
    assert!(
        error.plain_words().contains("limit of posts"),
        "{}",
        error.plain_words()
    );

    ig.set_quota(0, 50);
    assert_eq!(
        graph.publishing_limit(IG_USER, &token()).expect("quota"),
        Quota { used: 0, total: 50 }
    );
    graph
        .publish(IG_USER, &token(), &container_id)
        .expect("publish under the new quota");
}

#[test]
fn token_problems_are_error_190() {
    let (ig, graph) = fake();
    let wrong = Secret::new("IGAA-not-a-token-we-issued");
    let error = graph
        .publishing_limit(IG_USER, &wrong)
        .expect_err("unknown token");
    assert_eq!(api_code(&error), (400, Some(190), None));
    assert!(error.is_token_problem());
    assert_eq!(error.action(Call::Other), ErrorAction::GiveUp);
    assert_eq!(
        error.plain_words(),
        "Instagram says the access token is no longer valid; reconnect the account."
    );
    assert!(graph.profile(&wrong).unwrap_err().is_token_problem());

    ig.fail_next("content_publishing_limit", 1, IgFault::TokenError);
    let error = graph
        .publishing_limit(IG_USER, &token())
        .expect_err("scripted expiry");
    assert_eq!(api_code(&error), (400, Some(190), Some(463)));
    assert_eq!(
        error.plain_words(),
        "Instagram says the access token has expired; reconnect the account."
    );
    graph
        .publishing_limit(IG_USER, &token())
        .expect("the fault was used up");

    // A new token for the account replaces the old one.
    ig.set_token("IGAA-reconnected", IG_USER, USERNAME);
    assert!(graph
        .publishing_limit(IG_USER, &token())
        .unwrap_err()
        .is_token_problem());
    // A valid token used on another account's path is refused, but not as a token problem.
    let error = graph
        .publishing_limit("17841400000000099", &Secret::new("IGAA-reconnected"))
        .expect_err("another account");
    assert_eq!(api_code(&error), (400, Some(100), Some(33)));
    assert!(!error.is_token_problem());
}

#[test]
fn outages_are_transient() {
    let (ig, graph) = fake();
    ig.fail_next("content_publishing_limit", 1, IgFault::Status(502));
    let error = graph.publishing_limit(IG_USER, &token()).unwrap_err();
    assert_eq!(api_code(&error), (502, None, None));
    assert_eq!(error.action(Call::Other), ErrorAction::Retry, "{error}");
    assert_eq!(
        error.plain_words(),
        "Instagram had a problem on its side (HTTP 502); try again later."
    );

    ig.fail_next("*", 1, IgFault::Garbage);
    let error = graph.profile(&token()).unwrap_err();
    assert!(matches!(error, GraphError::Garbage(_)), "{error:?}");
    assert_eq!(error.action(Call::Other), ErrorAction::Retry);

    ig.fail_next(
        "media_publish",
        1,
        IgFault::Api {
            http_status: 400,
            code: 4,
            subcode: None,
            message: "Application request limit reached".into(),
        },
    );
    let error = graph.publish(IG_USER, &token(), "1").unwrap_err();
    assert!(error.is_rate_limited(), "{error}");
    assert_eq!(error.action(Call::Publish), ErrorAction::Retry, "{error}");

    let impatient = Graph::with_timeout(&ig.url(), &ig.url(), Duration::from_millis(300));
    ig.fail_next("/me", 1, IgFault::Slow(Duration::from_secs(5)));
    let started = Instant::now();
    let error = impatient.profile(&token()).unwrap_err();
    assert_eq!(error, GraphError::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.action(Call::Other), ErrorAction::Retry);
    assert_eq!(
        error.plain_words(),
        "Instagram could not be reached (timed out)."
    );

    let dead = dead_url();
    let unreachable = Graph::new(&dead, &dead);
    let error = unreachable.profile(&token()).unwrap_err();
    assert!(matches!(error, GraphError::Network(_)), "{error:?}");
    assert_eq!(error.action(Call::Other), ErrorAction::Retry);
    assert!(error
        .plain_words()
        .starts_with("Instagram could not be reached ("));

    // Every fault was used once; the service answers normally again.
    assert_eq!(
        graph.profile(&token()).expect("profile"),
        Profile {
            user_id: IG_USER.into(),
            username: USERNAME.into()
        }
    );
}

#[test]
fn every_meta_error_row_reaches_the_client_as_instagram_sends_it() {
    let (ig, graph) = fake();
    let media = MediaServer::start();
    let story = StoryMedia::Image(media.url("/story.jpg"));
    for row in MetaError::all() {
        ig.fail_next("/media", 1, IgFault::Meta(*row));
        let error = graph
            .create_story_container(IG_USER, &token(), &story)
            .expect_err("a scripted error row");
        let GraphError::Api {
            http_status,
            code,
            subcode,
            transient,
            user_message,
            ..
        } = &error
        else {
            panic!("expected an API error, got {error:?}");
        };
        assert_eq!(
            (*http_status, *code, *subcode),
            (400, Some(row.code), Some(row.subcode))
        );
        assert_eq!(*transient, Some(row.transient), "{error}");
        assert_eq!(user_message.as_deref(), Some(row.user_message), "{error}");
        // A story given up on goes to people with Instagram's own sentence.
        if error.action(Call::CreateContainer) == ErrorAction::GiveUp {
            let words = error.plain_words();
            assert!(words.contains(row.user_message), "{error}: {words}");
        }
    }
    assert!(
        ig.fetched_media().is_empty(),
        "a scripted error answers before any download"
    );

    // The raw answer, field by field, as the reference's sample shows it.
    ig.fail_next("/media", 1, IgFault::Meta(MetaError::row(4, 2_207_051)));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(&format!("{}/v26.0/{IG_USER}/media", ig.url()))
        .send_form([("media_type", "STORIES"), ("access_token", IG_TOKEN)])
        .expect("an answer");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.body_mut().read_json().expect("JSON");
    let error = &body["error"];
    let mut keys: Vec<&str> = error
        .as_object()
        .expect("an error object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "code",
            "error_subcode",
            "error_user_msg",
            "error_user_title",
            "fbtrace_id",
            "is_transient",
            "message",
            "type"
        ]
    );
    assert_eq!(
        (&error["type"], &error["code"], &error["error_subcode"]),
        (&json!("OAuthException"), &json!(4), &json!(2_207_051))
    );
}

#[test]
fn node_calls_carry_the_pinned_version_and_token_calls_none() {
    let (ig, graph) = fake();
    let app_secret = Secret::new(APP_SECRET);
    graph.profile(&token()).expect("profile");
    graph
        .publishing_limit(IG_USER, &token())
        .expect("publishing limit");
    graph.refresh_token(&token()).expect("refresh");
    ig.expect_code("AQB-code-2");
    let short = graph
        .exchange_code(APP_ID, &app_secret, REDIRECT_URI, "AQB-code-2")
        .expect("code exchange");
    graph
        .long_lived_token(&app_secret, &short.token)
        .expect("long-lived token");
    // The hourly refresh of the daemon, configured as storyline.toml's graph_url is.
    let refresh = storyline::bot::accounts::GraphRefresh::new(&format!(
        "{}/{}",
        ig.url(),
        storyline::instagram::GRAPH_API_VERSION
    ));
    refresh.refresh(&token()).expect("daemon refresh");

    let paths: Vec<String> = ig.calls().into_iter().map(|call| call.path).collect();
    assert_eq!(
        paths,
        [
            "/v26.0/me".to_string(),
            format!("/v26.0/{IG_USER}/content_publishing_limit"),
            "/refresh_access_token".to_string(),
            "/oauth/access_token".to_string(),
            "/access_token".to_string(),
            "/refresh_access_token".to_string(),
        ]
    );
}

#[test]
fn refresh_gives_a_new_token_and_keeps_the_old_one() {
    let (ig, graph) = fake();
    let (fresh, expires_in) = graph.refresh_token(&token()).expect("refresh");
    assert_ne!(fresh.expose(), IG_TOKEN);
    assert_eq!(expires_in, 5_184_000);
    assert_eq!(graph.profile(&fresh).expect("new token").user_id, IG_USER);
    assert_eq!(graph.profile(&token()).expect("old token").user_id, IG_USER);

    let call = &ig.calls_to("refresh_access_token")[0];
    assert_eq!(call.method, "GET");
    assert_eq!(call.params["grant_type"], json!("ig_refresh_token"));
    assert_eq!(call.params["access_token"], json!(IG_TOKEN));

    let error = graph
        .refresh_token(&Secret::new("IGAA-stranger"))
        .unwrap_err();
    assert!(error.is_token_problem(), "{error}");
}

#[test]
fn oauth_exchange_in_the_data_shape() {
    let (ig, graph) = fake();
    let app_secret = Secret::new(APP_SECRET);
    ig.expect_code("AQB-code-1");

    // Instagram appends "#_" to the redirect URL; the client strips it.
    let short = graph
        .exchange_code(APP_ID, &app_secret, REDIRECT_URI, "AQB-code-1#_")
        .expect("code exchange");
    assert_eq!(short.user_id, IG_USER);
    assert_eq!(
        short.permissions,
        [
            "instagram_business_basic",
            "instagram_business_content_publish",
            "instagram_business_manage_insights"
        ]
    );
    let call = &ig.calls_to("/oauth/access_token")[0];
    assert_eq!(call.method, "POST");
    assert!(
        call.query_keys.is_empty(),
        "secrets in the URL: {:?}",
        call.query_keys
    );
    for (name, value) in [
        ("client_id", APP_ID),
        ("client_secret", APP_SECRET),
        ("grant_type", "authorization_code"),
        ("redirect_uri", REDIRECT_URI),
        ("code", "AQB-code-1"),
    ] {
        assert_eq!(call.params[name], json!(value), "{name}");
    }

    let (long, expires_in) = graph
        .long_lived_token(&app_secret, &short.token)
        .expect("long-lived token");
    assert_eq!(long.expose(), IG_TOKEN);
    assert_eq!(expires_in, 5_184_000);
    let call = ig
        .calls()
        .into_iter()
        .rfind(|c| c.path == "/access_token")
        .unwrap();
    assert_eq!(call.params["grant_type"], json!("ig_exchange_token"));
    assert_eq!(call.params["client_secret"], json!(APP_SECRET));
    assert_eq!(call.params["access_token"], json!(short.token.expose()));

    assert_eq!(
        graph.profile(&long).expect("profile"),
        Profile {
            user_id: IG_USER.into(),
            username: USERNAME.into()
        }
    );
    assert_eq!(
        ig.calls_to("/me")[0].params["fields"],
        json!("user_id,username")
    );

    // The code works once; the short token is no long-lived token.
    let error = graph
        .exchange_code(APP_ID, &app_secret, REDIRECT_URI, "AQB-code-1")
        .expect_err("a used code");
    assert_eq!(api_code(&error), (400, Some(400), None));
    assert_eq!(
        error.plain_words(),
        "Instagram refused the request: Matching code was not found or was already used."
    );
    assert!(graph.profile(&short.token).unwrap_err().is_token_problem());
    let error = graph
        .long_lived_token(&app_secret, &Secret::new("short-forged"))
        .unwrap_err();
    assert!(error.is_token_problem(), "{error}");
}

#[test]
fn oauth_exchange_in_the_flat_shape() {
    let (ig, graph) = fake();
    ig.oauth_answers_flat(true);

    // The fake really answers flat, with a numeric user_id and a list of permissions.
    ig.expect_code("AQB-raw");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let raw: Value = agent
        .post(format!("{}/oauth/access_token", ig.url()))
        .send_form([
            ("client_id", APP_ID),
            ("client_secret", APP_SECRET),
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT_URI),
            ("code", "AQB-raw"),
        ])
        .expect("raw exchange")
        .body_mut()
        .read_json()
        .expect("JSON");
    assert!(raw.get("data").is_none(), "{raw}");
    assert_eq!(raw["user_id"], json!(17_841_400_000_000_042_u64));
    assert!(raw["permissions"].is_array(), "{raw}");

    ig.expect_code("AQB-flat");
    let short = graph
        .exchange_code(APP_ID, &Secret::new(APP_SECRET), REDIRECT_URI, "AQB-flat")
        .expect("code exchange");
    assert_eq!(short.user_id, IG_USER);
    assert_eq!(short.permissions.len(), 3);
    assert_eq!(short.has_insights_permission(), Some(true));
    let (long, _) = graph
        .long_lived_token(&Secret::new(APP_SECRET), &short.token)
        .expect("long-lived token");
    assert_eq!(long.expose(), IG_TOKEN);
}

#[test]
fn no_error_text_holds_a_secret() {
    let (ig, graph) = fake();
    // Characters that a URL percent-encodes, so an encoded copy would be caught too.
    let token = Secret::new("IGAA|SECRET/tok+en=1");
    let app_secret = Secret::new("app|SECRET");
    let code = "AQB-SECRET-code";
    let dead = dead_url();
    let unreachable = Graph::new(&dead, &dead);
    let impatient = Graph::with_timeout(&ig.url(), &ig.url(), Duration::from_millis(200));
    let media = StoryMedia::Image(format!("{}/x.jpg", ig.url()));

    let mut errors = vec![
        graph.publishing_limit(IG_USER, &token).unwrap_err(),
        graph
            .create_story_container(IG_USER, &token, &media)
            .unwrap_err(),
        graph.container_status("1790", &token).unwrap_err(),
        graph.publish(IG_USER, &token, "1790").unwrap_err(),
        graph.refresh_token(&token).unwrap_err(),
        graph.profile(&token).unwrap_err(),
        graph
            .exchange_code(APP_ID, &app_secret, REDIRECT_URI, code)
            .unwrap_err(),
        graph.long_lived_token(&app_secret, &token).unwrap_err(),
        graph.story_insights("1791", &token).unwrap_err(),
        graph.live_stories(IG_USER, &token).unwrap_err(),
        unreachable.profile(&token).unwrap_err(),
        unreachable.story_insights("1791", &token).unwrap_err(),
        unreachable.live_stories(IG_USER, &token).unwrap_err(),
        unreachable
            .exchange_code(APP_ID, &app_secret, REDIRECT_URI, code)
            .unwrap_err(),
    ];
    ig.fail_next("*", 1, IgFault::Garbage);
    errors.push(graph.refresh_token(&token).unwrap_err());
    ig.fail_next("*", 1, IgFault::Status(503));
    errors.push(graph.profile(&token).unwrap_err());
    // Should Instagram ever quote a token in an error, the client removes it.
    ig.fail_next(
        "*",
        1,
        IgFault::Api {
            http_status: 400,
            code: 100,
            subcode: None,
            message: format!(
                "Bad token {} (sent as {})",
                token.expose(),
                "IGAA%7CSECRET%2Ftok%2Ben%3D1"
            ),
        },
    );
    let echoed = graph.publish(IG_USER, &token, "1790").unwrap_err();
    assert!(echoed.to_string().contains("<redacted>"), "{echoed}");
    errors.push(echoed);
    ig.fail_next("*", 1, IgFault::Slow(Duration::from_secs(3)));
    errors.push(impatient.profile(&token).unwrap_err());

    for error in &errors {
        for text in [error.to_string(), format!("{error:?}"), error.plain_words()] {
            for secret in ["SECRET", "tok%2Ben", "tok+en"] {
                assert!(!text.contains(secret), "{secret} in {text:?}");
            }
        }
    }
}

#[test]
fn wait_for_lists_the_calls_when_it_times_out() {
    let (ig, graph) = fake();
    graph.profile(&token()).expect("profile");
    let (index, call) = ig.wait_for(0, Duration::from_secs(5), |call| {
        call.path == "/v26.0/me" && call.status == Some(200)
    });
    assert_eq!((index, call.method.as_str()), (0, "GET"));

    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        ig.wait_for(0, Duration::from_millis(50), |call| {
            call.path.ends_with("media_publish")
        })
    }));
    let panic = outcome.expect_err("nothing was published");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("#0 GET /v26.0/me (200)"), "{message}");
}

// ---- story insights and live stories ----

/// Publishes a story through the client as the daemon does; returns its media id.
fn publish_story(graph: &Graph, media: &StoryMedia) -> String {
    let container_id = graph
        .create_story_container(IG_USER, &token(), media)
        .expect("container");
    assert_eq!(status_of(graph, &container_id).code, StatusCode::Finished);
    graph
        .publish(IG_USER, &token(), &container_id)
        .expect("publish")
}

/// What the client should read from the fake's numbers.
fn read_as(numbers: &FakeStoryNumbers) -> StoryInsights {
    StoryInsights::Numbers(StoryNumbers {
        views: Some(numbers.views),
        reach: Some(numbers.reach),
        replies: Some(numbers.replies),
        shares: Some(numbers.shares),
        total_interactions: Some(numbers.total_interactions),
        follows: Some(numbers.follows),
        profile_visits: Some(numbers.profile_visits),
        navigation: Navigation {
            total: Some(numbers.navigation()),
            tap_forward: Some(numbers.tap_forward),
            tap_back: Some(numbers.tap_back),
            tap_exit: Some(numbers.tap_exit),
            swipe_forward: Some(numbers.swipe_forward),
        },
    })
}

/// A raw GET on the fake, for answers the client would not ask for.
fn raw_get(ig: &FakeInstagram, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.get(format!("{}{path}", ig.url()));
    for (name, value) in query {
        request = request.query(*name, *value);
    }
    let mut response = request.call().expect("an answer");
    let status = response.status().as_u16();
    (status, response.body_mut().read_json().expect("JSON"))
}

fn error_of(answer: &(u16, Value)) -> (u16, i64, String) {
    let (status, body) = answer;
    let error = &body["error"];
    (
        *status,
        error["code"].as_i64().unwrap_or_default(),
        error["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn a_published_story_has_the_fakes_predictable_insights() {
    let (ig, graph) = fake();
    let media = MediaServer::start();
    let media_id = publish_story(&graph, &StoryMedia::Image(media.url("/story.jpg")));

    let expected = FakeStoryNumbers::for_media(&media_id);
    assert!(
        expected.reach >= 50 && expected.views >= expected.reach,
        "{expected:?}"
    );
    assert!(expected.navigation() <= expected.views, "{expected:?}");
    assert_eq!(
        graph.story_insights(&media_id, &token()).expect("insights"),
        read_as(&expected)
    );

    // Two calls: the plain metrics, then navigation with its breakdown; the token in
    // the query string of a GET, the pinned version in the path.
    let calls = ig.calls_to("/insights");
    assert_eq!(calls.len(), 2, "{calls:?}");
    for call in &calls {
        assert_eq!(call.method, "GET");
        assert_eq!(call.path, format!("/v26.0/{media_id}/insights"));
        assert_eq!(call.params["access_token"], json!(IG_TOKEN));
        assert_eq!(call.status, Some(200));
        assert!(call.params.get("period").is_none());
    }
    assert_eq!(
        calls[0].params["metric"],
        json!("views,reach,replies,shares,total_interactions,follows,profile_visits")
    );
    assert!(calls[0].params.get("breakdown").is_none());
    assert_eq!(calls[1].params["metric"], json!("navigation"));
    assert_eq!(
        calls[1].params["breakdown"],
        json!("story_navigation_action_type")
    );

    // The navigation answer, field by field, as the reference's sample shows it.
    let (status, body) = raw_get(
        &ig,
        &format!("/v26.0/{media_id}/insights"),
        &[
            ("metric", "navigation"),
            ("breakdown", "story_navigation_action_type"),
            ("access_token", IG_TOKEN),
        ],
    );
    assert_eq!(status, 200);
    let entry = &body["data"][0];
    assert_eq!(entry["name"], json!("navigation"));
    assert_eq!(entry["period"], json!("lifetime"));
    assert_eq!(entry["values"][0]["value"], json!(expected.navigation()));
    assert_eq!(entry["total_value"]["value"], json!(expected.navigation()));
    assert_eq!(
        entry["id"],
        json!(format!("{media_id}/insights/navigation/lifetime"))
    );
    let breakdown = &entry["total_value"]["breakdowns"][0];
    assert_eq!(
        breakdown["dimension_keys"],
        json!(["story_navigation_action_type"])
    );
    assert_eq!(
        breakdown["results"][2],
        json!({"dimension_values": ["tap_exit"], "value": expected.tap_exit})
    );
}

#[test]
fn insights_answers_are_scripted_per_story() {
    let (ig, graph) = fake();
    let media = MediaServer::start();
    let stories: Vec<String> = (0..5)
        .map(|_| publish_story(&graph, &StoryMedia::Image(media.url("/story.jpg"))))
        .collect();
    let own = FakeStoryNumbers {
        views: 10,
        reach: 9,
        replies: 1,
        shares: 0,
        total_interactions: 1,
        follows: 0,
        profile_visits: 2,
        tap_forward: 5,
        tap_back: 0,
        tap_exit: 3,
        swipe_forward: 1,
    };
    ig.set_insights(&stories[0], IgInsights::Numbers(own));
    ig.set_insights(&stories[1], IgInsights::NotEnoughViewers);
    ig.set_insights(&stories[2], IgInsights::Empty);
    ig.set_insights(&stories[3], IgInsights::MissingPermission);

    let read = |media_id: &str| graph.story_insights(media_id, &token());
    assert_eq!(read(&stories[0]), Ok(read_as(&own)));
    assert_eq!(read(&stories[1]), Ok(StoryInsights::NotEnoughViewers));
    assert_eq!(read(&stories[2]), Ok(StoryInsights::NoData));
    let error = read(&stories[3]).expect_err("no permission");
    assert!(
        error.is_missing_permission() && !error.is_not_enough_viewers(),
        "{error}"
    );
    assert_eq!(api_code(&error), (400, Some(10), None));
    assert_eq!(error.action(Call::Other), ErrorAction::GiveUp);
    // The others are untouched.
    assert_eq!(
        read(&stories[4]),
        Ok(read_as(&FakeStoryNumbers::for_media(&stories[4])))
    );
    // #10 and an empty answer end the read after one call.
    let per_story = |media_id: &str| ig.calls_to(&format!("/{media_id}/insights")).len();
    assert_eq!(
        stories.iter().map(|id| per_story(id)).collect::<Vec<_>>(),
        [2, 1, 1, 1, 2]
    );

    // The raw #10, as Instagram words it.
    let (status, code, message) = error_of(&raw_get(
        &ig,
        &format!("/v26.0/{}/insights", stories[1]),
        &[("metric", "reach"), ("access_token", IG_TOKEN)],
    ));
    assert_eq!(
        (status, code, message.as_str()),
        (
            400,
            10,
            "(#10) Not enough viewers for the media to show insights"
        )
    );
}

#[test]
fn a_failed_navigation_call_costs_the_numbers_only_when_retrying_may_help() {
    let (ig, graph) = fake();
    let media = MediaServer::start();
    let media_id = publish_story(&graph, &StoryMedia::Image(media.url("/story.jpg")));
    let expected = FakeStoryNumbers::for_media(&media_id);
    let without_navigation = match read_as(&expected) {
        StoryInsights::Numbers(numbers) => StoryInsights::Numbers(StoryNumbers {
            navigation: Navigation::default(),
            ..numbers
        }),
        other => other,
    };
    // `Slow(0)` lets the first call through, so the fault meets the second.
    let on_navigation = |fault: IgFault| {
        ig.fail_next("/insights", 1, IgFault::Slow(Duration::ZERO));
        ig.fail_next("/insights", 1, fault);
    };

    on_navigation(IgFault::Api {
        http_status: 400,
        code: 100,
        subcode: None,
        message: "(#100) Incompatible breakdown".into(),
    });
    assert_eq!(
        graph.story_insights(&media_id, &token()),
        Ok(without_navigation)
    );

    on_navigation(IgFault::Api {
        http_status: 400,
        code: 10,
        subcode: None,
        message: "(#10) Not enough viewers for the media to show insights".into(),
    });
    assert_eq!(
        graph.story_insights(&media_id, &token()),
        Ok(without_navigation)
    );

    on_navigation(IgFault::Status(503));
    let error = graph.story_insights(&media_id, &token()).unwrap_err();
    assert_eq!(error.action(Call::Other), ErrorAction::Retry, "{error}");

    on_navigation(IgFault::TokenError);
    assert!(graph
        .story_insights(&media_id, &token())
        .unwrap_err()
        .is_token_problem());

    // A failed first call is the read's error.
    ig.fail_next("/insights", 1, IgFault::Garbage);
    assert!(matches!(
        graph.story_insights(&media_id, &token()),
        Err(GraphError::Garbage(_))
    ));
    assert_eq!(
        graph.story_insights(&media_id, &token()),
        Ok(read_as(&expected))
    );
}

#[test]
fn an_account_connected_without_the_insights_permission() {
    let (ig, graph) = fake();
    let media = MediaServer::start();
    let app_secret = Secret::new(APP_SECRET);
    let media_id = publish_story(&graph, &StoryMedia::Image(media.url("/story.jpg")));

    ig.expect_code("AQB-granted");
    let login = graph
        .exchange_code(APP_ID, &app_secret, REDIRECT_URI, "AQB-granted")
        .expect("code exchange");
    assert_eq!(login.has_insights_permission(), Some(true));

    ig.deny_insights_permission(IG_USER);
    for flat in [false, true] {
        ig.oauth_answers_flat(flat);
        ig.expect_code("AQB-declined");
        let login = graph
            .exchange_code(APP_ID, &app_secret, REDIRECT_URI, "AQB-declined")
            .expect("code exchange");
        assert_eq!(login.has_insights_permission(), Some(false), "flat: {flat}");
        assert_eq!(
            login.permissions,
            [
                "instagram_business_basic",
                "instagram_business_content_publish"
            ]
        );
    }
    let error = graph
        .story_insights(&media_id, &token())
        .expect_err("no permission");
    assert!(error.is_missing_permission(), "{error}");
    assert!(!error.is_token_problem(), "{error}");
    // Publishing and listing stories need no insights permission.
    assert_eq!(
        graph
            .live_stories(IG_USER, &token())
            .expect("stories")
            .len(),
        1
    );

    ig.grant_insights_permission(IG_USER);
    assert!(matches!(
        graph.story_insights(&media_id, &token()),
        Ok(StoryInsights::Numbers(_))
    ));
}

#[test]
fn the_fake_refuses_insights_calls_as_instagram_does() {
    let (ig, graph) = fake();
    let media = MediaServer::start();
    let media_id = publish_story(&graph, &StoryMedia::Image(media.url("/story.jpg")));
    let path = format!("/v26.0/{media_id}/insights");
    let call = |query: &[(&str, &str)]| error_of(&raw_get(&ig, &path, query));
    let t = ("access_token", IG_TOKEN);

    /// (query, HTTP status, code, words in the message)
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, i64, &'a str);
    let cases: Vec<Case> = vec![
        (vec![t], 400, 100, "metric is required"),
        (
            vec![("metric", "reach,frobs"), t],
            400,
            100,
            "metric[1] must be one of",
        ),
        (
            vec![("metric", "impressions"), t],
            400,
            100,
            "views metric instead",
        ),
        (
            vec![("metric", "likes"), t],
            400,
            100,
            "does not support the likes metric",
        ),
        (
            vec![("metric", "navigation"), t],
            400,
            100,
            "breakdown=story_navigation_action_type",
        ),
        (
            vec![
                ("metric", "views,navigation"),
                ("breakdown", "story_navigation_action_type"),
                t,
            ],
            500,
            1,
            "unknown error",
        ),
        (
            vec![("metric", "navigation"), ("breakdown", "action_type"), t],
            500,
            1,
            "unknown error",
        ),
        (
            vec![("metric", "reach"), ("period", "day"), t],
            400,
            100,
            "lifetime",
        ),
        (
            vec![("metric", "reach"), ("access_token", "IGAA-stranger")],
            400,
            190,
            "access token",
        ),
    ];
    for (query, status, code, words) in cases {
        let (got_status, got_code, message) = call(&query);
        assert_eq!(
            (got_status, got_code),
            (status, code),
            "{query:?}: {message}"
        );
        assert!(message.contains(words), "{query:?}: {message}");
    }
    let (status, body) = raw_get(
        &ig,
        &path,
        &[
            ("metric", "reach,profile_visits"),
            ("period", "lifetime"),
            t,
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2));

    // Only the token's own stories have insights.
    let error = graph.story_insights("1791999", &token()).unwrap_err();
    assert_eq!(api_code(&error), (400, Some(100), Some(33)));
    ig.set_token("IGAA-other", "17841400000000099", "other_shop");
    let error = graph
        .story_insights(&media_id, &Secret::new("IGAA-other"))
        .unwrap_err();
    assert_eq!(api_code(&error), (400, Some(100), Some(33)));
    assert!(!error.is_missing_permission());
}

#[test]
fn live_stories_are_those_of_the_last_day_published_or_posted_by_hand() {
    let (ig, graph) = fake();
    let media = MediaServer::start();
    let now = ig.now();
    let by_hand = ig.post_story_by_hand(IG_USER, now - Span::hours(2), "VIDEO");
    let expired = ig.post_story_by_hand(IG_USER, now - Span::hours(25), "IMAGE");
    let published = publish_story(&graph, &StoryMedia::Image(media.url("/story.jpg")));
    ig.set_token("IGAA-other", "17841400000000099", "other_shop");
    ig.post_story_by_hand("17841400000000099", now, "IMAGE");

    let recorded = ig.stories();
    let published_at = recorded
        .iter()
        .find(|story| story.media_id == published)
        .map(|story| story.timestamp)
        .expect("the published story is recorded");
    assert!(
        !recorded
            .iter()
            .find(|s| s.media_id == published)
            .unwrap()
            .by_hand
    );
    let seconds = |at: DateTime<Utc>| at.duration_trunc(Span::seconds(1)).expect("whole seconds");
    assert_eq!(
        graph.live_stories(IG_USER, &token()).expect("stories"),
        [
            LiveStory {
                id: published,
                timestamp: seconds(published_at),
                media_type: MediaType::Image,
            },
            LiveStory {
                id: by_hand.clone(),
                timestamp: seconds(now - Span::hours(2)),
                media_type: MediaType::Video,
            },
        ]
    );
    let call = &ig.calls_to("/stories")[0];
    assert_eq!(call.path, format!("/v26.0/{IG_USER}/stories"));
    assert_eq!(call.params["fields"], json!("id,timestamp,media_type"));
    assert!(call.params.get("after").is_none());

    // The timestamp as Instagram writes it, with a "+0000" offset.
    let (_, body) = raw_get(
        &ig,
        &format!("/v26.0/{IG_USER}/stories"),
        &[("fields", "id,timestamp"), ("access_token", IG_TOKEN)],
    );
    let timestamp = body["data"][1]["timestamp"].as_str().unwrap_or_default();
    assert!(timestamp.ends_with("+0000"), "{body}");
    assert!(
        body.get("paging").is_some_and(|p| p.get("next").is_none()),
        "{body}"
    );

    // An expired story has no insights left: the empty data set.
    assert_eq!(
        graph.story_insights(&expired, &token()),
        Ok(StoryInsights::NoData)
    );
    assert!(matches!(
        graph.story_insights(&by_hand, &token()),
        Ok(StoryInsights::Numbers(_))
    ));
    // Another account's path is refused, an unknown field too.
    let error = graph
        .live_stories("17841400000000099", &token())
        .unwrap_err();
    assert_eq!(api_code(&error), (400, Some(100), Some(33)));
    let (status, code, message) = error_of(&raw_get(
        &ig,
        &format!("/v26.0/{IG_USER}/stories"),
        &[("fields", "id,impressions"), ("access_token", IG_TOKEN)],
    ));
    assert_eq!((status, code), (400, 100), "{message}");
}

#[test]
fn live_stories_follow_the_cursor_for_a_few_pages() {
    let (ig, graph) = fake();
    let now = ig.now();
    ig.stories_page_size(2);
    let posted: Vec<String> = (0..5)
        .map(|minutes| ig.post_story_by_hand(IG_USER, now - Span::minutes(minutes), "IMAGE"))
        .collect();
    let ids: Vec<String> = graph
        .live_stories(IG_USER, &token())
        .expect("stories")
        .into_iter()
        .map(|story| story.id)
        .collect();
    assert_eq!(ids, posted, "newest first, every page");
    let calls = ig.calls_to("/stories");
    assert_eq!(calls.len(), 3);
    // The cursor of the answer before, never its `next` address (which holds the token).
    assert!(calls[0].params.get("after").is_none());
    assert_eq!(calls[1].params["after"], json!("QVFIU00000002"));
    assert_eq!(calls[2].params["after"], json!("QVFIU00000004"));
    let (_, first_page) = raw_get(
        &ig,
        &format!("/v26.0/{IG_USER}/stories"),
        &[("fields", "id"), ("access_token", IG_TOKEN)],
    );
    let next = first_page["paging"]["next"].as_str().unwrap_or_default();
    assert!(
        next.starts_with(&format!("{}/v26.0/{IG_USER}/stories?", ig.url()))
            && next.contains("after=QVFIU00000002"),
        "{first_page}"
    );

    // At most four pages: a longer list is cut, and no fifth call is made.
    for minutes in 5..12 {
        ig.post_story_by_hand(IG_USER, now - Span::minutes(minutes), "IMAGE");
    }
    let from = ig.calls_to("/stories").len();
    assert_eq!(
        graph
            .live_stories(IG_USER, &token())
            .expect("stories")
            .len(),
        8
    );
    assert_eq!(ig.calls_to("/stories").len() - from, 4);

    // An account without stories has an empty list.
    ig.set_token("IGAA-other", "17841400000000099", "other_shop");
    assert_eq!(
        graph
            .live_stories("17841400000000099", &Secret::new("IGAA-other"))
            .expect("stories"),
        []
    );
}

#[test]
fn the_fake_keeps_the_daemons_test_clock() {
    let (ig, graph) = fake();
    let media = MediaServer::start();
    let anchor = Utc::now().timestamp_millis();
    ig.use_test_clock(&format!("2030-01-01T00:00:00Z,{anchor},1"));
    let start = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .expect("a time")
        .with_timezone(&Utc);
    assert!(
        ig.now() >= start && ig.now() < start + Span::minutes(5),
        "{}",
        ig.now()
    );

    let published = publish_story(&graph, &StoryMedia::Video(media.url("/story.mp4")));
    let yesterday_evening = ig.post_story_by_hand(IG_USER, start - Span::hours(6), "IMAGE");
    ig.post_story_by_hand(IG_USER, start - Span::hours(30), "IMAGE");
    let live = graph.live_stories(IG_USER, &token()).expect("stories");
    assert_eq!(
        live.iter()
            .map(|story| story.id.as_str())
            .collect::<Vec<_>>(),
        [published.as_str(), yesterday_evening.as_str()]
    );
    assert!(live[0].timestamp >= start && live[0].timestamp < start + Span::minutes(5));
    assert_eq!(live[0].media_type, MediaType::Video);
}
