//! The Instagram API with Instagram Login: publishing a story (container, status,
//! publish), the publishing quota, token refresh, and the OAuth exchange that connects
//! an account. Only this module knows Instagram's JSON.
//!
//! Two hosts are involved: `graph.instagram.com` for almost everything, and
//! `api.instagram.com` for the one OAuth call that turns an authorization code into a
//! short-lived token. Both are configurable so the tests can point them at a fake.
//!
//! Tokens travel in the `access_token` form field of a POST and in the query string of
//! a GET, so they are part of some URLs. Every error text is therefore built here, and
//! every secret of the call (token, app secret, authorization code) is removed from
//! anything quoted from elsewhere: a `GraphError` can go to a log or a chat as it is.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::config::Secret;

/// Longer than any sane answer, short enough that a Pi never buffers a runaway body.
const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Instagram's documented limit when the answer leaves out `config.quota_total`.
const DEFAULT_QUOTA_TOTAL: u32 = 25;
/// A long-lived token lasts 60 days; assumed when an answer leaves out `expires_in`.
const LONG_LIVED_TOKEN_SECS: i64 = 60 * 24 * 3600;
/// Longest error message kept from Instagram, so a chat message stays readable.
const MAX_MESSAGE_CHARS: usize = 300;

/// Instagram's error codes and subcodes that callers branch on.
const CODE_TOKEN: i64 = 190;
const CODE_NOT_READY: i64 = 9007;
const SUBCODE_NOT_READY: i64 = 2_207_027;
const SUBCODE_TOKEN_EXPIRED: i64 = 463;
const SUBCODE_DAILY_LIMIT: i64 = 2_207_042;
const CODES_RATE_LIMIT: &[i64] = &[4, 17, 32, 613];
/// "Unknown error" and "service temporarily unavailable": documented as retryable.
const CODES_TEMPORARY: &[i64] = &[1, 2];

// ---- what we read and send -------------------------------------------------------

/// The account's content publishing quota over the last 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub used: u32,
    pub total: u32,
}

impl Quota {
    pub fn remaining(&self) -> u32 {
        self.total.saturating_sub(self.used)
    }

    pub fn is_reached(&self) -> bool {
        self.used >= self.total
    }
}

/// A story's media, by the public URL Instagram downloads it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoryMedia {
    Image(String),
    Video(String),
}

impl StoryMedia {
    /// The form field and value that name the media in a container request.
    fn url_field(&self) -> (&'static str, &str) {
        match self {
            StoryMedia::Image(url) => ("image_url", url),
            StoryMedia::Video(url) => ("video_url", url),
        }
    }
}

/// A container's `status_code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusCode {
    Finished,
    InProgress,
    Error,
    Expired,
    Published,
    /// A code this version does not know; treat it as still in progress, with a bound.
    Other(String),
}

impl StatusCode {
    fn parse(code: &str) -> StatusCode {
        match code {
            "FINISHED" => StatusCode::Finished,
            "IN_PROGRESS" => StatusCode::InProgress,
            "ERROR" => StatusCode::Error,
            "EXPIRED" => StatusCode::Expired,
            "PUBLISHED" => StatusCode::Published,
            other => StatusCode::Other(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    pub code: StatusCode,
    /// The `status` text, which says why a container ended in ERROR or EXPIRED.
    pub detail: Option<String>,
}

/// The answer to the code exchange: a short-lived token (one hour) for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortLived {
    pub token: Secret,
    pub user_id: String,
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The professional account id that publishing calls take (not the app-scoped `id`).
    pub user_id: String,
    pub username: String,
}

// ---- errors --------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// Instagram answered with an error, or with an error status and no readable error.
    Api {
        http_status: u16,
        code: Option<i64>,
        subcode: Option<i64>,
        message: String,
    },
    /// No answer: refused, reset, DNS, TLS.
    Network(String),
    Timeout,
    /// An answer that is not the JSON this call expects.
    Garbage(String),
}

impl GraphError {
    /// The token expired or was revoked: only reconnecting the account helps.
    pub fn is_token_problem(&self) -> bool {
        self.code() == Some(CODE_TOKEN)
    }

    /// The container is not ready to publish yet; publishing again later may work.
    pub fn is_not_ready(&self) -> bool {
        self.code() == Some(CODE_NOT_READY) || self.subcode() == Some(SUBCODE_NOT_READY)
    }

    pub fn is_rate_limited(&self) -> bool {
        match self {
            GraphError::Api {
                http_status, code, ..
            } => *http_status == 429 || code.is_some_and(|c| CODES_RATE_LIMIT.contains(&c)),
            _ => false,
        }
    }

    /// Worth trying again later: an outage or a rate limit rather than a refusal. A
    /// timeout or network error at `publish` leaves the outcome unknown, though: the
    /// caller must not simply repeat a publish.
    pub fn is_transient(&self) -> bool {
        match self {
            GraphError::Api {
                http_status, code, ..
            } => {
                *http_status >= 500
                    || self.is_rate_limited()
                    || code.is_some_and(|c| CODES_TEMPORARY.contains(&c))
            }
            GraphError::Network(_) | GraphError::Timeout | GraphError::Garbage(_) => true,
        }
    }

    /// A sentence for a person in the chat, saying what happened and what helps.
    pub fn plain_words(&self) -> String {
        match self {
            GraphError::Timeout => "Instagram could not be reached (timed out).".to_string(),
            GraphError::Network(detail) => {
                format!(
                    "Instagram could not be reached ({}).",
                    without_period(detail)
                )
            }
            GraphError::Garbage(_) => {
                "Instagram sent an answer Storyline could not read; try again later.".to_string()
            }
            GraphError::Api {
                http_status,
                subcode,
                message,
                ..
            } => {
                if self.is_token_problem() {
                    let expired = *subcode == Some(SUBCODE_TOKEN_EXPIRED)
                        || message.to_ascii_lowercase().contains("expired");
                    if expired {
                        "Instagram says the access token has expired; reconnect the account."
                            .to_string()
                    } else {
                        "Instagram says the access token is no longer valid; reconnect the account."
                            .to_string()
                    }
                } else if self.is_rate_limited() {
                    "Instagram is limiting requests right now; try again later.".to_string()
                } else if self.is_not_ready() {
                    "Instagram has not finished processing the media yet.".to_string()
                } else if *subcode == Some(SUBCODE_DAILY_LIMIT) {
                    "Instagram says the account has reached its limit of posts for the last \
                     24 hours."
                        .to_string()
                } else if *http_status >= 500 {
                    format!("Instagram had a problem on its side (HTTP {http_status}); try again later.")
                } else {
                    format!(
                        "Instagram refused the request: {}.",
                        without_period(message)
                    )
                }
            }
        }
    }

    fn code(&self) -> Option<i64> {
        match self {
            GraphError::Api { code, .. } => *code,
            _ => None,
        }
    }

    fn subcode(&self) -> Option<i64> {
        match self {
            GraphError::Api { subcode, .. } => *subcode,
            _ => None,
        }
    }

    /// The same error with every secret removed from its texts.
    fn redacted(self, secrets: &[&str]) -> GraphError {
        match self {
            GraphError::Api {
                http_status,
                code,
                subcode,
                message,
            } => GraphError::Api {
                http_status,
                code,
                subcode,
                message: redact(&message, secrets),
            },
            GraphError::Network(detail) => GraphError::Network(redact(&detail, secrets)),
            GraphError::Garbage(detail) => GraphError::Garbage(redact(&detail, secrets)),
            GraphError::Timeout => GraphError::Timeout,
        }
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::Api {
                http_status,
                code,
                subcode,
                message,
            } => {
                write!(f, "Instagram error")?;
                if let Some(code) = code {
                    write!(f, " {code}")?;
                }
                if let Some(subcode) = subcode {
                    write!(f, "/{subcode}")?;
                }
                write!(f, " (HTTP {http_status}): {message}")
            }
            GraphError::Network(detail) => write!(f, "cannot reach Instagram: {detail}"),
            GraphError::Timeout => write!(f, "Instagram did not answer in time"),
            GraphError::Garbage(detail) => write!(f, "unreadable answer from Instagram: {detail}"),
        }
    }
}

impl std::error::Error for GraphError {}

// ---- the client ----------------------------------------------------------------

/// Cheap to clone: clones share one ureq agent (and its connection pool).
#[derive(Clone)]
pub struct Graph {
    agent: ureq::Agent,
    graph_url: String,
    api_url: String,
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field("graph_url", &self.graph_url)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl Graph {
    /// `graph_url` is `https://graph.instagram.com` (optionally with a version),
    /// `api_url` is `https://api.instagram.com`.
    pub fn new(graph_url: &str, api_url: &str) -> Graph {
        Graph::with_timeout(graph_url, api_url, CALL_TIMEOUT)
    }

    /// A client whose calls give up after `timeout` (tests use a short one).
    pub fn with_timeout(graph_url: &str, api_url: &str, timeout: Duration) -> Graph {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(CONNECT_TIMEOUT.min(timeout)))
            .user_agent(concat!("storyline/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Graph {
            agent,
            graph_url: graph_url.trim_end_matches('/').to_string(),
            api_url: api_url.trim_end_matches('/').to_string(),
        }
    }

    /// How much of the account's publishing quota the last 24 hours used.
    pub fn publishing_limit(&self, ig_user_id: &str, token: &Secret) -> Result<Quota, GraphError> {
        let url = self.graph_path(&[ig_user_id, "content_publishing_limit"]);
        let answer = self.get(
            &url,
            &[
                ("fields", "quota_usage,config"),
                ("access_token", token.expose()),
            ],
            &[token.expose()],
        )?;
        parse_quota(&answer)
    }

    /// Creates a STORIES container; Instagram then downloads the media from its URL.
    pub fn create_story_container(
        &self,
        ig_user_id: &str,
        token: &Secret,
        media: &StoryMedia,
    ) -> Result<String, GraphError> {
        let url = self.graph_path(&[ig_user_id, "media"]);
        let (field, media_url) = media.url_field();
        let answer = self.post_form(
            &url,
            &[
                ("media_type", "STORIES"),
                (field, media_url),
                ("access_token", token.expose()),
            ],
            &[token.expose()],
        )?;
        parse_id(&answer)
    }

    pub fn container_status(
        &self,
        container_id: &str,
        token: &Secret,
    ) -> Result<ContainerStatus, GraphError> {
        let url = self.graph_path(&[container_id]);
        let answer = self.get(
            &url,
            &[
                ("fields", "status_code,status"),
                ("access_token", token.expose()),
            ],
            &[token.expose()],
        )?;
        parse_container_status(&answer)
    }

    /// Publishes a FINISHED container and returns the Instagram media id. A `Timeout`
    /// or `Network` error here means the outcome is unknown: the story may be live.
    pub fn publish(
        &self,
        ig_user_id: &str,
        token: &Secret,
        container_id: &str,
    ) -> Result<String, GraphError> {
        let url = self.graph_path(&[ig_user_id, "media_publish"]);
        let answer = self.post_form(
            &url,
            &[
                ("creation_id", container_id),
                ("access_token", token.expose()),
            ],
            &[token.expose()],
        )?;
        parse_id(&answer)
    }

    /// Trades a long-lived token (at least 24 hours old) for a fresh one; returns it
    /// with its lifetime in seconds.
    pub fn refresh_token(&self, token: &Secret) -> Result<(Secret, i64), GraphError> {
        let url = self.graph_path(&["refresh_access_token"]);
        let answer = self.get(
            &url,
            &[
                ("grant_type", "ig_refresh_token"),
                ("access_token", token.expose()),
            ],
            &[token.expose()],
        )?;
        parse_token(&answer)
    }

    /// Exchanges the authorization code from the OAuth redirect for a short-lived token.
    /// The code may still carry the `#_` Instagram appends to the redirect URL.
    pub fn exchange_code(
        &self,
        app_id: &str,
        app_secret: &Secret,
        redirect_uri: &str,
        code: &str,
    ) -> Result<ShortLived, GraphError> {
        let code = clean_code(code);
        let url = format!("{}/oauth/access_token", self.api_url);
        let answer = self.post_form(
            &url,
            &[
                ("client_id", app_id),
                ("client_secret", app_secret.expose()),
                ("grant_type", "authorization_code"),
                ("redirect_uri", redirect_uri),
                ("code", code),
            ],
            &[app_secret.expose(), code],
        )?;
        parse_short_lived(&answer)
    }

    /// Trades a short-lived token for a long-lived one (60 days); returns it with its
    /// lifetime in seconds.
    pub fn long_lived_token(
        &self,
        app_secret: &Secret,
        short: &Secret,
    ) -> Result<(Secret, i64), GraphError> {
        let url = self.graph_path(&["access_token"]);
        let answer = self.get(
            &url,
            &[
                ("grant_type", "ig_exchange_token"),
                ("client_secret", app_secret.expose()),
                ("access_token", short.expose()),
            ],
            &[app_secret.expose(), short.expose()],
        )?;
        parse_token(&answer)
    }

    /// The account a token belongs to.
    pub fn profile(&self, token: &Secret) -> Result<Profile, GraphError> {
        let url = self.graph_path(&["me"]);
        let answer = self.get(
            &url,
            &[
                ("fields", "user_id,username"),
                ("access_token", token.expose()),
            ],
            &[token.expose()],
        )?;
        parse_profile(&answer)
    }

    /// `{graph_url}/a/b`, each segment percent-encoded so an id cannot change the path.
    fn graph_path(&self, segments: &[&str]) -> String {
        let mut url = self.graph_url.clone();
        for segment in segments {
            url.push('/');
            url.push_str(&percent_encode(segment));
        }
        url
    }

    fn get(
        &self,
        url: &str,
        query: &[(&str, &str)],
        secrets: &[&str],
    ) -> Result<Value, GraphError> {
        let mut request = self.agent.get(url);
        for (name, value) in query {
            request = request.query(*name, *value);
        }
        finish(request.call(), secrets)
    }

    fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        secrets: &[&str],
    ) -> Result<Value, GraphError> {
        finish(
            self.agent.post(url).send_form(form.iter().copied()),
            secrets,
        )
    }
}

/// Reads an answer and turns it into JSON or a typed error without any secret in it.
fn finish(
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    secrets: &[&str],
) -> Result<Value, GraphError> {
    let mut response = response.map_err(|error| transport_error(&error, secrets))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_vec()
        .map_err(|error| transport_error(&error, secrets))?;
    parse_answer(status, &String::from_utf8_lossy(&body)).map_err(|error| error.redacted(secrets))
}

fn transport_error(error: &ureq::Error, secrets: &[&str]) -> GraphError {
    match error {
        ureq::Error::Timeout(_) => GraphError::Timeout,
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => GraphError::Timeout,
        // "connection refused" reads better in a chat than "io: … (os error 111)".
        ureq::Error::Io(io) if io.kind() != std::io::ErrorKind::Other => {
            GraphError::Network(io.kind().to_string())
        }
        // ureq's texts do not quote the URL today; redacting keeps that true tomorrow.
        other => GraphError::Network(redact(&other.to_string(), secrets)),
    }
}

/// A code pasted from the redirect URL, without the `#_` fragment Instagram appends.
fn clean_code(code: &str) -> &str {
    let code = code.trim();
    code.strip_suffix("#_").unwrap_or(code)
}

// ---- parsing (pure) --------------------------------------------------------------

/// Turns an HTTP status and body into the answer's JSON object or a typed error.
/// Knows the three error shapes: the Graph API's `{"error":{...}}`, api.instagram.com's
/// flat `{"error_type","code","error_message"}`, and OAuth's `{"error":"..."}`.
fn parse_answer(status: u16, body: &str) -> Result<Value, GraphError> {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    if let Some(error) = parsed.as_ref().and_then(|value| error_in(status, value)) {
        return Err(error);
    }
    if !(200..300).contains(&status) {
        return Err(GraphError::Api {
            http_status: status,
            code: None,
            subcode: None,
            message: format!("HTTP {status}"),
        });
    }
    match parsed {
        Some(value @ Value::Object(_)) => Ok(value),
        Some(_) => Err(GraphError::Garbage(
            "the answer is not a JSON object".into(),
        )),
        None => Err(GraphError::Garbage(describe_body(body))),
    }
}

fn error_in(status: u16, value: &Value) -> Option<GraphError> {
    let api_error = |code: Option<i64>, subcode: Option<i64>, message: Option<&str>| {
        let message = message.map(str::trim).filter(|m| !m.is_empty());
        GraphError::Api {
            http_status: status,
            code,
            subcode,
            message: truncate(message.unwrap_or("no message"), MAX_MESSAGE_CHARS),
        }
    };
    match value.get("error") {
        Some(error @ Value::Object(_)) => Some(api_error(
            int_field(error, "code"),
            int_field(error, "error_subcode"),
            error.get("message").and_then(Value::as_str),
        )),
        Some(Value::String(kind)) => Some(api_error(
            int_field(value, "code"),
            None,
            value
                .get("error_description")
                .or_else(|| value.get("error_message"))
                .and_then(Value::as_str)
                .or(Some(kind)),
        )),
        _ if value.get("error_type").is_some() || value.get("error_message").is_some() => {
            Some(api_error(
                int_field(value, "code"),
                None,
                value.get("error_message").and_then(Value::as_str),
            ))
        }
        _ => None,
    }
}

fn parse_quota(answer: &Value) -> Result<Quota, GraphError> {
    let entry = answer
        .get("data")
        .and_then(Value::as_array)
        .and_then(|data| data.first())
        .ok_or_else(|| GraphError::Garbage("no quota in the answer".into()))?;
    let used = int_field(entry, "quota_usage")
        .ok_or_else(|| GraphError::Garbage("no quota_usage in the answer".into()))?;
    let total = entry
        .get("config")
        .and_then(|config| int_field(config, "quota_total"))
        .map_or(DEFAULT_QUOTA_TOTAL, clamp_u32);
    Ok(Quota {
        used: clamp_u32(used),
        total,
    })
}

fn parse_id(answer: &Value) -> Result<String, GraphError> {
    id_field(answer, "id").ok_or_else(|| GraphError::Garbage("no id in the answer".into()))
}

fn parse_container_status(answer: &Value) -> Result<ContainerStatus, GraphError> {
    let code = answer
        .get("status_code")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::Garbage("no status_code in the answer".into()))?;
    let detail = answer
        .get("status")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(|text| truncate(text, MAX_MESSAGE_CHARS));
    Ok(ContainerStatus {
        code: StatusCode::parse(code),
        detail,
    })
}

/// A token answer: `{"access_token","token_type","expires_in"}`.
fn parse_token(answer: &Value) -> Result<(Secret, i64), GraphError> {
    let token = answer
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| GraphError::Garbage("no access_token in the answer".into()))?;
    let expires_in = int_field(answer, "expires_in").unwrap_or(LONG_LIVED_TOKEN_SECS);
    Ok((Secret::new(token), expires_in))
}

/// The code exchange answers `{"data":[{...}]}` or the object itself; `user_id` may be
/// a number or a string, `permissions` a comma-separated string or a list.
fn parse_short_lived(answer: &Value) -> Result<ShortLived, GraphError> {
    let entry = match answer.get("data") {
        Some(Value::Array(data)) => data
            .first()
            .ok_or_else(|| GraphError::Garbage("an empty data list in the answer".into()))?,
        _ => answer,
    };
    let token = entry
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| GraphError::Garbage("no access_token in the answer".into()))?;
    let user_id = id_field(entry, "user_id")
        .ok_or_else(|| GraphError::Garbage("no user_id in the answer".into()))?;
    let permissions = match entry.get("permissions") {
        Some(Value::String(list)) => list
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    Ok(ShortLived {
        token: Secret::new(token),
        user_id,
        permissions,
    })
}

fn parse_profile(answer: &Value) -> Result<Profile, GraphError> {
    // `id` is app-scoped and does not work in publishing calls, so it is no fallback.
    let user_id = id_field(answer, "user_id")
        .ok_or_else(|| GraphError::Garbage("no user_id in the profile".into()))?;
    let username = answer
        .get("username")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| GraphError::Garbage("no username in the profile".into()))?;
    Ok(Profile {
        user_id,
        username: username.to_string(),
    })
}

/// An id that Instagram sends as a string or, in some answers, as a number.
fn id_field(value: &Value, name: &str) -> Option<String> {
    match value.get(name)? {
        Value::String(id) if !id.trim().is_empty() => Some(id.trim().to_string()),
        Value::Number(id) if id.is_u64() || id.is_i64() => Some(id.to_string()),
        _ => None,
    }
}

fn int_field(value: &Value, name: &str) -> Option<i64> {
    match value.get(name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn clamp_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// What a Garbage error says about a body: a short quote, unless it may hold a token.
fn describe_body(body: &str) -> String {
    if body.trim().is_empty() {
        "an empty answer".to_string()
    } else if body.contains("access_token") {
        format!("an answer that is not JSON ({} bytes)", body.len())
    } else {
        format!("not JSON: {:?}", truncate(body, 60))
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

fn without_period(text: &str) -> &str {
    text.trim().trim_end_matches('.')
}

/// Removes each secret from `text`, as it is and as it appears percent-encoded in a URL.
fn redact(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_string();
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        text = text.replace(secret, "<redacted>");
        if let Cow::Owned(encoded) = percent_encode(secret) {
            text = text.replace(&encoded, "<redacted>");
        }
    }
    text
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> Cow<'_, str> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if text.bytes().all(unreserved) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api(http_status: u16, code: Option<i64>, subcode: Option<i64>, message: &str) -> GraphError {
        GraphError::Api {
            http_status,
            code,
            subcode,
            message: message.to_string(),
        }
    }

    #[test]
    fn answers_and_error_shapes() {
        let cases: &[(u16, &str, Result<Value, GraphError>)] = &[
            (200, r#"{"id":"1790"}"#, Ok(json!({"id": "1790"}))),
            (
                400,
                r#"{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":190,"fbtrace_id":"A1"}}"#,
                Err(api(
                    400,
                    Some(190),
                    None,
                    "Invalid OAuth access token - Cannot parse access token",
                )),
            ),
            (
                400,
                r#"{"error":{"message":"Media ID is not available","type":"OAuthException","code":9007,"error_subcode":2207027,"fbtrace_id":"A2"}}"#,
                Err(api(
                    400,
                    Some(9007),
                    Some(2_207_027),
                    "Media ID is not available",
                )),
            ),
            (
                400,
                r#"{"error_type":"OAuthException","code":400,"error_message":"Matching code was not found or was already used"}"#,
                Err(api(
                    400,
                    Some(400),
                    None,
                    "Matching code was not found or was already used",
                )),
            ),
            (
                400,
                r#"{"error":"invalid_request","error_description":"redirect_uri does not match"}"#,
                Err(api(400, None, None, "redirect_uri does not match")),
            ),
            (
                200,
                r#"{"error":{"code":"2","message":"  "}}"#,
                Err(api(200, Some(2), None, "no message")),
            ),
            (
                502,
                "<html>Bad Gateway</html>",
                Err(api(502, None, None, "HTTP 502")),
            ),
            (404, "", Err(api(404, None, None, "HTTP 404"))),
            (
                200,
                "{\"id\":tru<<<",
                Err(GraphError::Garbage(
                    "not JSON: \"{\\\"id\\\":tru<<<\"".into(),
                )),
            ),
            (200, "", Err(GraphError::Garbage("an empty answer".into()))),
            (
                200,
                "[1,2]",
                Err(GraphError::Garbage(
                    "the answer is not a JSON object".into(),
                )),
            ),
        ];
        for (status, body, expected) in cases {
            assert_eq!(&parse_answer(*status, body), expected, "{status} {body}");
        }
    }

    #[test]
    fn garbage_never_quotes_a_token() {
        let error = parse_answer(200, r#"{"access_token":"IGAAsecret"#).unwrap_err();
        assert!(matches!(&error, GraphError::Garbage(d) if !d.contains("IGAAsecret")));
    }

    #[test]
    fn short_lived_in_both_shapes() {
        let wrapped = json!({"data": [{
            "access_token": "short-1",
            "user_id": "17841400000000001",
            "permissions": "instagram_business_basic, instagram_business_content_publish",
        }]});
        let flat = json!({
            "access_token": "short-1",
            "user_id": 17_841_400_000_000_001_u64,
            "permissions": ["instagram_business_basic", "instagram_business_content_publish"],
        });
        let expected = ShortLived {
            token: Secret::new("short-1"),
            user_id: "17841400000000001".into(),
            permissions: vec![
                "instagram_business_basic".into(),
                "instagram_business_content_publish".into(),
            ],
        };
        assert_eq!(parse_short_lived(&wrapped), Ok(expected.clone()));
        assert_eq!(parse_short_lived(&flat), Ok(expected));
        let bare = json!({"access_token": "t", "user_id": 5});
        assert_eq!(
            parse_short_lived(&bare).unwrap().permissions,
            Vec::<String>::new()
        );
        for broken in [
            json!({"data": []}),
            json!({"data": [{"user_id": "5"}]}),
            json!({"access_token": "t"}),
            json!({"access_token": "t", "user_id": 1.5}),
            json!({"access_token": "", "user_id": "5"}),
        ] {
            assert!(
                matches!(parse_short_lived(&broken), Err(GraphError::Garbage(_))),
                "{broken}"
            );
        }
    }

    #[test]
    fn ids_profiles_tokens_quotas_and_statuses() {
        assert_eq!(parse_id(&json!({"id": "17900"})), Ok("17900".into()));
        assert_eq!(parse_id(&json!({"id": 17900})), Ok("17900".into()));
        assert!(parse_id(&json!({"id": null})).is_err());
        assert!(parse_id(&json!({"id": ""})).is_err());

        assert_eq!(
            parse_profile(&json!({"user_id": 1784, "username": "shop", "id": "99"})),
            Ok(Profile {
                user_id: "1784".into(),
                username: "shop".into()
            })
        );
        assert!(parse_profile(&json!({"id": "99", "username": "shop"})).is_err());
        assert!(parse_profile(&json!({"user_id": "1"})).is_err());

        let (token, expires_in) = parse_token(
            &json!({"access_token": "IGAAnew", "token_type": "bearer", "expires_in": 5_184_000}),
        )
        .unwrap();
        assert_eq!((token.expose(), expires_in), ("IGAAnew", 5_184_000));
        assert_eq!(
            parse_token(&json!({"access_token": "x"})).unwrap().1,
            LONG_LIVED_TOKEN_SECS
        );
        assert!(parse_token(&json!({"token_type": "bearer"})).is_err());

        assert_eq!(
            parse_quota(
                &json!({"data": [{"quota_usage": 3, "config": {"quota_total": 50, "quota_duration": 86400}}]})
            ),
            Ok(Quota { used: 3, total: 50 })
        );
        assert_eq!(
            parse_quota(&json!({"data": [{"quota_usage": 0}]})),
            Ok(Quota { used: 0, total: 25 })
        );
        assert!(parse_quota(&json!({"data": []})).is_err());
        assert!(parse_quota(&json!({"data": [{"config": {}}]})).is_err());
        assert!(Quota {
            used: 25,
            total: 25
        }
        .is_reached());
        assert_eq!(
            Quota {
                used: 30,
                total: 25
            }
            .remaining(),
            0
        );

        let status = |v: Value| parse_container_status(&v).unwrap();
        assert_eq!(
            status(json!({"status_code": "ERROR", "status": "Error: 2207026", "id": "1"})),
            ContainerStatus {
                code: StatusCode::Error,
                detail: Some("Error: 2207026".into())
            }
        );
        assert_eq!(
            status(json!({"status_code": "IN_PROGRESS"})).code,
            StatusCode::InProgress
        );
        assert_eq!(
            status(json!({"status_code": "FINISHED", "status": ""})).detail,
            None
        );
        assert_eq!(
            status(json!({"status_code": "EXPIRED"})).code,
            StatusCode::Expired
        );
        assert_eq!(
            status(json!({"status_code": "PUBLISHED"})).code,
            StatusCode::Published
        );
        assert_eq!(
            status(json!({"status_code": "NEW"})).code,
            StatusCode::Other("NEW".into())
        );
        assert!(parse_container_status(&json!({"status": "x"})).is_err());
    }

    #[test]
    fn classification_and_plain_words() {
        // (error, token problem, not ready, rate limited, transient, plain words)
        let cases: Vec<(GraphError, [bool; 4], &str)> = vec![
            (
                api(
                    400,
                    Some(190),
                    Some(463),
                    "Error validating access token: Session has expired",
                ),
                [true, false, false, false],
                "Instagram says the access token has expired; reconnect the account.",
            ),
            (
                api(400, Some(190), None, "Invalid OAuth access token"),
                [true, false, false, false],
                "Instagram says the access token is no longer valid; reconnect the account.",
            ),
            (
                api(
                    400,
                    Some(9007),
                    Some(2_207_027),
                    "Media ID is not available",
                ),
                [false, true, false, false],
                "Instagram has not finished processing the media yet.",
            ),
            (
                api(400, Some(4), None, "Application request limit reached"),
                [false, false, true, true],
                "Instagram is limiting requests right now; try again later.",
            ),
            (
                api(429, None, None, "HTTP 429"),
                [false, false, true, true],
                "Instagram is limiting requests right now; try again later.",
            ),
            (
                api(500, Some(2), None, "Service temporarily unavailable"),
                [false, false, false, true],
                "Instagram had a problem on its side (HTTP 500); try again later.",
            ),
            (
                api(
                    400,
                    Some(9),
                    Some(2_207_042),
                    "Application request limit reached",
                ),
                [false, false, false, false],
                "Instagram says the account has reached its limit of posts for the last 24 hours.",
            ),
            (
                api(400, Some(100), None, "The aspect ratio is not supported."),
                [false, false, false, false],
                "Instagram refused the request: The aspect ratio is not supported.",
            ),
            (
                GraphError::Timeout,
                [false, false, false, true],
                "Instagram could not be reached (timed out).",
            ),
            (
                GraphError::Network("connection refused".into()),
                [false, false, false, true],
                "Instagram could not be reached (connection refused).",
            ),
            (
                GraphError::Garbage("not JSON".into()),
                [false, false, false, true],
                "Instagram sent an answer Storyline could not read; try again later.",
            ),
        ];
        for (error, [token, not_ready, rate_limited, transient], words) in cases {
            assert_eq!(
                [
                    error.is_token_problem(),
                    error.is_not_ready(),
                    error.is_rate_limited(),
                    error.is_transient()
                ],
                [token, not_ready, rate_limited, transient],
                "{error}"
            );
            assert_eq!(error.plain_words(), words);
        }
    }

    #[test]
    fn display_for_logs() {
        assert_eq!(
            api(
                400,
                Some(9007),
                Some(2_207_027),
                "Media ID is not available"
            )
            .to_string(),
            "Instagram error 9007/2207027 (HTTP 400): Media ID is not available"
        );
        assert_eq!(
            api(502, None, None, "HTTP 502").to_string(),
            "Instagram error (HTTP 502): HTTP 502"
        );
    }

    #[test]
    fn secrets_are_redacted_raw_and_encoded() {
        let secrets = ["IGAA|tok en", "code123"];
        assert_eq!(
            redact(
                "GET /me?access_token=IGAA%7Ctok%20en failed for code123",
                &secrets
            ),
            "GET /me?access_token=<redacted> failed for <redacted>"
        );
        assert_eq!(redact("x IGAA|tok en y", &secrets), "x <redacted> y");
        assert_eq!(redact("nothing", &[""]), "nothing");
        let error = api(400, Some(100), None, "bad token IGAA|tok en").redacted(&secrets);
        assert!(!error.to_string().contains("tok en"));
        assert!(!error.plain_words().contains("tok en"));
    }

    #[test]
    fn codes_and_paths() {
        assert_eq!(clean_code(" AQBx#_ "), "AQBx");
        assert_eq!(clean_code("AQBx"), "AQBx");
        let graph = Graph::new("http://graph.test/v21.0/", "http://api.test/");
        assert_eq!(
            graph.graph_path(&["1784", "media"]),
            "http://graph.test/v21.0/1784/media"
        );
        assert_eq!(
            graph.graph_path(&["../x?y"]),
            "http://graph.test/v21.0/..%2Fx%3Fy"
        );
        assert_eq!(graph.api_url, "http://api.test");
        assert!(!format!("{graph:?}").is_empty());
    }

    #[test]
    fn parsing_never_panics() {
        let mut seed: u64 = 0x1234_5678_9ABC_DEF1;
        let pieces: Vec<&str> = "{ } [ ] , : \"error\" \"code\" \"error_subcode\" \"message\" \
             \"error_type\" \"error_message\" \"data\" \"id\" \"user_id\" \"access_token\" \
             \"permissions\" \"quota_usage\" \"config\" \"quota_total\" \"status_code\" \
             \"expires_in\" \"FINISHED\" 190 -1 1e400 18446744073709551616 null true \"\" \u{0} é"
            .split_whitespace()
            .collect();
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5000 {
            let mut body = String::new();
            for _ in 0..(next() % 24) {
                body.push_str(pieces[(next() % pieces.len() as u64) as usize]);
            }
            let status = (next() % 600) as u16;
            if let Ok(value) = parse_answer(status, &body) {
                let _ = parse_quota(&value);
                let _ = parse_id(&value);
                let _ = parse_container_status(&value);
                let _ = parse_token(&value);
                let _ = parse_short_lived(&value);
                let _ = parse_profile(&value);
            }
            if let Err(error) = parse_answer(status, &body) {
                let _ = (error.plain_words(), error.to_string(), error.is_transient());
            }
        }
        // Random bodies are rarely JSON objects, so also build well-formed trees out of
        // the keys the parsers look for, with values of every type.
        fn tree(next: &mut dyn FnMut() -> u64, depth: u32) -> Value {
            let keys: Vec<&str> = "error code error_subcode message error_type error_message data \
                 id user_id username access_token permissions quota_usage config quota_total \
                 status_code status expires_in"
                .split_whitespace()
                .collect();
            match next() % if depth > 3 { 6 } else { 8 } {
                0 => Value::Null,
                1 => json!(next() & 1 == 0),
                2 => json!(next() as i64),
                3 => json!(f64::from((next() % 1000) as u32) / 7.0),
                4 => json!(["", "FINISHED", "a,b", "190", "-3", "x"][(next() % 6) as usize]),
                5 => json!(next()),
                6 => Value::Array((0..next() % 3).map(|_| tree(next, depth + 1)).collect()),
                _ => Value::Object(
                    (0..next() % 5)
                        .map(|_| {
                            let key = keys[(next() % keys.len() as u64) as usize].to_string();
                            (key, tree(next, depth + 1))
                        })
                        .collect(),
                ),
            }
        }
        for _ in 0..5000 {
            let value = tree(&mut next, 0);
            let body = value.to_string();
            let _ = parse_answer((next() % 600) as u16, &body).map_err(|e| e.plain_words());
            let _ = parse_quota(&value);
            let _ = parse_id(&value);
            let _ = parse_container_status(&value);
            let _ = parse_token(&value);
            let _ = parse_short_lived(&value);
            let _ = parse_profile(&value);
        }
    }
}
