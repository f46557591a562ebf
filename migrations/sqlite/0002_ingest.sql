-- Ingest: where each connection's sync stands, which invoices a full pass has seen, and the facts
-- a connector reports beyond the first schema.

ALTER TABLE connections ADD COLUMN sync_pass INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN sync_in_pass INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN sync_full INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN last_full_sync_at INTEGER;

-- The full pass that last listed the invoice (a pass that does not list an open invoice it
-- should have re-reads it).
ALTER TABLE invoices ADD COLUMN seen_pass INTEGER;
-- The platform says the invoice was credited: a drop in outstanding is a credit, not a payment.
ALTER TABLE invoices ADD COLUMN credited INTEGER NOT NULL DEFAULT 0;
CREATE INDEX invoices_connection_customer ON invoices (connection_id, customer_platform_id);

-- The platform itself sends reminders or collection notices for this customer.
ALTER TABLE customers ADD COLUMN platform_dunning INTEGER NOT NULL DEFAULT 0;

CREATE INDEX jobs_kind_claimable ON jobs (kind, state, run_after);
