-- +goose Up
-- The channel a contract is on, on chains with more than one; empty for
-- the network's own.
ALTER TABLE contract_revisions ADD COLUMN channel TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE contract_revisions DROP COLUMN channel;
