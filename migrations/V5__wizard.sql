-- The /init set-up wizard: one row per chat with a set-up in progress, so the
-- wizard survives a restart. The chat's settings are only written when the
-- set-up completes; then (or when it is cancelled) the row is deleted.
CREATE TABLE setup_wizards (
    -- In every button of the wizard's message. AUTOINCREMENT never reuses an id,
    -- and a resumed wizard gets a new one, so a press on an older message or on
    -- another chat's wizard names an id that is not this chat's current one.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id     INTEGER NOT NULL UNIQUE REFERENCES chats(chat_id),
    step        INTEGER NOT NULL CHECK (step BETWEEN 1 AND 5),
    choices     TEXT NOT NULL,   -- JSON: the values chosen so far (wizard::Choices)
    started_by  INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
