-- The daily summary: each chat is told at an hour of its own local day how
-- yesterday went and what is ahead.

-- NULL: on (the default); 0: off. The hour is the chat's local hour, NULL: 09:00.
ALTER TABLE chats ADD COLUMN daily_summary INTEGER CHECK (daily_summary IN (0, 1));
ALTER TABLE chats ADD COLUMN daily_summary_hour INTEGER
    CHECK (daily_summary_hour BETWEEN 0 AND 23);

-- One row per chat and local date whose summary was enqueued, written in the
-- transaction that enqueues it: never two for one day, across restarts.
CREATE TABLE daily_summaries (
    chat_id      INTEGER NOT NULL REFERENCES chats(chat_id),
    local_date   TEXT NOT NULL,     -- the chat's local date it is for ("2026-03-29")
    covers_date  TEXT NOT NULL,     -- the local day it tells of (the day before)
    sent_at      TEXT NOT NULL,
    late         INTEGER NOT NULL CHECK (late IN (0, 1)),
    PRIMARY KEY (chat_id, local_date)
);
