//! Rows as both backends return them, and their conversion into the canonical model. Both schemas
//! store the same types (instants as milliseconds since the epoch), so one decoding serves both.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;

use super::StoreError;
use crate::domain::{
    Case, CaseState, Connection, ConnectionStatus, Creditor, Currency, Decision, Dispute,
    EventSource, Invoice, InvoiceEvent, InvoiceFacts, Job, JobAttempt, JobState, Language, Money,
    PipelineMessage, SealedCredentials, Stage, SyncState,
};

pub(super) const CREDITOR_COLUMNS: &str = "id, name, organisation_number, country, time_zone, language, policy, email, ticked_through, \
     partner_id";

pub(super) const INVOICE_COLUMNS: &str = "id, connection_id, customer_id, platform_id, number, \
     customer_platform_id, issued, due, currency, amount_minor, outstanding_minor, \
     payment_reference, opt_out, dispute_opened_on, dispute_amount_minor, stage, next_action_on, \
     lifecycle, version, credited";

pub(super) fn instant(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Invalid(format!("stored instant {ms} is out of range")))
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Invalid(format!(
        "stored {what} `{value}` is not one this binary knows"
    ))
}

fn currency(code: &str) -> Result<Currency, StoreError> {
    code.parse().map_err(|_| corrupt("currency", code))
}

#[derive(sqlx::FromRow)]
pub(super) struct CreditorRow {
    id: String,
    name: String,
    organisation_number: String,
    country: String,
    time_zone: String,
    language: String,
    policy: Json<serde_json::Value>,
    email: Option<String>,
    ticked_through: Option<NaiveDate>,
    partner_id: Option<String>,
}

impl TryFrom<CreditorRow> for Creditor {
    type Error = StoreError;
    fn try_from(r: CreditorRow) -> Result<Self, StoreError> {
        Ok(Creditor {
            id: r.id.as_str().into(),
            name: r.name,
            organisation_number: r.organisation_number,
            country: r
                .country
                .parse()
                .map_err(|_| corrupt("country", &r.country))?,
            time_zone: r
                .time_zone
                .parse()
                .map_err(|_| corrupt("time zone", &r.time_zone))?,
            language: Language::parse(&r.language)
                .ok_or_else(|| corrupt("language", &r.language))?,
            policy: r.policy.0,
            email: r.email,
            ticked_through: r.ticked_through,
            partner_id: r.partner_id.map(crate::domain::PartnerId),
        })
    }
}

pub(super) const CONNECTION_COLUMNS: &str = "id, creditor_id, platform, credentials, \
     sync_cursor, status, last_error, last_synced_at, sync_pass, sync_in_pass, sync_full, \
     last_full_sync_at";

#[derive(sqlx::FromRow)]
pub(super) struct ConnectionRow {
    id: String,
    creditor_id: String,
    platform: String,
    credentials: Vec<u8>,
    sync_cursor: Option<String>,
    status: String,
    last_error: Option<String>,
    last_synced_at: Option<i64>,
    sync_pass: i64,
    sync_in_pass: bool,
    sync_full: bool,
    last_full_sync_at: Option<i64>,
}

impl TryFrom<ConnectionRow> for Connection {
    type Error = StoreError;
    fn try_from(r: ConnectionRow) -> Result<Self, StoreError> {
        Ok(Connection {
            id: r.id.as_str().into(),
            creditor_id: r.creditor_id.as_str().into(),
            platform: r.platform,
            credentials: SealedCredentials(r.credentials),
            sync_cursor: r.sync_cursor,
            status: ConnectionStatus::parse(&r.status)
                .ok_or_else(|| corrupt("connection status", &r.status))?,
            last_error: r.last_error,
            last_synced_at: r.last_synced_at.map(instant).transpose()?,
            sync: SyncState {
                pass: r.sync_pass,
                in_pass: r.sync_in_pass,
                full: r.sync_full,
                last_full_sync_at: r.last_full_sync_at.map(instant).transpose()?,
            },
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct InvoiceRow {
    id: String,
    connection_id: String,
    customer_id: Option<String>,
    platform_id: String,
    number: String,
    customer_platform_id: String,
    issued: NaiveDate,
    due: NaiveDate,
    currency: String,
    amount_minor: i64,
    outstanding_minor: i64,
    payment_reference: Option<String>,
    opt_out: bool,
    dispute_opened_on: Option<NaiveDate>,
    dispute_amount_minor: Option<i64>,
    stage: String,
    next_action_on: Option<NaiveDate>,
    lifecycle: Json<serde_json::Value>,
    pub(super) version: i64,
    credited: bool,
}

impl InvoiceRow {
    /// The platform's facts as stored, to compare with incoming ones.
    pub(super) fn facts(&self) -> Result<InvoiceFacts, StoreError> {
        let currency = currency(&self.currency)?;
        Ok(InvoiceFacts {
            platform_id: self.platform_id.clone(),
            number: self.number.clone(),
            customer_platform_id: self.customer_platform_id.clone(),
            issued: self.issued,
            due: self.due,
            currency,
            amount: Money::from_minor_units(self.amount_minor, currency).amount,
            outstanding: Money::from_minor_units(self.outstanding_minor, currency).amount,
            payment_reference: self.payment_reference.clone(),
            credited: self.credited,
        })
    }

    pub(super) fn id(&self) -> &str {
        &self.id
    }
}

impl TryFrom<InvoiceRow> for Invoice {
    type Error = StoreError;
    fn try_from(r: InvoiceRow) -> Result<Self, StoreError> {
        let facts = r.facts()?;
        Ok(Invoice {
            id: r.id.as_str().into(),
            connection_id: r.connection_id.as_str().into(),
            customer_id: r.customer_id.as_deref().map(Into::into),
            opt_out: r.opt_out,
            dispute: r.dispute_opened_on.map(|opened_on| Dispute {
                amount: r
                    .dispute_amount_minor
                    .map(|minor| Money::from_minor_units(minor, facts.currency).amount),
                opened_on,
            }),
            stage: Stage::parse(&r.stage).ok_or_else(|| corrupt("stage", &r.stage))?,
            next_action_on: r.next_action_on,
            lifecycle: r.lifecycle.0,
            version: r.version,
            facts,
        })
    }
}

/// Facts in the shape the tables store them, validated: no amount finer than the currency's
/// minor unit.
pub(super) struct StoredFacts {
    pub amount_minor: i64,
    pub outstanding_minor: i64,
    /// The facts with amounts at the currency's scale, as they read back from the database.
    pub normalized: InvoiceFacts,
}

impl StoredFacts {
    pub(super) fn of(facts: &InvoiceFacts) -> Result<StoredFacts, StoreError> {
        let amount_minor = facts.amount()?.to_minor_units()?;
        let outstanding_minor = facts.outstanding()?.to_minor_units()?;
        let mut normalized = facts.clone();
        normalized.amount = Money::from_minor_units(amount_minor, facts.currency).amount;
        normalized.outstanding = Money::from_minor_units(outstanding_minor, facts.currency).amount;
        Ok(StoredFacts {
            amount_minor,
            outstanding_minor,
            normalized,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    seq: i64,
    invoice_id: String,
    at: i64,
    source: String,
    kind: String,
    change: Json<serde_json::Value>,
}

impl TryFrom<EventRow> for InvoiceEvent {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        Ok(InvoiceEvent {
            seq: r.seq,
            invoice_id: r.invoice_id.as_str().into(),
            at: instant(r.at)?,
            source: EventSource::parse(&r.source).ok_or_else(|| corrupt("source", &r.source))?,
            kind: r.kind,
            change: r.change.0,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct DecisionRow {
    seq: i64,
    invoice_id: String,
    on_day: NaiveDate,
    at: i64,
    rule: String,
    inputs: Json<serde_json::Value>,
    outcome: Json<serde_json::Value>,
}

impl TryFrom<DecisionRow> for Decision {
    type Error = StoreError;
    fn try_from(r: DecisionRow) -> Result<Self, StoreError> {
        Ok(Decision {
            seq: r.seq,
            invoice_id: r.invoice_id.as_str().into(),
            on: r.on_day,
            at: instant(r.at)?,
            rule: r.rule,
            inputs: r.inputs.0,
            outcome: r.outcome.0,
        })
    }
}

pub(super) const JOB_COLUMNS: &str = "id, creditor_id, kind, idempotency_key, payload, state, \
     attempts, run_after, lease_owner, lease_until, last_error, chain, checkpoint, created_at, \
     updated_at";

#[derive(sqlx::FromRow)]
pub(super) struct JobRow {
    id: String,
    creditor_id: String,
    kind: String,
    idempotency_key: String,
    payload: Json<serde_json::Value>,
    state: String,
    attempts: i32,
    run_after: i64,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
    last_error: Option<String>,
    chain: Option<String>,
    checkpoint: Option<Json<serde_json::Value>>,
    created_at: i64,
    updated_at: i64,
}

impl JobRow {
    /// Claim order: earliest due first, then by id.
    pub(super) fn run_after(&self) -> i64 {
        self.run_after
    }

    pub(super) fn id(&self) -> &str {
        &self.id
    }
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;
    fn try_from(r: JobRow) -> Result<Self, StoreError> {
        Ok(Job {
            id: r.id.as_str().into(),
            creditor_id: r.creditor_id.as_str().into(),
            kind: r.kind,
            idempotency_key: r.idempotency_key,
            payload: r.payload.0,
            state: JobState::parse(&r.state).ok_or_else(|| corrupt("job state", &r.state))?,
            attempts: r.attempts,
            run_after: instant(r.run_after)?,
            lease_owner: r.lease_owner,
            lease_until: r.lease_until.map(instant).transpose()?,
            last_error: r.last_error,
            chain: r.chain,
            checkpoint: r.checkpoint.map(|c| c.0),
            created_at: instant(r.created_at)?,
            updated_at: instant(r.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AttemptRow {
    attempt: i32,
    finished_at: i64,
    outcome: String,
    error: Option<String>,
}

impl TryFrom<AttemptRow> for JobAttempt {
    type Error = StoreError;
    fn try_from(r: AttemptRow) -> Result<Self, StoreError> {
        Ok(JobAttempt {
            attempt: r.attempt,
            finished_at: instant(r.finished_at)?,
            outcome: r.outcome,
            error: r.error,
        })
    }
}

pub(super) const CASE_COLUMNS: &str = "id, creditor_id, invoice_id, generation, state, currency, \
     amount_minor, transfer_on, free_withdrawal_until, first_reminder_on, opened_at, \
     withdrawal_confirmed";

#[derive(sqlx::FromRow)]
pub(super) struct CaseRow {
    id: String,
    creditor_id: String,
    invoice_id: String,
    generation: i32,
    state: String,
    currency: String,
    amount_minor: i64,
    transfer_on: NaiveDate,
    free_withdrawal_until: NaiveDate,
    first_reminder_on: NaiveDate,
    opened_at: i64,
    withdrawal_confirmed: bool,
}

impl TryFrom<CaseRow> for Case {
    type Error = StoreError;
    fn try_from(r: CaseRow) -> Result<Self, StoreError> {
        Ok(Case {
            id: r.id.as_str().into(),
            creditor_id: r.creditor_id.as_str().into(),
            invoice_id: r.invoice_id.as_str().into(),
            generation: r.generation,
            state: CaseState::parse(&r.state).ok_or_else(|| corrupt("case state", &r.state))?,
            amount: Money::from_minor_units(r.amount_minor, currency(&r.currency)?),
            transfer_on: r.transfer_on,
            free_withdrawal_until: r.free_withdrawal_until,
            first_reminder_on: r.first_reminder_on,
            opened_at: instant(r.opened_at)?,
            withdrawal_confirmed: r.withdrawal_confirmed,
        })
    }
}

/// A case with the transfer key that opened it (`transfer_key, ` then [`CASE_COLUMNS`]).
#[derive(sqlx::FromRow)]
pub(super) struct KeyedCaseRow {
    pub(super) transfer_key: Option<String>,
    #[sqlx(flatten)]
    pub(super) case: CaseRow,
}

pub(super) const MESSAGE_COLUMNS: &str =
    "seq, id, creditor_id, case_id, kind, body, created_at, delivered_at, acknowledged_at";

#[derive(sqlx::FromRow)]
pub(super) struct MessageRow {
    seq: i64,
    id: String,
    creditor_id: String,
    case_id: String,
    kind: String,
    body: Json<serde_json::Value>,
    created_at: i64,
    delivered_at: Option<i64>,
    acknowledged_at: Option<i64>,
}

impl TryFrom<MessageRow> for PipelineMessage {
    type Error = StoreError;
    fn try_from(r: MessageRow) -> Result<Self, StoreError> {
        Ok(PipelineMessage {
            seq: r.seq,
            id: r.id,
            creditor_id: r.creditor_id.as_str().into(),
            case_id: r.case_id.as_str().into(),
            kind: r.kind,
            body: r.body.0,
            created_at: instant(r.created_at)?,
            delivered_at: r.delivered_at.map(instant).transpose()?,
            acknowledged_at: r.acknowledged_at.map(instant).transpose()?,
        })
    }
}

pub(super) fn collect<R, T>(rows: Vec<R>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

pub(super) const CUSTOMER_COLUMNS: &str = "id, connection_id, platform_id, kind, name, \
     organisation_number, national_id, email, postal_address, opt_out, platform_dunning";

#[derive(sqlx::FromRow)]
pub(super) struct CustomerRow {
    id: String,
    connection_id: String,
    platform_id: String,
    kind: String,
    name: String,
    organisation_number: Option<String>,
    national_id: Option<String>,
    email: Option<String>,
    postal_address: Option<Json<crate::domain::PostalAddress>>,
    opt_out: bool,
    platform_dunning: bool,
}

impl CustomerRow {
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    pub(super) fn opt_out(&self) -> bool {
        self.opt_out
    }

    pub(super) fn facts(&self) -> Result<crate::domain::CustomerFacts, StoreError> {
        Ok(crate::domain::CustomerFacts {
            platform_id: self.platform_id.clone(),
            kind: crate::domain::CustomerKind::parse(&self.kind)
                .ok_or_else(|| corrupt("customer kind", &self.kind))?,
            name: self.name.clone(),
            organisation_number: self.organisation_number.clone(),
            national_id: self.national_id.clone().map(crate::domain::NationalId),
            email: self.email.clone(),
            postal_address: self.postal_address.as_ref().map(|a| a.0.clone()),
            platform_dunning: self.platform_dunning,
        })
    }
}

impl TryFrom<CustomerRow> for crate::domain::Customer {
    type Error = StoreError;
    fn try_from(r: CustomerRow) -> Result<Self, StoreError> {
        Ok(crate::domain::Customer {
            id: r.id.as_str().into(),
            connection_id: r.connection_id.as_str().into(),
            facts: r.facts()?,
            opt_out: r.opt_out,
        })
    }
}
