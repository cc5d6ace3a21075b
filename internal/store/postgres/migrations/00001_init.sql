-- +goose Up
CREATE TABLE objects (
    kind             TEXT   NOT NULL,
    name             TEXT   NOT NULL,
    uid              TEXT   NOT NULL UNIQUE,
    owner            TEXT   NOT NULL DEFAULT '',
    labels           TEXT   NOT NULL DEFAULT '{}',
    resource_version BIGINT NOT NULL,
    generation       BIGINT NOT NULL,
    spec             TEXT   NOT NULL,
    status           TEXT   NOT NULL DEFAULT '{}',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    deleted_at       BIGINT,
    PRIMARY KEY (kind, name)
);

CREATE TABLE events (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time    BIGINT NOT NULL,
    kind    TEXT   NOT NULL,
    name    TEXT   NOT NULL,
    uid     TEXT   NOT NULL DEFAULT '',
    type    TEXT   NOT NULL,
    reason  TEXT   NOT NULL,
    node    TEXT   NOT NULL DEFAULT '',
    message TEXT   NOT NULL
);
CREATE INDEX events_by_object ON events (kind, name, id);
CREATE INDEX events_by_uid ON events (uid);

CREATE TABLE blobs (
    owner_uid TEXT  NOT NULL,
    key       TEXT  NOT NULL,
    data      BYTEA NOT NULL,
    PRIMARY KEY (owner_uid, key)
);

CREATE TABLE ports (
    port      INTEGER PRIMARY KEY,
    owner_uid TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    idx       INTEGER NOT NULL,
    UNIQUE (owner_uid, key, idx)
);

-- +goose Down
DROP TABLE ports;
DROP TABLE blobs;
DROP TABLE events;
DROP TABLE objects;
