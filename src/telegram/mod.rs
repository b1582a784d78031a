//! Part `telegram/` (an adapter): everything about the Bot API and nothing else.
//! Knows no handler: it never reads chat settings or decides what to say.
//!
//! The Telegram Bot API: the few types Storyline reads, the calls it makes, and one
//! blocking HTTP client. Only this module knows the Bot API's JSON.
//!
//! The types are written by hand rather than taken from a Bot API crate: we read
//! five types and make eight calls, and owning the client lets us keep one ureq
//! agent with per-call timeouts, keep Telegram's `error_code`/`retry_after`, and
//! make sure the token (which is part of every URL) never reaches an error text.

use std::io::Read;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::Secret;
use crate::domain::html_fit;

// ---- what we read ---------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
pub struct Update {
    pub update_id: i64,
    #[serde(default)]
    pub message: Option<Message>,
    #[serde(default)]
    pub callback_query: Option<CallbackQuery>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub message_id: i64,
    #[serde(default)]
    pub from: Option<User>,
    pub chat: Chat,
    #[serde(default)]
    pub text: Option<String>,
    /// A service message in a group that became a supergroup: the new chat's id.
    #[serde(default)]
    pub migrate_to_chat_id: Option<i64>,
    /// The first message of a supergroup made from a group: the group's id.
    #[serde(default)]
    pub migrate_from_chat_id: Option<i64>,
    /// A file sent as a document (a settings file to import).
    #[serde(default)]
    pub document: Option<Document>,
    /// The message this one replies to (Telegram gives it without its own reply).
    #[serde(default)]
    pub reply_to_message: Option<Box<Message>>,
}

/// A document as Telegram describes it, and what the poller fetched of it.
#[derive(Debug, Clone, Deserialize)]
pub struct Document {
    pub file_id: String,
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Bytes, as the sender's client declared it.
    #[serde(default)]
    pub file_size: Option<u64>,
    /// Not Telegram's: the poller downloads the few documents the core may read
    /// (`bot::settings_file::document_to_fetch`) before it hands the batch over,
    /// so the core never waits on HTTP inside its transaction. None: not fetched.
    #[serde(skip)]
    pub fetched: Option<Fetched>,
}

/// What became of downloading a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Content(Vec<u8>),
    /// Larger than the limit it was fetched with: not downloaded (or not kept).
    TooBig,
    /// Telegram did not hand it over; the reason, without the token.
    Failed(String),
}

#[derive(Debug, Clone, Deserialize)]
pub struct Chat {
    pub id: i64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    /// "private", "group", "supergroup" or "channel"; absent only in hand-made updates.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

impl Chat {
    /// A one-to-one chat with a user (whose user id is the chat id). Without a
    /// type, the id tells: groups and channels have negative ids.
    pub fn is_private(&self) -> bool {
        match self.kind.as_deref() {
            Some(kind) => kind == "private",
            None => self.id > 0,
        }
    }

    /// A human name for the chat, for logs and the chats table.
    pub fn name(&self) -> Option<&str> {
        self.title
            .as_deref()
            .or(self.username.as_deref())
            .or(self.first_name.as_deref())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub username: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CallbackQuery {
    pub id: String,
    pub from: User,
    /// Absent for inline-mode messages; a message older than 48 h arrives
    /// with `date: 0` and only chat and id, which this still reads.
    #[serde(default)]
    pub message: Option<Message>,
    #[serde(default)]
    pub data: Option<String>,
}

/// Reads one update leniently: an update whose content we cannot read still has
/// an id, so it is skipped and confirmed rather than wedging the poll.
pub fn parse_update(value: Value) -> Option<Update> {
    let update_id = value.get("update_id")?.as_i64()?;
    Some(serde_json::from_value(value).unwrap_or(Update {
        update_id,
        message: None,
        callback_query: None,
    }))
}

/// The updates in a getUpdates result, each read by `parse_update` (one without
/// an id is dropped); anything but a list is garbage.
pub fn parse_updates(result: Value) -> Result<Vec<Update>, ApiError> {
    match result {
        Value::Array(items) => Ok(items.into_iter().filter_map(parse_update).collect()),
        other => Err(ApiError::Garbage(format!(
            "getUpdates result is not a list: {}",
            truncate(&other.to_string(), 80)
        ))),
    }
}

// ---- what we send ---------------------------------------------------------------

pub use crate::domain::markup::{escape_html, Button, ChatGone, Keyboard};

/// One Bot API call, decided by the core and delivered by the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub method: &'static str,
    pub params: Value,
    /// What the outbox records once Telegram answered (see `outbox::Hook`).
    pub on_result: Option<Value>,
}

impl Outgoing {
    fn new(method: &'static str, params: Value) -> Outgoing {
        Outgoing {
            method,
            params,
            on_result: None,
        }
    }
}

/// The key under which an outbox row names a file to upload; `Client::deliver`
/// turns such a call into a multipart upload streamed from the file.
const UPLOAD_KEY: &str = "storyline_upload";

/// Telegram's limits for files a bot uploads, in decimal megabytes as its
/// documentation states them.
pub const MAX_PHOTO_BYTES: u64 = 10_000_000;
pub const MAX_UPLOAD_BYTES: u64 = 50_000_000;
/// sendPhoto also refuses a photo whose width and height add up to more than
/// this, or whose long side is more than `MAX_PHOTO_RATIO` times the short one.
pub const MAX_PHOTO_SIDES: u64 = 10_000;
pub const MAX_PHOTO_RATIO: u64 = 20;

/// Telegram's length limits, in UTF-16 code units of the visible text (after
/// entities parsing): a message, a caption, a callback answer.
pub use crate::domain::html_fit::{MAX_CAPTION_UNITS, MAX_TEXT_UNITS};
pub const MAX_ALERT_CHARS: usize = 200;

/// How a stored file_id says Telegram kept the file as a document (a video it
/// could not take as one, such as some .mov files): such a file is sent again
/// with sendDocument, since sendVideo refuses a document's file_id. Telegram's
/// file_ids never hold a colon, so a plain file_id never starts with this.
const DOCUMENT_FILE_ID: &str = "document:";

/// Where a story's file comes from: a path to upload, or a file_id from an earlier send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    Upload { path: String, file_name: String },
    FileId(String),
}

/// A photo or video with an HTML caption and a keyboard.
pub fn send_media(
    chat_id: i64,
    is_video: bool,
    source: &FileSource,
    caption: &str,
    keyboard: &Keyboard,
    on_result: Value,
) -> Outgoing {
    let (method, field) = match source {
        FileSource::FileId(id) if id.starts_with(DOCUMENT_FILE_ID) => ("sendDocument", "document"),
        _ if is_video => ("sendVideo", "video"),
        _ => ("sendPhoto", "photo"),
    };
    let mut params = json!({
        "chat_id": chat_id,
        "caption": caption,
        "parse_mode": "HTML",
        "reply_markup": markup(keyboard),
    });
    match source {
        FileSource::FileId(id) => {
            params[field] = json!(id.strip_prefix(DOCUMENT_FILE_ID).unwrap_or(id));
        }
        FileSource::Upload { path, file_name } => {
            params[UPLOAD_KEY] = json!({ "field": field, "path": path, "file_name": file_name });
        }
    }
    if method == "sendVideo" {
        params["supports_streaming"] = json!(true);
    }
    Outgoing {
        method,
        params,
        on_result: Some(on_result),
    }
}

/// A picture Storyline drew (the /insights chart, a few KB), sent as a photo
/// with an HTML caption; nothing is recorded when Telegram takes it. The
/// outbox row holds the picture (as hex), so the photo is always the one drawn
/// for this caption, whatever is drawn before it goes out.
pub fn send_drawn_photo(chat_id: i64, png: &[u8], file_name: &str, caption: &str) -> Outgoing {
    Outgoing::new(
        "sendPhoto",
        json!({
            "chat_id": chat_id,
            "caption": caption,
            "parse_mode": "HTML",
            UPLOAD_KEY: { "field": "photo", "file_name": file_name, "content_hex": crate::hex::encode(png) },
        }),
    )
}

/// A file made in memory (a settings export), sent as a document with an HTML
/// caption. The outbox row holds the content, so keep it small.
pub fn send_document(chat_id: i64, file_name: &str, content: &str, caption: &str) -> Outgoing {
    Outgoing::new(
        "sendDocument",
        json!({
            "chat_id": chat_id,
            "caption": caption,
            "parse_mode": "HTML",
            UPLOAD_KEY: { "field": "document", "file_name": file_name, "content": content },
        }),
    )
}

/// Replaces a photo or video message's caption and keyboard.
pub fn edit_caption(
    chat_id: i64,
    message_id: i64,
    caption: &str,
    keyboard: Option<&Keyboard>,
) -> Outgoing {
    Outgoing::new(
        "editMessageCaption",
        json!({
            "chat_id": chat_id,
            "message_id": message_id,
            "caption": caption,
            "parse_mode": "HTML",
            "reply_markup": markup(keyboard.unwrap_or(&Vec::new())),
        }),
    )
}

pub fn edit_keyboard(chat_id: i64, message_id: i64, keyboard: &Keyboard) -> Outgoing {
    Outgoing::new(
        "editMessageReplyMarkup",
        json!({ "chat_id": chat_id, "message_id": message_id, "reply_markup": markup(keyboard) }),
    )
}

/// The message id and, for a photo, video or document, the file_id to store in a
/// send's result (a document's marked so `send_media` sends it back as one).
pub fn sent_message_info(result: &Value) -> (Option<i64>, Option<String>) {
    let message_id = result.get("message_id").and_then(Value::as_i64);
    let file_id = |file: Option<&Value>| {
        file.and_then(|f| f.get("file_id"))
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_string)
    };
    let media = result
        .get("photo")
        .and_then(Value::as_array)
        .and_then(|sizes| sizes.last())
        .or_else(|| result.get("video"));
    let stored = file_id(media)
        .or_else(|| file_id(result.get("document")).map(|id| format!("{DOCUMENT_FILE_ID}{id}")));
    (message_id, stored)
}

/// The chat a stored call is addressed to, if it names one.
pub fn call_chat_id(params: &Value) -> Option<i64> {
    match params.get("chat_id")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Readdresses a stored call to another chat (a group that became a supergroup).
pub fn set_call_chat_id(params: &mut Value, chat_id: i64) {
    if let Some(fields) = params.as_object_mut() {
        fields.insert("chat_id".to_string(), json!(chat_id));
    }
}

fn markup(keyboard: &Keyboard) -> Value {
    json!({ "inline_keyboard": keyboard })
}

/// An HTML message; `text` must already be escaped where it holds dynamic strings.
pub fn send_message(chat_id: i64, text: &str, keyboard: Option<&Keyboard>) -> Outgoing {
    let mut params = json!({
        "chat_id": chat_id,
        "text": text,
        "parse_mode": "HTML",
        "link_preview_options": { "is_disabled": true },
    });
    if let Some(k) = keyboard {
        params["reply_markup"] = markup(k);
    }
    Outgoing::new("sendMessage", params)
}

/// Replaces a message's text and keyboard (no keyboard removes it).
pub fn edit_message(
    chat_id: i64,
    message_id: i64,
    text: &str,
    keyboard: Option<&Keyboard>,
) -> Outgoing {
    let mut params = json!({
        "chat_id": chat_id,
        "message_id": message_id,
        "text": text,
        "parse_mode": "HTML",
        "link_preview_options": { "is_disabled": true },
    });
    params["reply_markup"] = markup(keyboard.unwrap_or(&Vec::new()));
    Outgoing::new("editMessageText", params)
}

pub fn answer_callback(callback_query_id: &str, text: &str, alert: bool) -> Outgoing {
    Outgoing::new(
        "answerCallbackQuery",
        json!({
            "callback_query_id": callback_query_id,
            "text": text,
            "show_alert": alert,
        }),
    )
}

pub fn set_my_commands(commands: &[(&str, &str)]) -> Outgoing {
    let list: Vec<Value> = commands
        .iter()
        .map(|(command, description)| json!({ "command": command, "description": description }))
        .collect();
    Outgoing::new("setMyCommands", json!({ "commands": list }))
}

/// The call as Telegram will take it, within its length limits: a message too long
/// becomes several, cut at line ends (the keyboard and the hook go with the last
/// part, which is the one a press can come from); an edit, which cannot become
/// two messages, and a caption are shortened with a visible "…".
pub fn fit_to_limits(call: &Outgoing) -> Vec<Outgoing> {
    let html = call.params.get("parse_mode").and_then(Value::as_str) == Some("HTML");
    let text = |key: &str| call.params.get(key).and_then(Value::as_str);
    let with = |key: &str, value: String| {
        let mut fitted = call.clone();
        fitted.params[key] = json!(value);
        fitted
    };
    match call.method {
        "sendMessage" if html => {
            let Some(whole) = text("text") else {
                return vec![call.clone()];
            };
            let parts = html_fit::split(whole, MAX_TEXT_UNITS);
            let last = parts.len().saturating_sub(1);
            parts
                .into_iter()
                .enumerate()
                .map(|(i, part)| {
                    let mut fitted = with("text", part);
                    if i != last {
                        if let Value::Object(params) = &mut fitted.params {
                            params.remove("reply_markup");
                        }
                        fitted.on_result = None;
                    }
                    fitted
                })
                .collect()
        }
        "editMessageText" if html => match text("text") {
            Some(whole) => vec![with("text", html_fit::truncate(whole, MAX_TEXT_UNITS))],
            None => vec![call.clone()],
        },
        "editMessageCaption" | "sendPhoto" | "sendVideo" | "sendDocument" if html => {
            match text("caption") {
                Some(whole) => vec![with(
                    "caption",
                    html_fit::truncate(whole, MAX_CAPTION_UNITS),
                )],
                None => vec![call.clone()],
            }
        }
        "answerCallbackQuery" => match text("text") {
            Some(whole) if whole.chars().count() > MAX_ALERT_CHARS => {
                vec![with("text", truncate(whole, MAX_ALERT_CHARS - 1))]
            }
            _ => vec![call.clone()],
        },
        _ => vec![call.clone()],
    }
}

// ---- the client -----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Telegram answered with an error (or an HTTP error status without a body).
    Api {
        code: i64,
        description: String,
        retry_after: Option<u64>,
        /// The group became a supergroup with this id (`parameters.migrate_to_chat_id`).
        migrate_to_chat_id: Option<i64>,
    },
    /// No answer: refused, reset, timed out, DNS.
    Network(String),
    /// An answer that is not the Bot API's JSON.
    Garbage(String),
    /// The file to upload could not be read; nothing was sent.
    File(String),
}

/// A 429 waits at least this, whatever `retry_after` says: `retry_after: 0`
/// must not turn into retries at full speed.
const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);
/// ... and at most this, so a garbled value cannot silence the bot for days.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

impl ApiError {
    /// How long Telegram asks us to wait, within [1 s, 1 h].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Api {
                retry_after: Some(s),
                ..
            } => Some(Duration::from_secs(*s).clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER)),
            _ => None,
        }
    }

    /// Worth trying again later: an outage rather than a refusal of this request.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Api { code, .. } => *code == 429 || *code >= 500 || *code == 409,
            ApiError::Network(_) | ApiError::Garbage(_) => true,
            ApiError::File(_) => false,
        }
    }

    /// 409: another program polls with the token, or a webhook is set on it.
    pub fn is_conflict(&self) -> bool {
        matches!(self, ApiError::Api { code: 409, .. })
    }

    /// An edit that changed nothing; Telegram calls it an error, we call it done.
    pub fn is_not_modified(&self) -> bool {
        matches!(self, ApiError::Api { code: 400, description, .. } if description.contains("message is not modified"))
    }

    /// The supergroup a group became, when the call went to the old group's id.
    pub fn migrate_to_chat_id(&self) -> Option<i64> {
        match self {
            ApiError::Api {
                migrate_to_chat_id, ..
            } => *migrate_to_chat_id,
            _ => None,
        }
    }

    /// Why Telegram will deliver nothing more to the call's chat, when that is
    /// what the error says (rather than a problem with this one call).
    pub fn chat_unreachable(&self) -> Option<ChatGone> {
        let ApiError::Api {
            code: code @ (400 | 403),
            description,
            ..
        } = self
        else {
            return None;
        };
        let description = description.to_ascii_lowercase();
        let found = |words: &str| description.contains(words);
        match code {
            403 if found("bot was blocked by the user")
                || found("bot can't initiate conversation") =>
            {
                Some(ChatGone::Blocked)
            }
            403 if found("bot was kicked from") || found("bot is not a member of") => {
                Some(ChatGone::Kicked)
            }
            403 if found("user is deactivated") => Some(ChatGone::Deactivated),
            403 if found("chat was deleted") => Some(ChatGone::NotFound),
            400 if found("chat not found") => Some(ChatGone::NotFound),
            _ => None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Api {
                code, description, ..
            } => write!(f, "Telegram error {code}: {description}"),
            ApiError::Network(e) => write!(f, "network error: {e}"),
            ApiError::Garbage(e) => write!(f, "unreadable answer: {e}"),
            ApiError::File(e) => write!(f, "cannot read the file to upload: {e}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// Cheap to clone: clones share one ureq agent (and its connection pool).
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    api_url: String,
    token: Secret,
}

/// Longest answer we accept; getUpdates with 100 updates is far below this.
const MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// getChatMember holds up a batch of updates: better a quick "try again" than a
/// long wait.
const MEMBER_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A ChatMember object's status: "creator" and "administrator" run the chat;
/// "member", "restricted", "left" and "kicked" do not.
pub fn member_is_admin(member: &Value) -> bool {
    matches!(
        member.get("status").and_then(Value::as_str),
        Some("creator" | "administrator")
    )
}

impl Client {
    pub fn new(api_url: &str, token: Secret) -> Client {
        let agent = crate::http::agent(CALL_TIMEOUT, Duration::from_secs(10));
        Client {
            agent,
            api_url: api_url.trim_end_matches('/').to_string(),
            token,
        }
    }

    /// Calls a method with a JSON body and returns its `result`.
    pub fn call(&self, method: &str, params: &Value) -> Result<Value, ApiError> {
        self.call_with_timeout(method, params, CALL_TIMEOUT)
    }

    fn call_with_timeout(
        &self,
        method: &str,
        params: &Value,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        let url = self.method_url(method);
        let request = self.agent.post(&url);
        // A request of its own config only for another timeout: building one
        // copies the agent's whole config on every call.
        let response = if timeout == CALL_TIMEOUT {
            request.send_json(params)
        } else {
            request
                .config()
                .timeout_global(Some(timeout))
                .build()
                .send_json(params)
        };
        self.finish(response)
    }

    /// Long-polls for updates after `offset`; confirms everything before it.
    pub fn get_updates(&self, offset: i64, timeout_secs: u64) -> Result<Vec<Update>, ApiError> {
        let params = json!({
            "offset": offset,
            "timeout": timeout_secs,
            "allowed_updates": ["message", "callback_query"],
        });
        let result = self.call_with_timeout(
            "getUpdates",
            &params,
            Duration::from_secs(timeout_secs + 15),
        )?;
        parse_updates(result)
    }

    /// The host of the webhook set on the token, if any: while one is set,
    /// Telegram refuses getUpdates with 409. Only the host, because a webhook's
    /// path often holds a secret.
    pub fn webhook_host(&self) -> Result<Option<String>, ApiError> {
        let info = self.call("getWebhookInfo", &json!({}))?;
        let url = info.get("url").and_then(Value::as_str).unwrap_or_default();
        Ok((!url.is_empty()).then(|| url_host(url)))
    }

    /// Whether the user is an administrator (or the creator) of the chat, by
    /// getChatMember. A user Telegram does not know in the chat is answered with
    /// 400 "user not found", which the caller takes for "not an administrator".
    pub fn is_chat_admin(&self, chat_id: i64, user_id: i64) -> Result<bool, ApiError> {
        let member = self.call_with_timeout(
            "getChatMember",
            &json!({ "chat_id": chat_id, "user_id": user_id }),
            MEMBER_CALL_TIMEOUT,
        )?;
        Ok(member_is_admin(&member))
    }

    /// Removes the webhook; the updates Telegram holds for the bot are kept.
    pub fn delete_webhook(&self) -> Result<(), ApiError> {
        self.call("deleteWebhook", &json!({ "drop_pending_updates": false }))
            .map(|_| ())
    }

    /// Delivers a stored call: JSON, or a multipart upload when it names a file.
    /// Delivers a call as the outbox stored it, its parameters as JSON text: sent
    /// as they are, without building them again, unless a file goes with them.
    pub fn deliver_stored(&self, method: &str, params_json: &str) -> Result<Value, ApiError> {
        if params_json.contains(UPLOAD_KEY) {
            let params: Value = serde_json::from_str(params_json)
                .map_err(|e| ApiError::Garbage(format!("a stored {method} call: {e}")))?;
            return self.deliver(method, &params);
        }
        let url = self.method_url(method);
        let response = self
            .agent
            .post(&url)
            .content_type("application/json")
            .send(params_json);
        self.finish(response)
    }

    pub fn deliver(&self, method: &str, params: &Value) -> Result<Value, ApiError> {
        match params.get(UPLOAD_KEY) {
            Some(upload) => self.upload(method, params, upload),
            None => self.call(method, params),
        }
    }

    fn upload(&self, method: &str, params: &Value, upload: &Value) -> Result<Value, ApiError> {
        let field = upload
            .get("field")
            .and_then(Value::as_str)
            .unwrap_or("document");
        let path = upload
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let file_name = upload
            .get("file_name")
            .and_then(Value::as_str)
            .unwrap_or("file");
        // A file made in memory travels in the row (text as it is, a drawn
        // picture as hex); a story's is read from disk.
        let in_row = match (upload.get("content"), upload.get("content_hex")) {
            (Some(Value::String(content)), _) => Some(content.clone().into_bytes()),
            (_, Some(Value::String(hex))) => Some(crate::hex::decode(hex).ok_or_else(|| {
                ApiError::File(format!("{file_name}: the stored picture is not hex"))
            })?),
            _ => None,
        };
        let (file, file_len): (Box<dyn Read + Send>, u64) = match in_row {
            Some(content) => {
                let len = content.len() as u64;
                (Box::new(std::io::Cursor::new(content)), len)
            }
            None => {
                let file = std::fs::File::open(path)
                    .map_err(|e| ApiError::File(format!("{path}: {e}")))?;
                let len = file
                    .metadata()
                    .map_err(|e| ApiError::File(format!("{path}: {e}")))?
                    .len();
                (Box::new(file), len)
            }
        };
        let boundary = multipart_boundary()?;
        let mut head = String::new();
        if let Value::Object(fields) = params {
            for (name, value) in fields {
                if name == UPLOAD_KEY {
                    continue;
                }
                let text = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                head.push_str(&format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{text}\r\n"
                ));
            }
        }
        let safe_name: String = file_name
            .chars()
            .map(|c| {
                if c == '"' || c == '\\' || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        head.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{safe_name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        ));
        let tail = format!("\r\n--{boundary}--\r\n");
        let length = head.len() as u64 + file_len + tail.len() as u64;
        let body = std::io::Cursor::new(head.into_bytes())
            .chain(std::io::Read::take(file, file_len))
            .chain(std::io::Cursor::new(tail.into_bytes()));
        let url = self.method_url(method);
        // Uploads of up to 50 MB from a Pi on a slow uplink take a while.
        let timeout = Duration::from_secs(60 + file_len / (64 * 1024));
        let response = self
            .agent
            .post(&url)
            .header(
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            )
            .header("Content-Length", &length.to_string())
            .config()
            .timeout_global(Some(timeout))
            .build()
            .send(ureq::SendBody::from_owned_reader(body));
        self.finish(response)
    }

    /// Downloads a file a user sent: getFile for its path, then the file itself
    /// from `<api_url>/file/bot<token>/<path>`. A file over `max_bytes` (as
    /// Telegram states it, or as it arrives) is `TooBig` and not kept.
    pub fn download_file(&self, file_id: &str, max_bytes: u64) -> Fetched {
        let file = match self.call("getFile", &json!({ "file_id": file_id })) {
            Ok(file) => file,
            Err(e) => return Fetched::Failed(e.to_string()),
        };
        if file
            .get("file_size")
            .and_then(Value::as_u64)
            .is_some_and(|size| size > max_bytes)
        {
            return Fetched::TooBig;
        }
        let Some(path) = file.get("file_path").and_then(Value::as_str) else {
            return Fetched::Failed("Telegram gave no file_path for the file".into());
        };
        let url = format!(
            "{}/file/bot{}/{}",
            self.api_url,
            self.token.expose(),
            path.trim_start_matches('/')
        );
        let mut response = match self.agent.get(&url).call() {
            Ok(response) => response,
            Err(e) => return Fetched::Failed(self.redact(&e.to_string())),
        };
        let status = response.status().as_u16();
        if status != 200 {
            return Fetched::Failed(format!("the download answered HTTP {status}"));
        }
        let mut content = Vec::new();
        let read = response
            .body_mut()
            .as_reader()
            .take(max_bytes + 1)
            .read_to_end(&mut content);
        match read {
            Err(e) => Fetched::Failed(self.redact(&e.to_string())),
            Ok(_) if content.len() as u64 > max_bytes => Fetched::TooBig,
            Ok(_) => Fetched::Content(content),
        }
    }

    fn finish(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, ApiError> {
        let mut response = match response {
            Ok(r) => r,
            Err(e) => return Err(ApiError::Network(self.redact(&e.to_string()))),
        };
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|e| ApiError::Network(self.redact(&e.to_string())))?;
        parse_response(status, &body).map_err(|e| match e {
            ApiError::Garbage(m) => ApiError::Garbage(self.redact(&m)),
            other => other,
        })
    }

    /// The address of a Bot API method (it holds the token: never logged).
    fn method_url(&self, method: &str) -> String {
        format!("{}/bot{}/{}", self.api_url, self.token.expose(), method)
    }

    fn redact(&self, text: &str) -> String {
        redact_token(text, self.token.expose())
    }
}

/// A boundary no file can hold by chance: 128 random bits. One derived from the
/// file (its length, say) could appear inside a file and cut the upload short.
fn multipart_boundary() -> Result<String, ApiError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ApiError::File("no randomness for the upload's boundary".into()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("storyline-{hex}"))
}

/// Removes the bot token from text that may quote a URL.
pub fn redact_token(text: &str, token: &str) -> String {
    if token.is_empty() {
        return text.to_string();
    }
    text.replace(token, "<token>")
}

/// The host of a URL, without scheme, user info, port, path or query: what may be
/// logged of a webhook address.
pub fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        "an unreadable address".to_string()
    } else {
        host.to_string()
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Turns an HTTP status and body into the call's result or a typed error.
pub fn parse_response(status: u16, body: &str) -> Result<Value, ApiError> {
    let parsed: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) if status >= 400 => {
            return Err(ApiError::Api {
                code: i64::from(status),
                description: format!("HTTP {status}"),
                retry_after: None,
                migrate_to_chat_id: None,
            })
        }
        Err(e) => {
            return Err(ApiError::Garbage(format!(
                "{e} in {:?}",
                truncate(body, 60)
            )))
        }
    };
    if parsed.get("ok").and_then(Value::as_bool) == Some(true) {
        return parsed
            .get("result")
            .cloned()
            .ok_or_else(|| ApiError::Garbage("ok without result".into()));
    }
    let code = parsed
        .get("error_code")
        .and_then(Value::as_i64)
        .unwrap_or(i64::from(status));
    if code < 400 && status < 400 {
        return Err(ApiError::Garbage(format!(
            "not a Bot API answer: {}",
            truncate(body, 60)
        )));
    }
    Err(ApiError::Api {
        code,
        description: parsed
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("no description")
            .to_string(),
        retry_after: parsed
            .pointer("/parameters/retry_after")
            .and_then(Value::as_u64),
        migrate_to_chat_id: parsed
            .pointer("/parameters/migrate_to_chat_id")
            .and_then(Value::as_i64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drawn_photo_travels_in_its_row() {
        let png: Vec<u8> = (0..=255).collect();
        let call = send_drawn_photo(7, &png, "insights.png", "<b>x</b>");
        let upload = &call.params[UPLOAD_KEY];
        assert_eq!(upload["field"], "photo");
        assert!(upload.get("path").is_none(), "{upload}");
        let hex = upload["content_hex"].as_str().unwrap();
        assert!(hex.starts_with("000102") && hex.ends_with("feff"), "{hex}");
        assert_eq!(crate::hex::decode(hex), Some(png));
    }

    #[test]
    fn retry_after_is_kept_between_a_second_and_an_hour() {
        let wait = |secs| {
            ApiError::Api {
                code: 429,
                description: "Too Many Requests".into(),
                retry_after: Some(secs),
                migrate_to_chat_id: None,
            }
            .retry_after()
        };
        assert_eq!(wait(0), Some(Duration::from_secs(1)));
        assert_eq!(wait(7), Some(Duration::from_secs(7)));
        assert_eq!(wait(u64::MAX), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn responses() {
        assert_eq!(
            parse_response(200, r#"{"ok":true,"result":[1]}"#),
            Ok(json!([1]))
        );
        assert_eq!(
            parse_response(429, r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#)
                .unwrap_err()
                .retry_after(),
            Some(Duration::from_secs(3))
        );
        let e = parse_response(502, "<html>Bad Gateway</html>").unwrap_err();
        assert!(e.is_transient());
        assert!(matches!(
            parse_response(200, "{\"ok\":tru<<<"),
            Err(ApiError::Garbage(_))
        ));
        assert!(matches!(
            parse_response(200, "[]"),
            Err(ApiError::Garbage(_))
        ));
        let e = parse_response(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: message is not modified: x"}"#).unwrap_err();
        assert!(e.is_not_modified() && !e.is_transient());
    }

    #[test]
    fn chat_members_and_chat_kinds() {
        for (status, admin) in [
            ("creator", true),
            ("administrator", true),
            ("member", false),
            ("restricted", false),
            ("left", false),
            ("kicked", false),
            ("Administrator", false),
        ] {
            let member = json!({"status": status, "user": {"id": 7, "is_bot": false}});
            assert_eq!(member_is_admin(&member), admin, "{status}");
        }
        assert!(!member_is_admin(&json!({})));
        assert!(!member_is_admin(&json!("administrator")));

        let chat = |value: Value| serde_json::from_value::<Chat>(value).unwrap();
        assert!(chat(json!({"id": 7, "type": "private"})).is_private());
        assert!(!chat(json!({"id": -7, "type": "group"})).is_private());
        assert!(!chat(json!({"id": -1007, "type": "supergroup"})).is_private());
        // Telegram always sends the type; without it, the sign of the id tells.
        assert!(chat(json!({"id": 7})).is_private());
        assert!(!chat(json!({"id": -7})).is_private());
    }

    #[test]
    fn a_group_upgraded_to_a_supergroup_names_its_new_id() {
        let e = parse_response(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234567890}}"#).unwrap_err();
        assert_eq!(e.migrate_to_chat_id(), Some(-1_001_234_567_890));
        assert!(!e.is_transient() && e.chat_unreachable().is_none());
        let e = parse_response(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
        )
        .unwrap_err();
        assert_eq!(e.migrate_to_chat_id(), None);
        assert_eq!(ApiError::Network("x".into()).migrate_to_chat_id(), None);
    }

    #[test]
    fn refusals_that_mean_the_chat_is_gone() {
        let gone = |code: i64, description: &str| {
            ApiError::Api {
                code,
                description: description.to_string(),
                retry_after: None,
                migrate_to_chat_id: None,
            }
            .chat_unreachable()
        };
        let cases = [
            (
                403,
                "Forbidden: bot was blocked by the user",
                Some(ChatGone::Blocked),
            ),
            (
                403,
                "Forbidden: bot can't initiate conversation with a user",
                Some(ChatGone::Blocked),
            ),
            (
                403,
                "Forbidden: bot was kicked from the group chat",
                Some(ChatGone::Kicked),
            ),
            (
                403,
                "Forbidden: bot was kicked from the supergroup chat",
                Some(ChatGone::Kicked),
            ),
            (
                403,
                "Forbidden: bot is not a member of the supergroup chat",
                Some(ChatGone::Kicked),
            ),
            (
                403,
                "Forbidden: user is deactivated",
                Some(ChatGone::Deactivated),
            ),
            (
                403,
                "Forbidden: the group chat was deleted",
                Some(ChatGone::NotFound),
            ),
            (400, "Bad Request: chat not found", Some(ChatGone::NotFound)),
            // About this one call, not the chat.
            (400, "Bad Request: message to edit not found", None),
            (
                403,
                "Forbidden: not enough rights to send photos to the chat",
                None,
            ),
            (
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                None,
            ),
            // The same words with a status that does not mean a refusal.
            (500, "chat not found", None),
            (429, "bot was blocked by the user", None),
        ];
        for (code, description, expected) in cases {
            assert_eq!(gone(code, description), expected, "{code} {description}");
        }
        for gone in [
            ChatGone::Blocked,
            ChatGone::Kicked,
            ChatGone::NotFound,
            ChatGone::Deactivated,
        ] {
            assert_eq!(ChatGone::from_name(gone.name()), Some(gone));
        }
        assert_eq!(ChatGone::from_name("gone"), None);
    }

    #[test]
    fn a_stored_call_is_readdressed() {
        let mut call = send_message(-5, "hi", None).params;
        assert_eq!(call_chat_id(&call), Some(-5));
        set_call_chat_id(&mut call, -1_000_000_000_005);
        assert_eq!(call_chat_id(&call), Some(-1_000_000_000_005));
        assert_eq!(call["text"], "hi");
        assert_eq!(call_chat_id(&json!({"chat_id": " -7 "})), Some(-7));
        assert_eq!(call_chat_id(&answer_callback("q", "t", false).params), None);
        assert_eq!(call_chat_id(&json!({"chat_id": "@channel"})), None);
    }

    #[test]
    fn lenient_updates() {
        let u = parse_update(json!({"update_id": 5, "message": {"weird": true}})).unwrap();
        assert_eq!(u.update_id, 5);
        assert!(u.message.is_none());
        assert!(parse_update(json!({"message": {}})).is_none());
        let u = parse_update(json!({"update_id": 6, "callback_query": {"id": "q", "from": {"id": 1, "is_bot": false, "first_name": "A"}, "data": "x", "message": {"message_id": 3, "date": 0, "chat": {"id": -5, "type": "group"}}}})).unwrap();
        assert_eq!(u.callback_query.unwrap().message.unwrap().chat.id, -5);
        let u = parse_update(json!({"update_id": 7, "message": {"message_id": 9, "date": 1, "chat": {"id": -5, "type": "group"}, "from": {"id": 1, "is_bot": false, "first_name": "A"}, "migrate_to_chat_id": -1_000_000_000_005_i64}})).unwrap();
        assert_eq!(
            u.message.unwrap().migrate_to_chat_id,
            Some(-1_000_000_000_005)
        );
        let u = parse_update(json!({"update_id": 8, "message": {"message_id": 1, "date": 1, "chat": {"id": -1_000_000_000_005_i64, "type": "supergroup"}, "migrate_from_chat_id": -5}})).unwrap();
        let message = u.message.unwrap();
        assert_eq!(
            (message.migrate_from_chat_id, message.from.is_none()),
            (Some(-5), true)
        );
    }

    #[test]
    fn escaping_and_redaction() {
        assert_eq!(escape_html("<b>&\"x\""), "&lt;b&gt;&amp;&quot;x&quot;");
        assert_eq!(
            redact_token("POST http://h/bot1:AB/getUpdates failed", "1:AB"),
            "POST http://h/bot<token>/getUpdates failed"
        );
    }

    #[test]
    fn long_messages_become_several_and_only_the_last_has_the_keyboard() {
        let line = "• 14:00 quotes/monday &amp; more.jpg\n";
        let text = format!("<b>Schedule</b>\n{}", line.repeat(300));
        let keyboard = vec![vec![Button::callback("Next", "1:x")]];
        let mut call = send_message(7, &text, Some(&keyboard));
        call.on_result = Some(json!({"hook": 1}));
        let parts = fit_to_limits(&call);
        assert!(parts.len() >= 3, "{} parts", parts.len());
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate() {
            let text = part.params["text"].as_str().unwrap();
            assert!(html_fit::visible_units(text) <= MAX_TEXT_UNITS);
            assert_eq!(part.params.get("reply_markup").is_some(), i == last);
            assert_eq!(part.on_result.is_some(), i == last);
            assert_eq!(part.params["chat_id"], 7);
        }
        let lines: usize = parts
            .iter()
            .map(|p| p.params["text"].as_str().unwrap().matches("monday").count())
            .sum();
        assert_eq!(lines, 300);
        // A message that fits is left alone.
        let short = send_message(7, "<b>hi</b>", Some(&keyboard));
        assert_eq!(fit_to_limits(&short), vec![short]);
    }

    #[test]
    fn long_edits_captions_and_alerts_are_shortened() {
        let long = format!("<b>{}</b>", "é".repeat(5000));
        let edit = fit_to_limits(&edit_message(1, 2, &long, None));
        assert_eq!(edit.len(), 1);
        let text = edit[0].params["text"].as_str().unwrap();
        assert_eq!(html_fit::visible_units(text), MAX_TEXT_UNITS);
        assert!(text.ends_with("…</b>"), "{text}");

        let caption = fit_to_limits(&edit_caption(1, 2, &long, None));
        let text = caption[0].params["caption"].as_str().unwrap();
        assert_eq!(html_fit::visible_units(text), MAX_CAPTION_UNITS);
        let source = FileSource::FileId("AgAD".into());
        let sent = fit_to_limits(&send_media(1, false, &source, &long, &vec![], json!(null)));
        let text = sent[0].params["caption"].as_str().unwrap();
        assert_eq!(html_fit::visible_units(text), MAX_CAPTION_UNITS);

        let alert = fit_to_limits(&answer_callback("q", &"x".repeat(300), true));
        assert_eq!(
            alert[0].params["text"].as_str().unwrap().chars().count(),
            MAX_ALERT_CHARS
        );
    }

    #[test]
    fn a_video_kept_as_a_document_is_stored_and_sent_again_as_one() {
        let (id, file) = sent_message_info(&json!({
            "message_id": 9,
            "document": {"file_id": "BQACAgQ", "file_name": "clip.mov"},
        }));
        assert_eq!((id, file.as_deref()), (Some(9), Some("document:BQACAgQ")));
        let again = send_media(
            1,
            true,
            &FileSource::FileId(file.unwrap()),
            "c",
            &vec![],
            json!(null),
        );
        assert_eq!(again.method, "sendDocument");
        assert_eq!(again.params["document"], "BQACAgQ");
        assert!(again.params.get("supports_streaming").is_none());
        let (_, video) = sent_message_info(&json!({
            "message_id": 9,
            "video": {"file_id": "BAACAgQ"},
        }));
        assert_eq!(video.as_deref(), Some("BAACAgQ"));
        let again = send_media(
            1,
            true,
            &FileSource::FileId("BAACAgQ".into()),
            "c",
            &vec![],
            json!(null),
        );
        assert_eq!(
            (again.method, &again.params["video"]),
            ("sendVideo", &json!("BAACAgQ"))
        );
    }

    #[test]
    fn boundaries_are_random() {
        let a = multipart_boundary().unwrap();
        let b = multipart_boundary().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), "storyline-".len() + 32);
    }

    #[test]
    fn only_the_host_of_a_webhook_is_shown() {
        let cases = [
            (
                "https://hooks.example.org/bot123:SECRET/path?key=1",
                "hooks.example.org",
            ),
            ("https://user:pass@example.org:8443/x", "example.org"),
            ("https://[2001:db8::1]:88/hook", "2001:db8::1"),
            ("example.org/abc", "example.org"),
            ("https:///nohost", "an unreadable address"),
        ];
        for (url, host) in cases {
            assert_eq!(url_host(url), host, "{url}");
        }
    }

    #[test]
    fn parse_response_never_panics() {
        let mut seed: u64 = 0xDEAD_BEEF_CAFE_F00D;
        let pieces = [
            "{",
            "}",
            "\"ok\"",
            ":",
            "true",
            "false",
            "\"result\"",
            ",",
            "[",
            "]",
            "\"error_code\"",
            "429",
            "\"parameters\"",
            "\"retry_after\"",
            "-1",
            "1e400",
            "null",
            "\u{0}",
        ];
        for _ in 0..5000 {
            let mut body = String::new();
            for _ in 0..(seed % 16) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                body.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let _ = parse_response((seed % 600) as u16, &body);
        }
    }

    // ---- property tests (`cargo test --lib fuzz_update`) ----

    use crate::fuzz_input::{self, mutate_text, mutations};
    use proptest::prelude::*;

    /// What a valid update says, in the fields Storyline reads.
    #[derive(Debug, Clone, PartialEq)]
    struct UserSpec {
        id: i64,
        is_bot: bool,
        first_name: String,
        username: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq)]
    struct ChatSpec {
        id: i64,
        title: Option<String>,
        username: Option<String>,
        first_name: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq)]
    struct MessageSpec {
        message_id: i64,
        from: Option<UserSpec>,
        chat: ChatSpec,
        text: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq)]
    struct CallbackSpec {
        id: String,
        from: UserSpec,
        message: Option<MessageSpec>,
        data: Option<String>,
    }

    #[derive(Debug, Clone, PartialEq)]
    struct UpdateSpec {
        update_id: i64,
        message: Option<MessageSpec>,
        callback_query: Option<CallbackSpec>,
    }

    fn any_user() -> impl Strategy<Value = UserSpec> {
        (
            any::<i64>(),
            any::<bool>(),
            ".{0,20}",
            proptest::option::of("[a-zA-Z0-9_]{5,32}"),
        )
            .prop_map(|(id, is_bot, first_name, username)| UserSpec {
                id,
                is_bot,
                first_name,
                username,
            })
    }

    fn any_chat() -> impl Strategy<Value = ChatSpec> {
        (
            any::<i64>(),
            proptest::option::of(".{0,30}"),
            proptest::option::of("[a-zA-Z0-9_]{5,32}"),
            proptest::option::of(".{0,20}"),
        )
            .prop_map(|(id, title, username, first_name)| ChatSpec {
                id,
                title,
                username,
                first_name,
            })
    }

    fn any_message() -> impl Strategy<Value = MessageSpec> {
        (
            any::<i64>(),
            proptest::option::of(any_user()),
            any_chat(),
            proptest::option::of(".{0,80}"),
        )
            .prop_map(|(message_id, from, chat, text)| MessageSpec {
                message_id,
                from,
                chat,
                text,
            })
    }

    /// An update as Telegram sends it: a message, a button press, or a kind we do
    /// not read (both empty).
    fn any_update() -> impl Strategy<Value = UpdateSpec> {
        let callback = (
            ".{1,20}",
            any_user(),
            proptest::option::of(any_message()),
            proptest::option::of(".{0,64}"),
        )
            .prop_map(|(id, from, message, data)| CallbackSpec {
                id,
                from,
                message,
                data,
            });
        let content = prop_oneof![
            any_message().prop_map(|m| (Some(m), None)),
            callback.prop_map(|c| (None, Some(c))),
            Just((None, None)),
        ];
        (any::<i64>(), content).prop_map(|(update_id, (message, callback_query))| UpdateSpec {
            update_id,
            message,
            callback_query,
        })
    }

    fn put(object: &mut Value, key: &str, value: Option<impl Into<Value>>) {
        if let Some(value) = value {
            object[key] = value.into();
        }
    }

    fn user_json(user: &UserSpec) -> Value {
        let mut v = json!({ "id": user.id, "is_bot": user.is_bot, "first_name": user.first_name, "language_code": "en" });
        put(&mut v, "username", user.username.clone());
        v
    }

    fn message_json(message: &MessageSpec) -> Value {
        let chat = &message.chat;
        let mut chat_json =
            json!({ "id": chat.id, "type": if chat.id < 0 { "supergroup" } else { "private" } });
        put(&mut chat_json, "title", chat.title.clone());
        put(&mut chat_json, "username", chat.username.clone());
        put(&mut chat_json, "first_name", chat.first_name.clone());
        let mut v =
            json!({ "message_id": message.message_id, "date": 1_750_000_000, "chat": chat_json });
        put(&mut v, "from", message.from.as_ref().map(user_json));
        if let Some(text) = &message.text {
            v["text"] = json!(text);
            v["entities"] = json!([{ "type": "bot_command", "offset": 0, "length": 1 }]);
        } else {
            v["photo"] =
                json!([{ "file_id": "f", "file_unique_id": "u", "width": 1, "height": 1 }]);
        }
        v
    }

    /// The JSON Telegram would send, with fields Storyline does not read.
    fn update_json(update: &UpdateSpec) -> Value {
        let mut v = json!({ "update_id": update.update_id });
        put(&mut v, "message", update.message.as_ref().map(message_json));
        if let Some(c) = &update.callback_query {
            let mut q = json!({ "id": c.id, "from": user_json(&c.from), "chat_instance": "-123" });
            put(&mut q, "message", c.message.as_ref().map(message_json));
            put(&mut q, "data", c.data.clone());
            v["callback_query"] = q;
        }
        if update.message.is_none() && update.callback_query.is_none() {
            v["my_chat_member"] = json!({ "chat": { "id": 1, "type": "private" }, "date": 0 });
        }
        v
    }

    fn spec_of(update: &Update) -> UpdateSpec {
        let user = |u: &User| UserSpec {
            id: u.id,
            is_bot: u.is_bot,
            first_name: u.first_name.clone(),
            username: u.username.clone(),
        };
        let message = |m: &Message| MessageSpec {
            message_id: m.message_id,
            from: m.from.as_ref().map(user),
            chat: ChatSpec {
                id: m.chat.id,
                title: m.chat.title.clone(),
                username: m.chat.username.clone(),
                first_name: m.chat.first_name.clone(),
            },
            text: m.text.clone(),
        };
        UpdateSpec {
            update_id: update.update_id,
            message: update.message.as_ref().map(message),
            callback_query: update.callback_query.as_ref().map(|c| CallbackSpec {
                id: c.id.clone(),
                from: user(&c.from),
                message: c.message.as_ref().map(message),
                data: c.data.clone(),
            }),
        }
    }

    /// Any JSON value, with keys often named like the fields of an update so
    /// that the reader gets past its first checks.
    fn any_json() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            3 => prop::sample::select(vec![
                "update_id", "message", "callback_query", "message_id", "from", "chat",
                "text", "id", "title", "username", "first_name", "is_bot", "data", "date",
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

    /// Every node of a JSON tree as a JSON pointer ("" is the root).
    fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
        match value {
            Value::Object(fields) => {
                for (key, child) in fields {
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    pointers(child, format!("{at}/{escaped}"), out);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    pointers(child, format!("{at}/{index}"), out);
                }
            }
            _ => {}
        }
        out.push(at);
    }

    /// Removes the node at `pointer` from its parent; the root cannot go.
    fn remove(value: &mut Value, pointer: &str) {
        let Some((parent, last)) = pointer.rsplit_once('/') else {
            return;
        };
        let key = last.replace("~1", "/").replace("~0", "~");
        match value.pointer_mut(parent) {
            Some(Value::Object(fields)) => {
                fields.remove(&key);
            }
            Some(Value::Array(items)) => {
                if let Ok(index) = key.parse::<usize>() {
                    if index < items.len() {
                        items.remove(index);
                    }
                }
            }
            _ => {}
        }
    }

    const JSON_PIECES: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b"null",
        b"true",
        b"-",
        b"0",
        b"1e400",
        b"-9223372036854775809",
        b"18446744073709551616",
        b"\\u",
        b"\\ud800",
        b"\"update_id\":",
        b"\"message\":",
        b"\"callback_query\":",
        b"\"chat\":",
        b"\"from\":",
    ];

    proptest! {
        #![proptest_config(fuzz_input::config(512))]

        /// Valid updates parse to exactly what they say, whatever else they carry.
        #[test]
        fn fuzz_update_valid_updates_parse(update in any_update()) {
            let parsed = parse_update(update_json(&update)).expect("an update with an id parses");
            prop_assert_eq!(spec_of(&parsed), update.clone());
            // The same through the HTTP answer a getUpdates call gets.
            let body = json!({ "ok": true, "result": [update_json(&update)] }).to_string();
            let result = parse_response(200, &body).expect("a valid answer");
            let updates = parse_updates(result).expect("a list");
            prop_assert_eq!(updates.len(), 1);
            prop_assert_eq!(spec_of(&updates[0]), update);
        }

        /// Any JSON value never panics; it is read exactly when it has an i64
        /// update_id, and then keeps that id.
        #[test]
        fn fuzz_update_arbitrary_json(value in any_json()) {
            let id = value.get("update_id").and_then(Value::as_i64);
            let parsed = parse_update(value.clone());
            prop_assert_eq!(parsed.map(|u| u.update_id), id);
            let _ = parse_updates(Value::Array(vec![value.clone()]));
            let _ = parse_updates(value);
        }

        /// A real update with one node replaced or removed never panics, and is
        /// still read (emptied if need be) while its update_id is an i64.
        #[test]
        fn fuzz_update_mutated_json(
            update in any_update(),
            replacement in any_json(),
            node in any::<usize>(),
            remove_it in any::<bool>(),
        ) {
            let mut value = update_json(&update);
            let mut all = Vec::new();
            pointers(&value, String::new(), &mut all);
            let pointer = &all[node % all.len()];
            if remove_it {
                remove(&mut value, pointer);
            } else if let Some(slot) = value.pointer_mut(pointer) {
                *slot = replacement;
            }
            let id = value.get("update_id").and_then(Value::as_i64);
            let parsed = parse_update(value);
            prop_assert_eq!(parsed.map(|u| u.update_id), id);
        }

        /// A getUpdates answer truncated, flipped or spliced as text never panics.
        #[test]
        fn fuzz_update_mutated_answer_text(
            updates in prop::collection::vec(any_update(), 1..4),
            changes in mutations(JSON_PIECES),
            status in prop_oneof![Just(200u16), any::<u16>()],
        ) {
            let items: Vec<Value> = updates.iter().map(update_json).collect();
            let body = json!({ "ok": true, "result": items }).to_string();
            let mutated = mutate_text(&body, &changes);
            if let Ok(result) = parse_response(status, &mutated) {
                let _ = parse_updates(result);
            }
        }

        /// Arbitrary answer bodies and statuses never panic.
        #[test]
        fn fuzz_update_arbitrary_answer_text(body in ".{0,200}", status in any::<u16>()) {
            if let Ok(result) = parse_response(status, &body) {
                let _ = parse_updates(result);
            }
        }
    }
}
