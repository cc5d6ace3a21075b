-- +goose Up
-- What each transaction emitted (contract logs, application events), as a
-- JSON array; empty for transactions that emitted nothing.
ALTER TABLE txs ADD COLUMN events TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE txs DROP COLUMN events;
