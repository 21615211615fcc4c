-- Demand reports (by bidder, seat, deal). `demand`: counted events of programmatic ads per bidder hour, written by
-- the pipeline in the batch's transaction. `auctions`: the deciders' auction outcomes per bidder hour, added by
-- their periodic flushes. An empty seat and deal is the bidder as a whole; an empty deal the open auction.
CREATE TABLE demand (
    hour                  bigint NOT NULL,
    bidder                text   NOT NULL,
    seat                  text   NOT NULL,
    deal_id               text   NOT NULL,
    currency              text   NOT NULL,
    impressions           bigint NOT NULL,
    starts                bigint NOT NULL,
    first_quartiles       bigint NOT NULL,
    midpoints             bigint NOT NULL,
    third_quartiles       bigint NOT NULL,
    completes             bigint NOT NULL,
    clicks                bigint NOT NULL,
    errors                bigint NOT NULL,
    price_cpm_micros_sum  bigint NOT NULL,
    PRIMARY KEY (hour, bidder, seat, deal_id, currency)
);

CREATE TABLE auctions (
    hour      bigint NOT NULL,
    bidder    text   NOT NULL,
    seat      text   NOT NULL,
    deal_id   text   NOT NULL,
    currency  text   NOT NULL,
    requests  bigint NOT NULL,
    no_bids   bigint NOT NULL,
    timeouts  bigint NOT NULL,
    errors    bigint NOT NULL,
    bids      bigint NOT NULL,
    wins      bigint NOT NULL,
    losses    bigint NOT NULL,
    PRIMARY KEY (hour, bidder, seat, deal_id, currency)
);
