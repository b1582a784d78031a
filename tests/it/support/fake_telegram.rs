//! A fake Telegram Bot API server for the integration tests.
//!
//! It speaks just enough of the real API (long polling, messages, edits, callback
//! queries, media, commands) for the daemon to run against it, records every call,
//! and can be told to fail calls in the ways the real service does (429 with
//! `retry_after`, 5xx, slow answers, dropped connections, garbage). Its errors copy
//! the real descriptions, because the daemon is expected to branch on some of them
//! ("message is not modified"). Chats change as real ones do: a group upgraded to a
//! supergroup (400 with `migrate_to_chat_id`, and the two service messages), a chat
//! that blocked or removed the bot (403), a chat that is gone (400 chat not found).
//! Like the real API it refuses texts over 4096 and captions over 1024 characters (counted in UTF-16 units after entities parsing),
//! refuses getUpdates while a webhook is set, and can answer a video upload with a
//! document, as Telegram does with videos it cannot take as videos.
//! Like the real sendPhoto, it refuses an uploaded photo over 10 MB or whose
//! sides add up to more than 10,000 or are more than 20:1 (it reads the
//! picture's header from the multipart body). getChatMember answers with the
//! status a test gave the user in that chat (`set_member`), and, as strictly as
//! the real one, 400 "user not found" for anyone else.
//! Files are kept as the real API keeps them: a document a user sends
//! (`push_document`) or the bot uploads has a file_id that getFile turns into a
//! `file_path`, downloaded from `/file/bot<token>/<file_path>` (the download is
//! recorded as a call of method "file"); an empty upload is refused, as the real
//! sendDocument refuses it, and getFile refuses a file over 20 MB.
//! It keeps the bot to Telegram's flood limits (`flood`: 30 a second overall,
//! one a second per chat in bursts, 20 a minute per group) with 429 and
//! `retry_after`.
//!
//! Everything lives in one `State` behind a mutex with a condvar that is notified on
//! every change, so long polls and `wait_for` wake up as soon as something happens
//! instead of sleeping.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::mem::ManuallyDrop;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, RawFd};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::fake_http::{self, parse_urlencoded, FakeServer};
use super::flood::FloodControl;
use serde_json::{json, Map, Value};

/// Enough workers that a pending long poll or a slow answer never blocks other calls.
const FIRST_UPDATE_ID: i64 = 1000;
const GARBAGE_BODY: &str = "{\"ok\":tru<<<not json";
const NOT_MODIFIED: &str = "message is not modified: specified new message content and \
     reply markup are exactly the same as a current content and reply markup of the message";
const QUERY_TOO_OLD: &str = "query is too old and response timeout expired or query ID is invalid";
const CONFLICT: &str = "Conflict: terminated by other getUpdates request; \
     make sure that only one bot instance is running";
const UPGRADED: &str = "group chat was upgraded to a supergroup chat";
/// Supergroup ids are -100 followed by the rest of the id.
const SUPERGROUP_IDS_BELOW: i64 = -1_000_000_000_000;
const WEBHOOK_CONFLICT: &str = "Conflict: can't use getUpdates method while webhook is active; \
     use deleteWebhook to delete the webhook first";

/// Every Bot API method the fake answers; other names get the real 404.
const METHODS: &[&str] = &[
    "getUpdates",
    "getMe",
    "sendMessage",
    "editMessageText",
    "editMessageCaption",
    "editMessageReplyMarkup",
    "deleteMessage",
    "answerCallbackQuery",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "sendPhoto",
    "sendVideo",
    "sendDocument",
    "sendChatAction",
    "deleteWebhook",
    "getWebhookInfo",
    "setWebhook",
    "getChatMember",
    "getFile",
];

/// Uploaded pictures up to this size are decoded whole and hashed (`Call`).
const MAX_DECODED_UPLOAD: usize = 1024 * 1024;

/// getFile refuses bigger files: bots may download at most 20 MB.
const MAX_DOWNLOAD_BYTES: usize = 20 * 1024 * 1024;

/// One HTTP request the fake received.
#[derive(Clone, Debug)]
pub struct Call {
    /// The method name from the path, spelled as in the docs (the real API ignores case).
    pub method: String,
    /// Query string and body merged into one JSON object. JSON bodies keep their types;
    /// form and multipart fields are strings; an uploaded file is recorded as
    /// `{"file_name", "content_type", "size"}`, plus `"width"`, `"height"` and
    /// `"format"` ("png", "jpg", …) when it is a picture the `image` crate can read
    /// the header of, `"decodes"` (whether the whole picture decodes) and `"sha256"`
    /// (hex) when such a picture is at most 1 MB, and `"content"` when it is UTF-8
    /// text of at most 64 KB.
    pub params: Value,
    pub at: Instant,
    pub token_ok: bool,
    /// The HTTP status the fake answered with: `None` while the call is still being
    /// answered (a long poll, a `Fault::Slow`) and for a `Fault::Drop`.
    pub status: Option<u16>,
}

/// A failure the fake injects instead of answering normally.
#[derive(Clone, Debug)]
pub enum Fault {
    /// A Telegram-shaped error:
    /// `{"ok":false,"error_code":code,"description":..,"parameters":{"retry_after":n}}`.
    Status {
        code: u16,
        retry_after: Option<u64>,
        description: String,
    },
    /// Waits this long, then answers normally.
    Slow(Duration),
    /// Reads the request, then closes the connection without any response.
    Drop,
    /// 200 with a body that is not JSON.
    Garbage,
}

impl Fault {
    /// The real flood-control answer: 429 with `retry_after`.
    pub fn too_many_requests(retry_after: u64) -> Fault {
        Fault::Status {
            code: 429,
            retry_after: Some(retry_after),
            description: format!("Too Many Requests: retry after {retry_after}"),
        }
    }

    /// What Telegram's front end answers while the bot API is down.
    pub fn bad_gateway() -> Fault {
        Fault::status(502, "Bad Gateway")
    }

    pub fn status(code: u16, description: &str) -> Fault {
        Fault::Status {
            code,
            retry_after: None,
            description: description.to_string(),
        }
    }
}

/// A message the bot sent, as it currently stands after edits.
#[derive(Clone, Debug, PartialEq)]
pub struct SentMessage {
    pub chat_id: i64,
    pub message_id: i64,
    /// The text, or the caption of a photo, video or document.
    pub text: String,
    /// Absent when the message has no keyboard (an empty inline keyboard counts as none).
    pub reply_markup: Option<Value>,
    pub parse_mode: Option<String>,
    pub deleted: bool,
    /// "text", "photo", "video" or "document".
    pub kind: &'static str,
}

pub struct FakeTelegram {
    core: FakeServer<State>,
    shared: Arc<Shared>,
}

type Shared = fake_http::Shared<State>;

struct State {
    token: String,
    bot: Value,
    calls: Vec<Call>,
    /// Updates not yet confirmed, in update_id order.
    updates: VecDeque<Value>,
    next_update_id: i64,
    confirmed_offset: i64,
    /// Bumped by every getUpdates, so an older long poll knows it was superseded.
    poll_generation: u64,
    chats: HashMap<i64, Chat>,
    /// Callback query id → answered yet.
    callback_queries: HashMap<String, bool>,
    /// update_id → callback query id, for `wait_for_callback_answer`.
    callback_updates: HashMap<i64, String>,
    next_callback_id: u64,
    next_file_id: u64,
    fail_next: VecDeque<(String, Fault)>,
    fail_until: Vec<(String, Instant, Fault)>,
    commands: Value,
    /// The webhook set on the token; empty when none is.
    webhook_url: String,
    /// Video uploads come back as documents.
    videos_as_documents: bool,
    /// While set, getUpdates answers as if nothing had happened (Telegram being
    /// slow to deliver); pushed updates wait.
    updates_held: bool,
    /// Chats that refuse every call naming them, with the real error.
    refusing: HashMap<i64, ApiError>,
    /// Titles that differ from the default one (a supergroup keeps its group's).
    titles: HashMap<i64, String>,
    /// (chat, user) → ChatMember status ("creator", "administrator", "member", …).
    members: HashMap<(i64, i64), String>,
    /// file_id → (file_path, content) of every document sent or uploaded.
    files: HashMap<String, (String, Vec<u8>)>,
    flood: FloodControl,
}

#[derive(Default)]
struct Chat {
    /// Shared by the users' and the bot's messages, as in a real chat.
    last_message_id: i64,
    messages: BTreeMap<i64, StoredMessage>,
    /// Name of the user of a private chat, once one has written in it.
    private_user: Option<(i64, String)>,
}

struct StoredMessage {
    sent: SentMessage,
    by_bot: bool,
    from: Value,
    date: i64,
    edit_date: Option<i64>,
    /// The `photo` array, `video` or `document` object of a media message.
    media: Option<Value>,
}

/// An API error: HTTP status and the description after the usual prefix.
#[derive(Clone)]
struct ApiError {
    code: u16,
    description: String,
    /// `parameters.migrate_to_chat_id`, for a call to a group that became a supergroup.
    migrate_to_chat_id: Option<i64>,
}

impl ApiError {
    fn new(code: u16, description: &str) -> ApiError {
        ApiError {
            code,
            description: description.to_string(),
            migrate_to_chat_id: None,
        }
    }
}

type ApiResult = Result<Value, ApiError>;

/// Telegram's limits for sendPhoto: bytes, width + height, long side : short side.
const MAX_PHOTO_BYTES: u64 = 10_000_000;
const MAX_PHOTO_SIDES: u64 = 10_000;
const MAX_PHOTO_RATIO: u64 = 20;

/// What Telegram answers to an uploaded photo beyond its limits.
fn check_uploaded_photo(photo: &Value) -> Result<(), ApiError> {
    if photo["size"].as_u64().unwrap_or(0) > MAX_PHOTO_BYTES {
        return Err(bad_request("file is too big"));
    }
    if let (Some(width), Some(height)) = (photo["width"].as_u64(), photo["height"].as_u64()) {
        let (long, short) = (width.max(height), width.min(height));
        if width + height > MAX_PHOTO_SIDES || long > MAX_PHOTO_RATIO * short {
            return Err(bad_request("PHOTO_INVALID_DIMENSIONS"));
        }
    }
    Ok(())
}

fn bad_request(description: &str) -> ApiError {
    ApiError::new(400, &format!("Bad Request: {description}"))
}

impl FakeTelegram {
    /// Starts the server on a free loopback port; it answers only to `token`.
    pub fn start(token: &str) -> FakeTelegram {
        let core = FakeServer::start("telegram", State::new(token), handle_request);
        FakeTelegram {
            shared: Arc::clone(&core.shared),
            core,
        }
    }

    /// The base URL, without the `/bot<token>` part: what goes into `telegram.api_url`.
    pub fn url(&self) -> String {
        self.core.url.clone()
    }

    /// Queues a text message from a user; returns its update_id.
    pub fn push_message(&self, chat_id: i64, user_id: i64, username: &str, text: &str) -> i64 {
        let mut state = self.shared.lock();
        let from = user_json(user_id, username);
        if chat_id > 0 {
            state.chat(chat_id).private_user = Some((user_id, username.to_string()));
        }
        let message_id = state.chat(chat_id).next_message_id();
        let date = unix_now();
        let mut message = json!({
            "message_id": message_id,
            "from": from,
            "chat": state.chat_json(chat_id),
            "date": date,
            "text": text,
        });
        if text.starts_with('/') {
            let command = text.split_whitespace().next().unwrap_or(text);
            message["entities"] = json!([{
                "offset": 0,
                "length": command.encode_utf16().count(),
                "type": "bot_command",
            }]);
        }
        let stored = StoredMessage {
            sent: SentMessage {
                chat_id,
                message_id,
                text: text.to_string(),
                reply_markup: None,
                parse_mode: None,
                deleted: false,
                kind: "text",
            },
            by_bot: false,
            from,
            date,
            edit_date: None,
            media: None,
        };
        state.chat(chat_id).messages.insert(message_id, stored);
        let update_id = state.push_update(json!({ "message": message }));
        self.shared.changed.notify_all();
        update_id
    }

    /// Queues a press on an inline button of message `message_id`; returns its update_id.
    pub fn push_callback(
        &self,
        chat_id: i64,
        user_id: i64,
        username: &str,
        message_id: i64,
        data: &str,
    ) -> i64 {
        let mut state = self.shared.lock();
        state.next_callback_id += 1;
        let query_id = format!("{}", 7_000_000_000_000_000_000_u64 + state.next_callback_id);
        let message = match state.stored(chat_id, message_id) {
            Some(stored) => state.message_json(stored),
            None => json!({
                "message_id": message_id,
                "chat": state.chat_json(chat_id),
                "date": unix_now(),
            }),
        };
        let callback_query = json!({
            "id": query_id,
            "from": user_json(user_id, username),
            "message": message,
            "chat_instance": format!("{}", chat_id.unsigned_abs() * 7919 + 13),
            "data": data,
        });
        state.callback_queries.insert(query_id.clone(), false);
        let update_id = state.push_update(json!({ "callback_query": callback_query }));
        state.callback_updates.insert(update_id, query_id);
        self.shared.changed.notify_all();
        update_id
    }

    /// Queues a document a user sends (`reply_to`: the message it replies to);
    /// returns its update_id. The file can then be fetched with getFile.
    pub fn push_document(
        &self,
        chat_id: i64,
        user_id: i64,
        username: &str,
        file_name: &str,
        content: &[u8],
        reply_to: Option<i64>,
    ) -> i64 {
        let mut state = self.shared.lock();
        let from = user_json(user_id, username);
        if chat_id > 0 {
            state.chat(chat_id).private_user = Some((user_id, username.to_string()));
        }
        let file_id = state.mint_file_id("document");
        let mime_type = if file_name.ends_with(".json") {
            "application/json"
        } else {
            "application/octet-stream"
        };
        let document = json!({
            "file_id": file_id,
            "file_unique_id": format!("{file_id}-unique"),
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": content.len(),
        });
        state.keep_file(&file_id, content.to_vec());
        let message_id = state.chat(chat_id).next_message_id();
        let date = unix_now();
        let mut message = json!({
            "message_id": message_id,
            "from": from,
            "chat": state.chat_json(chat_id),
            "date": date,
            "document": document,
        });
        if let Some(replied) = reply_to {
            let stored = state
                .stored(chat_id, replied)
                .unwrap_or_else(|| panic!("no message {replied} in chat {chat_id} to reply to"));
            message["reply_to_message"] = state.message_json(stored);
        }
        let stored = StoredMessage {
            sent: SentMessage {
                chat_id,
                message_id,
                text: String::new(),
                reply_markup: None,
                parse_mode: None,
                deleted: false,
                kind: "document",
            },
            by_bot: false,
            from,
            date,
            edit_date: None,
            media: Some(document),
        };
        state.chat(chat_id).messages.insert(message_id, stored);
        let update_id = state.push_update(json!({ "message": message }));
        self.shared.changed.notify_all();
        update_id
    }

    /// The content of a file the fake keeps (sent by a user or uploaded by the bot).
    pub fn file_content(&self, file_id: &str) -> Option<Vec<u8>> {
        self.shared
            .lock()
            .files
            .get(file_id)
            .map(|(_, content)| content.clone())
    }

    /// A week without updates passes: Telegram has dropped what was pending (it
    /// keeps updates 24 hours) and picks the next id at random, possibly below
    /// the bot's offset; here it is `next`.
    pub fn restart_update_ids(&self, next: i64) {
        let mut state = self.shared.lock();
        state.updates.clear();
        state.next_update_id = next;
    }

    /// Upgrades basic group `old_id` to a supergroup, as its owner can: the new chat
    /// has a new id (returned) and the old title; calls naming the old id get the
    /// real 400 with `parameters.migrate_to_chat_id`; and two service messages are
    /// queued, `migrate_to_chat_id` in the old chat (from the last member who
    /// wrote there) and `migrate_from_chat_id` in the new one (from the anonymous
    /// group bot, as Telegram sends it).
    pub fn upgrade_to_supergroup(&self, old_id: i64) -> i64 {
        assert!(
            old_id < 0 && old_id > SUPERGROUP_IDS_BELOW,
            "only a basic group (a small negative id) becomes a supergroup, not {old_id}"
        );
        let new_id = SUPERGROUP_IDS_BELOW - old_id.abs();
        let mut state = self.shared.lock();
        let old_chat = state.chat_json(old_id);
        if let Some(title) = old_chat["title"].as_str() {
            state.titles.insert(new_id, title.to_string());
        }
        let owner = state
            .chats
            .get(&old_id)
            .and_then(|chat| chat.messages.values().rev().find(|m| !m.by_bot))
            .map_or_else(|| user_json(1, "owner"), |m| m.from.clone());
        let message_id = state.chat(old_id).next_message_id();
        state.push_update(json!({"message": {
            "message_id": message_id,
            "from": owner,
            "chat": old_chat,
            "date": unix_now(),
            "migrate_to_chat_id": new_id,
        }}));
        let new_chat = state.chat_json(new_id);
        let message_id = state.chat(new_id).next_message_id();
        state.push_update(json!({"message": {
            "message_id": message_id,
            "from": {"id": 1_087_968_824_i64, "is_bot": true, "first_name": "Group",
                     "username": "GroupAnonymousBot"},
            "sender_chat": new_chat,
            "chat": new_chat,
            "date": unix_now(),
            "migrate_from_chat_id": old_id,
        }}));
        state.refusing.insert(
            old_id,
            ApiError {
                migrate_to_chat_id: Some(new_id),
                ..bad_request(UPGRADED)
            },
        );
        self.shared.changed.notify_all();
        new_id
    }

    /// The user blocks the bot (a private chat) or removes it (a group): every call
    /// naming the chat gets the real 403.
    pub fn block_bot(&self, chat_id: i64) {
        let description = if chat_id > 0 {
            "Forbidden: bot was blocked by the user"
        } else if chat_id <= SUPERGROUP_IDS_BELOW {
            "Forbidden: bot was kicked from the supergroup chat"
        } else {
            "Forbidden: bot was kicked from the group chat"
        };
        self.shared
            .lock()
            .refusing
            .insert(chat_id, ApiError::new(403, description));
    }

    /// Undoes `block_bot` (the user unblocked it, the group added it again).
    pub fn unblock_bot(&self, chat_id: i64) {
        self.shared.lock().refusing.remove(&chat_id);
    }

    /// The chat is deleted: every call naming it gets 400 "chat not found".
    pub fn delete_chat(&self, chat_id: i64) {
        self.shared
            .lock()
            .refusing
            .insert(chat_id, bad_request("chat not found"));
    }

    /// While held, getUpdates returns no updates (Telegram being slow to deliver
    /// them); those pushed meanwhile come once released.
    pub fn hold_updates(&self, held: bool) {
        self.shared.lock().updates_held = held;
        self.shared.changed.notify_all();
    }

    /// Queues any update; its `update_id` is overwritten with the next one, returned.
    pub fn push_raw_update(&self, update: Value) -> i64 {
        assert!(update.is_object(), "an update is a JSON object: {update}");
        let mut state = self.shared.lock();
        let update_id = state.push_update(update);
        self.shared.changed.notify_all();
        update_id
    }

    /// Fails the next `times` calls of `method` ("*" = any method) with `fault`. Queued
    /// faults are used first-in first-out, before any `fail_until`.
    pub fn fail_next(&self, method: &str, times: usize, fault: Fault) {
        let mut state = self.shared.lock();
        for _ in 0..times {
            state
                .fail_next
                .push_back((method.to_string(), fault.clone()));
        }
    }

    /// Fails every call of `method` ("*" = any method) that arrives before `until`.
    pub fn fail_until(&self, method: &str, until: Instant, fault: Fault) {
        let mut state = self.shared.lock();
        state.fail_until.push((method.to_string(), until, fault));
    }

    /// Measures the flood limits in a daemon's time that runs `speed` times the
    /// wall clock (a test clock); 1 by default.
    pub fn set_speed(&self, speed: f64) {
        self.shared.lock().flood.set_speed(speed);
    }

    /// The next call naming `chat_id` gets Telegram's 429 with `retry_after`
    /// seconds, whatever the rate; other chats' calls are not affected.
    pub fn flood_chat(&self, chat_id: i64, retry_after: u64) {
        self.shared.lock().flood.force(chat_id, retry_after);
    }

    /// Off: no 429 for going over the limits (for tests of the fake itself).
    pub fn enforce_flood_limits(&self, enforce: bool) {
        self.shared.lock().flood.enforce = enforce;
    }

    /// Drops every fault `fail_next` and `fail_until` set.
    pub fn clear_faults(&self) {
        let mut state = self.shared.lock();
        state.fail_next.clear();
        state.fail_until.clear();
    }

    /// Sets a webhook on the token, as another tool would with setWebhook: from now
    /// on getUpdates answers 409 (a pending long poll too) until deleteWebhook.
    pub fn set_webhook(&self, url: &str) {
        let mut state = self.shared.lock();
        state.webhook_url = url.to_string();
        self.shared.changed.notify_all();
    }

    /// The webhook set on the token; empty when none is.
    pub fn webhook_url(&self) -> String {
        self.shared.lock().webhook_url.clone()
    }

    /// What getChatMember answers for `user_id` in `chat_id` from now on: a
    /// ChatMember with this status ("creator", "administrator", "member",
    /// "restricted", "left", "kicked").
    pub fn set_member(&self, chat_id: i64, user_id: i64, status: &str) {
        let mut state = self.shared.lock();
        state.members.insert((chat_id, user_id), status.to_string());
        self.shared.changed.notify_all();
    }

    /// From now on a video upload is answered as Telegram answers a video it cannot
    /// take as one (some .mov files): as a document, with a document file_id.
    pub fn answer_videos_as_documents(&self) {
        self.shared.lock().videos_as_documents = true;
    }

    /// Every call, in arrival order, failed ones included.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// The calls from index `from` of `calls()` on, for a caller that follows
    /// thousands of calls as they come (the capacity benchmark) without copying
    /// them all each time.
    pub fn calls_since(&self, from: usize) -> Vec<Call> {
        let state = self.shared.lock();
        state
            .calls
            .get(from..)
            .map(<[Call]>::to_vec)
            .unwrap_or_default()
    }

    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        let state = self.shared.lock();
        state
            .calls
            .iter()
            .filter(|call| call.method == method)
            .cloned()
            .collect()
    }

    /// Waits until `pred` matches a call at or after index `from` of `calls()`, and
    /// returns its index and a snapshot of it; panics after `timeout`, listing the calls.
    ///
    /// A call is recorded when it arrives; a normal call's effects (a stored message,
    /// a confirmed offset) are applied in the same step, but its `status` is set only
    /// once it is answered: match on `status` to wait for the answer.
    pub fn wait_for(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&Call) -> bool,
    ) -> (usize, Call) {
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
                    "FakeTelegram::wait_for: no matching call at or after #{from} within \
                     {timeout:?}; recorded calls: {}",
                    summarize_calls(&state.calls)
                )
            },
        )
    }

    pub fn wait_for_method(&self, from: usize, method: &str, timeout: Duration) -> (usize, Call) {
        self.wait_for(from, timeout, |call| call.method == method)
    }

    /// Waits for the answerCallbackQuery call that answers the callback pushed as
    /// `update_id` (answered successfully or not).
    pub fn wait_for_callback_answer(&self, update_id: i64, timeout: Duration) -> Call {
        let query_id = self
            .shared
            .lock()
            .callback_updates
            .get(&update_id)
            .cloned()
            .unwrap_or_else(|| panic!("update {update_id} is not a pushed callback query"));
        let (_, call) = self.wait_for(0, timeout, |call| {
            call.method == "answerCallbackQuery"
                && id_param(&call.params, "callback_query_id").as_deref() == Some(&query_id)
        });
        call
    }

    /// Messages the bot sent to a chat, in order, as they stand after edits.
    pub fn messages(&self, chat_id: i64) -> Vec<SentMessage> {
        let state = self.shared.lock();
        let Some(chat) = state.chats.get(&chat_id) else {
            return Vec::new();
        };
        chat.messages
            .values()
            .filter(|stored| stored.by_bot)
            .map(|stored| stored.sent.clone())
            .collect()
    }

    /// One message the bot sent, as it stands after edits.
    pub fn message(&self, chat_id: i64, message_id: i64) -> Option<SentMessage> {
        let state = self.shared.lock();
        let stored = state.stored(chat_id, message_id)?;
        stored.by_bot.then(|| stored.sent.clone())
    }

    /// The highest offset a getUpdates confirmed (0 before any).
    pub fn confirmed_offset(&self) -> i64 {
        self.shared.lock().confirmed_offset
    }

    /// Updates not yet confirmed.
    pub fn pending_updates(&self) -> usize {
        self.shared.lock().updates.len()
    }
}

impl State {
    fn new(token: &str) -> State {
        let bot_id = token
            .split_once(':')
            .and_then(|(id, _)| id.parse::<i64>().ok())
            .unwrap_or(123_456);
        State {
            token: token.to_string(),
            bot: json!({
                "id": bot_id,
                "is_bot": true,
                "first_name": "Storyline",
                "username": "storyline_test_bot",
            }),
            calls: Vec::new(),
            updates: VecDeque::new(),
            next_update_id: FIRST_UPDATE_ID,
            confirmed_offset: 0,
            poll_generation: 0,
            chats: HashMap::new(),
            callback_queries: HashMap::new(),
            callback_updates: HashMap::new(),
            next_callback_id: 0,
            next_file_id: 0,
            fail_next: VecDeque::new(),
            fail_until: Vec::new(),
            commands: json!([]),
            webhook_url: String::new(),
            videos_as_documents: false,
            updates_held: false,
            refusing: HashMap::new(),
            titles: HashMap::new(),
            members: HashMap::new(),
            files: HashMap::new(),
            flood: FloodControl::default(),
        }
    }

    fn push_update(&mut self, mut update: Value) -> i64 {
        let update_id = self.next_update_id;
        self.next_update_id = self.next_update_id.saturating_add(1);
        update["update_id"] = json!(update_id);
        self.updates.push_back(update);
        update_id
    }

    fn chat(&mut self, chat_id: i64) -> &mut Chat {
        self.chats.entry(chat_id).or_default()
    }

    fn stored(&self, chat_id: i64, message_id: i64) -> Option<&StoredMessage> {
        self.chats.get(&chat_id)?.messages.get(&message_id)
    }

    fn chat_json(&self, chat_id: i64) -> Value {
        if chat_id > 0 {
            let user = self
                .chats
                .get(&chat_id)
                .and_then(|c| c.private_user.clone());
            let (first_name, username) = match user {
                Some((user_id, username)) => {
                    let first_name = user_json(user_id, &username)["first_name"].clone();
                    (first_name, username)
                }
                None => (json!(format!("Chat {chat_id}")), String::new()),
            };
            let mut chat = json!({"id": chat_id, "type": "private", "first_name": first_name});
            if !username.is_empty() {
                chat["username"] = json!(username);
            }
            chat
        } else if chat_id <= SUPERGROUP_IDS_BELOW {
            let title = self.titles.get(&chat_id).cloned();
            let title = title.unwrap_or_else(|| format!("Test supergroup {chat_id}"));
            json!({"id": chat_id, "type": "supergroup", "title": title})
        } else {
            let title = self.titles.get(&chat_id).cloned();
            let title = title.unwrap_or_else(|| format!("Test group {chat_id}"));
            json!({"id": chat_id, "type": "group", "title": title})
        }
    }

    fn message_json(&self, stored: &StoredMessage) -> Value {
        let sent = &stored.sent;
        let mut message = json!({
            "message_id": sent.message_id,
            "from": stored.from,
            "chat": self.chat_json(sent.chat_id),
            "date": stored.date,
        });
        if let Some(edit_date) = stored.edit_date {
            message["edit_date"] = json!(edit_date);
        }
        match &stored.media {
            None => message["text"] = json!(sent.text),
            Some(media) => {
                message[sent.kind] = media.clone();
                if !sent.text.is_empty() {
                    message["caption"] = json!(sent.text);
                }
            }
        }
        if let Some(markup) = &sent.reply_markup {
            if markup.get("inline_keyboard").is_some() {
                message["reply_markup"] = markup.clone();
            }
        }
        message
    }

    fn take_fault(&mut self, method: &str, now: Instant) -> Option<Fault> {
        let matches = |pattern: &str| pattern == method || pattern == "*";
        if let Some(position) = self.fail_next.iter().position(|(m, _)| matches(m)) {
            return self.fail_next.remove(position).map(|(_, fault)| fault);
        }
        self.fail_until.retain(|(_, until, _)| now < *until);
        self.fail_until
            .iter()
            .find(|(m, _, _)| matches(m))
            .map(|(_, _, fault)| fault.clone())
    }

    /// Forgets the updates an offset confirms; a negative offset keeps only that many
    /// of the newest updates, as in the real API.
    /// An offset above every id issued so far (after `restart_update_ids`)
    /// belongs to the old sequence and confirms nothing pending.
    fn confirm(&mut self, offset: i64) {
        if offset > self.next_update_id {
            return;
        }
        if offset > 0 {
            self.updates
                .retain(|update| update["update_id"].as_i64().unwrap_or(0) >= offset);
            self.confirmed_offset = self.confirmed_offset.max(offset);
        } else if offset < 0 {
            let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            while self.updates.len() > keep {
                self.updates.pop_front();
            }
            let first_kept = self
                .updates
                .front()
                .and_then(|update| update["update_id"].as_i64())
                .unwrap_or(self.next_update_id);
            self.confirmed_offset = self.confirmed_offset.max(first_kept);
        }
    }

    fn keep_file(&mut self, file_id: &str, content: Vec<u8>) {
        let path = format!("documents/file_{}.bin", self.files.len() + 1);
        self.files.insert(file_id.to_string(), (path, content));
    }

    /// getFile: the file's path for the download, as the real API answers.
    fn get_file(&self, params: &Value) -> ApiResult {
        let file_id = str_param(params, "file_id").unwrap_or_default();
        let Some((path, content)) = self.files.get(&file_id) else {
            return Err(bad_request("invalid file_id"));
        };
        if content.len() > MAX_DOWNLOAD_BYTES {
            return Err(bad_request("file is too big"));
        }
        Ok(json!({
            "file_id": file_id,
            "file_unique_id": format!("{file_id}-unique"),
            "file_size": content.len(),
            "file_path": path,
        }))
    }

    fn mint_file_id(&mut self, kind: &str) -> String {
        self.next_file_id += 1;
        format!("fake-{kind}-{}", self.next_file_id)
    }

    fn dispatch(&mut self, method: &str, params: &Value) -> ApiResult {
        // A call naming a chat that no longer takes messages gets that chat's refusal.
        if let Some(refusal) = int_param(params, "chat_id").and_then(|id| self.refusing.get(&id)) {
            return Err(refusal.clone());
        }
        match method {
            "getMe" => Ok(self.bot.clone()),
            "sendMessage" => self.send_message(params),
            "editMessageText" => self.edit_message(params, EditTarget::Text),
            "editMessageCaption" => self.edit_message(params, EditTarget::Caption),
            "editMessageReplyMarkup" => self.edit_message(params, EditTarget::Markup),
            "deleteMessage" => self.delete_message(params),
            "answerCallbackQuery" => self.answer_callback_query(params),
            "setMyCommands" => self.set_my_commands(params),
            "getMyCommands" => Ok(self.commands.clone()),
            "deleteMyCommands" => {
                self.commands = json!([]);
                Ok(json!(true))
            }
            "sendPhoto" => self.send_media(params, "photo"),
            "sendVideo" => self.send_media(params, "video"),
            "sendDocument" => self.send_media(params, "document"),
            "sendChatAction" => chat_id_param(params).map(|_| json!(true)),
            "deleteWebhook" => {
                if str_param(params, "drop_pending_updates").as_deref() == Some("true") {
                    self.updates.clear();
                }
                self.webhook_url.clear();
                Ok(json!(true))
            }
            "setWebhook" => {
                self.webhook_url = str_param(params, "url").unwrap_or_default();
                Ok(json!(true))
            }
            "getChatMember" => self.chat_member(params),
            "getFile" => self.get_file(params),
            "getWebhookInfo" => Ok(json!({
                "url": self.webhook_url,
                "has_custom_certificate": false,
                "pending_update_count": self.updates.len(),
            })),
            _ => Err(ApiError::new(404, "Not Found")),
        }
    }

    /// A ChatMember as the real API shapes it, for the status a test set.
    fn chat_member(&self, params: &Value) -> ApiResult {
        let chat_id = chat_id_param(params)?;
        let user_id = match int_param(params, "user_id") {
            Some(id) if id > 0 => id,
            _ => return Err(bad_request("invalid user_id specified")),
        };
        let Some(status) = self.members.get(&(chat_id, user_id)) else {
            return Err(bad_request("user not found"));
        };
        let mut member = json!({
            "status": status,
            "user": user_json(user_id, &format!("user{user_id}")),
        });
        match status.as_str() {
            "creator" => member["is_anonymous"] = json!(false),
            "administrator" => {
                member["can_be_edited"] = json!(false);
                member["is_anonymous"] = json!(false);
                member["can_manage_chat"] = json!(true);
                member["can_delete_messages"] = json!(true);
            }
            _ => {}
        }
        Ok(member)
    }

    fn store_bot_message(
        &mut self,
        chat_id: i64,
        text: String,
        params: &Value,
        kind: &'static str,
        media: Option<Value>,
    ) -> ApiResult {
        let reply_markup = reply_markup_param(params)?;
        let parse_mode = parse_mode_param(params)?;
        let message_id = self.chat(chat_id).next_message_id();
        let stored = StoredMessage {
            sent: SentMessage {
                chat_id,
                message_id,
                text,
                reply_markup,
                parse_mode,
                deleted: false,
                kind,
            },
            by_bot: true,
            from: self.bot.clone(),
            date: unix_now(),
            edit_date: None,
            media,
        };
        let message = self.message_json(&stored);
        self.chat(chat_id).messages.insert(message_id, stored);
        Ok(message)
    }

    fn send_message(&mut self, params: &Value) -> ApiResult {
        let chat_id = chat_id_param(params)?;
        let text = str_param(params, "text").unwrap_or_default();
        if text.trim().is_empty() {
            return Err(bad_request("message text is empty"));
        }
        let parse_mode = parse_mode_param(params)?;
        check_formatted(&text, parse_mode.as_deref(), 4096, "message is too long")?;
        self.store_bot_message(chat_id, text, params, "text", None)
    }

    fn send_media(&mut self, params: &Value, kind: &'static str) -> ApiResult {
        let chat_id = chat_id_param(params)?;
        let input = match params.get(kind) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(upload @ Value::Object(_)) => {
                if upload["size"].as_u64() == Some(0) {
                    return Err(bad_request("file must be non-empty"));
                }
                if kind == "photo" {
                    check_uploaded_photo(upload)?;
                }
                None
            }
            _ => return Err(bad_request(&format!("there is no {kind} in the request"))),
        };
        let caption = str_param(params, "caption").unwrap_or_default();
        let parse_mode = parse_mode_param(params)?;
        check_formatted(
            &caption,
            parse_mode.as_deref(),
            1024,
            "message caption is too long",
        )?;
        // A file_id of one of ours names its type, which must be the method's.
        if let Some(id) = &input {
            let minted_kind = id
                .strip_prefix("fake-")
                .and_then(|rest| rest.split('-').next());
            if minted_kind.is_some_and(|minted| minted != kind) {
                return Err(bad_request("type of file mismatch"));
            }
        }
        let uploaded = input.is_none();
        let kind = if kind == "video" && uploaded && self.videos_as_documents {
            "document"
        } else {
            kind
        };
        // A file_id is sent back as it came; an upload or a URL becomes a new file.
        let file_id = match input {
            Some(id) if !id.starts_with("http") && !id.starts_with("attach://") => id,
            _ => self.mint_file_id(kind),
        };
        let unique_id = format!("{file_id}-unique");
        // An uploaded picture keeps its size; anything else is a story-sized photo.
        let (width, height) = match (
            params[kind]["width"].as_u64(),
            params[kind]["height"].as_u64(),
        ) {
            (Some(width), Some(height)) => (width, height),
            _ => (1080, 1920),
        };
        let media = match kind {
            "photo" => json!([
                {"file_id": format!("{file_id}-thumb"), "file_unique_id": format!("{unique_id}-thumb"),
                 "width": 90, "height": 160, "file_size": 1_234},
                {"file_id": file_id, "file_unique_id": unique_id,
                 "width": width, "height": height, "file_size": 123_456},
            ]),
            "video" => json!({
                "file_id": file_id, "file_unique_id": unique_id, "width": 1080,
                "height": 1920, "duration": 10, "mime_type": "video/mp4", "file_size": 1_234_567,
            }),
            _ => {
                let file_name = ["document", "video"]
                    .iter()
                    .find_map(|field| params[*field]["file_name"].as_str())
                    .unwrap_or("file");
                let mut document = json!({"file_id": file_id, "file_unique_id": unique_id, "file_name": file_name});
                if let Some(size) = params[kind]["size"].as_u64() {
                    document["file_size"] = json!(size);
                }
                if let Some(content) = params[kind]["content"].as_str() {
                    let content = content.as_bytes().to_vec();
                    self.keep_file(&file_id, content);
                }
                document
            }
        };
        self.store_bot_message(chat_id, caption, params, kind, Some(media))
    }

    fn edit_message(&mut self, params: &Value, target: EditTarget) -> ApiResult {
        let (chat_id, message_id) = match (params.get("chat_id"), params.get("message_id")) {
            (Some(_), Some(_)) => (
                chat_id_param(params)?,
                int_param(params, "message_id")
                    .ok_or_else(|| bad_request("message identifier is not specified"))?,
            ),
            _ => return Err(bad_request("message identifier is not specified")),
        };
        let reply_markup = reply_markup_param(params)?;
        let parse_mode = parse_mode_param(params)?;
        let new_text = match target {
            EditTarget::Text => {
                let text = str_param(params, "text").unwrap_or_default();
                if text.trim().is_empty() {
                    return Err(bad_request("message text is empty"));
                }
                check_formatted(&text, parse_mode.as_deref(), 4096, "message is too long")?;
                Some(text)
            }
            EditTarget::Caption => {
                let caption = str_param(params, "caption").unwrap_or_default();
                check_formatted(
                    &caption,
                    parse_mode.as_deref(),
                    1024,
                    "message caption is too long",
                )?;
                Some(caption)
            }
            EditTarget::Markup => None,
        };
        let stored = self
            .chats
            .get_mut(&chat_id)
            .and_then(|chat| chat.messages.get_mut(&message_id))
            .filter(|stored| !stored.sent.deleted)
            .ok_or_else(|| bad_request("message to edit not found"))?;
        if !stored.by_bot {
            return Err(bad_request("message can't be edited"));
        }
        match target {
            EditTarget::Text if stored.media.is_some() => {
                return Err(bad_request("there is no text in the message to edit"))
            }
            EditTarget::Caption if stored.media.is_none() => {
                return Err(bad_request("there is no caption in the message to edit"))
            }
            _ => {}
        }
        let text = new_text.unwrap_or_else(|| stored.sent.text.clone());
        if text == stored.sent.text && reply_markup == stored.sent.reply_markup {
            return Err(bad_request(NOT_MODIFIED));
        }
        stored.sent.text = text;
        stored.sent.reply_markup = reply_markup;
        if target != EditTarget::Markup {
            stored.sent.parse_mode = parse_mode;
        }
        stored.edit_date = Some(unix_now());
        let stored = &self.chats[&chat_id].messages[&message_id];
        Ok(self.message_json(stored))
    }

    fn delete_message(&mut self, params: &Value) -> ApiResult {
        let chat_id = chat_id_param(params)?;
        let message_id = int_param(params, "message_id")
            .ok_or_else(|| bad_request("message identifier is not specified"))?;
        let stored = self
            .chats
            .get_mut(&chat_id)
            .and_then(|chat| chat.messages.get_mut(&message_id))
            .filter(|stored| !stored.sent.deleted)
            .ok_or_else(|| bad_request("message to delete not found"))?;
        stored.sent.deleted = true;
        Ok(json!(true))
    }

    fn answer_callback_query(&mut self, params: &Value) -> ApiResult {
        let query_id = id_param(params, "callback_query_id").unwrap_or_default();
        if str_param(params, "text").is_some_and(|text| text.chars().count() > 200) {
            return Err(bad_request("MESSAGE_TOO_LONG"));
        }
        match self.callback_queries.get_mut(&query_id) {
            Some(answered) if !*answered => {
                *answered = true;
                Ok(json!(true))
            }
            _ => Err(bad_request(QUERY_TOO_OLD)),
        }
    }

    fn set_my_commands(&mut self, params: &Value) -> ApiResult {
        let commands = match params.get("commands") {
            Some(Value::String(s)) => serde_json::from_str(s)
                .map_err(|_| bad_request("can't parse commands JSON object"))?,
            Some(value) => value.clone(),
            None => return Err(bad_request("parameter \"commands\" is required")),
        };
        let Some(list) = commands.as_array() else {
            return Err(bad_request("can't parse commands JSON object"));
        };
        for command in list {
            let name = command["command"].as_str().unwrap_or_default();
            let valid_name = (1..=32).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid_name {
                return Err(bad_request("BOT_COMMAND_INVALID"));
            }
            let description = command["description"].as_str().unwrap_or_default();
            if !(1..=256).contains(&description.chars().count()) {
                return Err(bad_request("command description is empty"));
            }
        }
        self.commands = commands;
        Ok(json!(true))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum EditTarget {
    Text,
    Caption,
    Markup,
}

impl Chat {
    fn next_message_id(&mut self) -> i64 {
        self.last_message_id += 1;
        self.last_message_id
    }
}

fn handle_request(shared: &Shared, mut request: tiny_http::Request, local: SocketAddr) {
    let at = Instant::now();
    let mut body = Vec::new();
    let _ = request.as_reader().read_to_end(&mut body);
    let content_type = request
        .headers()
        .iter()
        .find(|header| header.field.equiv("Content-Type"))
        .map(|header| header.value.as_str().to_string())
        .unwrap_or_default();
    let (path, query) = request
        .url()
        .split_once('?')
        .map(|(path, query)| (path.to_string(), query.to_string()))
        .unwrap_or_else(|| (request.url().to_string(), String::new()));
    let params = parse_params(&query, &content_type, &body);

    let mut state = shared.lock();
    if let Some(rest) = path.strip_prefix("/file/bot") {
        return download(shared, state, request, rest, at);
    }
    let route = path
        .strip_prefix("/bot")
        .and_then(|rest| rest.split_once('/'));
    let (method, token_ok) = match route {
        Some((token, method)) => (canonical_method(method), token == state.token),
        None => (path.clone(), false),
    };
    let index = state.calls.len();
    state.calls.push(Call {
        method: method.clone(),
        params: params.clone(),
        at,
        token_ok,
        status: None,
    });
    shared.changed.notify_all();

    if !token_ok {
        let error = match route {
            Some(_) => ApiError::new(401, "Unauthorized"),
            None => ApiError::new(404, "Not Found"),
        };
        return respond(shared, state, index, request, error_response(&error, None));
    }

    match state.take_fault(&method, at) {
        None => {}
        Some(Fault::Status {
            code,
            retry_after,
            description,
        }) => {
            let error = ApiError::new(code, &description);
            return respond(
                shared,
                state,
                index,
                request,
                error_response(&error, retry_after),
            );
        }
        Some(Fault::Garbage) => {
            return respond(
                shared,
                state,
                index,
                request,
                (200, GARBAGE_BODY.to_string()),
            );
        }
        Some(Fault::Drop) => {
            drop(state);
            return drop_connection(request, local);
        }
        Some(Fault::Slow(duration)) => state = shared.pause(state, duration),
    }

    let chat_id = int_param(&params, "chat_id");
    if let Err(retry_after) = state.flood.check(&method, chat_id, at) {
        let error = ApiError::new(
            429,
            &format!("Too Many Requests: retry after {retry_after}"),
        );
        return respond(
            shared,
            state,
            index,
            request,
            error_response(&error, Some(retry_after)),
        );
    }
    let (mut state, answer) = if method == "getUpdates" {
        get_updates(shared, state, &params)
    } else {
        let answer = state.dispatch(&method, &params);
        (state, answer)
    };
    if answer.is_ok() {
        state.flood.taken(&method, chat_id, at);
    }
    let response = match answer {
        Ok(result) => (200, json!({"ok": true, "result": result}).to_string()),
        Err(error) => error_response(&error, None),
    };
    respond(shared, state, index, request, response);
}

/// A file download, `/file/bot<token>/<file_path>`: the bytes, or the real 404.
fn download(
    shared: &Shared,
    mut state: MutexGuard<'_, State>,
    request: tiny_http::Request,
    rest: &str,
    at: Instant,
) {
    let (token, file_path) = rest.split_once('/').unwrap_or((rest, ""));
    let token_ok = token == state.token;
    let found = state
        .files
        .values()
        .find(|(path, _)| path == file_path)
        .map(|(_, content)| content.clone())
        .filter(|_| token_ok);
    let status = if found.is_some() { 200 } else { 404 };
    state.calls.push(Call {
        method: "file".to_string(),
        params: json!({ "file_path": file_path }),
        at,
        token_ok,
        status: Some(status),
    });
    shared.changed.notify_all();
    drop(state);
    let response = match found {
        Some(content) => tiny_http::Response::from_data(content).with_status_code(200),
        None => tiny_http::Response::from_data(b"Not Found".to_vec()).with_status_code(404),
    };
    let _ = request.respond(response);
}

/// Long polling: answers at once when updates are pending, else waits for one to be
/// pushed, for the poll to be superseded by a newer one (409, as the real API does),
/// for the timeout or for the server to stop.
fn get_updates<'a>(
    shared: &Shared,
    mut state: MutexGuard<'a, State>,
    params: &Value,
) -> (MutexGuard<'a, State>, ApiResult) {
    if !state.webhook_url.is_empty() {
        return (state, Err(webhook_conflict()));
    }
    let offset = int_param(params, "offset").unwrap_or(0);
    let limit = int_param(params, "limit").unwrap_or(100).clamp(1, 100);
    let timeout = int_param(params, "timeout").unwrap_or(0).max(0);
    state.confirm(offset);
    shared.changed.notify_all();
    state.poll_generation += 1;
    let generation = state.poll_generation;
    let deadline = Instant::now() + Duration::from_secs(timeout.unsigned_abs());
    loop {
        if state.poll_generation != generation {
            let error = ApiError::new(409, CONFLICT);
            return (state, Err(error));
        }
        if !state.webhook_url.is_empty() {
            return (state, Err(webhook_conflict()));
        }
        let now = Instant::now();
        let ready = !state.updates.is_empty() && !state.updates_held;
        if ready || shared.is_stopping() || now >= deadline {
            break;
        }
        state = shared.wait(state, deadline - now);
    }
    let limit = if state.updates_held {
        0
    } else {
        usize::try_from(limit).unwrap_or(100)
    };
    let result: Vec<Value> = state.updates.iter().take(limit).cloned().collect();
    (state, Ok(Value::Array(result)))
}

fn webhook_conflict() -> ApiError {
    ApiError::new(409, WEBHOOK_CONFLICT)
}

fn error_response(error: &ApiError, retry_after: Option<u64>) -> (u16, String) {
    let mut body = json!({
        "ok": false,
        "error_code": error.code,
        "description": error.description,
    });
    if let Some(retry_after) = retry_after {
        body["parameters"] = json!({ "retry_after": retry_after });
    }
    if let Some(migrate_to_chat_id) = error.migrate_to_chat_id {
        body["parameters"] = json!({ "migrate_to_chat_id": migrate_to_chat_id });
    }
    (error.code, body.to_string())
}

/// Records the status, then answers: a test that sees the status knows the answer is
/// decided, though the client may not have read it yet.
fn respond(
    shared: &Shared,
    mut state: MutexGuard<'_, State>,
    index: usize,
    request: tiny_http::Request,
    (status, body): (u16, String),
) {
    state.calls[index].status = Some(status);
    shared.changed.notify_all();
    drop(state);
    let header =
        tiny_http::Header::from_bytes("Content-Type", "application/json").expect("a valid header");
    let response = tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header);
    let _ = request.respond(response);
}

/// Closes the connection without a byte of response. Dropping a tiny_http `Request`
/// would answer 500, and dropping its raw writer leaves the keep-alive connection
/// open, so the socket itself is shut down: tiny_http does not expose it, so it is
/// found among this process's descriptors by its two addresses.
fn drop_connection(request: tiny_http::Request, local: SocketAddr) {
    let peer = request.remote_addr().copied();
    let writer = request.into_writer();
    let shut = peer.is_some_and(|peer| shut_down_socket(local, peer));
    if !shut {
        eprintln!("fake telegram: could not find the socket to drop; the client will hang");
    }
    drop(writer);
}

fn shut_down_socket(local: SocketAddr, peer: SocketAddr) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return false;
    };
    let mut found = false;
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<RawFd>().ok())
        else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor is only borrowed (ManuallyDrop never closes it) for
        // getsockname/getpeername/shutdown. Should another thread close or reuse it in
        // the meantime, those calls fail or name other addresses, and nothing happens.
        let stream = ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(fd) });
        if stream.local_addr().ok() == Some(local) && stream.peer_addr().ok() == Some(peer) {
            found |= stream.shutdown(Shutdown::Both).is_ok();
        }
    }
    found
}

fn canonical_method(method: &str) -> String {
    METHODS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(method))
        .map_or_else(|| method.to_string(), |known| known.to_string())
}

fn summarize_calls(calls: &[Call]) -> String {
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
            format!("#{index} {} ({status})", call.method)
        })
        .collect();
    list.join(", ")
}

fn user_json(user_id: i64, username: &str) -> Value {
    let mut user = json!({
        "id": user_id,
        "is_bot": false,
        "first_name": if username.is_empty() { "User" } else { username },
        "language_code": "en",
    });
    if !username.is_empty() {
        user["username"] = json!(username);
    }
    user
}

fn unix_now() -> i64 {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

/// An integer that may arrive as a JSON number or a string, as the real API accepts.
fn int_param(params: &Value, name: &str) -> Option<i64> {
    match params.get(name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn str_param(params: &Value, name: &str) -> Option<String> {
    match params.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An identifier that is a string in the API but may be sent as a number.
fn id_param(params: &Value, name: &str) -> Option<String> {
    str_param(params, name)
}

fn chat_id_param(params: &Value) -> Result<i64, ApiError> {
    match params.get("chat_id") {
        None | Some(Value::Null) => Err(bad_request("chat_id is empty")),
        Some(Value::String(s)) if s.is_empty() => Err(bad_request("chat_id is empty")),
        Some(_) => int_param(params, "chat_id").ok_or_else(|| bad_request("chat not found")),
    }
}

fn parse_mode_param(params: &Value) -> Result<Option<String>, ApiError> {
    match str_param(params, "parse_mode") {
        None => Ok(None),
        Some(mode) if mode.is_empty() => Ok(None),
        Some(mode) => {
            let known = ["HTML", "MarkdownV2", "Markdown"]
                .iter()
                .any(|known| known.eq_ignore_ascii_case(&mode));
            if known {
                Ok(Some(mode))
            } else {
                Err(bad_request(&format!("unsupported parse_mode \"{mode}\"")))
            }
        }
    }
}

/// The reply_markup of a call, checked as the real API checks inline keyboards;
/// an empty inline keyboard is no keyboard.
fn reply_markup_param(params: &Value) -> Result<Option<Value>, ApiError> {
    let markup = match params.get("reply_markup") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map_err(|_| bad_request("can't parse reply keyboard markup JSON object"))?,
        Some(value) => value.clone(),
    };
    if !markup.is_object() {
        return Err(bad_request("can't parse reply keyboard markup JSON object"));
    }
    let Some(keyboard) = markup.get("inline_keyboard") else {
        return Ok(Some(markup));
    };
    let Some(rows) = keyboard.as_array() else {
        return Err(bad_request("field \"inline_keyboard\" must be an Array"));
    };
    const ACTIONS: &[&str] = &[
        "url",
        "callback_data",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    ];
    for row in rows {
        let Some(buttons) = row.as_array() else {
            return Err(bad_request(
                "field \"inline_keyboard\" must be an Array of Arrays",
            ));
        };
        for button in buttons {
            if button["text"].as_str().is_none_or(str::is_empty) {
                return Err(bad_request(
                    "can't parse inline keyboard button: Text must be non-empty",
                ));
            }
            if !ACTIONS.iter().any(|action| button.get(*action).is_some()) {
                return Err(bad_request(
                    "can't parse inline keyboard button: \
                     Text buttons are unallowed in the inline keyboard",
                ));
            }
            if let Some(data) = button.get("callback_data") {
                let length = data.as_str().map_or(0, str::len);
                if !(1..=64).contains(&length) {
                    return Err(bad_request("BUTTON_DATA_INVALID"));
                }
            }
        }
    }
    if rows
        .iter()
        .all(|row| row.as_array().is_some_and(Vec::is_empty))
    {
        return Ok(None);
    }
    Ok(Some(markup))
}

/// Checks formatted text as the real API does: HTML must be well formed with only the
/// supported tags, and the visible text must fit the limit.
fn check_formatted(
    text: &str,
    parse_mode: Option<&str>,
    limit: usize,
    too_long: &str,
) -> Result<(), ApiError> {
    let is_html = parse_mode.is_some_and(|mode| mode.eq_ignore_ascii_case("HTML"));
    let visible = if is_html {
        check_html(text)
            .map_err(|problem| bad_request(&format!("can't parse entities: {problem}")))?
    } else {
        text.encode_utf16().count()
    };
    if visible > limit {
        return Err(bad_request(too_long));
    }
    Ok(())
}

/// Validates Telegram's HTML subset and returns the visible length in UTF-16 code
/// units, as Telegram counts it (an emoji outside the BMP is two).
/// A `<` that does not open a supported tag is an error, as on the real service; a
/// bare `&` or `>` is tolerated.
fn check_html(text: &str) -> Result<usize, String> {
    const TAGS: &[&str] = &[
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    ];
    let mut open: Vec<String> = Vec::new();
    let mut visible = 0;
    let mut rest = text;
    while let Some(ch) = rest.chars().next() {
        let offset = text.len() - rest.len();
        match ch {
            '<' => {
                let Some(end) = rest.find('>') else {
                    return Err(format!("Unclosed start tag at byte offset {offset}"));
                };
                let inner = &rest[1..end];
                if let Some(name) = inner.strip_prefix('/') {
                    let name = name.trim().to_ascii_lowercase();
                    match open.pop() {
                        Some(expected) if expected == name => {}
                        Some(expected) => {
                            return Err(format!(
                                "Unmatched end tag at byte offset {offset}, expected \
                                 \"</{expected}>\", found \"</{name}>\""
                            ))
                        }
                        None => return Err(format!("Unexpected end tag at byte offset {offset}")),
                    }
                } else {
                    let name: String = inner
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect::<String>()
                        .to_ascii_lowercase();
                    if !TAGS.contains(&name.as_str()) {
                        return Err(format!(
                            "Unsupported start tag \"{name}\" at byte offset {offset}"
                        ));
                    }
                    open.push(name);
                }
                rest = &rest[end + 1..];
            }
            '&' => {
                let entity_end = rest
                    .char_indices()
                    .take(12)
                    .find(|(_, c)| *c == ';')
                    .map(|(index, _)| index);
                rest = match entity_end {
                    Some(end)
                        if rest[1..end]
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '#') =>
                    {
                        visible += entity_units(&rest[1..end]);
                        &rest[end + 1..]
                    }
                    _ => {
                        visible += 1;
                        &rest[1..]
                    }
                };
            }
            _ => {
                visible += ch.len_utf16();
                rest = &rest[ch.len_utf8()..];
            }
        }
    }
    if let Some(unclosed) = open.pop() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{unclosed}\""
        ));
    }
    Ok(visible)
}

/// The UTF-16 length of an entity's character: `&#128512;` is two, `&amp;` one.
fn entity_units(name: &str) -> usize {
    let code = match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => name.strip_prefix('#').and_then(|dec| dec.parse().ok()),
    };
    code.and_then(char::from_u32).map_or(1, char::len_utf16)
}

/// Merges the query string and the body (JSON, form or multipart) into one object.
fn parse_params(query: &str, content_type: &str, body: &[u8]) -> Value {
    let mut params = Map::new();
    for (name, value) in parse_urlencoded(query) {
        params.insert(name, Value::String(value));
    }
    let content_type_lower = content_type.to_ascii_lowercase();
    if content_type_lower.starts_with("multipart/form-data") {
        if let Some(boundary) = multipart_boundary(content_type) {
            parse_multipart(body, &boundary, &mut params);
        }
    } else if body.iter().all(u8::is_ascii_whitespace) {
        // No body: the query string is all there is.
    } else if content_type_lower.starts_with("application/x-www-form-urlencoded") {
        for (name, value) in parse_urlencoded(&String::from_utf8_lossy(body)) {
            params.insert(name, Value::String(value));
        }
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => params.extend(object),
            Ok(other) => {
                params.insert("_body".to_string(), other);
            }
            Err(_) => {
                let raw = String::from_utf8_lossy(body).into_owned();
                params.insert("_unparsed_body".to_string(), Value::String(raw));
            }
        }
    }
    Value::Object(params)
}

fn multipart_boundary(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|part| {
        let (name, value) = part.trim().split_once('=')?;
        name.eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

/// Records text fields as strings and files as `{"file_name", "content_type", "size"}`.
fn parse_multipart(body: &[u8], boundary: &str, params: &mut Map<String, Value>) {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut chunks = Vec::new();
    let mut rest = body;
    while let Some(position) = find_bytes(rest, &delimiter) {
        chunks.push(&rest[..position]);
        rest = &rest[position + delimiter.len()..];
    }
    chunks.push(rest);
    // The first chunk is the preamble; the one after the closing delimiter starts "--".
    for chunk in chunks.into_iter().skip(1) {
        if chunk.starts_with(b"--") {
            break;
        }
        let part = chunk.strip_prefix(b"\r\n").unwrap_or(chunk);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let Some(header_end) = find_bytes(part, b"\r\n\r\n") else {
            continue;
        };
        let headers = String::from_utf8_lossy(&part[..header_end]);
        let content = &part[header_end + 4..];
        let mut name = None;
        let mut file_name = None;
        let mut part_type = None;
        for line in headers.lines() {
            let Some((header, value)) = line.split_once(':') else {
                continue;
            };
            if header.trim().eq_ignore_ascii_case("content-disposition") {
                for attribute in value.split(';') {
                    if let Some((key, value)) = attribute.trim().split_once('=') {
                        let value = value.trim().trim_matches('"').to_string();
                        match key.trim().to_ascii_lowercase().as_str() {
                            "name" => name = Some(value),
                            "filename" => file_name = Some(value),
                            _ => {}
                        }
                    }
                }
            } else if header.trim().eq_ignore_ascii_case("content-type") {
                part_type = Some(value.trim().to_string());
            }
        }
        let Some(name) = name else {
            continue;
        };
        let value = match file_name {
            Some(file_name) => {
                let mut file = json!({
                    "file_name": file_name,
                    "content_type": part_type,
                    "size": content.len(),
                });
                // A small text file (a settings export) is kept whole, to read back.
                if content.len() <= 64 * 1024 {
                    if let Ok(text) = std::str::from_utf8(content) {
                        file["content"] = json!(text);
                    }
                }
                let reader = image::ImageReader::new(std::io::Cursor::new(content))
                    .with_guessed_format()
                    .ok();
                let format = reader.as_ref().and_then(|reader| reader.format());
                let dimensions = reader.and_then(|reader| reader.into_dimensions().ok());
                if let Some((width, height)) = dimensions {
                    file["width"] = json!(width);
                    file["height"] = json!(height);
                }
                if let Some(format) = format {
                    file["format"] = json!(format.extensions_str().first().copied());
                    // A small picture is decoded whole, so a test can tell a
                    // valid one from a header on top of garbage, and told
                    // apart from another by its hash.
                    if content.len() <= MAX_DECODED_UPLOAD {
                        file["decodes"] = json!(image::load_from_memory(content).is_ok());
                        let digest = ring::digest::digest(&ring::digest::SHA256, content);
                        let hex: String =
                            digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
                        file["sha256"] = json!(hex);
                    }
                }
                file
            }
            None => Value::String(String::from_utf8_lossy(content).into_owned()),
        };
        params.insert(name, value);
    }
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
