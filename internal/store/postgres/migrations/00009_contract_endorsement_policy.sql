-- +goose Up
-- A deploy's or upgrade's endorsement policy, as given; empty for the
-- chain's default.
ALTER TABLE contract_revisions ADD COLUMN endorsement_policy TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE contract_revisions DROP COLUMN endorsement_policy;
