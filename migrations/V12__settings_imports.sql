-- A settings file sent to the bot, read and checked, waiting for ✅ Apply or
-- ✖️ Cancel under the message that shows its differences. AUTOINCREMENT: an id
-- is never reused, so an old message's Apply can never apply a newer file.
CREATE TABLE settings_imports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id     INTEGER NOT NULL REFERENCES chats(chat_id),
    user_id     INTEGER NOT NULL,        -- who sent the file
    document    TEXT NOT NULL,           -- the file as sent (JSON, at most 64 KB)
    based_on    INTEGER,                 -- the settings_history version it was compared with
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX settings_imports_chat ON settings_imports(chat_id);
