//! Part `instagram/` (an adapter): everything about the Graph API and nothing else.
//! Knows no handler: it never touches the database or a chat.
//!
//! The Instagram API with Instagram Login: publishing a story (container, status,
//! publish), the publishing quota, token refresh, the OAuth exchange that connects
//! an account, and what a story did: its insights and the account's live stories.
//! Only this module knows Instagram's JSON.
//!
//! Two hosts are involved: `graph.instagram.com` for almost everything, and
//! `api.instagram.com` for the one OAuth call that turns an authorization code into a
//! short-lived token. Both are configurable so the tests can point them at a fake.
//!
//! The Graph API version is pinned (`GRAPH_API_VERSION`, checked against Meta's Graph
//! API changelog and the Instagram `/me` reference, which show v26.0): every node and
//! edge call goes to `graph.instagram.com/v26.0/…`. The two token calls the reference
//! shows without a version — `GET /access_token` and `GET /refresh_access_token` — go
//! to the bare host, and the code exchange to `api.instagram.com/oauth/access_token`.
//!
//! What to do about a failed call (try again, make a new container, ask the chat, or
//! give up) is decided in one place, `error_action`, from Meta's error tables.
//!
//! Tokens travel in the `access_token` form field of a POST and in the query string of
//! a GET, so they are part of some URLs. Every error text is therefore built here, and
//! every secret of the call (token, app secret, authorization code) is removed from
//! anything quoted from elsewhere: a `GraphError` can go to a log or a chat as it is.

pub use crate::config::{
    unversioned_graph_url, versioned_graph_url, DEFAULT_GRAPH_URL, GRAPH_API_VERSION,
};
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::secret::Secret;

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
/// The message of an error answer that carried none.
const NO_MESSAGE: &str = "no message";

/// Instagram's error codes and subcodes that the texts for people branch on; what to
/// do about each is `error_action`'s job.
const CODE_TOKEN: i64 = 190;
const CODE_NOT_READY: i64 = 9007;
const SUBCODE_NOT_READY: i64 = 2_207_027;
const SUBCODE_TOKEN_EXPIRED: i64 = 463;
const SUBCODE_DAILY_LIMIT: i64 = 2_207_042;
const CODES_RATE_LIMIT: &[i64] = &[4, 17, 32, 341, 613, 80_002];

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

impl ShortLived {
    /// Whether the person granted `instagram_business_manage_insights` at login;
    /// `None` when Instagram sent no list of permissions (every login grants
    /// `instagram_business_basic`, so an empty list means none was sent).
    pub fn has_insights_permission(&self) -> Option<bool> {
        if self.permissions.is_empty() {
            return None;
        }
        Some(self.permissions.iter().any(|p| p == INSIGHTS_PERMISSION))
    }
}

// ---- story insights and live stories ----------------------------------------------
//
// Where the shapes come from (read in the stored copies of Meta's documentation):
// - [Insights] "Instagram Media Insights", Instagram Platform reference,
//   developers.facebook.com/documentation/instagram-platform/reference/instagram-media/insights
//   (updated 18 June 2026): `GET /<INSTAGRAM_MEDIA_ID>/insights`; "If insights data you
//   are requesting does not exist or is currently unavailable, the API returns an empty
//   data set instead of 0"; story metrics "are only available for 24 hours"; error 10
//   "with the message (#10) Not enough viewers for the media to show insights"; `views`
//   introduced for STORY, `impressions` refused for media created after 2 July 2024.
// - [Insights FB] the same reference for the Instagram API with Facebook Login
//   (developers.facebook.com/docs/instagram-api/reference/ig-media/insights), in a copy
//   quoted in public code: the story metrics and their breakdowns (`navigation` by
//   `story_navigation_action_type`: TAP_BACK, TAP_EXIT, TAP_FORWARD, SWIPE_FORWARD), "If
//   you request a metric that doesn't support breakdowns, the API will return an error",
//   the answer `{"data":[{"name","period","values":[{"value"}],"title","description",
//   "total_value":{"value","breakdowns":[{"dimension_keys":[..],"results":[{
//   "dimension_values":[..],"value"}]}]},"id"}]}`, its sample story answer (lower-case
//   `tap_forward`, `tap_back`, `tap_exit`, `swipe_forward`), and "Story media metrics
//   with values less than 5 return an error code 10 with the message (#10) Not enough
//   viewers for the media to show insights".
// - [Guide] "Insights", Instagram Platform,
//   developers.facebook.com/documentation/instagram-platform/insights: the Instagram
//   Login needs `instagram_business_basic` and `instagram_business_manage_insights`;
//   timestamps are ISO 8601 in UTC, "2019-04-05T07:56:32+0000".
// - [Stories] "Stories", IG User reference,
//   developers.facebook.com/documentation/instagram-platform/instagram-graph-api/reference/ig-user/stories
//   (updated 21 January 2025): `GET /{ig-user-id}/stories`, `{"data":[{"id"},..]}`,
//   "Stories are only available for 24 hours", no live video stories, no reshares.
// - [Paging] "Paginated Results", Graph API,
//   developers.facebook.com/docs/graph-api/results: `paging.cursors.after`, and `next`:
//   "If not included, this is the last page of data"; a page may be empty and still
//   carry `next`.
// - [copy] the missing-permission answer, "(#10) Application does not have permission
//   for this action", as public clients of the insights edge handle it (Airbyte's
//   Instagram source, airbytehq/airbyte#32245); the Graph API's "Handling Errors" lists
//   code 10 and 200–299 as permission errors.

/// The permission `GET /{media-id}/insights` needs with the Instagram Login [Guide].
pub const INSIGHTS_PERMISSION: &str = "instagram_business_manage_insights";

/// The story metrics read in one call; `navigation` needs its breakdown, and a
/// breakdown fails every metric that has none [Insights FB], so it has a call of its own.
const STORY_METRICS: &str = "views,reach,replies,shares,total_interactions,follows,profile_visits";
const NAVIGATION_METRIC: &str = "navigation";
const NAVIGATION_BREAKDOWN: &str = "story_navigation_action_type";
/// Fields of a live story: enough to match a story posted by hand by its time.
const STORY_FIELDS: &str = "id,timestamp,media_type";
/// Pages of `/stories` followed at most. Stories live 24 hours and a page holds 25 by
/// default, so a few pages cover any account; the bound keeps a looping cursor harmless.
const MAX_STORY_PAGES: usize = 4;
/// Stories kept from a whole walk of `/stories`.
const MAX_LIVE_STORIES: usize = 200;
/// Entries of one insights answer looked at (a real one has one per metric asked for).
const MAX_INSIGHT_ENTRIES: usize = 32;

/// What Instagram said about a story's insights: each outcome is a normal answer, to
/// be stored as such. A token without `instagram_business_manage_insights` is no
/// outcome but an error, `GraphError::is_missing_permission`, because only the
/// account's owner can change it and every later read would fail the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoryInsights {
    /// Numbers, each one `None` when Instagram left that metric out.
    Numbers(StoryNumbers),
    /// Error #10: too few people saw the story for Instagram to show insights.
    NotEnoughViewers,
    /// An empty data set: the numbers do not exist (yet) or no longer (after 24 hours).
    NoData,
}

/// A story's lifetime numbers [Insights], as far as Instagram sent them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoryNumbers {
    pub views: Option<u64>,
    pub reach: Option<u64>,
    pub replies: Option<u64>,
    pub shares: Option<u64>,
    pub total_interactions: Option<u64>,
    pub follows: Option<u64>,
    pub profile_visits: Option<u64>,
    pub navigation: Navigation,
}

/// The `navigation` metric and its `story_navigation_action_type` breakdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Navigation {
    /// All navigation actions together.
    pub total: Option<u64>,
    /// On to the next story of the same account.
    pub tap_forward: Option<u64>,
    pub tap_back: Option<u64>,
    /// Left the stories.
    pub tap_exit: Option<u64>,
    /// On to the next account's stories.
    pub swipe_forward: Option<u64>,
}

/// A story on the account now (stories live 24 hours), from `GET /{ig-user-id}/stories`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveStory {
    pub id: String,
    /// When it was posted.
    pub timestamp: DateTime<Utc>,
    pub media_type: MediaType,
}

/// A media's `media_type`; a story is an IMAGE or a VIDEO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaType {
    Image,
    Video,
    /// A type this version does not know, as Instagram wrote it (empty when left out).
    Other(String),
}

impl MediaType {
    fn parse(text: &str) -> MediaType {
        match text {
            "IMAGE" => MediaType::Image,
            "VIDEO" => MediaType::Video,
            other => MediaType::Other(truncate(other, 40)),
        }
    }
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
        /// `is_transient`, when Instagram said whether trying again may help.
        transient: Option<bool>,
        /// `error_user_msg`: Instagram's own sentence for a person, when it sent one.
        user_message: Option<String>,
    },
    /// No answer: refused, reset, DNS, TLS.
    Network(String),
    Timeout,
    /// An answer that is not the JSON this call expects.
    Garbage(String),
}

/// What to do about a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// Make the same call again after a delay, with the same container.
    Retry,
    /// Start over with a new container: Instagram cannot use this one.
    Recreate,
    /// The story may be live already: the chat decides (a publish without an answer).
    Ask,
    /// Stop: a person posts the story, shown Instagram's own reason.
    GiveUp,
}

/// The call that failed, for the one case where it changes the action: a publish that
/// got no answer may have published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    CreateContainer,
    ContainerStatus,
    Publish,
    /// Quota, profile and token calls.
    Other,
}

/// What to do about an error answer, from its `code`, `error_subcode` and
/// `is_transient`: the one place that knows Meta's error tables. Pure.
///
/// Where each row comes from (read in the stored copies of Meta's documentation):
/// - [IG] "Error Codes", Instagram Platform reference,
///   developers.facebook.com/documentation/instagram-platform/instagram-graph-api/reference/error-codes
///   (updated 2 June 2026), the content-publishing table. Read there with code, subcode,
///   message and recommended solution: -2/2207003, -2/2207020, -1/2207001, -1/2207032,
///   -1/2207053, 1/2207057, 4/2207051, 9/2207042, and 36000/2207004 (its sample answer).
/// - [IG text] the next four rows of that table, whose recommended solutions were legible
///   in the stored copy (developers.secure.facebook.com/docs/instagram-api/reference/error-codes)
///   but whose code and subcode were not; those come from copies of the table quoted in
///   public code: 24/2207006, 24/2207008, 25/2207050, 100/2207023.
/// - [copy] rows not legible in the stored reference at all, known only from those
///   copies: 100/2207028, 100/2207035–2207037, 100/2207040, 352/2207026, 9004/2207052,
///   9007/2207027, 36001/2207005, 36003/2207009, 36004/2207010.
/// - [Graph] "Handling Errors", Graph API guide,
///   developers.facebook.com/docs/graph-api/guides/error-handling: codes 1, 2, 3, 4, 10,
///   17, 102, 190, 200–299, 341, 368, 506.
/// - [none] not found in the stored reference, our own call: rate-limit codes 32, 613 and
///   80002, code 100 without a listed subcode, and what to do with rows not listed.
pub fn error_action(
    code: Option<i64>,
    subcode: Option<i64>,
    is_transient: Option<bool>,
) -> ErrorAction {
    use ErrorAction::{GiveUp, Recreate, Retry};
    // A subcode names its row whatever code comes with it: code 4 alone is a rate
    // limit, but 4/2207051 is an anti-spam block.
    let by_subcode = match subcode {
        // [IG] -2 "It takes too long to download the media." → "Try again."
        Some(2_207_003) => Some(Retry),
        // [IG] -2 "The media you are trying to access has expired." → a new container.
        Some(2_207_020) => Some(Recreate),
        // [IG] -1 "Instagram server error. Try again."
        Some(2_207_001) => Some(Retry),
        // [IG] -1 "Create media fail, please try to re-create media".
        Some(2_207_032) => Some(Recreate),
        // [IG] -1 "unknown upload error" → "Generate a new container".
        Some(2_207_053) => Some(Recreate),
        // [IG] 1 thumbnail offset out of bounds: Storyline sends none; a retry repeats it.
        Some(2_207_057) => Some(GiveUp),
        // [IG] 4 "We restrict certain activity to protect our community": suspected spam.
        // Never retried, since pushing against an anti-spam block only deepens it.
        Some(2_207_051) => Some(GiveUp),
        // [IG] 9 the daily publishing limit → "try again the following day".
        Some(2_207_042) => Some(GiveUp),
        // [IG text] 24 media not found: "possible permission error due to missing
        // permission or expired token. Generate a new container".
        Some(2_207_006) => Some(Recreate),
        // [IG text] 24 media builder expired: "Try again 1–2 times in the next 30 seconds
        // to 2 minutes. If unsuccessful, generate a new container ID": retried, and the
        // publisher makes a new container when its retries run out.
        Some(2_207_008) => Some(Retry),
        // [IG text] 25 the account is inactive, checkpointed or restricted: only its
        // owner can fix that, in the Instagram app.
        Some(2_207_050) => Some(GiveUp),
        // [IG text] 100 unknown media type; [copy] 100 carousel size, product tags and
        // @-tags: requests Storyline never makes, so nothing a retry could change.
        Some(2_207_023 | 2_207_028 | 2_207_035 | 2_207_036 | 2_207_037 | 2_207_040) => Some(GiveUp),
        // [copy] 352 video format not supported (MOV or MP4).
        Some(2_207_026) => Some(GiveUp),
        // [copy] 9004 "media could not be fetched from this URI": Instagram could not
        // reach Storyline's web page. One new container covers a passing outage of the
        // Pi's connection; a wrong public_url fails again and is then reported.
        Some(2_207_052) => Some(Recreate),
        // [copy] 9007 media not ready for publishing: publish again a little later.
        Some(2_207_027) => Some(Retry),
        // [IG] 36000 image too large; [copy] 36001 image format, 36003 aspect ratio,
        // 36004 caption too long: the file itself has to change.
        Some(2_207_004 | 2_207_005 | 2_207_009 | 2_207_010) => Some(GiveUp),
        _ => None,
    };
    if let Some(action) = by_subcode {
        return action;
    }
    match code {
        // [Graph] 1 "API Unknown" and 2 "API Service": a temporary issue, wait and retry.
        Some(1 | 2) => Retry,
        // [Graph] 4, 17 and 341: throttling, wait and retry. [none] 32, 613 and 80002 are
        // rate limits too.
        Some(4 | 17 | 32 | 341 | 613 | 80_002) => Retry,
        // [copy] 9007 without its subcode: not ready yet. 9004: the fetch failed.
        Some(9007) => Retry,
        Some(9004) => Recreate,
        // [Graph] 3 capability, 10 and 200–299 permission, 102 session, 190 token: the
        // account must be reconnected (or the app fixed); repeating changes nothing.
        Some(3 | 10 | 102 | 190 | 200..=299) => GiveUp,
        // [Graph] 368 "temporarily blocked for policies violations" says to wait and
        // retry; within one story's minutes that only repeats the blocked action, so a
        // person decides.
        Some(368) => GiveUp,
        // [Graph] 506 duplicate post. [none] 100 invalid parameter: the request is wrong.
        Some(100 | 506) => GiveUp,
        // [none] Any other answer: Instagram's own `is_transient` decides; without it,
        // give up rather than repeat blindly.
        _ if is_transient == Some(true) => Retry,
        _ => GiveUp,
    }
}

impl GraphError {
    /// What to do about this error at `call`: `error_action` for Instagram's error
    /// answers; for no answer, or a bare gateway error, try again — except after a
    /// publish, which may have gone through, so the chat is asked.
    pub fn action(&self, call: Call) -> ErrorAction {
        let no_answer = if call == Call::Publish {
            ErrorAction::Ask
        } else {
            ErrorAction::Retry
        };
        match self {
            GraphError::Api {
                code,
                subcode,
                transient,
                ..
            } if code.is_some() || subcode.is_some() => error_action(*code, *subcode, *transient),
            GraphError::Api {
                http_status: 429, ..
            } => ErrorAction::Retry,
            GraphError::Api { http_status, .. } if *http_status >= 500 => no_answer,
            GraphError::Api { transient, .. } => error_action(None, None, *transient),
            GraphError::Network(_) | GraphError::Timeout | GraphError::Garbage(_) => no_answer,
        }
    }

    /// The token expired or was revoked: only reconnecting the account helps.
    pub fn is_token_problem(&self) -> bool {
        self.code() == Some(CODE_TOKEN)
    }

    pub fn is_rate_limited(&self) -> bool {
        match self {
            GraphError::Api {
                http_status, code, ..
            } => *http_status == 429 || code.is_some_and(|c| CODES_RATE_LIMIT.contains(&c)),
            _ => false,
        }
    }

    /// A sentence for a person in the chat, saying what happened and what helps; where
    /// Storyline explains an error, Instagram's own words follow.
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
                } else if self.is_not_enough_viewers() {
                    "Instagram shows no insights for a story seen by so few people.".to_string()
                } else if let Some(explained) = self.explanation() {
                    match self.instagram_words() {
                        Some(words) => format!("{explained} Instagram said: “{words}”"),
                        None => explained.to_string(),
                    }
                } else if self.is_rate_limited() {
                    "Instagram is limiting requests right now; try again later.".to_string()
                } else if self.is_not_ready() {
                    "Instagram has not finished processing the media yet.".to_string()
                } else if *http_status >= 500 {
                    format!("Instagram had a problem on its side (HTTP {http_status}); try again later.")
                } else {
                    let words = self.instagram_words().unwrap_or(message);
                    format!("Instagram refused the request: {}.", without_period(words))
                }
            }
        }
    }

    /// Storyline's sentence for the errors whose own words do not say what helps.
    fn explanation(&self) -> Option<&'static str> {
        explain(self.code(), self.subcode())
    }

    /// Instagram's own sentence: its message for people if it sent one, else its message;
    /// `None` when the error carried no words of Instagram's.
    fn instagram_words(&self) -> Option<&str> {
        match self {
            GraphError::Api {
                http_status,
                message,
                user_message,
                ..
            } => user_message
                .as_deref()
                .or(Some(message.as_str()))
                .filter(|words| {
                    *words != NO_MESSAGE && *words != format!("HTTP {http_status}").as_str()
                }),
            _ => None,
        }
    }

    /// Error #10 "Not enough viewers for the media to show insights" [Insights]: a
    /// normal answer about a little-seen story. Code 10 is also the Graph API's
    /// permission error ("(#10) Application does not have permission for this
    /// action" [copy]), so only Instagram's words tell the two apart.
    pub fn is_not_enough_viewers(&self) -> bool {
        match self {
            GraphError::Api {
                code: Some(10),
                message,
                user_message,
                ..
            } => [Some(message.as_str()), user_message.as_deref()]
                .into_iter()
                .flatten()
                .any(|words| words.to_ascii_lowercase().contains("not enough viewers")),
            _ => false,
        }
    }

    /// The token lacks a permission the call needs (for insights,
    /// `instagram_business_manage_insights`): Graph API codes 10 and 200–299 [Graph],
    /// but not the #10 that means too few viewers. Only the account's owner can fix it,
    /// by connecting again and allowing it.
    pub fn is_missing_permission(&self) -> bool {
        matches!(self.code(), Some(10 | 200..=299)) && !self.is_not_enough_viewers()
    }

    /// The container is not ready to publish yet.
    pub fn is_not_ready(&self) -> bool {
        self.code() == Some(CODE_NOT_READY) || self.subcode() == Some(SUBCODE_NOT_READY)
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
                transient,
                user_message,
            } => GraphError::Api {
                http_status,
                code,
                subcode,
                message: redact(&message, secrets),
                transient,
                user_message: user_message.map(|words| redact(&words, secrets)),
            },
            GraphError::Network(detail) => GraphError::Network(redact(&detail, secrets)),
            GraphError::Garbage(detail) => GraphError::Garbage(redact(&detail, secrets)),
            GraphError::Timeout => GraphError::Timeout,
        }
    }
}

/// Storyline's sentence for the errors whose own words do not say what helps, by
/// Meta's code and subcode (a failed container's `status` text names only a subcode).
fn explain(code: Option<i64>, subcode: Option<i64>) -> Option<&'static str> {
    let text = match (code, subcode) {
        (_, Some(SUBCODE_DAILY_LIMIT)) => {
            "Instagram says the account has reached its limit of posts for the last 24 \
                 hours."
        }
        (_, Some(2_207_051)) => {
            "Instagram blocked the post: it restricts activity it takes for spam. \
                 Storyline does not try again, so as not to deepen the block; post this \
                 story by hand, and if it is not spam, tell Instagram in its app."
        }
        (_, Some(2_207_050)) => {
            "Instagram says the account is inactive, checkpointed or restricted; sign in \
                 to the Instagram app and do what it asks."
        }
        (_, Some(2_207_001)) => "Instagram kept failing with a server error.",
        (_, Some(2_207_003)) => {
            "Instagram took too long to download the media from Storyline's web page."
        }
        (_, Some(2_207_052)) | (Some(9004), None) => {
            "Instagram could not download the media from Storyline's web page; check \
                 that [web] public_url is reachable from the internet."
        }
        (_, Some(2_207_006 | 2_207_008 | 2_207_020 | 2_207_032 | 2_207_053)) => {
            "Instagram could not use the uploaded media, not even after a new upload."
        }
        (_, Some(2_207_026)) => "Instagram does not take this video format (MP4 or MOV).",
        (_, Some(2_207_004)) => "The image is too large for Instagram (8 MiB at most).",
        (_, Some(2_207_005)) => "Instagram does not take this image format.",
        (_, Some(2_207_009)) => "Instagram does not take this aspect ratio.",
        // Publishing and insights both come here, so the words name neither.
        (Some(10 | 200..=299), _) => {
            "Instagram says the app lacks a permission for this; reconnect the account \
                 and allow everything Storyline asks for."
        }
        (Some(368), _) => {
            "Instagram has blocked this activity for a while for a policy reason; \
                 Storyline does not push it."
        }
        _ => return None,
    };
    Some(text)
}

impl ContainerStatus {
    /// Storyline's sentence for the subcode the `status` text names, if it has one.
    pub fn explanation(&self) -> Option<&'static str> {
        let subcode = self.detail.as_deref().and_then(subcode_in_text)?;
        explain(None, Some(subcode))
    }

    /// What to do about a container that ended in ERROR or EXPIRED. The `status` text
    /// may name the error's subcode, which `error_action` then reads; a container that
    /// failed is used up, so trying again means a new one.
    pub fn failure_action(&self) -> ErrorAction {
        if self.code == StatusCode::Expired {
            return ErrorAction::Recreate;
        }
        let subcode = self.detail.as_deref().and_then(subcode_in_text);
        match error_action(None, subcode, None) {
            ErrorAction::Retry => ErrorAction::Recreate,
            action => action,
        }
    }
}

/// The first content-publishing subcode (2207xxx) in a text.
fn subcode_in_text(text: &str) -> Option<i64> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|digits| digits.len() == 7 && digits.starts_with("2207"))
        .and_then(|digits| digits.parse().ok())
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::Api {
                http_status,
                code,
                subcode,
                message,
                ..
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
    /// With the API version, for node and edge calls.
    graph_url: String,
    /// Without it, for the token calls the reference shows unversioned.
    graph_root: String,
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
    /// `graph_url` is `https://graph.instagram.com/v26.0` (without a version, the pinned
    /// one is added), `api_url` is `https://api.instagram.com`.
    pub fn new(graph_url: &str, api_url: &str) -> Graph {
        Graph::with_timeout(graph_url, api_url, CALL_TIMEOUT)
    }

    /// Its agent (cheap to clone, one connection pool), for the token
    /// refresh (`accounts::GraphRefresh`) to share.
    pub fn agent(&self) -> ureq::Agent {
        self.agent.clone()
    }

    /// A client whose calls give up after `timeout` (tests use a short one).
    pub fn with_timeout(graph_url: &str, api_url: &str, timeout: Duration) -> Graph {
        let agent = crate::http::agent(timeout, CONNECT_TIMEOUT);
        Graph {
            agent,
            graph_url: versioned_graph_url(graph_url),
            graph_root: unversioned_graph_url(graph_url).to_string(),
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
        let url = format!("{}/refresh_access_token", self.graph_root);
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
        let url = format!("{}/access_token", self.graph_root);
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

    /// A story's insights, in two calls to `GET /{media-id}/insights`: the plain
    /// metrics, then `navigation` with its breakdown (a breakdown asked for with
    /// metrics that have none fails the whole call [Insights FB]).
    ///
    /// Error #10 "not enough viewers" and an empty data set are answers
    /// (`NotEnoughViewers`, `NoData`), not errors. A missing
    /// `instagram_business_manage_insights` is an error that `is_missing_permission`
    /// recognises. Once the metrics are read, the navigation call costs them nothing
    /// unless trying again may help: a breakdown Instagram refuses for good leaves
    /// `navigation` empty, while a timeout or an outage fails the read, to be made again.
    pub fn story_insights(
        &self,
        media_id: &str,
        token: &Secret,
    ) -> Result<StoryInsights, GraphError> {
        let url = self.graph_path(&[media_id, "insights"]);
        let metrics = self.get(
            &url,
            &[("metric", STORY_METRICS), ("access_token", token.expose())],
            &[token.expose()],
        );
        let numbers = match metrics {
            Err(error) if error.is_not_enough_viewers() => {
                return Ok(StoryInsights::NotEnoughViewers)
            }
            Err(error) => return Err(error),
            Ok(answer) => parse_story_insights(&answer)?,
        };
        let Some(mut numbers) = numbers else {
            return Ok(StoryInsights::NoData);
        };
        let navigation = self.get(
            &url,
            &[
                ("metric", NAVIGATION_METRIC),
                ("breakdown", NAVIGATION_BREAKDOWN),
                ("access_token", token.expose()),
            ],
            &[token.expose()],
        );
        match navigation {
            Ok(answer) => {
                if let Some(read) = parse_story_insights(&answer)? {
                    numbers.navigation = read.navigation;
                }
            }
            Err(error) if error.is_not_enough_viewers() => {}
            Err(error)
                if error.action(Call::Other) == ErrorAction::GiveUp
                    && !error.is_token_problem()
                    && !error.is_missing_permission() => {}
            Err(error) => return Err(error),
        }
        Ok(StoryInsights::Numbers(numbers))
    }

    /// The account's stories of the last 24 hours [Stories], in Instagram's order,
    /// following `paging` for at most `MAX_STORY_PAGES` pages. The next page is asked
    /// for here, with the `after` cursor, rather than at the `next` address the answer
    /// gives: that address carries the token, and Storyline sends its token only to
    /// the Graph address it was configured with.
    pub fn live_stories(
        &self,
        ig_user_id: &str,
        token: &Secret,
    ) -> Result<Vec<LiveStory>, GraphError> {
        let url = self.graph_path(&[ig_user_id, "stories"]);
        let mut stories: Vec<LiveStory> = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_STORY_PAGES {
            let mut query = vec![("fields", STORY_FIELDS), ("access_token", token.expose())];
            if let Some(cursor) = after.as_deref() {
                query.push(("after", cursor));
            }
            let answer = self.get(&url, &query, &[token.expose()])?;
            let page = parse_stories_page(&answer)?;
            for story in page.stories {
                if !stories.iter().any(|known| known.id == story.id) {
                    stories.push(story);
                }
            }
            match page.next_cursor {
                Some(next) if after.as_ref() != Some(&next) && stories.len() < MAX_LIVE_STORIES => {
                    after = Some(next);
                }
                _ => break,
            }
        }
        stories.truncate(MAX_LIVE_STORIES);
        Ok(stories)
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
            transient: None,
            user_message: None,
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
    let words = |text: Option<&str>| {
        text.map(str::trim)
            .filter(|text| !text.is_empty())
            .map(|text| truncate(text, MAX_MESSAGE_CHARS))
    };
    let api_error =
        |code: Option<i64>, subcode: Option<i64>, message: Option<&str>| GraphError::Api {
            http_status: status,
            code,
            subcode,
            message: words(message).unwrap_or_else(|| NO_MESSAGE.to_string()),
            transient: None,
            user_message: None,
        };
    match value.get("error") {
        Some(error @ Value::Object(_)) => Some(GraphError::Api {
            http_status: status,
            code: int_field(error, "code"),
            subcode: int_field(error, "error_subcode"),
            message: words(error.get("message").and_then(Value::as_str))
                .unwrap_or_else(|| NO_MESSAGE.to_string()),
            transient: error.get("is_transient").and_then(Value::as_bool),
            user_message: words(error.get("error_user_msg").and_then(Value::as_str)),
        }),
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

/// One insights answer [Insights FB]: the story metrics and the navigation breakdown
/// it holds, each value from `total_value.value` or else `values[0].value`. `None`
/// when it holds no number at all (the empty data set Instagram sends when there are
/// none [Insights]); Garbage when it has no `data` list.
fn parse_story_insights(answer: &Value) -> Result<Option<StoryNumbers>, GraphError> {
    let data = answer
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| GraphError::Garbage("no data list in the insights answer".into()))?;
    let mut numbers = StoryNumbers::default();
    for entry in data.iter().take(MAX_INSIGHT_ENTRIES) {
        let Some(name) = entry.get("name").and_then(Value::as_str) else {
            continue;
        };
        let slot = match name {
            "views" => &mut numbers.views,
            "reach" => &mut numbers.reach,
            "replies" => &mut numbers.replies,
            "shares" => &mut numbers.shares,
            "total_interactions" => &mut numbers.total_interactions,
            "follows" => &mut numbers.follows,
            "profile_visits" => &mut numbers.profile_visits,
            "navigation" => {
                if numbers.navigation == Navigation::default() {
                    numbers.navigation = navigation_in(entry);
                }
                &mut numbers.navigation.total
            }
            _ => continue,
        };
        // The first entry of a name counts; a repeated one changes nothing.
        if slot.is_none() {
            *slot = metric_value(entry);
        }
    }
    Ok((numbers != StoryNumbers::default()).then_some(numbers))
}

/// A metric's value: `total_value.value` (newer answers, and any with a breakdown),
/// else the first of `values`.
fn metric_value(entry: &Value) -> Option<u64> {
    entry
        .get("total_value")
        .and_then(|total| total.get("value"))
        .and_then(count)
        .or_else(|| {
            entry
                .get("values")
                .and_then(Value::as_array)
                .and_then(|values| values.first())
                .and_then(|first| first.get("value"))
                .and_then(count)
        })
}

/// The `story_navigation_action_type` results of a `navigation` entry, by action. The
/// reference lists the actions in capitals and its sample answer shows them in lower
/// case, so case does not matter.
fn navigation_in(entry: &Value) -> Navigation {
    let mut navigation = Navigation {
        total: metric_value(entry),
        ..Navigation::default()
    };
    let breakdowns = entry
        .get("total_value")
        .and_then(|total| total.get("breakdowns"))
        .and_then(Value::as_array);
    for breakdown in breakdowns.into_iter().flatten().take(MAX_INSIGHT_ENTRIES) {
        // Which of the dimension values is the action; a breakdown by other keys only
        // is not this one. Without `dimension_keys` the first value is taken.
        let position = match breakdown.get("dimension_keys").and_then(Value::as_array) {
            Some(keys) => match keys
                .iter()
                .position(|key| key.as_str() == Some(NAVIGATION_BREAKDOWN))
            {
                Some(position) => position,
                None => continue,
            },
            None => 0,
        };
        let results = breakdown.get("results").and_then(Value::as_array);
        for result in results.into_iter().flatten().take(MAX_INSIGHT_ENTRIES) {
            let action = result
                .get("dimension_values")
                .and_then(Value::as_array)
                .and_then(|values| values.get(position))
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            let slot = match action.as_deref() {
                Some("tap_forward") => &mut navigation.tap_forward,
                Some("tap_back") => &mut navigation.tap_back,
                Some("tap_exit") => &mut navigation.tap_exit,
                Some("swipe_forward") => &mut navigation.swipe_forward,
                _ => continue,
            };
            if slot.is_none() {
                *slot = result.get("value").and_then(count);
            }
        }
    }
    navigation
}

/// A count: a whole number of at least zero, sent as a number or as text.
fn count(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64().or_else(|| {
            number
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19)
                .map(|f| f as u64)
        }),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// One page of `GET /{ig-user-id}/stories`.
#[derive(Debug, PartialEq, Eq)]
struct StoriesPage {
    stories: Vec<LiveStory>,
    /// The cursor of the next page, when the answer says there is one [Paging].
    next_cursor: Option<String>,
}

/// A page of stories [Stories] with the fields `STORY_FIELDS` asks for. A story
/// without an id or a readable timestamp makes the page Garbage rather than being left
/// out: the caller matches stories by their time, and a list with a hole could match
/// the wrong one.
fn parse_stories_page(answer: &Value) -> Result<StoriesPage, GraphError> {
    let data = answer
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| GraphError::Garbage("no data list in the stories answer".into()))?;
    let mut stories = Vec::new();
    for entry in data.iter().take(MAX_LIVE_STORIES) {
        let id = id_field(entry, "id")
            .ok_or_else(|| GraphError::Garbage("a story without an id".into()))?;
        let timestamp = entry
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(parse_instagram_time)
            .ok_or_else(|| {
                GraphError::Garbage(format!(
                    "story {}: no readable timestamp",
                    truncate(&id, 40)
                ))
            })?;
        let media_type = MediaType::parse(
            entry
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        stories.push(LiveStory {
            id,
            timestamp,
            media_type,
        });
    }
    let paging = answer.get("paging");
    let has_next = paging
        .and_then(|paging| paging.get("next"))
        .and_then(Value::as_str)
        .is_some_and(|next| !next.trim().is_empty());
    let next_cursor = paging
        .and_then(|paging| paging.get("cursors"))
        .and_then(|cursors| cursors.get("after"))
        .and_then(Value::as_str)
        .filter(|cursor| has_next && !cursor.is_empty() && cursor.len() <= 512)
        .map(str::to_string);
    Ok(StoriesPage {
        stories,
        next_cursor,
    })
}

/// A Graph API time: ISO 8601 with the offset written `+0000` [Guide], or RFC 3339.
fn parse_instagram_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|time| time.with_timezone(&Utc))
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

// ---- token refresh ---------------------------------------------------------------------

/// The HTTP of the token refresh (`accounts::GraphRefresh` reads the answer).
pub struct RefreshClient {
    agent: ureq::Agent,
    /// `[instagram] graph_url` without its API version or a trailing slash: the
    /// reference calls `/refresh_access_token` without a version.
    graph_url: String,
}

/// The longest answer we read from the refresh call; a real one is ~300 bytes.
const MAX_REFRESH_ANSWER_BYTES: u64 = 64 * 1024;
const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);

impl RefreshClient {
    /// With an agent of its own: HTTP errors stay readable, and one call
    /// cannot take more than 30 seconds.
    pub fn new(graph_url: &str) -> RefreshClient {
        let agent = crate::http::agent(REFRESH_TIMEOUT, Duration::from_secs(10));
        RefreshClient {
            agent,
            graph_url: unversioned_graph_url(graph_url).to_string(),
        }
    }

    /// With the agent of `graph` (its timeouts, one connection pool).
    pub fn sharing(graph: &Graph, graph_url: &str) -> RefreshClient {
        RefreshClient {
            agent: graph.agent(),
            graph_url: unversioned_graph_url(graph_url).to_string(),
        }
    }

    /// `GET {graph_url}/refresh_access_token?grant_type=ig_refresh_token&access_token=…`:
    /// the HTTP status and body, or what went wrong in plain words. The token
    /// travels in the query string, so no error text is ever built from the URL
    /// or from ureq's own messages.
    pub fn call(&self, token: &Secret) -> Result<(u16, String), String> {
        let response = self
            .agent
            .get(format!("{}/refresh_access_token", self.graph_url))
            .query("grant_type", "ig_refresh_token")
            .query("access_token", token.expose())
            .call();
        let mut response = response.map_err(|e| refresh_transport_error_text(&e).to_string())?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_REFRESH_ANSWER_BYTES)
            .read_to_string()
            .map_err(|_| {
                format!("Instagram's answer (HTTP {status}) could not be read: cut off or too long")
            })?;
        Ok((status, body))
    }
}

fn refresh_transport_error_text(error: &ureq::Error) -> &'static str {
    match error {
        ureq::Error::Timeout(_) => "Instagram did not answer in time",
        ureq::Error::HostNotFound => "Instagram's address could not be found (is the network up?)",
        ureq::Error::ConnectionFailed | ureq::Error::Io(_) => {
            "could not connect to Instagram (network error)"
        }
        _ => "the request to Instagram failed",
    }
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
            transient: None,
            user_message: None,
        }
    }

    /// An error as Instagram sends one for the content-publishing rows: with its
    /// message for people.
    fn api_said(code: i64, subcode: i64, message: &str, user_message: &str) -> GraphError {
        GraphError::Api {
            http_status: 400,
            code: Some(code),
            subcode: Some(subcode),
            message: message.to_string(),
            transient: Some(false),
            user_message: Some(user_message.to_string()),
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
                r#"{"error":{"message":"The image size is too large.","type":"OAuthException","code":36000,"error_subcode":2207004,"is_transient":false,"error_user_title":"Image size too large","error_user_msg":"The image is too large to download. It should be less than 8 MiB.","fbtrace_id":"A6LJylpZRKw2xKLFsAP-cJh"}}"#,
                Err(api_said(
                    36000,
                    2_207_004,
                    "The image size is too large.",
                    "The image is too large to download. It should be less than 8 MiB.",
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
        // (error, [token problem, not ready, rate limited, retried], plain words)
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
                [false, true, false, true],
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
                "Instagram says the account has reached its limit of posts for the last 24 hours. \
                 Instagram said: “Application request limit reached”",
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
                    error.action(Call::CreateContainer) == ErrorAction::Retry
                ],
                [token, not_ready, rate_limited, transient],
                "{error}"
            );
            assert_eq!(error.plain_words(), words);
        }
    }

    /// Every row of Meta's tables, as data: (code, subcode, is_transient, action). Where
    /// each row comes from is written at `error_action`.
    #[test]
    fn every_error_row_has_its_action() {
        use ErrorAction::{GiveUp, Recreate, Retry};
        type Row = (Option<i64>, Option<i64>, Option<bool>, ErrorAction);
        let rows: &[Row] = &[
            // Instagram Platform › Error Codes (content publishing).
            (Some(-2), Some(2_207_003), None, Retry),
            (Some(-2), Some(2_207_020), None, Recreate),
            (Some(-1), Some(2_207_001), None, Retry),
            (Some(-1), Some(2_207_001), Some(false), Retry),
            (Some(-1), Some(2_207_032), None, Recreate),
            (Some(-1), Some(2_207_053), None, Recreate),
            (Some(1), Some(2_207_057), None, GiveUp),
            (Some(4), Some(2_207_051), None, GiveUp),
            (Some(4), Some(2_207_051), Some(true), GiveUp),
            (Some(9), Some(2_207_042), None, GiveUp),
            (Some(24), Some(2_207_006), None, Recreate),
            (Some(24), Some(2_207_008), None, Retry),
            (Some(25), Some(2_207_050), None, GiveUp),
            (Some(100), Some(2_207_023), None, GiveUp),
            (Some(100), Some(2_207_028), None, GiveUp),
            (Some(100), Some(2_207_035), None, GiveUp),
            (Some(100), Some(2_207_036), None, GiveUp),
            (Some(100), Some(2_207_037), None, GiveUp),
            (Some(100), Some(2_207_040), None, GiveUp),
            (Some(352), Some(2_207_026), None, GiveUp),
            (Some(9004), Some(2_207_052), None, Recreate),
            (Some(9007), Some(2_207_027), None, Retry),
            (Some(36000), Some(2_207_004), Some(false), GiveUp),
            (Some(36001), Some(2_207_005), None, GiveUp),
            (Some(36003), Some(2_207_009), None, GiveUp),
            (Some(36004), Some(2_207_010), None, GiveUp),
            // Graph API › Handling Errors.
            (Some(1), None, None, Retry),
            (Some(2), None, None, Retry),
            (Some(3), None, None, GiveUp),
            (Some(4), None, None, Retry),
            (Some(17), None, None, Retry),
            (Some(341), None, None, Retry),
            (Some(10), None, None, GiveUp),
            (Some(102), None, None, GiveUp),
            (Some(190), None, None, GiveUp),
            (Some(190), Some(463), None, GiveUp),
            (Some(200), None, None, GiveUp),
            (Some(299), None, None, GiveUp),
            (Some(368), None, None, GiveUp),
            (Some(506), None, None, GiveUp),
            // Not in the stored reference.
            (Some(32), None, None, Retry),
            (Some(613), None, None, Retry),
            (Some(80_002), None, None, Retry),
            (Some(100), None, None, GiveUp),
            (Some(100), Some(33), Some(true), GiveUp),
            (Some(9007), None, None, Retry),
            (Some(9004), None, None, Recreate),
            // Rows nobody listed: Instagram's own is_transient decides.
            (Some(12_345), None, Some(true), Retry),
            (Some(12_345), None, Some(false), GiveUp),
            (Some(12_345), None, None, GiveUp),
            (Some(-1), Some(2_207_999), Some(true), Retry),
            (None, None, None, GiveUp),
        ];
        for &(code, subcode, transient, action) in rows {
            assert_eq!(
                error_action(code, subcode, transient),
                action,
                "{code:?}/{subcode:?} is_transient {transient:?}"
            );
        }
    }

    #[test]
    fn a_call_without_an_answer_is_retried_except_a_publish() {
        use Call::{ContainerStatus, CreateContainer, Other, Publish};
        use ErrorAction::{Ask, GiveUp, Retry};
        let cases: Vec<(GraphError, Call, ErrorAction)> = vec![
            (GraphError::Timeout, CreateContainer, Retry),
            (GraphError::Timeout, Publish, Ask),
            (GraphError::Network("reset".into()), ContainerStatus, Retry),
            (GraphError::Network("reset".into()), Publish, Ask),
            (GraphError::Garbage("<html>".into()), Other, Retry),
            (GraphError::Garbage("<html>".into()), Publish, Ask),
            (api(502, None, None, "HTTP 502"), CreateContainer, Retry),
            (api(502, None, None, "HTTP 502"), Publish, Ask),
            // An answer from Instagram itself says the publish did not happen.
            (api(429, None, None, "HTTP 429"), Publish, Retry),
            (
                api(500, Some(2), None, "Service unavailable"),
                Publish,
                Retry,
            ),
            (
                api(400, Some(-1), Some(2_207_001), "Server error"),
                Publish,
                Retry,
            ),
            (
                api(400, Some(4), Some(2_207_051), "Restricted"),
                Publish,
                GiveUp,
            ),
            (api(404, None, None, "HTTP 404"), CreateContainer, GiveUp),
        ];
        for (error, call, action) in cases {
            assert_eq!(error.action(call), action, "{error} at {call:?}");
        }
    }

    #[test]
    fn a_failed_container_is_made_again_only_when_that_can_help() {
        use ErrorAction::{GiveUp, Recreate};
        let failed = |code: StatusCode, detail: Option<&str>| ContainerStatus {
            code,
            detail: detail.map(str::to_string),
        };
        let cases = [
            (failed(StatusCode::Expired, None), Recreate),
            (
                failed(
                    StatusCode::Error,
                    Some("Error: Media upload has failed with error code 2207003"),
                ),
                Recreate,
            ),
            (failed(StatusCode::Error, Some("Error: 2207052")), Recreate),
            (failed(StatusCode::Error, Some("Error: 2207026")), GiveUp),
            (failed(StatusCode::Error, Some("Error: 22070261")), GiveUp),
            (failed(StatusCode::Error, Some("Error: unknown")), GiveUp),
            (failed(StatusCode::Error, None), GiveUp),
        ];
        for (status, action) in cases {
            assert_eq!(status.failure_action(), action, "{status:?}");
        }
    }

    #[test]
    fn plain_words_explain_and_quote_instagram() {
        let spam = api_said(
            4,
            2_207_051,
            "Application request limit reached",
            "We restrict certain activity to protect our community. Tell us if you think we \
             made a mistake.",
        );
        assert_eq!(
            spam.plain_words(),
            "Instagram blocked the post: it restricts activity it takes for spam. Storyline \
             does not try again, so as not to deepen the block; post this story by hand, and \
             if it is not spam, tell Instagram in its app. Instagram said: “We restrict \
             certain activity to protect our community. Tell us if you think we made a \
             mistake.”"
        );
        let restricted = api_said(
            25,
            2_207_050,
            "The user is restricted",
            "Account restricted",
        );
        assert_eq!(
            restricted.plain_words(),
            "Instagram says the account is inactive, checkpointed or restricted; sign in to \
             the Instagram app and do what it asks. Instagram said: “Account restricted”"
        );
        let fetch = api(
            400,
            Some(9004),
            Some(2_207_052),
            "Media download has failed.",
        );
        assert!(fetch.plain_words().contains("[web] public_url"));
        assert!(fetch
            .plain_words()
            .ends_with("Instagram said: “Media download has failed.”"));
        // Instagram's sentence for people wins over its message for developers.
        let refused = api_said(
            100,
            2_207_023,
            "Invalid media_type",
            "The media type is unknown.",
        );
        assert_eq!(
            refused.plain_words(),
            "Instagram refused the request: The media type is unknown."
        );
        // An error that carried no words of Instagram's quotes none.
        let bare = api(400, Some(10), None, NO_MESSAGE);
        assert_eq!(
            bare.plain_words(),
            "Instagram says the app lacks a permission for this; reconnect the account and \
             allow everything Storyline asks for."
        );
    }

    /// The content-publishing reference ("Content Publishing", Instagram Platform,
    /// developers.facebook.com/docs/instagram-platform/content-publishing) creates
    /// containers at `POST /<INSTAGRAM_PROFESSIONAL_ACCOUNT_ID>/media` (`<IG_ID>`), and
    /// "Get Started" for the Instagram API with Instagram Login gets "your app user's
    /// Instagram professional account user ID" from `GET /me?fields=user_id,username`.
    /// The IG User reference calls `id` the app-scoped user ID, which is not that one.
    #[test]
    fn the_profile_keeps_user_id_which_publishing_takes() {
        let me =
            json!({"user_id": "17841400000000001", "username": "shop", "id": "27000000000000001"});
        assert_eq!(
            parse_profile(&me).map(|profile| profile.user_id),
            Ok("17841400000000001".to_string())
        );
        let only_app_scoped = json!({"id": "27000000000000001", "username": "shop"});
        assert!(
            parse_profile(&only_app_scoped).is_err(),
            "the app-scoped id is no stand-in for user_id"
        );
    }

    #[test]
    fn the_api_version_is_pinned_and_token_calls_go_without_it() {
        // (graph_url as configured, node and edge base, token base)
        let cases = [
            (
                "https://graph.instagram.com",
                "https://graph.instagram.com/v26.0",
                "https://graph.instagram.com",
            ),
            (
                "https://graph.instagram.com/v26.0/",
                "https://graph.instagram.com/v26.0",
                "https://graph.instagram.com",
            ),
            (
                "https://graph.instagram.com/v21.0",
                "https://graph.instagram.com/v21.0",
                "https://graph.instagram.com",
            ),
            (
                "http://127.0.0.1:9000/",
                "http://127.0.0.1:9000/v26.0",
                "http://127.0.0.1:9000",
            ),
            (
                "https://proxy.example/instagram",
                "https://proxy.example/instagram/v26.0",
                "https://proxy.example/instagram",
            ),
            (
                "https://graph.instagram.com/v2x",
                "https://graph.instagram.com/v2x/v26.0",
                "https://graph.instagram.com/v2x",
            ),
            ("https://v26.0", "https://v26.0/v26.0", "https://v26.0"),
        ];
        for (given, versioned, root) in cases {
            assert_eq!(versioned_graph_url(given), versioned, "{given}");
            assert_eq!(unversioned_graph_url(given), root, "{given}");
            let graph = Graph::new(given, "https://api.instagram.com");
            assert_eq!(graph.graph_path(&["me"]), format!("{versioned}/me"));
            assert_eq!(graph.graph_root, root);
        }
        assert_eq!(
            DEFAULT_GRAPH_URL,
            format!("https://graph.instagram.com/{GRAPH_API_VERSION}")
        );
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
                let _ = parse_story_insights(&value);
                let _ = parse_stories_page(&value);
            }
            if let Err(error) = parse_answer(status, &body) {
                let _ = (
                    error.plain_words(),
                    error.to_string(),
                    error.action(Call::Publish),
                );
            }
        }
        // Random bodies are rarely JSON objects, so also build well-formed trees out of
        // the keys the parsers look for, with values of every type.
        fn tree(next: &mut dyn FnMut() -> u64, depth: u32) -> Value {
            let keys: Vec<&str> = "error code error_subcode message error_type error_message data \
                 id user_id username access_token permissions quota_usage config quota_total \
                 status_code status expires_in name values value total_value breakdowns \
                 dimension_keys dimension_values results timestamp media_type paging cursors \
                 after next"
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
            let _ = parse_story_insights(&value);
            let _ = parse_stories_page(&value);
        }
    }

    // ---- story insights and live stories ----

    fn numbers(values: [Option<u64>; 7], navigation: [Option<u64>; 5]) -> StoryNumbers {
        let [views, reach, replies, shares, total_interactions, follows, profile_visits] = values;
        let [total, tap_forward, tap_back, tap_exit, swipe_forward] = navigation;
        StoryNumbers {
            views,
            reach,
            replies,
            shares,
            total_interactions,
            follows,
            profile_visits,
            navigation: Navigation {
                total,
                tap_forward,
                tap_back,
                tap_exit,
                swipe_forward,
            },
        }
    }

    /// An insights entry in the reference's older shape: `values` only.
    fn in_values(name: &str, value: Value) -> Value {
        json!({
            "name": name,
            "period": "lifetime",
            "values": [{"value": value}],
            "title": name,
            "description": "",
            "id": format!("17969782069736348/insights/{name}/lifetime"),
        })
    }

    #[test]
    fn story_insights_answers() {
        fn check(answer: Value, expected: Result<Option<StoryNumbers>, ()>) {
            let parsed = parse_story_insights(&answer).map_err(|error| {
                assert!(matches!(error, GraphError::Garbage(_)), "{error:?}");
            });
            assert_eq!(parsed, expected, "{answer}");
        }
        let none = [None; 5];
        // The reference's sample story answer [Insights FB], as Instagram sends it.
        let sample = json!({"data": [{
            "name": "navigation",
            "period": "lifetime",
            "values": [{"value": 25}],
            "title": "Navigation",
            "description": "This is the total number of actions taken from your story.",
            "total_value": {
                "value": 25,
                "breakdowns": [{
                    "dimension_keys": ["story_navigation_action_type"],
                    "results": [
                        {"dimension_values": ["tap_forward"], "value": 19},
                        {"dimension_values": ["tap_back"], "value": 4},
                        {"dimension_values": ["tap_exit"], "value": 1},
                        {"dimension_values": ["swipe_forward"], "value": 1}
                    ]
                }]
            },
            "id": "17969782069736348/insights/navigation/lifetime"
        }]});
        check(
            sample,
            Ok(Some(numbers(
                [None; 7],
                [Some(25), Some(19), Some(4), Some(1), Some(1)],
            ))),
        );
        // Every plain metric, in the `values` shape.
        let plain = json!({"data": [
            in_values("views", json!(1200)),
            in_values("reach", json!(1100)),
            in_values("replies", json!(8)),
            in_values("shares", json!(3)),
            in_values("total_interactions", json!(11)),
            in_values("follows", json!(2)),
            in_values("profile_visits", json!(40)),
        ]});
        check(
            plain,
            Ok(Some(numbers(
                [
                    Some(1200),
                    Some(1100),
                    Some(8),
                    Some(3),
                    Some(11),
                    Some(2),
                    Some(40),
                ],
                none,
            ))),
        );
        // The `total_value` shape; a missing metric stays None; `values` is the
        // fallback; text, whole floats and zero are counts, negatives and fractions not.
        let mixed = json!({"data": [
            {"name": "views", "total_value": {"value": 7}},
            {"name": "reach", "total_value": {}, "values": [{"value": "6"}]},
            {"name": "replies", "total_value": {"value": 0}},
            {"name": "shares", "values": [{"value": 2.0}]},
            {"name": "follows", "values": [{"value": -1}]},
            {"name": "profile_visits", "values": [{"value": 1.5}]},
            {"name": "impressions", "values": [{"value": 99}]},
            {"name": "views", "total_value": {"value": 1000}},
        ]});
        check(
            mixed,
            Ok(Some(numbers(
                [Some(7), Some(6), Some(0), Some(2), None, None, None],
                none,
            ))),
        );
        // Actions in capitals, a breakdown by another key, results without values.
        let odd = json!({"data": [{
            "name": "navigation",
            "total_value": {"breakdowns": [
                {"dimension_keys": ["other"], "results": [
                    {"dimension_values": ["tap_back"], "value": 50}]},
                {"dimension_keys": ["x", "story_navigation_action_type"], "results": [
                    {"dimension_values": ["a", "TAP_BACK"], "value": 5},
                    {"dimension_values": ["TAP_EXIT"], "value": 6},
                    {"dimension_values": ["x", "Swipe_Forward"]},
                    {"dimension_values": ["x", "automatic_forward"], "value": 9}]}
            ]}
        }]});
        check(
            odd,
            Ok(Some(numbers([None; 7], [None, None, Some(5), None, None]))),
        );
        // No numbers at all: the empty data set, or only metrics Storyline does not read.
        check(json!({"data": []}), Ok(None));
        check(json!({"data": [in_values("likes", json!(3))]}), Ok(None));
        check(json!({"data": [{"name": "reach", "values": []}]}), Ok(None));
        check(json!({"data": [{"values": [{"value": 3}]}]}), Ok(None));
        // Not an insights answer.
        check(json!({}), Err(()));
        check(json!({"data": {"name": "reach"}}), Err(()));
    }

    #[test]
    fn not_enough_viewers_and_a_missing_permission_are_told_apart() {
        // (error, [not enough viewers, missing permission, token problem])
        let cases: Vec<(GraphError, [bool; 3])> = vec![
            (
                api(
                    400,
                    Some(10),
                    None,
                    "(#10) Not enough viewers for the media to show insights",
                ),
                [true, false, false],
            ),
            (
                api_said(
                    10,
                    2_108_006,
                    "(#10) Application request failed",
                    "Not enough viewers for the media to show insights",
                ),
                [true, false, false],
            ),
            (
                api(
                    400,
                    Some(10),
                    None,
                    "(#10) Application does not have permission for this action",
                ),
                [false, true, false],
            ),
            (
                api(403, Some(200), None, "(#200) Permissions error"),
                [false, true, false],
            ),
            (api(400, Some(299), None, NO_MESSAGE), [false, true, false]),
            // The words alone are not enough: another code is another error.
            (
                api(400, Some(100), None, "Not enough viewers for the media"),
                [false, false, false],
            ),
            (
                api(400, Some(190), None, "Invalid OAuth access token"),
                [false, false, true],
            ),
            (
                api(
                    400,
                    Some(3),
                    None,
                    "Application does not have the capability",
                ),
                [false, false, false],
            ),
            (GraphError::Timeout, [false, false, false]),
        ];
        for (error, expected) in cases {
            assert_eq!(
                [
                    error.is_not_enough_viewers(),
                    error.is_missing_permission(),
                    error.is_token_problem()
                ],
                expected,
                "{error}"
            );
        }
        assert_eq!(
            api(
                400,
                Some(10),
                None,
                "(#10) Not enough viewers for the media to show insights"
            )
            .plain_words(),
            "Instagram shows no insights for a story seen by so few people."
        );
    }

    #[test]
    fn the_insights_permission_is_read_from_the_login() {
        let login = |permissions: &[&str]| ShortLived {
            token: Secret::new("t"),
            user_id: "1".into(),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
        };
        assert_eq!(login(&[]).has_insights_permission(), None);
        assert_eq!(
            login(&[
                "instagram_business_basic",
                "instagram_business_content_publish"
            ])
            .has_insights_permission(),
            Some(false)
        );
        assert_eq!(
            login(&["instagram_business_basic", INSIGHTS_PERMISSION]).has_insights_permission(),
            Some(true)
        );
        let answer = json!({"data": [{
            "access_token": "t",
            "user_id": "5",
            "permissions": "instagram_business_basic,instagram_business_manage_insights",
        }]});
        assert_eq!(
            parse_short_lived(&answer)
                .unwrap()
                .has_insights_permission(),
            Some(true)
        );
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn instagram_times() {
        let cases = [
            ("2019-04-05T07:56:32+0000", Some("2019-04-05T07:56:32Z")),
            ("2019-04-05T07:56:32+00:00", Some("2019-04-05T07:56:32Z")),
            ("2019-04-05T09:56:32+0200", Some("2019-04-05T07:56:32Z")),
            ("2019-04-05T07:56:32Z", Some("2019-04-05T07:56:32Z")),
            (" 2019-04-05T07:56:32+0000 ", Some("2019-04-05T07:56:32Z")),
            ("2019-04-05 07:56:32", None),
            ("2019-02-30T07:56:32+0000", None),
            ("1554450992", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_instagram_time(text), expected.map(utc), "{text:?}");
        }
    }

    #[test]
    fn stories_pages() {
        let story = |id: &str, at: &str, media_type: MediaType| LiveStory {
            id: id.into(),
            timestamp: utc(at),
            media_type,
        };
        let page = json!({
            "data": [
                {"id": "17861937508009798", "timestamp": "2026-03-01T10:00:05+0000", "media_type": "IMAGE"},
                {"id": 17_862_253_585_030_136_u64, "timestamp": "2026-03-01T09:00:00+0000", "media_type": "VIDEO"},
                {"id": "17856428680064034", "timestamp": "2026-03-01T08:00:00+0000", "media_type": "REEL?"},
                {"id": "17856428680064035", "timestamp": "2026-03-01T07:00:00+0000"}
            ],
            "paging": {
                "cursors": {"before": "QVFIUb", "after": "QVFIUa="},
                "next": "https://graph.instagram.com/v26.0/1784/stories?access_token=IGAA&after=QVFIUa%3D"
            }
        });
        assert_eq!(
            parse_stories_page(&page),
            Ok(StoriesPage {
                stories: vec![
                    story(
                        "17861937508009798",
                        "2026-03-01T10:00:05Z",
                        MediaType::Image
                    ),
                    story(
                        "17862253585030136",
                        "2026-03-01T09:00:00Z",
                        MediaType::Video
                    ),
                    story(
                        "17856428680064034",
                        "2026-03-01T08:00:00Z",
                        MediaType::Other("REEL?".into())
                    ),
                    story(
                        "17856428680064035",
                        "2026-03-01T07:00:00Z",
                        MediaType::Other(String::new())
                    ),
                ],
                next_cursor: Some("QVFIUa=".into()),
            })
        );
        // The last page: no `next`, whatever the cursors say [Paging].
        let last = json!({"data": [], "paging": {"cursors": {"before": "a", "after": "b"}}});
        assert_eq!(
            parse_stories_page(&last),
            Ok(StoriesPage {
                stories: vec![],
                next_cursor: None
            })
        );
        // A `next` without a cursor ends the walk too.
        let no_cursor = json!({"data": [], "paging": {"next": "https://x/y?after=z"}});
        assert_eq!(parse_stories_page(&no_cursor).unwrap().next_cursor, None);
        // The reference's own sample: ids only, so no times to match by.
        for broken in [
            json!({"data": [{"id": "17861937508009798"}]}),
            json!({"data": [{"id": "1", "timestamp": "yesterday"}]}),
            json!({"data": [{"timestamp": "2026-03-01T10:00:05+0000"}]}),
            json!({"data": "none"}),
            json!({"paging": {}}),
        ] {
            assert!(
                matches!(parse_stories_page(&broken), Err(GraphError::Garbage(_))),
                "{broken}"
            );
        }
    }

    // ---- property tests (`cargo test --lib fuzz_insights`, `fuzz_stories`) ----

    use crate::fuzz_input::{self, mutate_text, mutations};
    use proptest::prelude::*;

    const INSIGHTS_PIECES: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"\"",
        b"\"data\"",
        b"\"name\"",
        b"\"values\"",
        b"\"value\"",
        b"\"total_value\"",
        b"\"breakdowns\"",
        b"\"results\"",
        b"\"dimension_values\"",
        b"\"dimension_keys\"",
        b"\"tap_exit\"",
        b"\"navigation\"",
        b"\"reach\"",
        b"\"timestamp\"",
        b"\"paging\"",
        b"\"cursors\"",
        b"\"after\"",
        b"\"next\"",
        b"-1",
        b"1e400",
        b"18446744073709551616",
        b"null",
        b"+0000",
    ];

    const METRIC_NAMES: [&str; 7] = [
        "views",
        "reach",
        "replies",
        "shares",
        "total_interactions",
        "follows",
        "profile_visits",
    ];
    const ACTIONS: [&str; 4] = ["tap_forward", "tap_back", "tap_exit", "swipe_forward"];

    fn any_numbers() -> impl Strategy<Value = StoryNumbers> {
        let count = || proptest::option::of(prop_oneof![0u64..1000, any::<u64>()]);
        (
            prop::array::uniform7(count()),
            prop::array::uniform5(count()),
        )
            .prop_map(|(values, navigation)| numbers(values, navigation))
    }

    /// The answers Instagram sends for `numbers`: the plain metrics, and the
    /// navigation call's, each value in the `values` or the `total_value` shape.
    fn insights_answers(numbers: &StoryNumbers, total_shape: bool) -> (Value, Value) {
        let values = [
            numbers.views,
            numbers.reach,
            numbers.replies,
            numbers.shares,
            numbers.total_interactions,
            numbers.follows,
            numbers.profile_visits,
        ];
        let plain: Vec<Value> = METRIC_NAMES
            .iter()
            .zip(values)
            .filter_map(|(name, value)| {
                let value = value?;
                Some(if total_shape {
                    json!({"name": name, "period": "lifetime", "total_value": {"value": value}})
                } else {
                    in_values(name, json!(value))
                })
            })
            .collect();
        let n = numbers.navigation;
        let results: Vec<Value> = ACTIONS
            .iter()
            .zip([n.tap_forward, n.tap_back, n.tap_exit, n.swipe_forward])
            .filter_map(|(action, value)| {
                Some(json!({"dimension_values": [action], "value": value?}))
            })
            .collect();
        let mut total_value = json!({"breakdowns": [{
            "dimension_keys": ["story_navigation_action_type"],
            "results": results,
        }]});
        if let Some(total) = n.total {
            total_value["value"] = json!(total);
        }
        let navigation = json!({"data": [{
            "name": "navigation",
            "period": "lifetime",
            "total_value": total_value,
        }]});
        (json!({ "data": plain }), navigation)
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            3 => prop::sample::select(vec![
                "data", "name", "values", "value", "total_value", "breakdowns", "results",
                "dimension_keys", "dimension_values", "id", "timestamp", "media_type",
                "paging", "cursors", "after", "next", "error", "code", "message",
            ])
            .prop_map(str::to_string),
            1 => ".{0,8}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop::sample::select(vec![
                "views",
                "navigation",
                "tap_exit",
                "TAP_BACK",
                "story_navigation_action_type",
                "2026-03-01T10:00:05+0000",
                "IMAGE",
                "12",
                "-3",
                "",
            ])
            .prop_map(Value::from),
            ".{0,16}".prop_map(Value::from),
        ];
        leaf.prop_recursive(6, 96, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..8)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    fn any_story() -> impl Strategy<Value = LiveStory> {
        (
            "[0-9]{1,19}",
            0i64..4_102_444_800,
            prop_oneof![
                Just(MediaType::Image),
                Just(MediaType::Video),
                "[A-Z_]{1,12}"
                    .prop_filter("a known type", |t| t != "IMAGE" && t != "VIDEO")
                    .prop_map(MediaType::Other),
            ],
        )
            .prop_map(|(id, seconds, media_type)| LiveStory {
                id,
                timestamp: DateTime::from_timestamp(seconds, 0).unwrap_or_default(),
                media_type,
            })
    }

    fn media_type_text(media_type: &MediaType) -> &str {
        match media_type {
            MediaType::Image => "IMAGE",
            MediaType::Video => "VIDEO",
            MediaType::Other(text) => text,
        }
    }

    proptest! {
        #![proptest_config(fuzz_input::config(256))]

        /// What Instagram sends is read back exactly, in either value shape, through
        /// the HTTP answer; an answer without a number is no numbers.
        #[test]
        fn fuzz_insights_valid_answers_parse(numbers in any_numbers(), total_shape in any::<bool>()) {
            let (plain, navigation) = insights_answers(&numbers, total_shape);
            let plain = parse_answer(200, &plain.to_string()).expect("an answer");
            let navigation = parse_answer(200, &navigation.to_string()).expect("an answer");
            let mut read = parse_story_insights(&plain).expect("a data list").unwrap_or_default();
            if let Some(with_navigation) = parse_story_insights(&navigation).expect("a data list") {
                read.navigation = with_navigation.navigation;
            }
            prop_assert_eq!(read, numbers);
        }

        /// Any JSON never panics, and what is read is never made up: a number read
        /// needs a `data` list to come from.
        #[test]
        fn fuzz_insights_arbitrary_json(value in any_json()) {
            match parse_story_insights(&value) {
                Ok(Some(_)) | Ok(None) => prop_assert!(value.get("data").is_some_and(Value::is_array)),
                Err(error) => prop_assert!(matches!(error, GraphError::Garbage(_))),
            }
            let _ = parse_stories_page(&value);
        }

        /// Real answers truncated, flipped or spliced never panic, whatever the status.
        #[test]
        fn fuzz_insights_mutated_answers(
            numbers in any_numbers(),
            changes in mutations(INSIGHTS_PIECES),
            status in prop_oneof![Just(200u16), Just(400u16), any::<u16>()],
        ) {
            let (plain, navigation) = insights_answers(&numbers, false);
            for answer in [plain, navigation] {
                let body = mutate_text(&answer.to_string(), &changes);
                match parse_answer(status, &body) {
                    Ok(value) => {
                        let _ = parse_story_insights(&value);
                    }
                    Err(error) => {
                        let _ = (error.is_not_enough_viewers(), error.is_missing_permission(), error.plain_words());
                    }
                }
            }
        }

        /// A page of stories is read back exactly, with its cursor when it has a
        /// next page; an id sent as a number reads the same.
        #[test]
        fn fuzz_stories_valid_pages_parse(
            stories in prop::collection::vec(any_story(), 0..30),
            cursor in proptest::option::of("[A-Za-z0-9=_-]{1,40}"),
            numeric_ids in any::<bool>(),
        ) {
            let data: Vec<Value> = stories
                .iter()
                .map(|story| {
                    let id = match story.id.parse::<u64>() {
                        Ok(id) if numeric_ids => json!(id),
                        _ => json!(story.id),
                    };
                    json!({
                        "id": id,
                        "timestamp": story.timestamp.format("%Y-%m-%dT%H:%M:%S%z").to_string(),
                        "media_type": media_type_text(&story.media_type),
                    })
                })
                .collect();
            let mut answer = json!({ "data": data });
            if let Some(cursor) = &cursor {
                answer["paging"] = json!({
                    "cursors": {"before": "b", "after": cursor},
                    "next": format!("https://graph.instagram.com/v26.0/1/stories?after={cursor}"),
                });
            }
            let value = parse_answer(200, &answer.to_string()).expect("an answer");
            let page = parse_stories_page(&value).expect("a page");
            // Ids are read as Instagram wrote them; a number loses leading zeros.
            let ids: Vec<String> = stories
                .iter()
                .map(|story| match story.id.parse::<u64>() {
                    Ok(id) if numeric_ids => id.to_string(),
                    _ => story.id.clone(),
                })
                .collect();
            let expected: Vec<LiveStory> = stories
                .into_iter()
                .zip(ids)
                .map(|(story, id)| LiveStory { id, ..story })
                .collect();
            prop_assert_eq!(page, StoriesPage { stories: expected, next_cursor: cursor });
        }

        /// Pages truncated, flipped or spliced never panic, and never give more
        /// stories than the bound.
        #[test]
        fn fuzz_stories_mutated_pages(
            stories in prop::collection::vec(any_story(), 0..8),
            changes in mutations(INSIGHTS_PIECES),
        ) {
            let data: Vec<Value> = stories
                .iter()
                .map(|story| json!({
                    "id": story.id,
                    "timestamp": story.timestamp.format("%Y-%m-%dT%H:%M:%S%z").to_string(),
                    "media_type": media_type_text(&story.media_type),
                }))
                .collect();
            let answer = json!({"data": data, "paging": {"cursors": {"after": "QVFI"}, "next": "https://x"}});
            let body = mutate_text(&answer.to_string(), &changes);
            if let Ok(value) = parse_answer(200, &body) {
                if let Ok(page) = parse_stories_page(&value) {
                    prop_assert!(page.stories.len() <= MAX_LIVE_STORIES);
                }
            }
        }

        /// Any text as a time never panics, and Instagram's own format reads back.
        #[test]
        fn fuzz_stories_times(text in fuzz_input::text_from("0123456789-T:+Z ", 32), seconds in 0i64..4_102_444_800) {
            let _ = parse_instagram_time(&text);
            let time = DateTime::from_timestamp(seconds, 0).unwrap_or_default();
            prop_assert_eq!(parse_instagram_time(&time.format("%Y-%m-%dT%H:%M:%S%z").to_string()), Some(time));
        }
    }
}
