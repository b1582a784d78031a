-- The /init wizard's message, once Telegram has answered its send (the outbox
-- records it): when /init shows the set-up again in a new message, the old one
-- is edited to say so, and its buttons go.
ALTER TABLE setup_wizards ADD COLUMN message_id INTEGER;
