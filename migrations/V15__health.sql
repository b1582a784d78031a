-- Health and audit: every background action (scan, publish, token refresh, daily
-- summary, backup) is one row of `runs`; a chat an admin switched off is kept but
-- not served.

-- One row per background action: written when it starts (outcome NULL while it
-- runs) and completed when it ends. A row still without an outcome when the
-- daemon starts again was cut short: it becomes 'interrupted'. Rows older than
-- 90 days are pruned by the daemon's housekeeping.
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL
        CHECK (kind IN ('scan', 'publish', 'token_refresh', 'summary', 'backup')),
    chat_id      INTEGER,          -- the chat it was for; NULL: every chat
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    duration_ms  INTEGER,
    outcome      TEXT CHECK (outcome IN ('ok', 'failed', 'interrupted')),
    counts       TEXT,             -- JSON object: {"new": 3, "gone": 1}
    error        TEXT              -- plain words, never a secret
);
CREATE INDEX runs_started ON runs(started_at);
CREATE INDEX runs_kind ON runs(kind, started_at);

-- Set by `storyline chats disable ID`, cleared by `enable`: the chat's settings,
-- queue and history stay, but it is not served (chats::is_served).
ALTER TABLE chats ADD COLUMN disabled_at TEXT;
