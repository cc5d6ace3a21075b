-- +goose Up
-- The explorer's index of each network's chain. Rows are keyed by the
-- network's UID and go with it; hashes are upper-case hex, as chains show
-- them, so that lookups compare them as given.
CREATE TABLE blocks (
    network_uid TEXT    NOT NULL,
    height      INTEGER NOT NULL,
    hash        TEXT    NOT NULL,
    time        INTEGER NOT NULL,
    proposer    TEXT    NOT NULL,
    app_hash    TEXT    NOT NULL,
    num_txs     INTEGER NOT NULL,
    PRIMARY KEY (network_uid, height)
);
CREATE INDEX blocks_by_hash ON blocks (network_uid, hash);

CREATE TABLE txs (
    network_uid TEXT    NOT NULL,
    height      INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    hash        TEXT    NOT NULL,
    time        INTEGER NOT NULL,
    code        INTEGER NOT NULL,
    log         TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    data        BLOB    NOT NULL,
    PRIMARY KEY (network_uid, height, idx)
);
CREATE INDEX txs_by_hash ON txs (network_uid, hash);

-- +goose Down
DROP TABLE txs;
DROP TABLE blocks;
