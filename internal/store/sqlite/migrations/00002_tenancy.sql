-- +goose Up
CREATE TABLE users (
    name           TEXT    PRIMARY KEY,
    password_hash  TEXT    NOT NULL,
    platform_admin INTEGER NOT NULL DEFAULT 0,
    created_at     BIGINT  NOT NULL,
    failed_logins  INTEGER NOT NULL DEFAULT 0,
    locked_until   BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE organizations (
    name       TEXT   PRIMARY KEY,
    created_at BIGINT NOT NULL,
    created_by TEXT   NOT NULL
);

CREATE TABLE memberships (
    org       TEXT NOT NULL REFERENCES organizations (name) ON DELETE CASCADE,
    user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    role      TEXT NOT NULL,
    PRIMARY KEY (org, user_name)
);

CREATE TABLE sessions (
    token_hash TEXT   PRIMARY KEY,
    user_name  TEXT   NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT   PRIMARY KEY,
    org           TEXT   NOT NULL REFERENCES organizations (name) ON DELETE CASCADE,
    description   TEXT   NOT NULL DEFAULT '',
    networks      TEXT   NOT NULL DEFAULT '[]',
    actions       TEXT   NOT NULL DEFAULT '[]',
    created_by    TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL DEFAULT 0,
    revoked_at    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE nonces (
    key_id     TEXT   NOT NULL,
    nonce      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, nonce)
);

CREATE TABLE audit (
    id       INTEGER PRIMARY KEY,
    time     BIGINT NOT NULL,
    actor    TEXT   NOT NULL,
    org      TEXT   NOT NULL DEFAULT '',
    action   TEXT   NOT NULL,
    resource TEXT   NOT NULL,
    result   TEXT   NOT NULL,
    status   INTEGER NOT NULL,
    source   TEXT   NOT NULL,
    detail   TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_org ON audit (org, id);

CREATE TABLE consortia (
    name       TEXT   PRIMARY KEY,
    owner_org  TEXT   NOT NULL REFERENCES organizations (name),
    created_at BIGINT NOT NULL
);

CREATE TABLE consortium_members (
    consortium TEXT   NOT NULL REFERENCES consortia (name) ON DELETE CASCADE,
    org        TEXT   NOT NULL REFERENCES organizations (name) ON DELETE CASCADE,
    joined_at  BIGINT NOT NULL,
    PRIMARY KEY (consortium, org)
);

CREATE TABLE invitations (
    id         TEXT   PRIMARY KEY,
    consortium TEXT   NOT NULL REFERENCES consortia (name) ON DELETE CASCADE,
    org        TEXT   NOT NULL REFERENCES organizations (name) ON DELETE CASCADE,
    invited_by TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_at BIGINT NOT NULL DEFAULT 0,
    decided_by TEXT   NOT NULL DEFAULT ''
);

-- The audit log is append-only.
-- +goose StatementBegin
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER audit_no_delete;
DROP TRIGGER audit_no_update;
DROP TABLE invitations;
DROP TABLE consortium_members;
DROP TABLE consortia;
DROP TABLE audit;
DROP TABLE nonces;
DROP TABLE api_keys;
DROP TABLE sessions;
DROP TABLE memberships;
DROP TABLE organizations;
DROP TABLE users;
