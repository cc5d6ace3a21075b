-- +goose Up
-- A deploy's or upgrade's private data collections, as JSON; empty for
-- none.
ALTER TABLE contract_revisions ADD COLUMN collections TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE contract_revisions DROP COLUMN collections;
