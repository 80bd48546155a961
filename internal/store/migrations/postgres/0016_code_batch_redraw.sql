-- A done batch's ZIP is deleted after the code batch retention (status 'expired'); an expired or failed batch
-- can be drawn again, making the same codes. attempt_base is the attempts count when it was last queued again:
-- the limit on attempts counts those since, while attempts itself, the claim's fencing token, only grows.
ALTER TABLE code_batches ADD COLUMN attempt_base INTEGER NOT NULL DEFAULT 0;
