-- /status shows the newest failed run a chat may hear of (db::runs::
-- last_failure_for_chat): by outcome, newest first, instead of a walk over every
-- run of the last 90 days.
CREATE INDEX runs_outcome ON runs(outcome, started_at);
