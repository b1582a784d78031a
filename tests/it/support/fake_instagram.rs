//! A fake of Instagram for the integration tests: both hosts of the Instagram API with
//! Instagram Login (graph.instagram.com and api.instagram.com's OAuth token endpoint)
//! on one local server, so one URL serves as both `graph_url` and `api_url`.
//!
//! It behaves like the real service where Storyline depends on it: a story container
//! makes it download the media from the URL it was given (so the daemon's signed media
//! links are really fetched), containers report IN_PROGRESS for a scripted number of
//! polls, publishing too early is error 9007, the quota counts what was published, and
//! a token it did not issue is error 190. Errors copy the real shapes and codes, because
//! the client branches on them; `MetaError` holds every row of Meta's content-publishing
//! error table, answered as Instagram answers it. It records every call and can inject
//! failures.
//!
//! Paths may carry a Graph API version (`/v26.0/me`), as on the real hosts; `calls()`
//! keeps the path as requested, so tests can check which calls carry one.
//!
//! Stories have insights (`GET /{media-id}/insights`) and are listed for 24 hours
//! (`GET /{ig-user-id}/stories`): those published through `media_publish`, at the time
//! the fake's clock showed then (the wall clock, or the daemon's test clock after
//! `use_test_clock`), and those a test says a person posted by hand
//! (`post_story_by_hand`). Insights are plausible numbers derived from the media id
//! (`FakeStoryNumbers::for_media`) unless `set_insights` scripts an answer: other
//! numbers, error #10 "not enough viewers", an empty data set, or a missing permission;
//! `deny_insights_permission` takes `instagram_business_manage_insights` from an
//! account. The fake refuses metrics a story does not have, `impressions`, a breakdown
//! on a metric without one, and `navigation` without its breakdown, as the reference
//! says Instagram does (the last one is the fake being stricter than documented).
//!
//! State lives behind one mutex with a condvar notified on every change, so `wait_for`
//! wakes as soon as a call arrives instead of sleeping.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use super::fake_http::{self, parse_urlencoded, FakeServer};
use chrono::{DateTime, Duration as Span, Utc};
use serde_json::{json, Map, Value};
use storyline::clock::TestClock;

/// Enough workers that a slow answer or a media download never blocks other calls.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Instagram takes videos up to 100 MB; a little more than that is read.
const MAX_FETCH_BYTES: u64 = 128 * 1024 * 1024;
const LONG_LIVED_SECS: i64 = 5_184_000;
const GARBAGE_BODY: &str = "{\"id\":tru<<<not json";
const SCOPES: [&str; 3] = [
    "instagram_business_basic",
    "instagram_business_content_publish",
    INSIGHTS_PERMISSION,
];
const INSIGHTS_PERMISSION: &str = "instagram_business_manage_insights";
/// A story is listed, and has insights, for this long after it was posted.
const STORY_LIFETIME_HOURS: i64 = 24;
/// `/stories` pages hold this many stories unless the request or the test says
/// otherwise (the Graph API's usual default).
const DEFAULT_PAGE_SIZE: usize = 25;
const NOT_ENOUGH_VIEWERS: &str = "(#10) Not enough viewers for the media to show insights";
const NO_PERMISSION: &str = "(#10) Application does not have permission for this action";
/// The metrics a story has, and the breakdown each needs (the reference's story table).
const STORY_METRICS: &[(&str, Option<&str>)] = &[
    ("views", None),
    ("reach", None),
    ("replies", None),
    ("shares", None),
    ("total_interactions", None),
    ("follows", None),
    ("profile_visits", None),
    ("navigation", Some("story_navigation_action_type")),
    ("profile_activity", Some("action_type")),
];
/// Metrics of posts and reels, which a story does not have.
const NOT_STORY_METRICS: &[&str] = &[
    "likes",
    "comments",
    "saved",
    "plays",
    "clips_replays_count",
    "ig_reels_aggregated_all_plays_count",
    "ig_reels_avg_watch_time",
    "ig_reels_video_view_total_time",
    "reels_skip_rate",
];

/// One HTTP request the fake received.
#[derive(Clone, Debug)]
pub struct IgCall {
    pub method: String,
    /// The path as requested, without the query string.
    pub path: String,
    /// Query string and form (or JSON) body merged into one object of strings.
    pub params: Value,
    /// Which of `params` came in the query string (a token in a POST's URL is a leak).
    pub query_keys: Vec<String>,
    pub at: Instant,
    /// The HTTP status the fake answered with; `None` while it is still being answered.
    pub status: Option<u16>,
}

/// A failure the fake injects instead of answering normally.
#[derive(Clone, Debug)]
pub enum IgFault {
    /// This HTTP status with an HTML body, as a front end answers when the API is down.
    Status(u16),
    /// Error 190, subcode 463: the token has expired.
    TokenError,
    /// Waits this long, then answers normally.
    Slow(Duration),
    /// 200 with a body that is not JSON.
    Garbage,
    /// Any Graph-shaped error, e.g. code 4 (rate limit).
    Api {
        http_status: u16,
        code: i64,
        subcode: Option<i64>,
        message: String,
    },
    /// A row of Meta's content-publishing error table (`MetaError::row`).
    Meta(MetaError),
}

/// A row of Meta's content-publishing error table ("Error Codes", Instagram Platform
/// reference), answered as Instagram does: HTTP 400 with `{"error": {"message", "type":
/// "OAuthException", "code", "error_subcode", "is_transient", "error_user_title",
/// "error_user_msg", "fbtrace_id"}}`. The user messages follow the table (for the rows
/// the stored reference did not show legibly, as copies of the table quote them); the
/// developer messages, titles and `is_transient` values are the fake's own guesses, since
/// the table does not list them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaError {
    pub code: i64,
    pub subcode: i64,
    pub message: &'static str,
    pub user_title: &'static str,
    pub user_message: &'static str,
    pub transient: bool,
}

impl MetaError {
    /// Every row the fake knows.
    pub fn all() -> &'static [MetaError] {
        META_ERRORS
    }

    /// The row `code`/`subcode`; a row the fake does not know is a mistake in the test.
    pub fn row(code: i64, subcode: i64) -> MetaError {
        *META_ERRORS
            .iter()
            .find(|row| row.code == code && row.subcode == subcode)
            .unwrap_or_else(|| panic!("the fake knows no error row {code}/{subcode}"))
    }
}

const fn meta(
    code: i64,
    subcode: i64,
    message: &'static str,
    user_title: &'static str,
    user_message: &'static str,
    transient: bool,
) -> MetaError {
    MetaError {
        code,
        subcode,
        message,
        user_title,
        user_message,
        transient,
    }
}

#[rustfmt::skip]
const META_ERRORS: &[MetaError] = &[
    meta(-2, 2_207_003, "Timeout", "Media download timed out",
        "It takes too long to download the media.", true),
    meta(-2, 2_207_020, "Media expired", "Media expired",
        "The media you are trying to access has expired. Please try to upload again.", false),
    meta(-1, 2_207_001, "An unexpected error has occurred. Please retry your request later.",
        "Server error", "Instagram server error. Try again.", true),
    meta(-1, 2_207_032, "Create media fail", "Media creation failed",
        "Create media fail, please try to re-create media", true),
    meta(-1, 2_207_053, "Unknown upload error", "Upload failed", "unknown upload error", false),
    meta(1, 2_207_057, "Invalid parameter", "Thumbnail offset out of bounds",
        "Thumbnail offset must be greater than or equal to 0 and less than video duration, i.e. {video-length}", false),
    // Code 4 is the rate-limit code, and its developer message reads like one: only the
    // subcode says this is an anti-spam block.
    meta(4, 2_207_051, "Application request limit reached", "Action is blocked",
        "We restrict certain activity to protect our community. Tell us if you think we made a mistake.", false),
    meta(9, 2_207_042, "Application request limit reached", "Publishing limit reached",
        "You reached maximum number of posts that is allowed to be published by Content Publishing API.", false),
    meta(24, 2_207_006, "Media not found", "Media not found",
        "The media with {media-id} cannot be found.", false),
    meta(24, 2_207_008, "Media builder expired", "Media builder expired",
        "The media builder with creation id = {creation-id} does not exist or has been expired.", true),
    meta(25, 2_207_050, "The user is restricted", "Account restricted",
        "The Instagram account is restricted.", false),
    meta(100, 2_207_023, "Invalid parameter", "Unknown media type",
        "The media type {media-type} is unknown.", false),
    meta(100, 2_207_028, "Invalid parameter", "Carousel size",
        "Your post won't be published because of the number of photos or videos. Carousels need at least 2 photos or videos and no more than 10 photos or videos.", false),
    meta(100, 2_207_035, "Invalid parameter", "Product tag positions",
        "Product tag positions should not be specified for video media.", false),
    meta(100, 2_207_036, "Invalid parameter", "Product tag positions",
        "Product tag positions are required for photo media.", false),
    meta(100, 2_207_037, "Invalid parameter", "Product tags",
        "We couldn't add all of your product tags. The product ID may be incorrect, the product may be deleted, or you may not have permission to tag the product.", false),
    meta(100, 2_207_040, "Invalid parameter", "Too many tags",
        "Cannot use more than {max-tag-count} tags per created media.", false),
    meta(352, 2_207_026, "Unsupported video format", "Unsupported video format",
        "The video format is not supported. Please check spec for supported {video} format", false),
    meta(9004, 2_207_052, "Only photo or video can be accepted as media type.",
        "Media download has failed.", "The media could not be fetched from this uri: {uri}", false),
    meta(9007, 2_207_027, "Media ID is not available", "Media not ready",
        "The media is not ready for publishing, please wait for a moment", false),
    meta(36000, 2_207_004, "The image size is too large.", "Image size too large",
        "The image is too large to download. It should be less than 8 MiB.", false),
    meta(36001, 2_207_005, "The image format is not supported.", "Image format not supported",
        "The image format is not supported. Supported formats are: JPEG", false),
    meta(36003, 2_207_009, "The aspect ratio is not supported.", "Invalid aspect ratio",
        "The submitted image with aspect ratio ('{submitted-ratio}') cannot be published. Please submit an image with a valid aspect ratio.", false),
    meta(36004, 2_207_010, "The caption is too long.", "Caption too long",
        "The caption was too long.", false),
];

/// What the fake answers to `GET /{media-id}/insights` for one story (`set_insights`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgInsights {
    /// These numbers.
    Numbers(FakeStoryNumbers),
    /// Error #10 "Not enough viewers for the media to show insights".
    NotEnoughViewers,
    /// `{"data": []}`: no numbers (yet).
    Empty,
    /// Error #10 "Application does not have permission for this action".
    MissingPermission,
}

/// A story's numbers as the fake reports them; `navigation` is the sum of the four
/// actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FakeStoryNumbers {
    pub views: u64,
    pub reach: u64,
    pub replies: u64,
    pub shares: u64,
    pub total_interactions: u64,
    pub follows: u64,
    pub profile_visits: u64,
    pub tap_forward: u64,
    pub tap_back: u64,
    pub tap_exit: u64,
    pub swipe_forward: u64,
}

impl FakeStoryNumbers {
    /// The fake's numbers for a story it was not told otherwise about: derived from
    /// the media id alone, so a test can predict them, and plausible (reach 50–999,
    /// views at least the reach, navigation within the views, at least 5 of each
    /// nonzero so Instagram would show them).
    pub fn for_media(media_id: &str) -> FakeStoryNumbers {
        // FNV-1a: stable across runs and platforms, unlike the std hasher.
        let seed = media_id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            });
        let part = |shift: u32, modulo: u64| (seed >> shift) % modulo;
        let reach = 50 + part(0, 950);
        let views = reach + reach * part(10, 60) / 100;
        let replies = part(16, 8);
        let shares = part(20, 6);
        FakeStoryNumbers {
            views,
            reach,
            replies,
            shares,
            total_interactions: replies + shares,
            follows: part(24, 4),
            profile_visits: part(28, 30),
            tap_forward: views * (40 + part(32, 30)) / 100,
            tap_back: views * part(38, 8) / 100,
            tap_exit: views * (5 + part(44, 15)) / 100,
            swipe_forward: views * part(50, 10) / 100,
        }
    }

    /// The `navigation` metric: every action together.
    pub fn navigation(&self) -> u64 {
        self.tap_forward + self.tap_back + self.tap_exit + self.swipe_forward
    }

    fn metric(&self, name: &str) -> u64 {
        match name {
            "views" => self.views,
            "reach" => self.reach,
            "replies" => self.replies,
            "shares" => self.shares,
            "total_interactions" => self.total_interactions,
            "follows" => self.follows,
            "profile_visits" => self.profile_visits,
            "navigation" => self.navigation(),
            // Profile actions after the story: some of the profile visits.
            _ => self.profile_visits / 2,
        }
    }
}

/// A story on an account: published through the API or posted by hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeStory {
    pub media_id: String,
    pub ig_user_id: String,
    /// When it was posted, by the fake's clock.
    pub timestamp: DateTime<Utc>,
    /// IMAGE or VIDEO.
    pub media_type: String,
    pub by_hand: bool,
}

/// A story container as the fake holds it: whose, of which media URL, and the media
/// id once it was published.
#[derive(Clone, Debug)]
pub struct ContainerInfo {
    pub container_id: String,
    pub ig_user_id: String,
    /// The image_url or video_url the container was created with.
    pub media_url: String,
    pub media_id: Option<String>,
}

/// A media download the fake made for a container, as Instagram would.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub url: String,
    /// 0 when no answer came (refused, timed out).
    pub status: u16,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

pub struct FakeInstagram {
    core: FakeServer<State>,
    shared: Arc<Shared>,
}

type Shared = fake_http::Shared<State>;

#[derive(Default)]
struct State {
    calls: Vec<IgCall>,
    accounts: Vec<Account>,
    /// Short-lived token → the account it belongs to.
    short_tokens: HashMap<String, String>,
    /// The account the OAuth flow logs in: the one `set_token` named last.
    oauth_account: Option<String>,
    expected_code: Option<String>,
    oauth_answers_flat: bool,
    in_progress_polls: u32,
    next_container_end: Option<String>,
    publish_too_early: u32,
    quota_used: u32,
    quota_total: u32,
    containers: HashMap<String, Container>,
    fetched: Vec<Fetched>,
    published: Vec<String>,
    /// Every story posted, published or by hand, expired ones included.
    stories: Vec<FakeStory>,
    /// Scripted insights answers by media id.
    insights: HashMap<String, IgInsights>,
    /// The daemon's test clock, when a test shares it with the fake.
    clock: Option<TestClock>,
    /// `/stories` page size when the request names none; 0 means the default.
    page_size: usize,
    faults: VecDeque<(String, IgFault)>,
    next_id: u64,
}

struct Account {
    ig_user_id: String,
    username: String,
    /// Valid long-lived tokens; the first is the one `set_token` gave.
    tokens: Vec<String>,
    /// Whether the person allowed `instagram_business_manage_insights`.
    insights_granted: bool,
}

struct Container {
    ig_user_id: String,
    media_url: String,
    /// IMAGE or VIDEO, from the URL field it was created with.
    media_type: &'static str,
    media_id: Option<String>,
    polls_left: u32,
    /// FINISHED, ERROR or EXPIRED, once the IN_PROGRESS polls are over.
    end: &'static str,
    detail: String,
    published: bool,
}

type Answer = (u16, Value);

impl FakeInstagram {
    /// Starts the server on a free loopback port. No token is valid until `set_token`.
    pub fn start() -> FakeInstagram {
        let core = FakeServer::start(
            "instagram",
            State {
                quota_total: 25,
                ..State::default()
            },
            handle_request,
        );
        FakeInstagram {
            shared: Arc::clone(&core.shared),
            core,
        }
    }

    /// The base URL, for both `[instagram] graph_url` and `api_url`.
    pub fn url(&self) -> String {
        self.core.url.clone()
    }

    /// Every call, in arrival order, failed ones included.
    pub fn calls(&self) -> Vec<IgCall> {
        self.shared.lock().calls.clone()
    }

    /// The calls whose path ends with `path_suffix` ("media", "media_publish", "/me").
    pub fn calls_to(&self, path_suffix: &str) -> Vec<IgCall> {
        let state = self.shared.lock();
        state
            .calls
            .iter()
            .filter(|call| call.path.ends_with(path_suffix))
            .cloned()
            .collect()
    }

    /// Waits until `pred` matches a call at or after index `from` of `calls()`, and
    /// returns its index and a snapshot; panics after `timeout`, listing the calls. A
    /// call is recorded when it arrives; match on `status` to wait for its answer.
    pub fn wait_for(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&IgCall) -> bool,
    ) -> (usize, IgCall) {
        self.shared.wait_for(
            timeout,
            |state| {
                state
                    .calls
                    .iter()
                    .enumerate()
                    .skip(from)
                    .find(|(_, call)| pred(call))
                    .map(|(index, call)| (index, call.clone()))
            },
            |state| {
                format!(
                    "FakeInstagram::wait_for: no matching call at or after #{from} within \
                     {timeout:?}; recorded calls: {}",
                    summarize_calls(&state.calls)
                )
            },
        )
    }

    /// Makes `token` the valid long-lived token of the account `ig_user_id` (replacing
    /// its earlier tokens, refreshed ones included); the OAuth flow logs this account in.
    pub fn set_token(&self, token: &str, ig_user_id: &str, username: &str) {
        let mut state = self.shared.lock();
        state.accounts.retain(|account| {
            account.ig_user_id != ig_user_id && !account.tokens.iter().any(|t| t == token)
        });
        state.accounts.push(Account {
            ig_user_id: ig_user_id.to_string(),
            username: username.to_string(),
            tokens: vec![token.to_string()],
            insights_granted: true,
        });
        state.oauth_account = Some(ig_user_id.to_string());
    }

    /// Containers created from now on report IN_PROGRESS for `n` status polls, then
    /// their end status. Publishing one before that is error 9007.
    pub fn in_progress_polls(&self, n: u32) {
        self.shared.lock().in_progress_polls = n;
    }

    /// The next container ends in `code` ("ERROR" or "EXPIRED") instead of FINISHED.
    pub fn next_container_ends(&self, code: &str) {
        assert!(
            matches!(code, "ERROR" | "EXPIRED" | "FINISHED"),
            "a container ends FINISHED, ERROR or EXPIRED, not {code}"
        );
        self.shared.lock().next_container_end = Some(code.to_string());
    }

    /// The next `times` media_publish calls answer error 9007 (subcode 2207027).
    pub fn publish_too_early(&self, times: u32) {
        self.shared.lock().publish_too_early = times;
    }

    /// Sets the publishing quota; each publish adds one to `used`, and a publish at the
    /// limit is refused (code 9, subcode 2207042).
    pub fn set_quota(&self, used: u32, total: u32) {
        let mut state = self.shared.lock();
        state.quota_used = used;
        state.quota_total = total;
    }

    /// Fails the next `times` calls whose path ends with `path_suffix` ("*" = any) with
    /// `fault`, first in first out. Note that "/access_token" also matches
    /// "/oauth/access_token"; use "oauth/access_token" for the code exchange.
    pub fn fail_next(&self, path_suffix: &str, times: usize, fault: IgFault) {
        let mut state = self.shared.lock();
        for _ in 0..times {
            state
                .faults
                .push_back((path_suffix.to_string(), fault.clone()));
        }
    }

    /// Drops the faults `fail_next` queued that no call has met yet.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// The media downloads made for containers, in order.
    pub fn fetched_media(&self) -> Vec<Fetched> {
        self.shared.lock().fetched.clone()
    }

    /// Every container created, in id order, with the media id of the published ones.
    pub fn containers(&self) -> Vec<ContainerInfo> {
        let state = self.shared.lock();
        let mut containers: Vec<ContainerInfo> = state
            .containers
            .iter()
            .map(|(id, container)| ContainerInfo {
                container_id: id.clone(),
                ig_user_id: container.ig_user_id.clone(),
                media_url: container.media_url.clone(),
                media_id: container.media_id.clone(),
            })
            .collect();
        containers.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        containers
    }

    /// The media ids of published stories, in order.
    pub fn published(&self) -> Vec<String> {
        self.shared.lock().published.clone()
    }

    /// The authorization code the code exchange accepts, once; any other code is refused.
    pub fn expect_code(&self, code: &str) {
        self.shared.lock().expected_code = Some(code.to_string());
    }

    /// Answers the code exchange flat (`{"access_token", "user_id": <number>,
    /// "permissions": [..]}`, as the current docs show) instead of in `{"data":[..]}`.
    pub fn oauth_answers_flat(&self, flat: bool) {
        self.shared.lock().oauth_answers_flat = flat;
    }

    /// The fake's now: the wall clock, or the test clock `use_test_clock` shared.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.lock().now()
    }

    /// Keeps time as the daemon does under `STORYLINE_TEST_CLOCK=<value>`, so that
    /// the stories it publishes carry daemon times and expire in daemon hours.
    pub fn use_test_clock(&self, value: &str) {
        let clock = storyline::clock::parse(value)
            .unwrap_or_else(|error| panic!("use_test_clock({value:?}): {error:#}"));
        self.shared.lock().clock = Some(clock);
    }

    /// A story a person posted by hand on `ig_user_id` at `at`, IMAGE or VIDEO;
    /// returns its media id. It is listed and has insights like a published one.
    pub fn post_story_by_hand(
        &self,
        ig_user_id: &str,
        at: DateTime<Utc>,
        media_type: &str,
    ) -> String {
        assert!(
            matches!(media_type, "IMAGE" | "VIDEO"),
            "a story is an IMAGE or a VIDEO, not {media_type}"
        );
        let mut state = self.shared.lock();
        let media_id = state.mint_id(1792);
        state.stories.push(FakeStory {
            media_id: media_id.clone(),
            ig_user_id: ig_user_id.to_string(),
            timestamp: at,
            media_type: media_type.to_string(),
            by_hand: true,
        });
        self.shared.changed.notify_all();
        media_id
    }

    /// Every story posted, in the order posted, expired ones included.
    pub fn stories(&self) -> Vec<FakeStory> {
        self.shared.lock().stories.clone()
    }

    /// From now on, `GET /{media_id}/insights` answers `answer` (until set again).
    pub fn set_insights(&self, media_id: &str, answer: IgInsights) {
        self.shared
            .lock()
            .insights
            .insert(media_id.to_string(), answer);
    }

    /// The account's token lacks `instagram_business_manage_insights` (the person
    /// declined it at login): the code exchange lists no such permission, and every
    /// insights call is error #10 "Application does not have permission".
    pub fn deny_insights_permission(&self, ig_user_id: &str) {
        self.set_insights_grant(ig_user_id, false);
    }

    /// Gives the permission back, as connecting again and allowing it does.
    pub fn grant_insights_permission(&self, ig_user_id: &str) {
        self.set_insights_grant(ig_user_id, true);
    }

    fn set_insights_grant(&self, ig_user_id: &str, granted: bool) {
        let mut state = self.shared.lock();
        let account = state
            .accounts
            .iter_mut()
            .find(|account| account.ig_user_id == ig_user_id)
            .unwrap_or_else(|| panic!("the fake knows no account {ig_user_id}: set_token first"));
        account.insights_granted = granted;
    }

    /// `/stories` answers pages of `n` stories when the request names no `limit`.
    pub fn stories_page_size(&self, n: usize) {
        assert!(n > 0, "a page holds at least one story");
        self.shared.lock().page_size = n;
    }
}

fn handle_request(shared: &Shared, mut request: tiny_http::Request, local: std::net::SocketAddr) {
    let at = Instant::now();
    let mut body = Vec::new();
    let _ = request
        .as_reader()
        .take(MAX_FETCH_BYTES)
        .read_to_end(&mut body);
    let content_type = request
        .headers()
        .iter()
        .find(|header| header.field.equiv("Content-Type"))
        .map(|header| header.value.as_str().to_string())
        .unwrap_or_default();
    let method = request.method().as_str().to_ascii_uppercase();
    let (path, query) = match request.url().split_once('?') {
        Some((path, query)) => (path.to_string(), query.to_string()),
        None => (request.url().to_string(), String::new()),
    };
    let (params, query_keys) = parse_params(&query, &content_type, &body);

    let mut state = shared.lock();
    let index = state.calls.len();
    state.calls.push(IgCall {
        method: method.clone(),
        path: path.clone(),
        params: params.clone(),
        query_keys,
        at,
        status: None,
    });
    shared.changed.notify_all();

    let fault = state
        .faults
        .iter()
        .position(|(suffix, _)| suffix == "*" || path.ends_with(suffix.as_str()))
        .and_then(|position| state.faults.remove(position))
        .map(|(_, fault)| fault);
    match fault {
        None => {}
        Some(IgFault::Status(status)) => {
            let html = format!("<html><body><h1>{status}</h1></body></html>");
            return respond(shared, state, index, request, status, html, "text/html");
        }
        Some(IgFault::TokenError) => {
            let answer = token_expired();
            return respond_json(shared, state, index, request, answer);
        }
        Some(IgFault::Garbage) => {
            let garbage = GARBAGE_BODY.to_string();
            return respond(
                shared,
                state,
                index,
                request,
                200,
                garbage,
                "application/json",
            );
        }
        Some(IgFault::Api {
            http_status,
            code,
            subcode,
            message,
        }) => {
            let answer = graph_error(http_status, code, subcode, &message);
            return respond_json(shared, state, index, request, answer);
        }
        Some(IgFault::Meta(row)) => {
            let answer = meta_error(&row);
            return respond_json(shared, state, index, request, answer);
        }
        Some(IgFault::Slow(duration)) => state = shared.pause(state, duration),
    }

    let requested_path = path.clone();
    let path = strip_version(&path);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (state, answer) = match (method.as_str(), segments.as_slice()) {
        ("POST", ["oauth", "access_token"]) => {
            let answer = state.exchange_code(&params);
            (state, answer)
        }
        ("GET", ["access_token"]) => {
            let answer = state.exchange_token(&params);
            (state, answer)
        }
        ("GET", ["refresh_access_token"]) => {
            let answer = state.refresh(&params);
            (state, answer)
        }
        ("GET", ["me"]) => {
            let answer = state.me(&params);
            (state, answer)
        }
        ("POST", [ig_user_id, "media"]) => create_container(shared, state, ig_user_id, &params),
        ("POST", [ig_user_id, "media_publish"]) => {
            let answer = state.publish(ig_user_id, &params);
            (state, answer)
        }
        ("GET", [media_id, "insights"]) => {
            let answer = state.insights(media_id, &params);
            (state, answer)
        }
        ("GET", [ig_user_id, "stories"]) => {
            let base = format!("http://{local}{requested_path}");
            let answer = state.stories(ig_user_id, &params, &base);
            (state, answer)
        }
        ("GET", [ig_user_id, "content_publishing_limit"]) => {
            let answer = state.publishing_limit(ig_user_id, &params);
            (state, answer)
        }
        ("GET", [node_id]) => {
            let answer = state.node(node_id, &params);
            (state, answer)
        }
        _ => {
            let message = format!("Unknown path components: {path}");
            (state, graph_error(404, 2500, None, &message))
        }
    };
    respond_json(shared, state, index, request, answer);
}

/// `POST /{ig-user-id}/media`: checks the request, downloads the media as Instagram
/// does (outside the lock, so other calls go on meanwhile) and creates the container.
fn create_container<'a>(
    shared: &'a Shared,
    state: MutexGuard<'a, State>,
    ig_user_id: &str,
    params: &Value,
) -> (MutexGuard<'a, State>, Answer) {
    if let Err(answer) = state.owner_check(ig_user_id, params) {
        return (state, answer);
    }
    if param(params, "media_type").as_deref() != Some("STORIES") {
        let answer = graph_error(
            400,
            100,
            None,
            "The fake makes stories only: media_type must be STORIES",
        );
        return (state, answer);
    }
    let (url, is_image) = match (param(params, "image_url"), param(params, "video_url")) {
        (Some(url), None) => (url, true),
        (None, Some(url)) => (url, false),
        _ => {
            let answer = graph_error(
                400,
                100,
                None,
                "Exactly one of the parameters image_url and video_url is required",
            );
            return (state, answer);
        }
    };
    drop(state);
    let fetched = fetch(&url);
    let mut state = shared.lock();

    let download_problem = if !(200..300).contains(&fetched.status) {
        let why = match fetched.status {
            0 => "no answer".to_string(),
            status => format!("HTTP {status}"),
        };
        Some(format!(
            "Error: Instagram could not download the media from the URL ({why})"
        ))
    } else if is_image && !fetched.bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("Error: the image is not a JPEG; Instagram only accepts JPEG images".to_string())
    } else if fetched.bytes.is_empty() {
        Some("Error: Instagram could not download the media: the file is empty".to_string())
    } else {
        None
    };
    state.fetched.push(fetched);
    let scripted_end = state.next_container_end.take();
    let (end, detail) = match (download_problem, scripted_end.as_deref()) {
        (Some(detail), _) => ("ERROR", detail),
        (None, Some("ERROR")) => (
            "ERROR",
            "Error: the media could not be processed (reason: scripted by the test)".to_string(),
        ),
        (None, Some("EXPIRED")) => (
            "EXPIRED",
            "Expired: the container was not published within 24 hours (reason: scripted by \
             the test)"
                .to_string(),
        ),
        (None, _) => (
            "FINISHED",
            "Finished: Media has been uploaded and it is ready to be published.".to_string(),
        ),
    };
    let container_id = state.mint_id(1790);
    let container = Container {
        ig_user_id: ig_user_id.to_string(),
        media_url: url,
        media_type: if is_image { "IMAGE" } else { "VIDEO" },
        media_id: None,
        polls_left: state.in_progress_polls,
        end,
        detail,
        published: false,
    };
    state.containers.insert(container_id.clone(), container);
    (state, (200, json!({ "id": container_id })))
}

/// Downloads a media URL as Instagram would; failures are recorded, not raised.
fn fetch(url: &str) -> Fetched {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(FETCH_TIMEOUT))
        .build()
        .into();
    let mut fetched = Fetched {
        url: url.to_string(),
        status: 0,
        content_type: None,
        bytes: Vec::new(),
    };
    let Ok(mut response) = agent.get(url).call() else {
        return fetched;
    };
    fetched.status = response.status().as_u16();
    fetched.content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    match response
        .body_mut()
        .with_config()
        .limit(MAX_FETCH_BYTES)
        .read_to_vec()
    {
        Ok(bytes) => fetched.bytes = bytes,
        // A body cut short is a failed download.
        Err(_) => fetched.status = 0,
    }
    fetched
}

impl State {
    fn mint_id(&mut self, prefix: u64) -> String {
        self.next_id += 1;
        format!("{prefix}{:013}", self.next_id)
    }

    fn now(&self) -> DateTime<Utc> {
        match &self.clock {
            Some(clock) => clock.at(Utc::now()),
            None => Utc::now(),
        }
    }

    /// Whether a story posted at `posted` is still up (and has insights).
    fn is_live(&self, posted: DateTime<Utc>) -> bool {
        self.now() - posted < Span::hours(STORY_LIFETIME_HOURS)
    }

    /// `GET /{media-id}/insights?metric=..[&breakdown=..]`: the token's own story,
    /// metrics a story has, each with the breakdown it needs and no other.
    fn insights(&self, media_id: &str, params: &Value) -> Answer {
        let account = match self.account_of(params) {
            Ok(account) => account,
            Err(answer) => return answer,
        };
        if !account.insights_granted {
            return graph_error(400, 10, None, NO_PERMISSION);
        }
        let Some(story) = self
            .stories
            .iter()
            .find(|story| story.media_id == media_id && story.ig_user_id == account.ig_user_id)
        else {
            return no_such_object(media_id, "get");
        };
        let metrics: Vec<String> = param(params, "metric")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|metric| !metric.is_empty())
            .map(str::to_string)
            .collect();
        if metrics.is_empty() {
            return graph_error(400, 100, None, "(#100) The parameter metric is required");
        }
        if let Some(period) = param(params, "period").filter(|period| period != "lifetime") {
            let message =
                format!("(#100) period must be lifetime for media insights, not {period}");
            return graph_error(400, 100, None, &message);
        }
        let breakdown = param(params, "breakdown").filter(|breakdown| !breakdown.is_empty());
        let known: Vec<&str> = STORY_METRICS.iter().map(|(name, _)| *name).collect();
        for (index, metric) in metrics.iter().enumerate() {
            let needs = match STORY_METRICS.iter().find(|(name, _)| name == metric) {
                Some((_, needs)) => *needs,
                None if metric == "impressions" => {
                    return graph_error(
                        400,
                        100,
                        None,
                        "(#100) Starting from version v22.0 and above, the impressions metric \
                         is no longer supported for media created after July 2, 2024. Please \
                         use the views metric instead.",
                    );
                }
                None if NOT_STORY_METRICS.contains(&metric.as_str()) => {
                    let message = format!(
                        "(#100) The Media Insights API does not support the {metric} metric \
                         for this media product type."
                    );
                    return graph_error(400, 100, None, &message);
                }
                None => {
                    let message = format!(
                        "(#100) metric[{index}] must be one of the following values: {}",
                        known.join(", ")
                    );
                    return graph_error(400, 100, None, &message);
                }
            };
            match (needs, breakdown.as_deref()) {
                (Some(needed), Some(given)) if needed == given => {}
                // The reference: a breakdown on a metric without it is "An unknown
                // error has occurred.".
                (_, Some(_)) => {
                    return graph_error(500, 1, None, "An unknown error has occurred.");
                }
                // The fake's own strictness: the reference pairs these metrics with
                // their breakdown, and the client must not count on a bare total.
                (Some(needed), None) => {
                    let message = format!(
                        "(#100) The {metric} metric must be requested with breakdown={needed}"
                    );
                    return graph_error(400, 100, None, &message);
                }
                (None, None) => {}
            }
        }
        if let Some(breakdown) = breakdown.as_deref() {
            let known = ["story_navigation_action_type", "action_type"];
            if !known.contains(&breakdown) {
                let message = format!(
                    "(#100) breakdown[0] must be one of the following values: {}",
                    known.join(", ")
                );
                return graph_error(400, 100, None, &message);
            }
        }
        // After 24 hours a story's insights are gone: "an empty data set".
        if !self.is_live(story.timestamp) {
            return (200, json!({ "data": [] }));
        }
        let scripted = self.insights.get(media_id).copied();
        let numbers = match scripted
            .unwrap_or(IgInsights::Numbers(FakeStoryNumbers::for_media(media_id)))
        {
            IgInsights::Numbers(numbers) => numbers,
            IgInsights::Empty => return (200, json!({ "data": [] })),
            IgInsights::NotEnoughViewers => return graph_error(400, 10, None, NOT_ENOUGH_VIEWERS),
            IgInsights::MissingPermission => return graph_error(400, 10, None, NO_PERMISSION),
        };
        let data: Vec<Value> = metrics
            .iter()
            .map(|metric| insights_entry(media_id, metric, &numbers))
            .collect();
        (200, json!({ "data": data }))
    }

    /// `GET /{ig-user-id}/stories`: the account's stories of the last 24 hours, newest
    /// first, in pages with cursors and a `next` address (`base` is this call's own).
    fn stories(&self, ig_user_id: &str, params: &Value, base: &str) -> Answer {
        if let Err(answer) = self.owner_check(ig_user_id, params) {
            return answer;
        }
        let fields = fields(params, "id");
        let allowed = [
            "id",
            "timestamp",
            "media_type",
            "media_product_type",
            "permalink",
            "username",
        ];
        if let Some(unknown) = fields
            .iter()
            .find(|field| !allowed.contains(&field.as_str()))
        {
            return nonexisting_field(unknown, "IGMedia");
        }
        let page_size = match param(params, "limit") {
            None => match self.page_size {
                0 => DEFAULT_PAGE_SIZE,
                size => size,
            },
            Some(limit) => match limit.parse::<usize>() {
                Ok(limit) if (1..=100).contains(&limit) => limit,
                _ => {
                    return graph_error(
                        400,
                        100,
                        None,
                        "(#100) limit must be a number from 1 to 100",
                    )
                }
            },
        };
        let start = match param(params, "after") {
            None => 0,
            Some(cursor) => match decode_cursor(&cursor) {
                Some(start) => start,
                None => return graph_error(400, 100, None, "(#100) The after cursor is not valid"),
            },
        };
        let mut live: Vec<&FakeStory> = self
            .stories
            .iter()
            .filter(|story| story.ig_user_id == ig_user_id && self.is_live(story.timestamp))
            .collect();
        live.sort_by(|a, b| {
            b.timestamp
                .cmp(&a.timestamp)
                .then(b.media_id.cmp(&a.media_id))
        });
        let account = self
            .accounts
            .iter()
            .find(|account| account.ig_user_id == ig_user_id);
        let username = account.map_or("", |account| account.username.as_str());
        let page: Vec<Value> = live
            .iter()
            .skip(start)
            .take(page_size)
            .map(|story| {
                let mut entry = Map::new();
                for field in &fields {
                    let value = match field.as_str() {
                        "timestamp" => {
                            json!(story.timestamp.format("%Y-%m-%dT%H:%M:%S%z").to_string())
                        }
                        "media_type" => json!(story.media_type),
                        "media_product_type" => json!("STORY"),
                        "permalink" => json!(format!(
                            "https://www.instagram.com/stories/{username}/{}/",
                            story.media_id
                        )),
                        "username" => json!(username),
                        _ => json!(story.media_id),
                    };
                    entry.insert(field.clone(), value);
                }
                entry.insert("id".to_string(), json!(story.media_id));
                Value::Object(entry)
            })
            .collect();
        let mut answer = json!({ "data": page });
        let end = (start + page_size).min(live.len());
        if start < end {
            let mut paging = json!({"cursors": {
                "before": encode_cursor(start),
                "after": encode_cursor(end),
            }});
            if end < live.len() {
                let mut query: Vec<(String, String)> = vec![
                    ("fields".into(), fields.join(",")),
                    ("limit".into(), page_size.to_string()),
                    ("after".into(), encode_cursor(end)),
                ];
                if let Some(token) = param(params, "access_token") {
                    query.push(("access_token".into(), token));
                }
                let query: Vec<String> = query
                    .iter()
                    .map(|(name, value)| format!("{name}={}", storyline::bot::oauth::encode(value)))
                    .collect();
                paging["next"] = json!(format!("{base}?{}", query.join("&")));
            }
            answer["paging"] = paging;
        }
        (200, answer)
    }

    /// The account a long-lived token belongs to, or error 190.
    fn account_of(&self, params: &Value) -> Result<&Account, Answer> {
        let token = param(params, "access_token").unwrap_or_default();
        self.accounts
            .iter()
            .find(|account| account.tokens.contains(&token))
            .ok_or_else(invalid_token)
    }

    /// A valid token of the account in the path.
    fn owner_check(&self, ig_user_id: &str, params: &Value) -> Result<(), Answer> {
        let account = self.account_of(params)?;
        if account.ig_user_id == ig_user_id {
            Ok(())
        } else {
            Err(no_such_object(ig_user_id, "post"))
        }
    }

    fn publish(&mut self, ig_user_id: &str, params: &Value) -> Answer {
        if let Err(answer) = self.owner_check(ig_user_id, params) {
            return answer;
        }
        let Some(creation_id) = param(params, "creation_id") else {
            return graph_error(400, 100, None, "The parameter creation_id is required");
        };
        let not_ready = || graph_error(400, 9007, Some(2_207_027), "Media ID is not available");
        if self.publish_too_early > 0 {
            self.publish_too_early -= 1;
            return not_ready();
        }
        let quota_reached = self.quota_used >= self.quota_total;
        let timestamp = self.now();
        let Some(container) = self
            .containers
            .get_mut(&creation_id)
            .filter(|container| container.ig_user_id == ig_user_id)
        else {
            return graph_error(
                400,
                100,
                None,
                &format!("The media container {creation_id} does not exist"),
            );
        };
        if container.published {
            return graph_error(400, 100, None, "The media container was already published");
        }
        if container.polls_left > 0 {
            return not_ready();
        }
        if container.end != "FINISHED" {
            let message = format!(
                "The media container cannot be published: its status is {}",
                container.end
            );
            return graph_error(400, 100, None, &message);
        }
        if quota_reached {
            return meta_error(&MetaError::row(9, 2_207_042));
        }
        container.published = true;
        self.next_id += 1;
        let media_id = format!("1791{:013}", self.next_id);
        container.media_id = Some(media_id.clone());
        let media_type = container.media_type;
        self.published.push(media_id.clone());
        self.stories.push(FakeStory {
            media_id: media_id.clone(),
            ig_user_id: ig_user_id.to_string(),
            timestamp,
            media_type: media_type.to_string(),
            by_hand: false,
        });
        self.quota_used += 1;
        (200, json!({ "id": media_id }))
    }

    fn publishing_limit(&self, ig_user_id: &str, params: &Value) -> Answer {
        if let Err(answer) = self.owner_check(ig_user_id, params) {
            return answer;
        }
        let fields = fields(params, "quota_usage");
        let mut entry = Map::new();
        for field in &fields {
            match field.as_str() {
                "quota_usage" => {
                    entry.insert(field.clone(), json!(self.quota_used));
                }
                "config" => {
                    let config = json!({"quota_total": self.quota_total, "quota_duration": 86400});
                    entry.insert(field.clone(), config);
                }
                other => return nonexisting_field(other, "ContentPublishingLimit"),
            }
        }
        (200, json!({ "data": [entry] }))
    }

    /// `GET /{id}`: a container's status (each poll of `status_code` counts).
    fn node(&mut self, node_id: &str, params: &Value) -> Answer {
        let owner = match self.account_of(params) {
            Ok(account) => account.ig_user_id.clone(),
            Err(answer) => return answer,
        };
        let fields = fields(params, "id");
        let Some(container) = self
            .containers
            .get_mut(node_id)
            .filter(|container| container.ig_user_id == owner)
        else {
            return no_such_object(node_id, "get");
        };
        let (code, detail) = if container.published {
            (
                "PUBLISHED",
                "Published: Media has been successfully published.".to_string(),
            )
        } else if container.polls_left > 0 {
            if fields.iter().any(|field| field == "status_code") {
                container.polls_left -= 1;
            }
            (
                "IN_PROGRESS",
                "In Progress: Media is still being processed.".to_string(),
            )
        } else {
            (container.end, container.detail.clone())
        };
        let mut answer = Map::new();
        for field in &fields {
            let value = match field.as_str() {
                "id" => json!(node_id),
                "status_code" => json!(code),
                "status" => json!(detail),
                other => return nonexisting_field(other, "ShadowIGMediaBuilder"),
            };
            answer.insert(field.clone(), value);
        }
        answer.insert("id".to_string(), json!(node_id));
        (200, Value::Object(answer))
    }

    fn refresh(&mut self, params: &Value) -> Answer {
        if param(params, "grant_type").as_deref() != Some("ig_refresh_token") {
            return graph_error(400, 100, None, "Unsupported grant type");
        }
        let ig_user_id = match self.account_of(params) {
            Ok(account) => account.ig_user_id.clone(),
            Err(answer) => return answer,
        };
        let token = format!("IGAA-refreshed-{}", self.mint_id(1));
        if let Some(account) = self
            .accounts
            .iter_mut()
            .find(|account| account.ig_user_id == ig_user_id)
        {
            account.tokens.push(token.clone());
        }
        token_answer(&token)
    }

    /// `POST /oauth/access_token` on api.instagram.com; its errors have that host's
    /// flat shape.
    fn exchange_code(&mut self, params: &Value) -> Answer {
        let oauth_error = |message: &str| {
            (
                400,
                json!({"error_type": "OAuthException", "code": 400, "error_message": message}),
            )
        };
        if param(params, "grant_type").as_deref() != Some("authorization_code") {
            return oauth_error("Invalid grant_type");
        }
        for required in ["client_id", "client_secret", "redirect_uri"] {
            if param(params, required).is_none_or(|value| value.is_empty()) {
                return oauth_error(&format!("Missing required field {required}"));
            }
        }
        let code = param(params, "code").unwrap_or_default();
        if code.is_empty() || self.expected_code.as_deref() != Some(code.as_str()) {
            return oauth_error("Matching code was not found or was already used");
        }
        let Some(ig_user_id) = self.oauth_account.clone() else {
            return oauth_error("The fake has no account to log in: call set_token first");
        };
        self.expected_code = None;
        let insights_granted = self
            .accounts
            .iter()
            .any(|account| account.ig_user_id == ig_user_id && account.insights_granted);
        let granted: Vec<&str> = SCOPES
            .into_iter()
            .filter(|scope| insights_granted || *scope != INSIGHTS_PERMISSION)
            .collect();
        let short = format!("short-{}", self.mint_id(2));
        self.short_tokens.insert(short.clone(), ig_user_id.clone());
        let answer = if self.oauth_answers_flat {
            let user_id = ig_user_id
                .parse::<u64>()
                .map_or_else(|_| json!(ig_user_id), |id| json!(id));
            json!({"access_token": short, "user_id": user_id, "permissions": granted})
        } else {
            json!({"data": [{
                "access_token": short,
                "user_id": ig_user_id,
                "permissions": granted.join(","),
            }]})
        };
        (200, answer)
    }

    /// `GET /access_token?grant_type=ig_exchange_token`: a short-lived token for the
    /// account's long-lived one.
    fn exchange_token(&self, params: &Value) -> Answer {
        if param(params, "grant_type").as_deref() != Some("ig_exchange_token") {
            return graph_error(400, 100, None, "Unsupported grant type");
        }
        if param(params, "client_secret").is_none_or(|secret| secret.is_empty()) {
            return graph_error(400, 100, None, "Missing client_secret parameter");
        }
        let short = param(params, "access_token").unwrap_or_default();
        let Some(ig_user_id) = self.short_tokens.get(&short) else {
            return invalid_token();
        };
        let token = self
            .accounts
            .iter()
            .find(|account| &account.ig_user_id == ig_user_id)
            .and_then(|account| account.tokens.first());
        match token {
            Some(token) => token_answer(token),
            None => invalid_token(),
        }
    }

    /// `GET /me`: the token's account, with the fields asked for (`id` by default).
    fn me(&self, params: &Value) -> Answer {
        let account = match self.account_of(params) {
            Ok(account) => account,
            Err(answer) => return answer,
        };
        let mut answer = Map::new();
        for field in fields(params, "id") {
            let value = match field.as_str() {
                // The app-scoped id differs from the professional account id, as on
                // the real service, so a client that reads the wrong one fails.
                "id" => json!(format!("8{}", account.ig_user_id)),
                "user_id" => json!(account.ig_user_id),
                "username" => json!(account.username),
                "account_type" => json!("BUSINESS"),
                other => return nonexisting_field(other, "User"),
            };
            answer.insert(field, value);
        }
        (200, Value::Object(answer))
    }
}

/// One metric of an insights answer, in the shape of the reference's samples: the
/// value in `values`, and for a metric with a breakdown also in `total_value`.
fn insights_entry(media_id: &str, metric: &str, numbers: &FakeStoryNumbers) -> Value {
    let value = numbers.metric(metric);
    let mut entry = json!({
        "name": metric,
        "period": "lifetime",
        "values": [{"value": value}],
        "title": metric_title(metric),
        "description": format!("The story's {}.", metric.replace('_', " ")),
        "id": format!("{media_id}/insights/{metric}/lifetime"),
    });
    let breakdown = match metric {
        "navigation" => Some((
            "story_navigation_action_type",
            vec![
                ("tap_forward", numbers.tap_forward),
                ("tap_back", numbers.tap_back),
                ("tap_exit", numbers.tap_exit),
                ("swipe_forward", numbers.swipe_forward),
            ],
        )),
        "profile_activity" => Some(("action_type", vec![("bio_link_clicked", value)])),
        _ => None,
    };
    if let Some((key, results)) = breakdown {
        let results: Vec<Value> = results
            .into_iter()
            .map(|(dimension, value)| json!({"dimension_values": [dimension], "value": value}))
            .collect();
        entry["total_value"] = json!({
            "value": value,
            "breakdowns": [{"dimension_keys": [key], "results": results}],
        });
    }
    entry
}

fn metric_title(metric: &str) -> String {
    let mut title = metric.replace('_', " ");
    if let Some(first) = title.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    title
}

/// An opaque-looking `/stories` cursor for a position in the list.
fn encode_cursor(position: usize) -> String {
    format!("QVFIU{position:08x}")
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let hex = cursor.strip_prefix("QVFIU")?;
    usize::from_str_radix(hex, 16).ok()
}

fn token_answer(token: &str) -> Answer {
    (
        200,
        json!({"access_token": token, "token_type": "bearer", "expires_in": LONG_LIVED_SECS}),
    )
}

fn graph_error(http_status: u16, code: i64, subcode: Option<i64>, message: &str) -> Answer {
    let mut error = json!({
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "FakeTraceId",
    });
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    (http_status, json!({ "error": error }))
}

fn meta_error(row: &MetaError) -> Answer {
    let error = json!({
        "message": row.message,
        "type": "OAuthException",
        "code": row.code,
        "error_subcode": row.subcode,
        "is_transient": row.transient,
        "error_user_title": row.user_title,
        "error_user_msg": row.user_message,
        "fbtrace_id": "FakeTraceId",
    });
    (400, json!({ "error": error }))
}

fn invalid_token() -> Answer {
    graph_error(
        400,
        190,
        None,
        "Invalid OAuth access token - Cannot parse access token",
    )
}

fn token_expired() -> Answer {
    graph_error(
        400,
        190,
        Some(463),
        "Error validating access token: Session has expired on Tuesday, 01-Jul-25 \
         10:00:00 PDT. The current time is Wednesday, 02-Jul-25 10:00:00 PDT.",
    )
}

fn no_such_object(id: &str, verb: &str) -> Answer {
    let message = format!(
        "Unsupported {verb} request. Object with ID '{id}' does not exist, cannot be loaded \
         due to missing permissions, or does not support this operation"
    );
    graph_error(400, 100, Some(33), &message)
}

fn nonexisting_field(field: &str, node_type: &str) -> Answer {
    let message = format!("Tried accessing nonexisting field ({field}) on node type ({node_type})");
    graph_error(400, 100, None, &message)
}

/// The `fields` parameter as a list, or `default` when absent.
fn fields(params: &Value, default: &str) -> Vec<String> {
    let list = param(params, "fields").unwrap_or_else(|| default.to_string());
    list.split(',')
        .map(str::trim)
        .filter(|field| !field.is_empty())
        .map(str::to_string)
        .collect()
}

/// "/v21.0/me" → "/me": the real hosts accept an optional API version.
fn strip_version(path: &str) -> &str {
    let rest = path.trim_start_matches('/');
    match rest.split_once('/') {
        Some((first, tail))
            if first.starts_with('v')
                && first.len() > 1
                && first[1..].chars().all(|c| c.is_ascii_digit() || c == '.') =>
        {
            tail
        }
        _ => rest,
    }
}

fn param(params: &Value, name: &str) -> Option<String> {
    match params.get(name)? {
        Value::String(text) => Some(text.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn respond_json(
    shared: &Shared,
    state: MutexGuard<'_, State>,
    index: usize,
    request: tiny_http::Request,
    (status, body): Answer,
) {
    respond(
        shared,
        state,
        index,
        request,
        status,
        body.to_string(),
        "application/json",
    );
}

/// Records the status, then answers: a test that sees the status knows the answer is
/// decided, though the client may not have read it yet.
fn respond(
    shared: &Shared,
    mut state: MutexGuard<'_, State>,
    index: usize,
    request: tiny_http::Request,
    status: u16,
    body: String,
    content_type: &str,
) {
    state.calls[index].status = Some(status);
    shared.changed.notify_all();
    drop(state);
    let header =
        tiny_http::Header::from_bytes("Content-Type", content_type).expect("a valid header");
    let response = tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header);
    let _ = request.respond(response);
}

/// Merges the query string and the body (form or JSON) into one object of strings;
/// also returns the names that came in the query string.
fn parse_params(query: &str, content_type: &str, body: &[u8]) -> (Value, Vec<String>) {
    let mut params = Map::new();
    let mut query_keys = Vec::new();
    for (name, value) in parse_urlencoded(query) {
        query_keys.push(name.clone());
        params.insert(name, Value::String(value));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        // No body: the query string is all there is.
    } else if content_type
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => params.extend(object),
            _ => {
                let raw = String::from_utf8_lossy(body).into_owned();
                params.insert("_unparsed_body".to_string(), Value::String(raw));
            }
        }
    } else {
        for (name, value) in parse_urlencoded(&String::from_utf8_lossy(body)) {
            params.insert(name, Value::String(value));
        }
    }
    (Value::Object(params), query_keys)
}

fn summarize_calls(calls: &[IgCall]) -> String {
    if calls.is_empty() {
        return "none".to_string();
    }
    let list: Vec<String> = calls
        .iter()
        .enumerate()
        .map(|(index, call)| {
            let status = call
                .status
                .map_or_else(|| "-".to_string(), |status| status.to_string());
            format!("#{index} {} {} ({status})", call.method, call.path)
        })
        .collect();
    list.join(", ")
}
