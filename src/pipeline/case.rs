//! The collection pipeline's wire documents, in JSON.
//!
//! - [`OutboundMessage`]: what Forfall sends to the agency, an envelope
//!   `{"type", "id", "case_id", "sent_at", "data"}` around one of five messages ([`MessageKind`]);
//!   `case.transfer` carries the [`CaseV1`] document.
//! - [`AgencyEvent`]: what the agency sends back to `POST /pipeline/events`.
//!
//! Writing: dates are `YYYY-MM-DD`, amounts decimal strings with exactly two decimals (never a
//! JSON number), optional fields are left out when absent (except `dispute`, which is `null`
//! when there is none). Reading is strict and hand-written over [`serde_json::Value`], so that
//! every [`DocumentError`] names the field by its path (`data.amount`, `warnings[0].on`) and no
//! error repeats a value, which may be personal data: unknown fields, unknown `type`s, JSON
//! numbers for amounts and amounts with more than two decimals are all refused.
//!
//! `docs/pipeline.md` is the contract these types implement.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, SecondsFormat, SubsecRound, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::domain::{self, CustomerFacts, CustomerKind, InvoiceFacts, NationalId, PostalAddress};

/// The value of a `case.transfer` document's `schema` field.
pub const SCHEMA: &str = "case.v1";

/// Decimal places of every amount on the wire.
pub const AMOUNT_DECIMALS: u32 = 2;

/// The longest message id, case id or other identifier accepted, in characters (the same bound as
/// a Standard Webhooks `webhook-id`).
pub const MAX_ID_CHARS: usize = forfall_connector::standard_webhooks::MAX_ID_BYTES;

/// The longest free text (an objection's reason) accepted in an agency event, in characters.
pub const MAX_REASON_CHARS: usize = 2000;

/// Digits before the decimal point: up to 999 999 999 999 999.
const MAX_INTEGER_DIGITS: usize = 15;

/// The field name of an error about the document as a whole (not JSON, not an object).
pub const WHOLE_DOCUMENT: &str = "$";

/// A document that does not fit its format: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {problem}")]
pub struct DocumentError {
    /// The field's path, such as `data.amount` or `data.warnings[0].on`; [`WHOLE_DOCUMENT`]
    /// (`$`) when the document as a whole is wrong.
    pub field: String,
    /// What is wrong with it. Never repeats the value.
    pub problem: String,
}

impl DocumentError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> DocumentError {
        DocumentError {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The field as a JSON pointer (RFC 6901), for an RFC 9457 problem: `data.warnings[0].on` is
    /// `/data/warnings/0/on`, the whole document is the empty pointer.
    pub fn pointer(&self) -> String {
        if self.field == WHOLE_DOCUMENT {
            return String::new();
        }
        crate::json_path::pointer(&self.field)
    }
}

// ---------------------------------------------------------------------------------------------
// case.v1

/// The `case.v1` document: everything the agency needs to open a case. The `data` of a
/// `case.transfer` message. Written with `"schema": "case.v1"` first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "schema", rename = "case.v1")]
pub struct CaseV1 {
    /// Forfall's id of the case (`case_…`); the same in every message about the case.
    pub case_id: String,
    pub creditor: Creditor,
    pub debtor: Debtor,
    pub invoice: InvoiceDoc,
    /// The day the case was transferred (the creditor's civil date).
    pub transfer_on: NaiveDate,
    /// Until this day (inclusive) the creditor may withdraw the case free of charge.
    pub free_withdrawal_until: NaiveDate,
    /// The day the agency's first reminder is planned.
    pub first_reminder_on: NaiveDate,
    /// The warnings the creditor was given before the transfer, oldest first.
    pub warnings: Vec<Warning>,
    /// The debtor's objection known at transfer, `null` when there is none.
    pub dispute: Option<DisputeDoc>,
}

/// The creditor: the business owed the money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Creditor {
    pub name: String,
    /// Norwegian organisasjonsnummer, Swedish organisationsnummer or Finnish Y-tunnus.
    pub organisation_number: String,
    /// ISO 3166-1 alpha-2: `NO`, `SE` or `FI`.
    pub country: String,
}

/// The debtor: the creditor's customer. Its `Debug` shows the national id only redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Debtor {
    pub kind: CustomerKind,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organisation_number: Option<String>,
    /// Sent in full (the agency needs it to collect), never logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub national_id: Option<NationalId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_address: Option<PostalAddress>,
}

/// The invoice the case collects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceDoc {
    /// The invoice number the debtor sees.
    pub number: String,
    /// The accounting platform's id of the invoice.
    pub platform_id: String,
    pub issued: NaiveDate,
    pub due: NaiveDate,
    /// KID (NO), OCR (SE) or viitenumero (FI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_reference: Option<String>,
    /// ISO 4217.
    pub currency: String,
    /// The invoiced amount, VAT included.
    #[serde(serialize_with = "write_amount")]
    pub original_amount: Decimal,
    /// What is still unpaid of it at transfer.
    #[serde(serialize_with = "write_amount")]
    pub outstanding: Decimal,
}

/// Which warning the creditor was given before a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WarningKind {
    /// A notice about this one invoice.
    Notice,
    /// The invoice was on the creditor's weekly list of coming transfers.
    Listed,
}

impl WarningKind {
    /// The wire name: `notice` or `listed`.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::Notice => "notice",
            WarningKind::Listed => "listed",
        }
    }
}

/// A warning the creditor was given before the transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub kind: WarningKind,
    /// The day the warning was given.
    pub on: NaiveDate,
    /// The transfer day the warning announced.
    pub transfer_on: NaiveDate,
}

/// The debtor's objection: to the whole claim (`amount` absent) or to a part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisputeDoc {
    /// The disputed amount; absent when the debtor disputes the whole claim.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "write_optional_amount"
    )]
    pub amount: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opened_on: Option<NaiveDate>,
}

impl From<&domain::Creditor> for Creditor {
    fn from(creditor: &domain::Creditor) -> Creditor {
        Creditor {
            name: creditor.name.clone(),
            organisation_number: creditor.organisation_number.clone(),
            country: creditor.country.code().to_string(),
        }
    }
}

impl From<&CustomerFacts> for Debtor {
    /// Empty optional texts become absent fields.
    fn from(customer: &CustomerFacts) -> Debtor {
        Debtor {
            kind: customer.kind,
            name: customer.name.clone(),
            organisation_number: non_empty(customer.organisation_number.as_deref()),
            national_id: customer
                .national_id
                .as_ref()
                .filter(|id| !id.0.trim().is_empty())
                .cloned(),
            email: non_empty(customer.email.as_deref()),
            postal_address: customer.postal_address.clone(),
        }
    }
}

impl From<&InvoiceFacts> for InvoiceDoc {
    /// An empty payment reference becomes an absent field.
    fn from(invoice: &InvoiceFacts) -> InvoiceDoc {
        InvoiceDoc {
            number: invoice.number.clone(),
            platform_id: invoice.platform_id.clone(),
            issued: invoice.issued,
            due: invoice.due,
            payment_reference: non_empty(invoice.payment_reference.as_deref()),
            currency: invoice.currency.code().to_string(),
            original_amount: invoice.amount,
            outstanding: invoice.outstanding,
        }
    }
}

impl From<&domain::Dispute> for DisputeDoc {
    fn from(dispute: &domain::Dispute) -> DisputeDoc {
        DisputeDoc {
            amount: dispute.amount,
            opened_on: Some(dispute.opened_on),
        }
    }
}

fn non_empty(text: Option<&str>) -> Option<String> {
    text.filter(|text| !text.trim().is_empty())
        .map(str::to_string)
}

impl CaseV1 {
    /// The document of a case from the gateway's model. The invoice's `outstanding` is taken from
    /// `invoice` (what the platform last said), the dates from `case`.
    pub fn from_domain(
        case: &domain::Case,
        creditor: &domain::Creditor,
        customer: &CustomerFacts,
        invoice: &InvoiceFacts,
        warnings: Vec<Warning>,
        dispute: Option<&domain::Dispute>,
    ) -> CaseV1 {
        CaseV1 {
            case_id: case.id.0.clone(),
            creditor: Creditor::from(creditor),
            debtor: Debtor::from(customer),
            invoice: InvoiceDoc::from(invoice),
            transfer_on: case.transfer_on,
            free_withdrawal_until: case.free_withdrawal_until,
            first_reminder_on: case.first_reminder_on,
            warnings,
            dispute: dispute.map(DisputeDoc::from),
        }
    }

    /// The document as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a `case.v1` document strictly.
    pub fn from_json(value: &Value) -> Result<CaseV1, DocumentError> {
        parse_case_at(value, "")
    }
}

fn parse_case_at(value: &Value, path: &str) -> Result<CaseV1, DocumentError> {
    let doc = Obj::new(
        value,
        path,
        &[
            "schema",
            "case_id",
            "creditor",
            "debtor",
            "invoice",
            "transfer_on",
            "free_withdrawal_until",
            "first_reminder_on",
            "warnings",
            "dispute",
        ],
    )?;
    if doc.text("schema", 32)? != SCHEMA {
        return Err(doc.error("schema", format!("must be \"{SCHEMA}\"")));
    }
    let case_id = doc.text("case_id", MAX_ID_CHARS)?;

    let creditor = doc.object("creditor", &["name", "organisation_number", "country"])?;
    let creditor = Creditor {
        name: creditor.text("name", usize::MAX)?,
        organisation_number: creditor.text("organisation_number", usize::MAX)?,
        country: creditor.code("country", 2)?,
    };

    let debtor = doc.object(
        "debtor",
        &[
            "kind",
            "name",
            "organisation_number",
            "national_id",
            "email",
            "postal_address",
        ],
    )?;
    let kind_text = debtor.text("kind", 16)?;
    let kind = CustomerKind::parse(&kind_text)
        .ok_or_else(|| debtor.error("kind", "must be \"consumer\" or \"business\""))?;
    let postal_address = match debtor.optional("postal_address") {
        None => None,
        Some(_) => {
            let address = debtor.object(
                "postal_address",
                &["lines", "postal_code", "city", "country"],
            )?;
            let Value::Array(items) = address.required("lines")? else {
                return Err(address.error("lines", "must be an array of strings"));
            };
            let mut lines = Vec::with_capacity(items.len());
            for (index, line) in items.iter().enumerate() {
                let Value::String(line) = line else {
                    return Err(DocumentError::new(
                        format!("{}[{index}]", address.path("lines")),
                        "must be a string",
                    ));
                };
                lines.push(line.clone());
            }
            Some(PostalAddress {
                lines,
                postal_code: address.string("postal_code")?,
                city: address.string("city")?,
                country: address.string("country")?,
            })
        }
    };
    let debtor = Debtor {
        kind,
        name: debtor.text("name", usize::MAX)?,
        organisation_number: debtor.optional_text("organisation_number", usize::MAX)?,
        national_id: debtor
            .optional_text("national_id", usize::MAX)?
            .map(NationalId),
        email: debtor.optional_text("email", usize::MAX)?,
        postal_address,
    };

    let invoice = doc.object(
        "invoice",
        &[
            "number",
            "platform_id",
            "issued",
            "due",
            "payment_reference",
            "currency",
            "original_amount",
            "outstanding",
        ],
    )?;
    let invoice = InvoiceDoc {
        number: invoice.text("number", usize::MAX)?,
        platform_id: invoice.text("platform_id", usize::MAX)?,
        issued: invoice.date("issued")?,
        due: invoice.date("due")?,
        payment_reference: invoice.optional_text("payment_reference", usize::MAX)?,
        currency: invoice.code("currency", 3)?,
        original_amount: invoice.amount("original_amount", Sign::NotNegative)?,
        outstanding: invoice.amount("outstanding", Sign::NotNegative)?,
    };

    let Value::Array(items) = doc.required("warnings")? else {
        return Err(doc.error("warnings", "must be an array (empty when there were none)"));
    };
    let mut warnings = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let warning = Obj::new(
            item,
            &format!("{}[{index}]", doc.path("warnings")),
            &["kind", "on", "transfer_on"],
        )?;
        let kind = match warning.text("kind", 16)?.as_str() {
            "notice" => WarningKind::Notice,
            "listed" => WarningKind::Listed,
            _ => return Err(warning.error("kind", "must be \"notice\" or \"listed\"")),
        };
        warnings.push(Warning {
            kind,
            on: warning.date("on")?,
            transfer_on: warning.date("transfer_on")?,
        });
    }

    if !doc.present("dispute") {
        return Err(doc.error("dispute", "is required (null when there is no dispute)"));
    }
    let dispute = match doc.optional("dispute") {
        None => None,
        Some(_) => {
            let dispute = doc.object("dispute", &["amount", "opened_on"])?;
            Some(DisputeDoc {
                amount: dispute.optional_amount("amount", Sign::Positive)?,
                opened_on: dispute.optional_date("opened_on")?,
            })
        }
    };

    Ok(CaseV1 {
        case_id,
        creditor,
        debtor,
        invoice,
        transfer_on: doc.date("transfer_on")?,
        free_withdrawal_until: doc.date("free_withdrawal_until")?,
        first_reminder_on: doc.date("first_reminder_on")?,
        warnings,
        dispute,
    })
}

// ---------------------------------------------------------------------------------------------
// Outbound messages

/// Which message Forfall sends about a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// `case.transfer`: open the case (`data` is a [`CaseV1`]).
    Transfer,
    /// `case.withdraw`: stop collecting.
    Withdraw,
    /// `case.hold`: pause collection (the debtor disputes the claim).
    Hold,
    /// `case.release`: resume collection after a hold.
    Release,
    /// `case.paid_directly`: the debtor paid the creditor directly.
    PaidDirectly,
}

impl MessageKind {
    /// Every kind, in the order of a case's life.
    pub const ALL: [MessageKind; 5] = [
        MessageKind::Transfer,
        MessageKind::Withdraw,
        MessageKind::Hold,
        MessageKind::Release,
        MessageKind::PaidDirectly,
    ];

    /// The wire name: `case.transfer`, `case.withdraw`, `case.hold`, `case.release`,
    /// `case.paid_directly`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Transfer => "case.transfer",
            MessageKind::Withdraw => "case.withdraw",
            MessageKind::Hold => "case.hold",
            MessageKind::Release => "case.release",
            MessageKind::PaidDirectly => "case.paid_directly",
        }
    }

    /// The kind of a wire name.
    pub fn parse(name: &str) -> Option<MessageKind> {
        MessageKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message from Forfall to the agency: the body of every push (and of every message the agency
/// pulls). `id` is the idempotency key: the same on every retry of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub kind: MessageKind,
    /// The message id, sent as `webhook-id` and `Idempotency-Key` too.
    pub id: String,
    pub case_id: String,
    /// When Forfall issued the message, whole seconds.
    pub sent_at: DateTime<Utc>,
    /// The message's own fields (see [`MessageData`]); the constructors write it.
    pub data: Value,
}

/// The `data` of an outbound message, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageData {
    Transfer(Box<CaseV1>),
    Withdraw {
        /// The creditor pays the agency's costs (a withdrawal after the free window).
        charged: bool,
        /// Why: `stopped`, `paid_directly`, `credited`, `dispute_upheld_for_debtor`, …
        reason: String,
    },
    Hold {
        /// Why: `disputed`.
        reason: String,
    },
    Release,
    PaidDirectly {
        /// What the debtor paid the creditor.
        amount: Decimal,
        currency: String,
        /// What remains unpaid of the principal after it.
        outstanding: Decimal,
        /// The agency keeps the case open to collect its fees.
        keep_open: bool,
    },
}

impl MessageData {
    /// The message kind this data belongs to.
    pub fn kind(&self) -> MessageKind {
        match self {
            MessageData::Transfer(_) => MessageKind::Transfer,
            MessageData::Withdraw { .. } => MessageKind::Withdraw,
            MessageData::Hold { .. } => MessageKind::Hold,
            MessageData::Release => MessageKind::Release,
            MessageData::PaidDirectly { .. } => MessageKind::PaidDirectly,
        }
    }

    /// The `data` object as written.
    pub fn to_json(&self) -> Value {
        match self {
            MessageData::Transfer(case) => case.to_json(),
            MessageData::Withdraw { charged, reason } => {
                json!({ "charged": charged, "reason": reason })
            }
            MessageData::Hold { reason } => json!({ "reason": reason }),
            MessageData::Release => json!({}),
            MessageData::PaidDirectly {
                amount,
                currency,
                outstanding,
                keep_open,
            } => json!({
                "amount": amount_text(*amount),
                "currency": currency,
                "outstanding": amount_text(*outstanding),
                "keep_open": keep_open,
            }),
        }
    }

    /// Reads the `data` of a message of `kind` strictly; errors name fields from `data`.
    pub fn from_json(kind: MessageKind, data: &Value) -> Result<MessageData, DocumentError> {
        parse_data_at(kind, data, "data")
    }
}

fn parse_data_at(
    kind: MessageKind,
    data: &Value,
    path: &str,
) -> Result<MessageData, DocumentError> {
    Ok(match kind {
        MessageKind::Transfer => MessageData::Transfer(Box::new(parse_case_at(data, path)?)),
        MessageKind::Withdraw => {
            let fields = Obj::new(data, path, &["charged", "reason"])?;
            MessageData::Withdraw {
                charged: fields.flag("charged")?,
                reason: fields.text("reason", MAX_ID_CHARS)?,
            }
        }
        MessageKind::Hold => {
            let fields = Obj::new(data, path, &["reason"])?;
            MessageData::Hold {
                reason: fields.text("reason", MAX_ID_CHARS)?,
            }
        }
        MessageKind::Release => {
            Obj::new(data, path, &[])?;
            MessageData::Release
        }
        MessageKind::PaidDirectly => {
            let fields = Obj::new(
                data,
                path,
                &["amount", "currency", "outstanding", "keep_open"],
            )?;
            MessageData::PaidDirectly {
                amount: fields.amount("amount", Sign::Positive)?,
                currency: fields.code("currency", 3)?,
                outstanding: fields.amount("outstanding", Sign::NotNegative)?,
                keep_open: fields.flag("keep_open")?,
            }
        }
    })
}

impl OutboundMessage {
    /// A message of any kind; `sent_at` is cut to whole seconds.
    pub fn new(
        id: impl Into<String>,
        case_id: impl Into<String>,
        data: &MessageData,
        sent_at: DateTime<Utc>,
    ) -> OutboundMessage {
        OutboundMessage {
            kind: data.kind(),
            id: id.into(),
            case_id: case_id.into(),
            sent_at: sent_at.trunc_subsecs(0),
            data: data.to_json(),
        }
    }

    /// `case.transfer` of `case` (its `case_id` is the envelope's).
    pub fn transfer(
        id: impl Into<String>,
        case: &CaseV1,
        sent_at: DateTime<Utc>,
    ) -> OutboundMessage {
        OutboundMessage {
            kind: MessageKind::Transfer,
            id: id.into(),
            case_id: case.case_id.clone(),
            sent_at: sent_at.trunc_subsecs(0),
            data: case.to_json(),
        }
    }

    /// `case.withdraw`: stop collecting; `charged` says whether the creditor pays the agency's
    /// costs; `reason` is a token such as `stopped`, `paid_directly`, `credited`.
    pub fn withdraw(
        id: impl Into<String>,
        case_id: impl Into<String>,
        charged: bool,
        reason: &str,
        sent_at: DateTime<Utc>,
    ) -> OutboundMessage {
        let data = MessageData::Withdraw {
            charged,
            reason: reason.to_string(),
        };
        OutboundMessage::new(id, case_id, &data, sent_at)
    }

    /// `case.hold`: pause collection (`reason`: `disputed`).
    pub fn hold(
        id: impl Into<String>,
        case_id: impl Into<String>,
        reason: &str,
        sent_at: DateTime<Utc>,
    ) -> OutboundMessage {
        let data = MessageData::Hold {
            reason: reason.to_string(),
        };
        OutboundMessage::new(id, case_id, &data, sent_at)
    }

    /// `case.release`: resume collection after a hold.
    pub fn release(
        id: impl Into<String>,
        case_id: impl Into<String>,
        sent_at: DateTime<Utc>,
    ) -> OutboundMessage {
        OutboundMessage::new(id, case_id, &MessageData::Release, sent_at)
    }

    /// `case.paid_directly`: the debtor paid `amount` to the creditor directly, `outstanding` of
    /// the principal remains; `keep_open` asks the agency to keep the case open for its fees.
    pub fn paid_directly(
        id: impl Into<String>,
        case_id: impl Into<String>,
        amount: Decimal,
        currency: &str,
        outstanding: Decimal,
        keep_open: bool,
        sent_at: DateTime<Utc>,
    ) -> OutboundMessage {
        let data = MessageData::PaidDirectly {
            amount,
            currency: currency.to_string(),
            outstanding,
            keep_open,
        };
        OutboundMessage::new(id, case_id, &data, sent_at)
    }

    /// The envelope as JSON: `{"type", "id", "case_id", "sent_at", "data"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "type": self.kind.as_str(),
            "id": self.id,
            "case_id": self.case_id,
            "sent_at": self.sent_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "data": self.data,
        })
    }

    /// The envelope as JSON, taking the `data` along rather than copying it.
    pub fn into_json(self) -> Value {
        let mut envelope = Map::with_capacity(5);
        envelope.insert("type".into(), self.kind.as_str().into());
        envelope.insert("id".into(), self.id.into());
        envelope.insert("case_id".into(), self.case_id.into());
        envelope.insert(
            "sent_at".into(),
            self.sent_at
                .to_rfc3339_opts(SecondsFormat::Secs, true)
                .into(),
        );
        envelope.insert("data".into(), self.data);
        Value::Object(envelope)
    }

    /// The body of the push: the envelope, compact (the bytes of [`OutboundMessage::to_json`],
    /// written without building it).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Envelope<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            id: &'a str,
            case_id: &'a str,
            sent_at: String,
            data: &'a Value,
        }
        serde_json::to_vec(&Envelope {
            kind: self.kind.as_str(),
            id: &self.id,
            case_id: &self.case_id,
            sent_at: self.sent_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            data: &self.data,
        })
        .unwrap_or_default()
    }

    /// The `data`, typed.
    pub fn payload(&self) -> Result<MessageData, DocumentError> {
        parse_data_at(self.kind, &self.data, "data")
    }

    /// Reads a message body strictly (the agency's side, and the fake's): the envelope, and the
    /// `data` of its kind; a transfer's `data.case_id` must be the envelope's.
    pub fn parse(body: &[u8]) -> Result<OutboundMessage, DocumentError> {
        let value = json_body(body)?;
        let envelope = Obj::new(&value, "", &["type", "id", "case_id", "sent_at", "data"])?;
        let kind_text = envelope.text("type", 64)?;
        let kind = MessageKind::parse(&kind_text).ok_or_else(|| {
            envelope.error(
                "type",
                format!(
                    "must be one of {}",
                    MessageKind::ALL
                        .iter()
                        .map(|kind| format!("\"{kind}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        let id = envelope.text("id", MAX_ID_CHARS)?;
        let case_id = envelope.text("case_id", MAX_ID_CHARS)?;
        let sent_at = envelope.time("sent_at")?;
        let data = envelope.required("data")?;
        let payload = parse_data_at(kind, data, "data")?;
        if let MessageData::Transfer(case) = &payload
            && case.case_id != case_id
        {
            return Err(DocumentError::new(
                "data.case_id",
                "must equal the envelope's case_id",
            ));
        }
        Ok(OutboundMessage {
            kind,
            id,
            case_id,
            sent_at,
            data: payload.to_json(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Agency events

/// How the agency closed a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseOutcome {
    /// Collected in full.
    Paid,
    /// Given up: nothing more will be collected.
    WrittenOff,
}

impl CloseOutcome {
    /// The wire name: `paid` or `written_off`.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseOutcome::Paid => "paid",
            CloseOutcome::WrittenOff => "written_off",
        }
    }

    /// The outcome of a wire name.
    pub fn parse(name: &str) -> Option<CloseOutcome> {
        [CloseOutcome::Paid, CloseOutcome::WrittenOff]
            .into_iter()
            .find(|outcome| outcome.as_str() == name)
    }
}

/// An event the agency sends back about a case (`POST /pipeline/events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgencyEvent {
    /// `payment.received`: the agency collected `amount` from the debtor.
    PaymentReceived {
        case_id: String,
        amount: Decimal,
        currency: String,
        paid_on: NaiveDate,
    },
    /// `debtor.objected`: the debtor disputes `amount` (the whole claim when `None`).
    DebtorObjected {
        case_id: String,
        amount: Option<Decimal>,
        reason: Option<String>,
    },
    /// `case.closed`: the agency closed the case.
    CaseClosed {
        case_id: String,
        outcome: CloseOutcome,
    },
    /// `withdrawal.confirmed`: the agency stopped collecting after a `case.withdraw`.
    WithdrawalConfirmed { case_id: String },
}

/// `payment.received`.
pub const PAYMENT_RECEIVED: &str = "payment.received";
/// `debtor.objected`.
pub const DEBTOR_OBJECTED: &str = "debtor.objected";
/// `case.closed`.
pub const CASE_CLOSED: &str = "case.closed";
/// `withdrawal.confirmed`.
pub const WITHDRAWAL_CONFIRMED: &str = "withdrawal.confirmed";

impl AgencyEvent {
    /// The wire `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            AgencyEvent::PaymentReceived { .. } => PAYMENT_RECEIVED,
            AgencyEvent::DebtorObjected { .. } => DEBTOR_OBJECTED,
            AgencyEvent::CaseClosed { .. } => CASE_CLOSED,
            AgencyEvent::WithdrawalConfirmed { .. } => WITHDRAWAL_CONFIRMED,
        }
    }

    /// The case the event is about.
    pub fn case_id(&self) -> &str {
        match self {
            AgencyEvent::PaymentReceived { case_id, .. }
            | AgencyEvent::DebtorObjected { case_id, .. }
            | AgencyEvent::CaseClosed { case_id, .. }
            | AgencyEvent::WithdrawalConfirmed { case_id } => case_id,
        }
    }

    /// The event as the agency writes it: `{"type", "case_id", "data"}`.
    pub fn to_json(&self) -> Value {
        let data = match self {
            AgencyEvent::PaymentReceived {
                amount,
                currency,
                paid_on,
                ..
            } => json!({
                "amount": amount_text(*amount),
                "currency": currency,
                "paid_on": paid_on.format("%Y-%m-%d").to_string(),
            }),
            AgencyEvent::DebtorObjected { amount, reason, .. } => {
                let mut data = Map::new();
                if let Some(amount) = amount {
                    data.insert("amount".into(), Value::String(amount_text(*amount)));
                }
                if let Some(reason) = reason {
                    data.insert("reason".into(), Value::String(reason.clone()));
                }
                Value::Object(data)
            }
            AgencyEvent::CaseClosed { outcome, .. } => json!({ "outcome": outcome.as_str() }),
            AgencyEvent::WithdrawalConfirmed { .. } => json!({}),
        };
        json!({ "type": self.kind(), "case_id": self.case_id(), "data": data })
    }

    /// Reads an event body strictly: an unknown `type` or field, a missing or ill-typed field, an
    /// amount that is not a positive decimal string with at most two decimals, are errors naming
    /// the field (`data.amount`).
    pub fn parse(body: &[u8]) -> Result<AgencyEvent, DocumentError> {
        let value = json_body(body)?;
        let event = Obj::new(&value, "", &["type", "case_id", "data"])?;
        let kind = event.text("type", 64)?;
        let case_id = event.text("case_id", MAX_ID_CHARS)?;
        let data = event.required("data")?;
        Ok(match kind.as_str() {
            PAYMENT_RECEIVED => {
                let data = Obj::new(data, "data", &["amount", "currency", "paid_on"])?;
                AgencyEvent::PaymentReceived {
                    case_id,
                    amount: data.amount("amount", Sign::Positive)?,
                    currency: data.code("currency", 3)?,
                    paid_on: data.date("paid_on")?,
                }
            }
            DEBTOR_OBJECTED => {
                let data = Obj::new(data, "data", &["amount", "reason"])?;
                AgencyEvent::DebtorObjected {
                    case_id,
                    amount: data.optional_amount("amount", Sign::Positive)?,
                    reason: data.optional_free_text("reason", MAX_REASON_CHARS)?,
                }
            }
            CASE_CLOSED => {
                let data = Obj::new(data, "data", &["outcome"])?;
                let outcome = CloseOutcome::parse(&data.text("outcome", 32)?)
                    .ok_or_else(|| data.error("outcome", "must be \"paid\" or \"written_off\""))?;
                AgencyEvent::CaseClosed { case_id, outcome }
            }
            WITHDRAWAL_CONFIRMED => {
                Obj::new(data, "data", &[])?;
                AgencyEvent::WithdrawalConfirmed { case_id }
            }
            _ => {
                return Err(event.error(
                    "type",
                    format!(
                        "must be \"{PAYMENT_RECEIVED}\", \"{DEBTOR_OBJECTED}\", \"{CASE_CLOSED}\" or \"{WITHDRAWAL_CONFIRMED}\""
                    ),
                ));
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Writing and reading helpers

/// An amount as text with exactly two decimals (one with more is rounded half away from zero; the
/// gateway's amounts never have more).
pub fn amount_text(amount: Decimal) -> String {
    let mut rounded =
        amount.round_dp_with_strategy(AMOUNT_DECIMALS, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(AMOUNT_DECIMALS);
    rounded.to_string()
}

fn write_amount<S: Serializer>(amount: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&amount_text(*amount))
}

fn write_optional_amount<S: Serializer>(amount: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match amount {
        Some(amount) => s.serialize_str(&amount_text(*amount)),
        None => s.serialize_none(),
    }
}

fn json_body(body: &[u8]) -> Result<Value, DocumentError> {
    serde_json::from_slice(body).map_err(|e| {
        DocumentError::new(
            WHOLE_DOCUMENT,
            format!(
                "the body is not JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

/// What sign an amount may have.
#[derive(Clone, Copy)]
enum Sign {
    Positive,
    NotNegative,
}

/// The fields of one JSON object at `prefix`, checked against the names it may have.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
}

impl<'a> Obj<'a> {
    fn new(value: &'a Value, prefix: &str, known: &[&str]) -> Result<Obj<'a>, DocumentError> {
        let Value::Object(map) = value else {
            let field = if prefix.is_empty() {
                WHOLE_DOCUMENT
            } else {
                prefix
            };
            return Err(DocumentError::new(field, "must be a JSON object"));
        };
        let fields = Obj {
            map,
            prefix: prefix.to_string(),
        };
        if let Some(unknown) = map.keys().find(|key| !known.contains(&key.as_str())) {
            return Err(fields.error(unknown, "unknown field"));
        }
        Ok(fields)
    }

    fn path(&self, key: &str) -> String {
        crate::json_path::field(&self.prefix, key)
    }

    fn error(&self, key: &str, problem: impl Into<String>) -> DocumentError {
        DocumentError::new(self.path(key), problem)
    }

    /// The key is there, even as `null`.
    fn present(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// A field that may be absent; `null` counts as absent.
    fn optional(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|value| !value.is_null())
    }

    fn required(&self, key: &str) -> Result<&'a Value, DocumentError> {
        self.optional(key)
            .ok_or_else(|| self.error(key, "is required"))
    }

    fn object(&self, key: &str, known: &[&str]) -> Result<Obj<'a>, DocumentError> {
        Obj::new(self.required(key)?, &self.path(key), known)
    }

    /// Any string, empty allowed.
    fn string(&self, key: &str) -> Result<String, DocumentError> {
        match self.required(key)? {
            Value::String(text) => Ok(text.clone()),
            _ => Err(self.error(key, "must be a string")),
        }
    }

    /// A non-empty string of at most `max_chars` characters.
    fn text(&self, key: &str, max_chars: usize) -> Result<String, DocumentError> {
        let value = self.required(key)?;
        self.checked_text(key, value, max_chars, false)
    }

    fn optional_text(&self, key: &str, max_chars: usize) -> Result<Option<String>, DocumentError> {
        self.optional(key)
            .map(|value| self.checked_text(key, value, max_chars, false))
            .transpose()
    }

    /// Optional free text: line breaks and tabs allowed.
    fn optional_free_text(
        &self,
        key: &str,
        max_chars: usize,
    ) -> Result<Option<String>, DocumentError> {
        self.optional(key)
            .map(|value| self.checked_text(key, value, max_chars, true))
            .transpose()
    }

    fn checked_text(
        &self,
        key: &str,
        value: &Value,
        max_chars: usize,
        multiline: bool,
    ) -> Result<String, DocumentError> {
        let Value::String(text) = value else {
            return Err(self.error(key, "must be a string"));
        };
        if text.trim().is_empty() {
            return Err(self.error(key, "must not be empty (leave an optional field out)"));
        }
        if text.chars().count() > max_chars {
            return Err(self.error(key, format!("must be at most {max_chars} characters")));
        }
        // Identifiers, tokens and free text are checked for control characters; the texts of an
        // outbound document (unbounded) are the platform's, passed on as they are.
        let checked = multiline || max_chars <= MAX_ID_CHARS;
        let bad = |c: char| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'));
        if checked && text.chars().any(bad) {
            return Err(self.error(key, "must not contain control characters"));
        }
        Ok(text.clone())
    }

    /// `len` upper-case ASCII letters (an ISO 4217 currency, an ISO 3166-1 country).
    fn code(&self, key: &str, len: usize) -> Result<String, DocumentError> {
        let problem = if len == 3 {
            "must be an ISO 4217 code such as \"NOK\""
        } else {
            "must be an ISO 3166-1 alpha-2 code such as \"NO\""
        };
        match self.required(key)? {
            Value::String(text)
                if text.len() == len && text.bytes().all(|b| b.is_ascii_uppercase()) =>
            {
                Ok(text.clone())
            }
            _ => Err(self.error(key, problem)),
        }
    }

    fn flag(&self, key: &str) -> Result<bool, DocumentError> {
        match self.required(key)? {
            Value::Bool(flag) => Ok(*flag),
            _ => Err(self.error(key, "must be true or false")),
        }
    }

    fn date(&self, key: &str) -> Result<NaiveDate, DocumentError> {
        let value = self.required(key)?;
        self.date_value(key, value)
    }

    fn optional_date(&self, key: &str) -> Result<Option<NaiveDate>, DocumentError> {
        self.optional(key)
            .map(|value| self.date_value(key, value))
            .transpose()
    }

    fn date_value(&self, key: &str, value: &Value) -> Result<NaiveDate, DocumentError> {
        let shape = "must be a date as YYYY-MM-DD";
        let Value::String(text) = value else {
            return Err(self.error(key, shape));
        };
        let bytes = text.as_bytes();
        let shaped = bytes.len() == 10
            && bytes.iter().enumerate().all(|(i, b)| match i {
                4 | 7 => *b == b'-',
                _ => b.is_ascii_digit(),
            });
        if !shaped {
            return Err(self.error(key, shape));
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| self.error(key, "is not a calendar date"))
    }

    fn time(&self, key: &str) -> Result<DateTime<Utc>, DocumentError> {
        let problem = "must be an RFC 3339 time such as \"2026-11-28T05:00:00Z\"";
        let Value::String(text) = self.required(key)? else {
            return Err(self.error(key, problem));
        };
        DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(|_| self.error(key, problem))
    }

    fn amount(&self, key: &str, sign: Sign) -> Result<Decimal, DocumentError> {
        let value = self.required(key)?;
        self.amount_value(key, value, sign)
    }

    fn optional_amount(&self, key: &str, sign: Sign) -> Result<Option<Decimal>, DocumentError> {
        self.optional(key)
            .map(|value| self.amount_value(key, value, sign))
            .transpose()
    }

    fn amount_value(&self, key: &str, value: &Value, sign: Sign) -> Result<Decimal, DocumentError> {
        let shape = "must be a decimal string such as \"250.00\"";
        let text = match value {
            Value::String(text) => text,
            Value::Number(_) => {
                return Err(self.error(key, format!("{shape}, not a JSON number")));
            }
            _ => return Err(self.error(key, shape)),
        };
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.as_str()),
        };
        let (integer, fraction) = match unsigned.split_once('.') {
            Some((integer, fraction)) => (integer, Some(fraction)),
            None => (unsigned, None),
        };
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(integer) || fraction.is_some_and(|fraction| !digits(fraction)) {
            return Err(self.error(key, shape));
        }
        if fraction.is_some_and(|fraction| fraction.len() > AMOUNT_DECIMALS as usize) {
            return Err(self.error(
                key,
                format!("must have at most {AMOUNT_DECIMALS} decimal places"),
            ));
        }
        if integer.trim_start_matches('0').len() > MAX_INTEGER_DIGITS {
            return Err(self.error(key, "is too large"));
        }
        let amount = Decimal::from_str(text).map_err(|_| self.error(key, "is too large"))?;
        match sign {
            Sign::Positive if negative || amount <= Decimal::ZERO => {
                Err(self.error(key, "must be greater than zero"))
            }
            Sign::NotNegative if negative && !amount.is_zero() => {
                Err(self.error(key, "must not be negative"))
            }
            _ => Ok(amount.abs()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn case() -> CaseV1 {
        CaseV1 {
            case_id: "case_1".into(),
            creditor: Creditor {
                name: "Rørlegger Hansen AS".into(),
                organisation_number: "987654321".into(),
                country: "NO".into(),
            },
            debtor: Debtor {
                kind: CustomerKind::Consumer,
                name: "Kari Nordmann".into(),
                organisation_number: None,
                national_id: Some(NationalId("01017012345".into())),
                email: Some("kari@example.no".into()),
                postal_address: Some(PostalAddress {
                    lines: vec!["Storgata 1".into()],
                    postal_code: "0155".into(),
                    city: "Oslo".into(),
                    country: "NO".into(),
                }),
            },
            invoice: InvoiceDoc {
                number: "10023".into(),
                platform_id: "88213".into(),
                issued: date("2026-10-01"),
                due: date("2026-10-15"),
                payment_reference: Some("12345678903".into()),
                currency: "NOK".into(),
                original_amount: dec("1250"),
                outstanding: dec("1000.5"),
            },
            transfer_on: date("2026-11-28"),
            free_withdrawal_until: date("2026-12-12"),
            first_reminder_on: date("2026-12-03"),
            warnings: vec![Warning {
                kind: WarningKind::Notice,
                on: date("2026-11-14"),
                transfer_on: date("2026-11-28"),
            }],
            dispute: None,
        }
    }

    /// Changes a valid document into an invalid one.
    type Breakage = fn(&mut Value);

    fn event(value: Value) -> Result<AgencyEvent, DocumentError> {
        AgencyEvent::parse(value.to_string().as_bytes())
    }

    #[test]
    fn case_v1_is_written_with_schema_first_two_decimal_amounts_and_null_dispute() {
        let written = case().to_json();
        let keys: Vec<&String> = written.as_object().unwrap().keys().collect();
        assert_eq!(keys[0], "schema");
        assert_eq!(written["schema"], "case.v1");
        assert_eq!(written["invoice"]["original_amount"], "1250.00");
        assert_eq!(written["invoice"]["outstanding"], "1000.50");
        assert_eq!(written["transfer_on"], "2026-11-28");
        assert_eq!(written["warnings"][0]["kind"], "notice");
        assert_eq!(written["debtor"]["kind"], "consumer");
        assert_eq!(written["debtor"]["national_id"], "01017012345");
        assert!(written["dispute"].is_null());
        assert!(written.as_object().unwrap().contains_key("dispute"));
    }

    #[test]
    fn absent_optional_fields_are_left_out_not_null() {
        let mut case = case();
        case.debtor.national_id = None;
        case.debtor.email = None;
        case.debtor.postal_address = None;
        case.invoice.payment_reference = None;
        case.dispute = Some(DisputeDoc {
            amount: None,
            opened_on: None,
        });
        let written = case.to_json();
        let debtor = written["debtor"].as_object().unwrap();
        for absent in [
            "organisation_number",
            "national_id",
            "email",
            "postal_address",
        ] {
            assert!(!debtor.contains_key(absent), "{absent}");
        }
        assert!(
            !written["invoice"]
                .as_object()
                .unwrap()
                .contains_key("payment_reference")
        );
        assert_eq!(written["dispute"], json!({}));
    }

    #[test]
    fn a_transfer_round_trips_through_its_bytes() {
        let mut case = case();
        case.dispute = Some(DisputeDoc {
            amount: Some(dec("300")),
            opened_on: Some(date("2026-11-20")),
        });
        let message = OutboundMessage::transfer("msg_1", &case, at("2026-11-28T05:00:00.750Z"));
        assert_eq!(message.sent_at, at("2026-11-28T05:00:00Z"));
        let bytes = message.to_json_bytes();
        assert_eq!(bytes, serde_json::to_vec(&message.to_json()).unwrap());
        assert_eq!(message.clone().into_json(), message.to_json());
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(r#"{"type":"case.transfer","id":"msg_1","case_id":"case_1","sent_at":"2026-11-28T05:00:00Z","data":{"schema":"case.v1""#), "{text}");
        let read = OutboundMessage::parse(&bytes).unwrap();
        assert_eq!(read, message);
        assert_eq!(
            read.payload().unwrap(),
            MessageData::Transfer(Box::new(case))
        );
    }

    #[test]
    fn every_follow_up_round_trips_with_its_documented_data() {
        let sent = at("2026-12-01T08:00:00Z");
        let messages = [
            (
                OutboundMessage::withdraw("m1", "case_1", true, "stopped", sent),
                json!({"charged": true, "reason": "stopped"}),
            ),
            (
                OutboundMessage::hold("m2", "case_1", "disputed", sent),
                json!({"reason": "disputed"}),
            ),
            (OutboundMessage::release("m3", "case_1", sent), json!({})),
            (
                OutboundMessage::paid_directly(
                    "m4",
                    "case_1",
                    dec("500"),
                    "NOK",
                    Decimal::ZERO,
                    true,
                    sent,
                ),
                json!({"amount": "500.00", "currency": "NOK", "outstanding": "0.00", "keep_open": true}),
            ),
        ];
        for (message, data) in messages {
            assert_eq!(message.data, data, "{}", message.kind);
            // The pushed bytes, the kept body and the envelope are one document.
            let envelope = message.to_json();
            assert_eq!(
                message.to_json_bytes(),
                serde_json::to_vec(&envelope).unwrap()
            );
            assert_eq!(message.clone().into_json(), envelope);
            let read = OutboundMessage::parse(&message.to_json_bytes()).unwrap();
            assert_eq!(read, message);
            assert_eq!(read.payload().unwrap().kind(), message.kind);
        }
    }

    #[test]
    fn message_kinds_round_trip_through_their_names() {
        for kind in MessageKind::ALL {
            assert_eq!(MessageKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MessageKind::Transfer.as_str(), "case.transfer");
        assert_eq!(MessageKind::PaidDirectly.as_str(), "case.paid_directly");
        assert_eq!(MessageKind::parse("case.reopen"), None);
    }

    #[test]
    fn a_transfer_whose_case_id_differs_from_the_envelope_is_refused() {
        let message = OutboundMessage::transfer("m", &case(), at("2026-11-28T05:00:00Z"));
        let mut value = message.to_json();
        value["case_id"] = json!("case_2");
        let error = OutboundMessage::parse(value.to_string().as_bytes()).unwrap_err();
        assert_eq!(error.field, "data.case_id");
    }

    #[test]
    fn strict_message_parsing_names_the_field_at_fault() {
        let good = OutboundMessage::transfer("m", &case(), at("2026-11-28T05:00:00Z")).to_json();
        let cases: Vec<(Breakage, &str)> = vec![
            (|v| v["type"] = json!("case.reopen"), "type"),
            (|v| v["sent_at"] = json!("yesterday"), "sent_at"),
            (|v| v["data"]["schema"] = json!("case.v2"), "data.schema"),
            (
                |v| v["data"]["debtor"]["kind"] = json!("person"),
                "data.debtor.kind",
            ),
            (
                |v| v["data"]["invoice"]["outstanding"] = json!(1000.5),
                "data.invoice.outstanding",
            ),
            (
                |v| v["data"]["invoice"]["original_amount"] = json!("12.345"),
                "data.invoice.original_amount",
            ),
            (
                |v| v["data"]["warnings"][0]["on"] = json!("2026-02-30"),
                "data.warnings[0].on",
            ),
            (
                |v| v["data"]["debtor"]["postal_address"]["lines"][0] = json!(7),
                "data.debtor.postal_address.lines[0]",
            ),
            (|v| v["data"]["extra"] = json!(1), "data.extra"),
            (
                |v| {
                    v["data"].as_object_mut().unwrap().remove("dispute");
                },
                "data.dispute",
            ),
            (
                |v| v["data"]["invoice"]["currency"] = json!("nok"),
                "data.invoice.currency",
            ),
        ];
        for (break_it, field) in cases {
            let mut value = good.clone();
            break_it(&mut value);
            let error = OutboundMessage::parse(value.to_string().as_bytes()).unwrap_err();
            assert_eq!(error.field, field, "{error}");
        }
        assert_eq!(
            OutboundMessage::parse(b"not json").unwrap_err().field,
            WHOLE_DOCUMENT
        );
    }

    #[test]
    fn agency_events_round_trip_through_their_json() {
        let events = [
            AgencyEvent::PaymentReceived {
                case_id: "case_1".into(),
                amount: dec("250.00"),
                currency: "NOK".into(),
                paid_on: date("2026-12-02"),
            },
            AgencyEvent::DebtorObjected {
                case_id: "case_1".into(),
                amount: Some(dec("300.00")),
                reason: Some("The work was never done.\nSee e-mail.".into()),
            },
            AgencyEvent::DebtorObjected {
                case_id: "case_1".into(),
                amount: None,
                reason: None,
            },
            AgencyEvent::CaseClosed {
                case_id: "case_1".into(),
                outcome: CloseOutcome::WrittenOff,
            },
            AgencyEvent::WithdrawalConfirmed {
                case_id: "case_1".into(),
            },
        ];
        for original in events {
            let read = AgencyEvent::parse(original.to_json().to_string().as_bytes()).unwrap();
            assert_eq!(read, original);
            assert_eq!(read.case_id(), "case_1");
        }
    }

    #[test]
    fn an_event_amount_is_written_with_two_decimals_and_an_objection_without_amount_omits_it() {
        let payment = AgencyEvent::PaymentReceived {
            case_id: "c".into(),
            amount: dec("250"),
            currency: "NOK".into(),
            paid_on: date("2026-12-02"),
        };
        assert_eq!(payment.to_json()["data"]["amount"], "250.00");
        let objection = AgencyEvent::DebtorObjected {
            case_id: "c".into(),
            amount: None,
            reason: None,
        };
        assert_eq!(objection.to_json()["data"], json!({}));
    }

    #[test]
    fn an_unknown_event_type_is_refused_naming_type() {
        let error =
            event(json!({"type": "payment.refunded", "case_id": "c", "data": {}})).unwrap_err();
        assert_eq!(error.field, "type");
        assert!(error.to_string().starts_with("`type`: must be"), "{error}");
    }

    #[test]
    fn event_amounts_must_be_positive_decimal_strings_with_at_most_two_decimals() {
        let payment = |amount: Value| {
            event(json!({"type": "payment.received", "case_id": "c",
                "data": {"amount": amount, "currency": "NOK", "paid_on": "2026-12-02"}}))
        };
        for bad in [
            json!("0.00"),
            json!("-5.00"),
            json!("1.005"),
            json!(250),
            json!("1e3"),
            json!(""),
        ] {
            let error = payment(bad.clone()).unwrap_err();
            assert_eq!(error.field, "data.amount", "{bad}: {error}");
        }
        assert!(payment(json!("250")).is_ok());
        assert!(payment(json!("0.5")).is_ok());
        let objection = event(json!({"type": "debtor.objected", "case_id": "c",
            "data": {"amount": "0"}}))
        .unwrap_err();
        assert_eq!(objection.field, "data.amount");
    }

    #[test]
    fn missing_or_ill_typed_event_fields_are_named_by_path() {
        let cases = [
            (
                json!({"type": "payment.received", "case_id": "c", "data": {"amount": "1.00", "currency": "NOK"}}),
                "data.paid_on",
            ),
            (
                json!({"type": "payment.received", "case_id": "c", "data": {"amount": "1.00", "currency": 5, "paid_on": "2026-12-02"}}),
                "data.currency",
            ),
            (
                json!({"type": "case.closed", "case_id": "c", "data": {"outcome": "settled"}}),
                "data.outcome",
            ),
            (json!({"type": "case.closed", "case_id": "c"}), "data"),
            (
                json!({"type": "case.closed", "data": {"outcome": "paid"}}),
                "case_id",
            ),
            (
                json!({"type": "withdrawal.confirmed", "case_id": "c", "data": {"note": "x"}}),
                "data.note",
            ),
            (
                json!({"type": "debtor.objected", "case_id": "c", "data": {"reason": 3}}),
                "data.reason",
            ),
            (
                json!({"type": "debtor.objected", "case_id": "c", "data": [], }),
                "data",
            ),
            (json!(["not", "an", "object"]), WHOLE_DOCUMENT),
        ];
        for (value, field) in cases {
            let error = event(value.clone()).unwrap_err();
            assert_eq!(error.field, field, "{value}: {error}");
        }
    }

    #[test]
    fn errors_never_repeat_the_value_at_fault() {
        let error = event(json!({"type": "payment.received", "case_id": "c",
            "data": {"amount": "01017012345.123", "currency": "NOK", "paid_on": "2026-12-02"}}))
        .unwrap_err();
        assert!(!error.to_string().contains("01017012345"), "{error}");
    }

    #[test]
    fn a_document_error_displays_and_points_at_its_field() {
        let error = DocumentError::new("data.warnings[0].on", "is not a calendar date");
        assert_eq!(
            error.to_string(),
            "`data.warnings[0].on`: is not a calendar date"
        );
        assert_eq!(error.pointer(), "/data/warnings/0/on");
        assert_eq!(DocumentError::new(WHOLE_DOCUMENT, "x").pointer(), "");
    }

    #[test]
    fn a_debtor_from_customer_facts_drops_empty_optional_texts() {
        let facts = CustomerFacts {
            platform_id: "C1".into(),
            kind: CustomerKind::Business,
            name: "Bygg AS".into(),
            organisation_number: Some("912345678".into()),
            national_id: None,
            email: Some("  ".into()),
            postal_address: None,
            platform_dunning: false,
        };
        let debtor = Debtor::from(&facts);
        assert_eq!(debtor.organisation_number.as_deref(), Some("912345678"));
        assert_eq!(debtor.email, None);
    }

    #[test]
    fn debug_output_of_a_case_never_shows_the_national_id() {
        let shown = format!("{:?}", case());
        assert!(!shown.contains("0101701"), "{shown}");
    }
}
