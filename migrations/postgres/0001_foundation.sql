-- Forfall's schema on PostgreSQL, the twin of migrations/sqlite (both backends run the same SQL).
-- Money is integer minor units plus an ISO 4217 code; civil dates are DATE; instants are BIGINT
-- milliseconds since the Unix epoch, as on SQLite.
-- Every table of creditor data carries creditor_id, and every query of it filters on it.

CREATE TABLE creditors (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    organisation_number TEXT NOT NULL,
    country             TEXT NOT NULL CHECK (country IN ('NO', 'SE', 'FI')),
    time_zone           TEXT NOT NULL,
    language            TEXT NOT NULL CHECK (language IN ('nb', 'en')),
    policy              JSONB NOT NULL,
    created_at          BIGINT NOT NULL
);

CREATE TABLE connections (
    id             TEXT PRIMARY KEY,
    creditor_id    TEXT NOT NULL REFERENCES creditors (id),
    platform       TEXT NOT NULL,
    credentials    BYTEA NOT NULL,
    sync_cursor    TEXT,
    status         TEXT NOT NULL,
    last_error     TEXT,
    last_synced_at BIGINT,
    created_at     BIGINT NOT NULL
);
CREATE INDEX connections_creditor ON connections (creditor_id);

CREATE TABLE customers (
    id                  TEXT PRIMARY KEY,
    creditor_id         TEXT NOT NULL REFERENCES creditors (id),
    connection_id       TEXT NOT NULL REFERENCES connections (id),
    platform_id         TEXT NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('consumer', 'business')),
    name                TEXT NOT NULL,
    organisation_number TEXT,
    national_id         TEXT,
    email               TEXT,
    postal_address      JSONB,
    opt_out             BOOLEAN NOT NULL DEFAULT FALSE,
    version             BIGINT NOT NULL DEFAULT 1,
    UNIQUE (creditor_id, connection_id, platform_id)
);

CREATE TABLE invoices (
    id                   TEXT PRIMARY KEY,
    creditor_id          TEXT NOT NULL REFERENCES creditors (id),
    connection_id        TEXT NOT NULL REFERENCES connections (id),
    platform_id          TEXT NOT NULL,
    number               TEXT NOT NULL,
    customer_platform_id TEXT NOT NULL,
    customer_id          TEXT REFERENCES customers (id),
    issued               DATE NOT NULL,
    due                  DATE NOT NULL,
    currency             TEXT NOT NULL,
    amount_minor         BIGINT NOT NULL,
    outstanding_minor    BIGINT NOT NULL,
    payment_reference    TEXT,
    opt_out              BOOLEAN NOT NULL DEFAULT FALSE,
    dispute_opened_on    DATE,
    dispute_amount_minor BIGINT,
    stage                TEXT NOT NULL,
    next_action_on       DATE,
    lifecycle            JSONB NOT NULL,
    version              BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    UNIQUE (creditor_id, connection_id, platform_id)
);
-- A day's work reads only the invoices whose day has come.
CREATE INDEX invoices_next_action ON invoices (creditor_id, next_action_on)
    WHERE next_action_on IS NOT NULL;
CREATE INDEX invoices_customer ON invoices (creditor_id, customer_id);

CREATE TABLE invoice_events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    creditor_id TEXT NOT NULL REFERENCES creditors (id),
    invoice_id  TEXT NOT NULL REFERENCES invoices (id),
    at          BIGINT NOT NULL,
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    change      JSONB NOT NULL
);
CREATE INDEX invoice_events_invoice ON invoice_events (creditor_id, invoice_id, seq);

CREATE TABLE decisions (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    creditor_id TEXT NOT NULL REFERENCES creditors (id),
    invoice_id  TEXT NOT NULL REFERENCES invoices (id),
    on_day      DATE NOT NULL,
    at          BIGINT NOT NULL,
    rule        TEXT NOT NULL,
    inputs      JSONB NOT NULL,
    outcome     JSONB NOT NULL
);
CREATE INDEX decisions_invoice ON decisions (creditor_id, invoice_id, seq);

CREATE TABLE cases (
    id                    TEXT PRIMARY KEY,
    creditor_id           TEXT NOT NULL REFERENCES creditors (id),
    invoice_id            TEXT NOT NULL REFERENCES invoices (id),
    generation            INTEGER NOT NULL,
    state                 TEXT NOT NULL,
    currency              TEXT NOT NULL,
    amount_minor          BIGINT NOT NULL,
    transfer_on           DATE NOT NULL,
    free_withdrawal_until DATE NOT NULL,
    first_reminder_on     DATE NOT NULL,
    opened_at             BIGINT NOT NULL,
    UNIQUE (invoice_id, generation)
);
-- At most one open case per invoice.
CREATE UNIQUE INDEX cases_one_open_per_invoice ON cases (invoice_id)
    WHERE state IN ('open', 'held', 'principal_paid');

CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    creditor_id     TEXT NOT NULL REFERENCES creditors (id),
    kind            TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    payload         JSONB NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    run_after       BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX jobs_claimable ON jobs (state, run_after);

-- Named, time-bounded leases: "only one instance polls this connection / ticks this creditor".
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
