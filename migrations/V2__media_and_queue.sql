-- The media library, each chat's view of it, the posting queue and history.

-- One row per file under [media] dir. The same content (sha256) in two places is
-- two rows here but one item everywhere else (chat_media, locks, history).
CREATE TABLE media_items (
    id                INTEGER PRIMARY KEY,
    path              TEXT NOT NULL UNIQUE,   -- relative to the media dir, '/'-separated
    category          TEXT NOT NULL,          -- top-level folder, or 'uncategorized'
    kind              TEXT NOT NULL CHECK (kind IN ('image', 'video')),
    size              INTEGER NOT NULL,
    mtime_ns          INTEGER NOT NULL,       -- modification time, ns since the epoch
    sha256            TEXT NOT NULL,          -- lowercase hex
    first_seen        TEXT NOT NULL,
    last_seen         TEXT NOT NULL,
    is_active         INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    telegram_file_id  TEXT,                   -- reused instead of uploading again
    last_posted_at    TEXT,                   -- across all chats, for information
    times_posted      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX media_items_sha256 ON media_items(sha256);
CREATE INDEX media_items_active ON media_items(is_active, category);

-- Per chat and per content: how often it was posted there, and its lock. The
-- picker walks chat_media_pick in order: never posted first, then fewest posts,
-- then least recently posted, `shuffle` breaking ties at random.
CREATE TABLE chat_media (
    chat_id         INTEGER NOT NULL REFERENCES chats(chat_id),
    sha256          TEXT NOT NULL,
    category        TEXT NOT NULL,
    is_active       INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    times_posted    INTEGER NOT NULL DEFAULT 0,
    last_posted_at  TEXT,
    locked_until    TEXT,      -- NULL: not locked; '9999-12-31T00:00:00Z': for good
    lock_reason     TEXT,      -- posted, skipped, rejected
    shuffle         INTEGER NOT NULL,
    PRIMARY KEY (chat_id, sha256)
);
CREATE INDEX chat_media_pick ON chat_media(chat_id, category, is_active, times_posted, last_posted_at, shuffle);

-- A chat's category mix: relative weights; no rows = every category alike.
CREATE TABLE chat_categories (
    chat_id   INTEGER NOT NULL REFERENCES chats(chat_id),
    category  TEXT NOT NULL,
    weight    INTEGER NOT NULL CHECK (weight BETWEEN 0 AND 1000),
    PRIMARY KEY (chat_id, category)
);

-- Planned slots. pending → sending (handed to the outbox) → sent (waiting for a
-- person) → posted | skipped | rejected; or failed, or missed (the Pi was off).
CREATE TABLE posting_queue (
    id                   INTEGER PRIMARY KEY,
    chat_id              INTEGER NOT NULL REFERENCES chats(chat_id),
    scheduled_for        TEXT NOT NULL,     -- UTC
    window_date          TEXT NOT NULL,     -- the local date whose window holds the slot
    sha256               TEXT,              -- the content picked; NULL when none was left
    media_item_id        INTEGER REFERENCES media_items(id),
    status               TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                         ('pending', 'sending', 'sent', 'posted', 'skipped', 'rejected', 'failed', 'missed')),
    attempts             INTEGER NOT NULL DEFAULT 0,
    last_error           TEXT,
    telegram_message_id  INTEGER,
    graph_container_id   TEXT,
    created_at           TEXT NOT NULL,
    decided_at           TEXT,
    decided_by           INTEGER
);
CREATE INDEX posting_queue_due ON posting_queue(status, scheduled_for);
CREATE INDEX posting_queue_chat ON posting_queue(chat_id, scheduled_for);

-- The windows already planned, so a restart does not plan a day twice.
CREATE TABLE planned_windows (
    chat_id      INTEGER NOT NULL REFERENCES chats(chat_id),
    window_date  TEXT NOT NULL,
    planned_at   TEXT NOT NULL,
    PRIMARY KEY (chat_id, window_date)
);

-- What was done with each story, by whom and how.
CREATE TABLE posting_history (
    id                  INTEGER PRIMARY KEY,
    chat_id             INTEGER NOT NULL REFERENCES chats(chat_id),
    queue_id            INTEGER REFERENCES posting_queue(id),
    media_item_id       INTEGER REFERENCES media_items(id),
    sha256              TEXT NOT NULL,
    outcome             TEXT NOT NULL CHECK (outcome IN ('posted', 'skipped', 'rejected')),
    method              TEXT NOT NULL CHECK (method IN ('manual', 'instagram_api', 'dry_run')),
    user_id             INTEGER,
    instagram_media_id  TEXT,
    error               TEXT,
    created_at          TEXT NOT NULL
);
CREATE INDEX posting_history_chat ON posting_history(chat_id, created_at);

ALTER TABLE chats ADD COLUMN posted_lock_days INTEGER CHECK (posted_lock_days BETWEEN 0 AND 3650);
ALTER TABLE chats ADD COLUMN skipped_lock_days INTEGER CHECK (skipped_lock_days BETWEEN 0 AND 3650);
ALTER TABLE chats ADD COLUMN pool_warned_on TEXT;   -- local date of the last "running dry" warning

-- Outbox calls can carry what to record once Telegram has taken them
-- (the message id of a story, the file_id of an upload) or failed them.
ALTER TABLE outbox ADD COLUMN on_result TEXT;
