-- Connecting an Instagram account from Telegram: the single-use OAuth states.
CREATE TABLE oauth_states (
    state       TEXT PRIMARY KEY,   -- random, 32 hex characters
    chat_id     INTEGER NOT NULL REFERENCES chats(chat_id),
    user_id     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,      -- 10 minutes after creation
    used_at     TEXT
);
CREATE INDEX oauth_states_chat ON oauth_states(chat_id, user_id, expires_at);
