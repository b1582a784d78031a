-- Publishing stories through the Instagram Graph API.

-- 'manual' (NULL): every story goes to the chat with buttons, "Auto post"
-- publishes it on a press; 'auto': published unattended at the slot.
ALTER TABLE chats ADD COLUMN posting_mode TEXT CHECK (posting_mode IN ('manual', 'auto'));

-- One publish attempt per queue row, walked through by the publisher thread:
-- queued → container (created at Instagram) → publishing (media_publish sent) →
-- published | failed. A row left in 'publishing' by a crash or a timeout becomes
-- 'unknown': never retried blindly, the chat is asked.
CREATE TABLE publish_jobs (
    queue_id      INTEGER PRIMARY KEY REFERENCES posting_queue(id),
    chat_id       INTEGER NOT NULL REFERENCES chats(chat_id),
    account_id    INTEGER NOT NULL REFERENCES instagram_accounts(id),
    requested_by  INTEGER,      -- who pressed Auto post; NULL = the schedule
    dry_run       INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
    state         TEXT NOT NULL CHECK (state IN ('queued', 'container', 'publishing', 'published', 'failed', 'unknown')),
    container_id  TEXT,
    media_id      TEXT,
    error         TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX publish_jobs_state ON publish_jobs(state);
