-- Forfall's schema on SQLite. Money is integer minor units plus an ISO 4217 code; civil dates are
-- TEXT 'YYYY-MM-DD' (sorts as dates); instants are INTEGER milliseconds since the Unix epoch.
-- Every table of creditor data carries creditor_id, and every query of it filters on it.

CREATE TABLE creditors (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    organisation_number TEXT NOT NULL,
    country             TEXT NOT NULL CHECK (country IN ('NO', 'SE', 'FI')),
    time_zone           TEXT NOT NULL,
    language            TEXT NOT NULL CHECK (language IN ('nb', 'en')),
    policy              TEXT NOT NULL,
    created_at          INTEGER NOT NULL
);

CREATE TABLE connections (
    id             TEXT PRIMARY KEY,
    creditor_id    TEXT NOT NULL REFERENCES creditors (id),
    platform       TEXT NOT NULL,
    credentials    BLOB NOT NULL,
    sync_cursor    TEXT,
    status         TEXT NOT NULL,
    last_error     TEXT,
    last_synced_at INTEGER,
    created_at     INTEGER NOT NULL
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
    postal_address      TEXT,
    opt_out             INTEGER NOT NULL DEFAULT 0,
    version             INTEGER NOT NULL DEFAULT 1,
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
    issued               TEXT NOT NULL,
    due                  TEXT NOT NULL,
    currency             TEXT NOT NULL,
    amount_minor         INTEGER NOT NULL,
    outstanding_minor    INTEGER NOT NULL,
    payment_reference    TEXT,
    opt_out              INTEGER NOT NULL DEFAULT 0,
    dispute_opened_on    TEXT,
    dispute_amount_minor INTEGER,
    stage                TEXT NOT NULL,
    next_action_on       TEXT,
    lifecycle            TEXT NOT NULL,
    version              INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    UNIQUE (creditor_id, connection_id, platform_id)
);
-- A day's work reads only the invoices whose day has come.
CREATE INDEX invoices_next_action ON invoices (creditor_id, next_action_on)
    WHERE next_action_on IS NOT NULL;
CREATE INDEX invoices_customer ON invoices (creditor_id, customer_id);

CREATE TABLE invoice_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    creditor_id TEXT NOT NULL REFERENCES creditors (id),
    invoice_id  TEXT NOT NULL REFERENCES invoices (id),
    at          INTEGER NOT NULL,
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    change      TEXT NOT NULL
);
CREATE INDEX invoice_events_invoice ON invoice_events (creditor_id, invoice_id, seq);

CREATE TABLE decisions (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    creditor_id TEXT NOT NULL REFERENCES creditors (id),
    invoice_id  TEXT NOT NULL REFERENCES invoices (id),
    on_day      TEXT NOT NULL,
    at          INTEGER NOT NULL,
    rule        TEXT NOT NULL,
    inputs      TEXT NOT NULL,
    outcome     TEXT NOT NULL
);
CREATE INDEX decisions_invoice ON decisions (creditor_id, invoice_id, seq);

CREATE TABLE cases (
    id                    TEXT PRIMARY KEY,
    creditor_id           TEXT NOT NULL REFERENCES creditors (id),
    invoice_id            TEXT NOT NULL REFERENCES invoices (id),
    generation            INTEGER NOT NULL,
    state                 TEXT NOT NULL,
    currency              TEXT NOT NULL,
    amount_minor          INTEGER NOT NULL,
    transfer_on           TEXT NOT NULL,
    free_withdrawal_until TEXT NOT NULL,
    first_reminder_on     TEXT NOT NULL,
    opened_at             INTEGER NOT NULL,
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
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    run_after       INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX jobs_claimable ON jobs (state, run_after);

-- Named, time-bounded leases: "only one instance polls this connection / ticks this creditor".
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
