-- The shared pacing and frequency counters in Redis are fed from PostgreSQL, replayably: the deltas of every
-- applied batch are recorded here in the same transaction as the batch (keyed by its partition and first offset,
-- the same key as the idempotency marker in Redis), applied to Redis, and deleted once applied. A processor
-- killed between the commit and the Redis step leaves its row behind; the next processor to start re-drives it
-- (the Redis marker makes a second application a no-op).
CREATE TABLE counter_outbox (
    consumer_group      text        NOT NULL,
    topic               text        NOT NULL,
    partition           integer     NOT NULL,
    first_offset        bigint      NOT NULL,
    -- [[line_item_id, hour, impressions], …]
    delivered           jsonb       NOT NULL,
    -- [[viewer_id, line_item_id, hour, impressions], …]
    viewer_impressions  jsonb       NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition, first_offset)
);
