-- +goose Up
CREATE TABLE leases (
    name       TEXT   PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    term       BIGINT NOT NULL
);

-- +goose Down
DROP TABLE leases;
