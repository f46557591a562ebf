-- The partner and creditor API: partners and the creditors they serve, API keys (stored only as a
-- hash), idempotency records of POST requests, and partners' webhook endpoints with the events
-- sent to them.

CREATE TABLE partners (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A creditor created by a partner (through the API or `forfall creditors add --partner`) is
-- reached by that partner's keys; one created without a partner only by its own keys.
ALTER TABLE creditors ADD COLUMN partner_id TEXT REFERENCES partners (id);
CREATE INDEX creditors_partner ON creditors (partner_id);

-- A key belongs to one partner or to one creditor, never both. `hash` is the SHA-256 of the whole
-- secret token, hex; the token itself is shown once and never stored.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    hash         TEXT NOT NULL UNIQUE,
    partner_id   TEXT REFERENCES partners (id),
    creditor_id  TEXT REFERENCES creditors (id),
    scopes       TEXT NOT NULL,
    label        TEXT,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    CHECK ((partner_id IS NULL) <> (creditor_id IS NULL))
);

-- The first response to a POST with an `Idempotency-Key`, per API key. `status` is NULL while
-- the first request is still being answered.
CREATE TABLE idempotency_keys (
    api_key_id   TEXT NOT NULL REFERENCES api_keys (id),
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT,
    content_type TEXT,
    location     TEXT,
    body         TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (api_key_id, key)
);

-- Where a partner (or a creditor) wants events, signed with the endpoint's own secret (sealed
-- like connection credentials, bound to the endpoint's id). `event_types` is a JSON array of event
-- types, `["*"]` for every type. A deleted endpoint is kept (its deliveries still name it) but
-- receives nothing more.
CREATE TABLE webhook_endpoints (
    id          TEXT PRIMARY KEY,
    partner_id  TEXT REFERENCES partners (id),
    creditor_id TEXT REFERENCES creditors (id),
    url         TEXT NOT NULL,
    event_types TEXT NOT NULL,
    secret      BYTEA NOT NULL,
    description TEXT,
    created_at  BIGINT NOT NULL,
    deleted_at  BIGINT,
    CHECK ((partner_id IS NULL) <> (creditor_id IS NULL))
);
CREATE INDEX webhook_endpoints_partner ON webhook_endpoints (partner_id);
CREATE INDEX webhook_endpoints_creditor ON webhook_endpoints (creditor_id);

-- Events about a creditor's invoices, kept so they can be listed and replayed. `key` is the
-- idempotency key of the job that wrote the event (one event per engine decision, however often
-- that job runs).
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    creditor_id TEXT NOT NULL REFERENCES creditors (id),
    type        TEXT NOT NULL,
    data        JSONB NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX events_creditor ON events (creditor_id, id);
