-- Story insights: Instagram keeps a story's numbers for 24 hours only, so every
-- story whose Instagram media id Storyline knows (or can find, for a story a
-- person posted by hand) is read twice inside that window. And the opt-in
-- auto-tuner that moves a chat's category mix toward what works.

-- One row per story that went live on an account. `next_at` is when the next
-- step is due (a match, the first read, the final read); NULL when nothing is
-- left to do. The numbers are those of the latest read.
CREATE TABLE story_insights (
    id                  INTEGER PRIMARY KEY,
    queue_id            INTEGER NOT NULL UNIQUE REFERENCES posting_queue(id),
    chat_id             INTEGER NOT NULL REFERENCES chats(chat_id),
    account_id          INTEGER NOT NULL REFERENCES instagram_accounts(id),
    category            TEXT NOT NULL,
    -- NULL until a story posted by hand is matched among the account's live stories.
    media_id            TEXT,
    posted_at           TEXT NOT NULL,   -- when it went live (the publish, or the press)
    state               TEXT NOT NULL CHECK (state IN
                        ('matching', 'reading', 'done', 'not_matched', 'expired', 'no_permission')),
    reads               INTEGER NOT NULL DEFAULT 0 CHECK (reads BETWEEN 0 AND 2),
    next_at             TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,   -- failed tries of the current step
    -- What the latest read said: numbers, Instagram's "not enough viewers" (#10), or no data.
    result              TEXT CHECK (result IN ('numbers', 'not_enough_viewers', 'empty')),
    views               INTEGER,
    reach               INTEGER,
    replies             INTEGER,
    shares              INTEGER,
    total_interactions  INTEGER,
    follows             INTEGER,
    profile_visits      INTEGER,
    tap_forward         INTEGER,
    tap_back            INTEGER,
    tap_exit            INTEGER,
    swipe_forward       INTEGER,
    read_at             TEXT,
    error               TEXT             -- the last failure, plain words, never a token
);
CREATE INDEX story_insights_due ON story_insights(next_at) WHERE next_at IS NOT NULL;
CREATE INDEX story_insights_chat ON story_insights(chat_id, posted_at);

-- Whether the account's token carries instagram_business_manage_insights: NULL
-- unknown (connected before Storyline asked for it), 0 no, 1 yes; and when its
-- chats were told how to grant it (once).
ALTER TABLE instagram_accounts ADD COLUMN insights_granted INTEGER CHECK (insights_granted IN (0, 1));
ALTER TABLE instagram_accounts ADD COLUMN insights_told_at TEXT;

-- Auto-tune (off unless 1), the metric it follows, the most it moves a weight
-- per week, and the local date of its last weekly run.
ALTER TABLE chats ADD COLUMN auto_tune INTEGER CHECK (auto_tune IN (0, 1));
ALTER TABLE chats ADD COLUMN auto_tune_metric TEXT CHECK (auto_tune_metric IN ('reach', 'completion'));
ALTER TABLE chats ADD COLUMN auto_tune_step INTEGER CHECK (auto_tune_step BETWEEN 1 AND 1000);
ALTER TABLE chats ADD COLUMN auto_tune_ran_on TEXT;

-- The bounds the tuner keeps each category's weight within (NULL: 0 and 1000).
CREATE TABLE category_bounds (
    chat_id   INTEGER NOT NULL REFERENCES chats(chat_id),
    category  TEXT NOT NULL,
    floor     INTEGER NOT NULL CHECK (floor BETWEEN 0 AND 1000),
    ceiling   INTEGER NOT NULL CHECK (ceiling BETWEEN 0 AND 1000),
    CHECK (floor <= ceiling),
    PRIMARY KEY (chat_id, category)
);

-- Each change the tuner made, so its ↩️ Undo button can put the mix back (only
-- while the mix is still the one it set).
CREATE TABLE tune_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id     INTEGER NOT NULL REFERENCES chats(chat_id),
    old_mix     TEXT NOT NULL,    -- JSON object: {"quotes": 120, "memes": 80}
    new_mix     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    undone_at   TEXT,
    undone_by   INTEGER
);
CREATE INDEX tune_changes_chat ON tune_changes(chat_id, created_at);

-- Runs gain the insight reads and the tuner's weekly pass. SQLite cannot change
-- a CHECK, so the table is made again with its rows.
CREATE TABLE runs_new (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL
        CHECK (kind IN ('scan', 'publish', 'token_refresh', 'summary', 'backup', 'insights', 'tune')),
    chat_id      INTEGER,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    duration_ms  INTEGER,
    outcome      TEXT CHECK (outcome IN ('ok', 'failed', 'interrupted')),
    counts       TEXT,
    error        TEXT
);
INSERT INTO runs_new SELECT id, kind, chat_id, started_at, finished_at, duration_ms, outcome, counts, error FROM runs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;
CREATE INDEX runs_started ON runs(started_at);
CREATE INDEX runs_kind ON runs(kind, started_at);
CREATE INDEX runs_outcome ON runs(outcome, started_at);
