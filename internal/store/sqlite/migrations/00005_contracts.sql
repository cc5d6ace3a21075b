-- +goose Up
-- The contract store: immutable package versions, their files kept as one
-- JSON document.
CREATE TABLE packages (
    owner       TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    version     TEXT    NOT NULL,
    chain       TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    description TEXT    NOT NULL,
    checksum    TEXT    NOT NULL,
    files       BLOB    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (owner, name, version)
);

-- Each contract's life on a network, append-only: the newest revision
-- is its state. Rows go with the network.
CREATE TABLE contract_revisions (
    network_uid     TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    revision        INTEGER NOT NULL,
    action          TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    package_owner   TEXT    NOT NULL,
    package_name    TEXT    NOT NULL,
    package_version TEXT    NOT NULL,
    checksum        TEXT    NOT NULL,
    ref             TEXT    NOT NULL,
    tx_hash         TEXT    NOT NULL,
    height          INTEGER NOT NULL,
    actor           TEXT    NOT NULL,
    time            INTEGER NOT NULL,
    PRIMARY KEY (network_uid, name, revision)
);
CREATE INDEX contract_revisions_by_package ON contract_revisions (package_owner, package_name, package_version);

-- +goose Down
DROP TABLE contract_revisions;
DROP TABLE packages;
