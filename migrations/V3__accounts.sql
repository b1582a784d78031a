-- Instagram accounts, their sealed API tokens, and each chat's chosen account.

-- One row per Instagram account this deployment may post to. Deactivating is a
-- soft delete (is_active = 0): history that names the account keeps its row.
CREATE TABLE instagram_accounts (
    id                 INTEGER PRIMARY KEY,
    display_name       TEXT NOT NULL,
    instagram_user_id  TEXT NOT NULL UNIQUE,   -- the Graph API's user id, digits
    username           TEXT,                   -- without the @
    is_active          INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);

-- Secrets for external services, sealed with AES-256-GCM under the key file
-- (crypto.rs: "v1:" + hex of nonce, ciphertext and tag); never stored in clear.
CREATE TABLE api_tokens (
    id                   INTEGER PRIMARY KEY,
    service              TEXT NOT NULL,        -- 'instagram'
    token_type           TEXT NOT NULL,        -- 'access_token'
    account_id           INTEGER REFERENCES instagram_accounts(id),
    sealed_value         TEXT NOT NULL,
    issued_at            TEXT NOT NULL,        -- when this value was obtained (added or refreshed)
    expires_at           TEXT,
    last_refresh_error   TEXT,                 -- plain words, never the token; NULL after a success
    refresh_reported_on  TEXT,                 -- UTC date the chats were last told of a failed refresh
    UNIQUE (service, token_type, account_id)
);

-- The account a chat posts to. NULL: the only active account when there is
-- exactly one, else the chat is asked to choose.
ALTER TABLE chats ADD COLUMN active_account_id INTEGER REFERENCES instagram_accounts(id);
