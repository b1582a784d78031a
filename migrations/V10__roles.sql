-- Roles in a group: which chats may use an Instagram account, and whether a
-- story's buttons are for everyone in the chat or its administrators only.

-- NULL or 0: every member may press Posted / Skip / Reject; 1: administrators only.
ALTER TABLE chats ADD COLUMN story_buttons_admins_only INTEGER
    CHECK (story_buttons_admins_only IN (0, 1));

-- An account added on the command line without --chat is the operator's, and
-- every chat may choose it. Any other account is for the chats in account_chats.
ALTER TABLE instagram_accounts ADD COLUMN every_chat INTEGER NOT NULL DEFAULT 0
    CHECK (every_chat IN (0, 1));

-- The chats that may list and use an account: the one that connected it (its
-- owner) and those an admin shared it with (`storyline accounts share`).
CREATE TABLE account_chats (
    account_id  INTEGER NOT NULL REFERENCES instagram_accounts(id),
    chat_id     INTEGER NOT NULL REFERENCES chats(chat_id),
    is_owner    INTEGER NOT NULL CHECK (is_owner IN (0, 1)),
    since       TEXT NOT NULL,
    PRIMARY KEY (account_id, chat_id)
);
CREATE UNIQUE INDEX account_chats_one_owner ON account_chats(account_id) WHERE is_owner = 1;
CREATE INDEX account_chats_chat ON account_chats(chat_id);

-- Accounts in use keep serving the chats that use them. A chat's chosen account
-- is its own: the oldest of the chats that chose it owns it, the others share it.
INSERT INTO account_chats (account_id, chat_id, is_owner, since)
SELECT c.active_account_id, c.chat_id,
       c.chat_id = (SELECT first.chat_id FROM chats first
                    WHERE first.active_account_id = c.active_account_id
                    ORDER BY first.created_at, first.chat_id LIMIT 1),
       strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
FROM chats c JOIN instagram_accounts a ON a.id = c.active_account_id;

-- With exactly one active account, the chats that chose none (or one since
-- deactivated) post to it: they keep it too.
INSERT OR IGNORE INTO account_chats (account_id, chat_id, is_owner, since)
SELECT (SELECT id FROM instagram_accounts WHERE is_active = 1), c.chat_id, 0,
       strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
FROM chats c LEFT JOIN instagram_accounts a ON a.id = c.active_account_id
WHERE (SELECT count(*) FROM instagram_accounts WHERE is_active = 1) = 1
  AND (a.id IS NULL OR a.is_active = 0);

-- ...and the oldest of them owns it when no chat chose it.
UPDATE account_chats SET is_owner = 1
WHERE is_owner = 0
  AND account_id NOT IN (SELECT account_id FROM account_chats WHERE is_owner = 1)
  AND chat_id = (SELECT ac.chat_id FROM account_chats ac JOIN chats c ON c.chat_id = ac.chat_id
                 WHERE ac.account_id = account_chats.account_id
                 ORDER BY c.created_at, c.chat_id LIMIT 1);

-- No chat uses the others: they stay open to every chat, as they were.
UPDATE instagram_accounts SET every_chat = 1
WHERE id NOT IN (SELECT account_id FROM account_chats);
