-- A chat's life beyond its settings: a group that Telegram upgraded to a
-- supergroup, and a chat Telegram no longer delivers to.

-- The id a chat had before Telegram moved it (a group upgraded to a supergroup
-- gets a new id and everything moves along). A chat migrated from an id listed
-- in [access] allowed_chat_ids is served like that id.
ALTER TABLE chats ADD COLUMN migrated_from_chat_id INTEGER;

-- Set when Telegram refuses every message to the chat for good (the bot was
-- blocked or removed, the chat is gone): its slots are neither planned nor sent,
-- its data stays. Cleared when the chat writes again.
ALTER TABLE chats ADD COLUMN inactive_since TEXT;
ALTER TABLE chats ADD COLUMN inactive_reason TEXT
    CHECK (inactive_reason IN ('blocked', 'kicked', 'not_found', 'deactivated'));
