-- Set-up with only the token: while no admin is configured and no chat is
-- served, `storyline run` prints a one-time pairing code; `/start CODE` makes
-- the sender an admin and serves that chat.

-- The pairing codes. The code itself is never stored: only an HMAC-SHA256 of it
-- keyed with a random salt. At most one is unused; a start makes a new one.
CREATE TABLE pairing_codes (
    id            INTEGER PRIMARY KEY,
    salt          BLOB NOT NULL,
    tag           BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,     -- an hour after creation
    used_at       TEXT,
    used_by       INTEGER,           -- the Telegram user who became an admin
    used_in_chat  INTEGER            -- the chat it was sent in, served since
);

-- Admins who are not in [access] admin_user_ids: those who paired with a code.
-- They count as configured admins everywhere.
CREATE TABLE admins (
    user_id    INTEGER PRIMARY KEY,
    chat_id    INTEGER NOT NULL,     -- where they paired
    added_at   TEXT NOT NULL
);
