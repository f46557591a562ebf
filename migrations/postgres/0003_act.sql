-- Acting durably: ordered job chains with attempt history, the creditor's e-mail and day tick,
-- collection cases with their messages (the pull queue), digests sent, and agency events seen.

-- Jobs of one chain (e.g. every pipeline message of one invoice) run one at a time, in the order
-- they were enqueued (seq order). A handler may save a checkpoint between attempts.
ALTER TABLE jobs ADD COLUMN seq BIGSERIAL;
ALTER TABLE jobs ADD COLUMN chain TEXT;
ALTER TABLE jobs ADD COLUMN checkpoint JSONB;
CREATE INDEX jobs_chain ON jobs (chain) WHERE chain IS NOT NULL;
CREATE INDEX jobs_state ON jobs (state, updated_at);

-- One row per attempt: what happened, when.
CREATE TABLE job_attempts (
    job_id      TEXT NOT NULL REFERENCES jobs (id),
    attempt     INTEGER NOT NULL,
    finished_at BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    error       TEXT,
    PRIMARY KEY (job_id, attempt)
);

-- Where the creditor's e-mails go, and the last civil day the day tick completed.
ALTER TABLE creditors ADD COLUMN email TEXT;
ALTER TABLE creditors ADD COLUMN ticked_through DATE;

-- A case is opened by its transfer job (keyed by it, so a retried job opens it once).
ALTER TABLE cases ADD COLUMN transfer_key TEXT;
ALTER TABLE cases ADD COLUMN withdrawal_confirmed BOOLEAN NOT NULL DEFAULT FALSE;
CREATE UNIQUE INDEX cases_transfer_key ON cases (transfer_key);
CREATE INDEX cases_invoice ON cases (creditor_id, invoice_id);

-- Every message for the agency, in order: the pull queue (the agency fetches and acknowledges)
-- and, in push mode, the record of what was delivered.
CREATE TABLE pipeline_messages (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    creditor_id     TEXT NOT NULL REFERENCES creditors (id),
    case_id         TEXT NOT NULL REFERENCES cases (id),
    kind            TEXT NOT NULL,
    body            JSONB NOT NULL,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    acknowledged_at BIGINT
);
CREATE INDEX pipeline_messages_unacknowledged ON pipeline_messages (seq)
    WHERE acknowledged_at IS NULL;

-- One digest e-mail per creditor, kind and civil day.
CREATE TABLE notifications (
    creditor_id TEXT NOT NULL REFERENCES creditors (id),
    kind        TEXT NOT NULL,
    day         DATE NOT NULL,
    message_id  TEXT NOT NULL,
    items       BIGINT NOT NULL,
    sent_at     BIGINT NOT NULL,
    PRIMARY KEY (creditor_id, kind, day)
);

-- The agency's events already applied (a replayed webhook-id is acknowledged, not applied).
CREATE TABLE pipeline_events (
    id          TEXT PRIMARY KEY,
    case_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
