-- Distributed event pipeline state (PostgreSQL). Applied by refinery at start-up (PgStore::connect).
--
-- Exactly-once: a processor applies a batch of one log partition in ONE transaction that locks the partition's
-- row in log_offsets, skips records below its next_offset, updates the dedup state and aggregates, and advances
-- next_offset. Offsets and the state they produced commit together or not at all.

CREATE TABLE log_offsets (
    consumer_group  text    NOT NULL,
    topic           text    NOT NULL,
    partition       integer NOT NULL,
    next_offset     bigint  NOT NULL,
    -- Latest event time this partition has seen (watermark for the ledger's allowed lateness).
    max_event_time  timestamptz,
    PRIMARY KEY (consumer_group, topic, partition)
);

-- Ingestion idempotency (a retried report keeps its event id).
CREATE TABLE event_ids (
    event_id     text        PRIMARY KEY,
    occurred_at  timestamptz NOT NULL
);
CREATE INDEX event_ids_occurred_at ON event_ids (occurred_at);

-- Billing dedup: one count per (ad instance, event type).
CREATE TABLE counted (
    ad_instance_id  text        NOT NULL,
    event_type      smallint    NOT NULL,
    occurred_at     timestamptz NOT NULL,
    PRIMARY KEY (ad_instance_id, event_type)
);
CREATE INDEX counted_occurred_at ON counted (occurred_at);

CREATE TABLE session_rate (
    session_id   text   NOT NULL,
    minute       bigint NOT NULL,
    impressions  bigint NOT NULL,
    PRIMARY KEY (session_id, minute)
);

CREATE TABLE windows (
    minute           bigint NOT NULL,
    campaign_id      text   NOT NULL,
    line_item_id     text   NOT NULL,
    creative_id      text   NOT NULL,
    channel          text   NOT NULL,
    live_event_id    text   NOT NULL,
    impressions      bigint NOT NULL,
    starts           bigint NOT NULL,
    first_quartiles  bigint NOT NULL,
    midpoints        bigint NOT NULL,
    third_quartiles  bigint NOT NULL,
    completes        bigint NOT NULL,
    clicks           bigint NOT NULL,
    errors           bigint NOT NULL,
    PRIMARY KEY (minute, campaign_id, line_item_id, creative_id, channel, live_event_id)
);

CREATE TABLE ledger (
    line_item_id     text   NOT NULL,
    hour             bigint NOT NULL,
    impressions      bigint NOT NULL,
    starts           bigint NOT NULL,
    first_quartiles  bigint NOT NULL,
    midpoints        bigint NOT NULL,
    third_quartiles  bigint NOT NULL,
    completes        bigint NOT NULL,
    clicks           bigint NOT NULL,
    errors           bigint NOT NULL,
    PRIMARY KEY (line_item_id, hour)
);

-- Late events for an hour already final: appended, never merged into the original.
CREATE TABLE ledger_corrections (
    id               bigserial PRIMARY KEY,
    line_item_id     text      NOT NULL,
    hour             bigint    NOT NULL,
    impressions      bigint    NOT NULL,
    starts           bigint    NOT NULL,
    first_quartiles  bigint    NOT NULL,
    midpoints        bigint    NOT NULL,
    third_quartiles  bigint    NOT NULL,
    completes        bigint    NOT NULL,
    clicks           bigint    NOT NULL,
    errors           bigint    NOT NULL,
    booked_at        timestamptz NOT NULL DEFAULT now()
);

-- Frequency caps (only viewers who consented to storing the pseudonymous id).
CREATE TABLE viewer_frequency (
    viewer_id     text   NOT NULL,
    line_item_id  text   NOT NULL,
    hour          bigint NOT NULL,
    impressions   bigint NOT NULL,
    PRIMARY KEY (viewer_id, line_item_id, hour)
);

CREATE TABLE quarantine (
    id              bigserial   PRIMARY KEY,
    event_id        text        NOT NULL,
    ad_instance_id  text        NOT NULL,
    reason          text        NOT NULL,
    detail          text        NOT NULL,
    event           jsonb       NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_reason ON quarantine (reason);

-- The decision catalog: one versioned document; the admin API writes it, every node polls the version.
CREATE TABLE catalog (
    id          integer     PRIMARY KEY CHECK (id = 1),
    version     bigint      NOT NULL,
    document    jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
