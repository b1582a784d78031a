-- The foundation: chats and their settings, the settings audit trail, users,
-- the interaction log, the Telegram outbox and small key/values.
-- Timestamps are UTC text in RFC 3339 form ("2026-11-22T14:02:00Z"), so they sort.

-- One row per chat (tenant). A NULL setting means "use [defaults] from storyline.toml".
CREATE TABLE chats (
    chat_id              INTEGER PRIMARY KEY,
    title                TEXT,
    authorized_by        INTEGER,  -- admin who enabled the chat with /start; NULL if listed in the config
    dry_run_mode         INTEGER CHECK (dry_run_mode IN (0, 1)),
    enable_instagram_api INTEGER CHECK (enable_instagram_api IN (0, 1)),
    is_paused            INTEGER NOT NULL DEFAULT 0 CHECK (is_paused IN (0, 1)),
    paused_at            TEXT,
    paused_by            INTEGER,
    posts_per_day        INTEGER CHECK (posts_per_day BETWEEN 1 AND 50),
    posting_hours_start  INTEGER CHECK (posting_hours_start BETWEEN 0 AND 23),
    posting_hours_end    INTEGER CHECK (posting_hours_end BETWEEN 0 AND 23),
    timezone             TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);

-- Type 2 slowly changing dimension: one row per version of a chat's settings.
-- valid_to IS NULL marks the current version; there is at most one per chat.
CREATE TABLE settings_history (
    id          INTEGER PRIMARY KEY,
    chat_id     INTEGER NOT NULL REFERENCES chats(chat_id),
    snapshot    TEXT NOT NULL,   -- JSON: the effective settings of this version
    changes     TEXT NOT NULL,   -- JSON: [{"setting", "old", "new"}]
    changed_by  INTEGER,         -- Telegram user id; NULL = the system
    reason      TEXT,
    valid_from  TEXT NOT NULL,
    valid_to    TEXT
);
CREATE INDEX settings_history_chat ON settings_history(chat_id, valid_from);
CREATE UNIQUE INDEX settings_history_current ON settings_history(chat_id) WHERE valid_to IS NULL;

-- Telegram users seen in served chats.
CREATE TABLE users (
    user_id     INTEGER PRIMARY KEY,
    username    TEXT,
    first_name  TEXT,
    role        TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL
);

-- Every command, callback and prompt answer handled, one row per Telegram update.
CREATE TABLE interactions (
    id          INTEGER PRIMARY KEY,
    update_id   INTEGER NOT NULL UNIQUE,
    chat_id     INTEGER NOT NULL,
    user_id     INTEGER,
    kind        TEXT NOT NULL CHECK (kind IN ('command', 'callback', 'message')),
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX interactions_chat ON interactions(chat_id, created_at);

-- A value the bot asked a user for ("send the number of posts per day"):
-- that user's next message in that chat answers it.
CREATE TABLE pending_inputs (
    chat_id          INTEGER NOT NULL REFERENCES chats(chat_id),
    user_id          INTEGER NOT NULL,
    field            TEXT NOT NULL,
    stash            TEXT,     -- a first half already given (the start hour)
    menu_message_id  INTEGER,  -- the /settings message to refresh afterwards
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL,
    PRIMARY KEY (chat_id, user_id)
);

-- Chats the bot refused, so each gets at most one reply an hour.
CREATE TABLE refusals (
    chat_id          INTEGER PRIMARY KEY,
    last_replied_at  TEXT NOT NULL
);

-- Bot API calls decided by the core and not yet delivered. They are written in the
-- same transaction as the update that caused them and sent by the outbox thread.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    method      TEXT NOT NULL,
    params      TEXT NOT NULL,   -- JSON body
    created_at  TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE kv (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
