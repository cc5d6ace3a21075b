-- +goose Up
-- A deploy's or upgrade's constructor arguments, as a JSON array of
-- strings; empty for revisions that had none.
ALTER TABLE contract_revisions ADD COLUMN args TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE contract_revisions DROP COLUMN args;
