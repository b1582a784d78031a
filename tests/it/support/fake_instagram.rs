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
//! State lives behind one mutex with a condvar notified on every change, so `wait_for`
//! wakes as soon as a call arrives instead of sleeping.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use super::fake_http::{self, parse_urlencoded, FakeServer};
use serde_json::{json, Map, Value};

/// Enough workers that a slow answer or a media download never blocks other calls.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Instagram takes videos up to 100 MB; a little more than that is read.
const MAX_FETCH_BYTES: u64 = 128 * 1024 * 1024;
const LONG_LIVED_SECS: i64 = 5_184_000;
const GARBAGE_BODY: &str = "{\"id\":tru<<<not json";
const SCOPES: [&str; 2] = [
    "instagram_business_basic",
    "instagram_business_content_publish",
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
    faults: VecDeque<(String, IgFault)>,
    next_id: u64,
}

struct Account {
    ig_user_id: String,
    username: String,
    /// Valid long-lived tokens; the first is the one `set_token` gave.
    tokens: Vec<String>,
}

struct Container {
    ig_user_id: String,
    media_url: String,
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
}

fn handle_request(shared: &Shared, mut request: tiny_http::Request, _local: std::net::SocketAddr) {
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
        self.published.push(media_id.clone());
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
        let short = format!("short-{}", self.mint_id(2));
        self.short_tokens.insert(short.clone(), ig_user_id.clone());
        let answer = if self.oauth_answers_flat {
            let user_id = ig_user_id
                .parse::<u64>()
                .map_or_else(|_| json!(ig_user_id), |id| json!(id));
            json!({"access_token": short, "user_id": user_id, "permissions": SCOPES})
        } else {
            json!({"data": [{
                "access_token": short,
                "user_id": ig_user_id,
                "permissions": SCOPES.join(","),
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
