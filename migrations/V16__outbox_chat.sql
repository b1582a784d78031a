-- The chat a waiting call is for, in its own column: while Telegram holds a chat
-- back (429, or its one-a-second pace), the outbox passes over that chat's rows
-- by this column instead of parsing every row's JSON on every turn. No index:
-- the outbox reads in id order, and an index would be one more page written
-- for every call stored and every call delivered.
ALTER TABLE outbox ADD COLUMN chat_id INTEGER;
UPDATE outbox
   SET chat_id = CASE WHEN json_valid(params)
                      THEN CAST(json_extract(params, '$.chat_id') AS INTEGER) END;
