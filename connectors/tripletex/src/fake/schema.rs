//! The object schemas the fake renders, and Tripletex's `fields=` filter: a small recursive parser
//! and its compilation against a schema.
//!
//! Grammar (whitespace around tokens is ignored, empty items such as `a,,b` are skipped):
//!
//! ```text
//! list := item ( ',' item )*
//! item := '*' | name [ '(' list ')' ]
//! name := [A-Za-z0-9_]+
//! ```
//!
//! `*` selects every field of the object except `changes` (which Tripletex only sends when asked
//! for explicitly); a nested object or array that is selected without parentheses is rendered as
//! references `{"id", "url"}`; `name(…)` applies the inner list to the nested object, or to each
//! element of the array. The same name given twice merges the two inner lists.

/// The object types the fake knows. `Ref` stands for every type the excerpt of the spec omits
/// (Employee, Order, Department, …): such objects only have `id`, `version` and `url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Invoice,
    Customer,
    Address,
    Country,
    Currency,
    Posting,
    Voucher,
    CloseGroup,
    Reminder,
    InvoiceRemark,
    Account,
    VatType,
    PaymentType,
    Change,
    Subscription,
    Ref,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Scalar,
    Obj(Ty),
    Arr(Ty),
}

#[derive(Debug)]
pub(crate) struct FieldDef {
    pub name: &'static str,
    pub kind: Kind,
    /// Selected by `*`.
    pub star: bool,
}

const fn s(name: &'static str) -> FieldDef {
    FieldDef {
        name,
        kind: Kind::Scalar,
        star: true,
    }
}

const fn o(name: &'static str, ty: Ty) -> FieldDef {
    FieldDef {
        name,
        kind: Kind::Obj(ty),
        star: true,
    }
}

const fn a(name: &'static str, ty: Ty) -> FieldDef {
    FieldDef {
        name,
        kind: Kind::Arr(ty),
        star: true,
    }
}

/// `changes` is only rendered when asked for by name.
const CHANGES: FieldDef = FieldDef {
    name: "changes",
    kind: Kind::Arr(Ty::Change),
    star: false,
};

static INVOICE: &[FieldDef] = &[
    s("id"),
    s("version"),
    CHANGES,
    s("url"),
    s("invoiceNumber"),
    s("invoiceDate"),
    o("customer", Ty::Customer),
    s("creditedInvoice"),
    s("isCredited"),
    s("invoiceDueDate"),
    s("kid"),
    s("invoiceComment"),
    s("comment"),
    a("orders", Ty::Ref),
    a("orderLines", Ty::Ref),
    a("travelReports", Ty::Ref),
    a("projectInvoiceDetails", Ty::Ref),
    o("voucher", Ty::Voucher),
    s("deliveryDate"),
    s("amount"),
    s("amountCurrency"),
    s("amountExcludingVat"),
    s("amountExcludingVatCurrency"),
    s("amountRoundoff"),
    s("amountRoundoffCurrency"),
    s("amountOutstanding"),
    s("amountCurrencyOutstanding"),
    s("amountOutstandingTotal"),
    s("amountCurrencyOutstandingTotal"),
    s("sumRemits"),
    o("currency", Ty::Currency),
    s("isCreditNote"),
    s("isCharged"),
    s("isApproved"),
    a("postings", Ty::Posting),
    a("reminders", Ty::Reminder),
    s("invoiceRemarks"),
    o("invoiceRemark", Ty::InvoiceRemark),
    s("paymentTypeId"),
    s("paidAmount"),
    s("isPeriodizationPossible"),
    s("documentId"),
    s("ehfSendStatus"),
];

static CUSTOMER: &[FieldDef] = &[
    s("id"),
    s("version"),
    CHANGES,
    s("url"),
    s("name"),
    s("organizationNumber"),
    s("globalLocationNumber"),
    s("supplierNumber"),
    s("customerNumber"),
    s("isSupplier"),
    s("isCustomer"),
    s("isInactive"),
    o("accountManager", Ty::Ref),
    o("department", Ty::Ref),
    s("email"),
    s("invoiceEmail"),
    s("overdueNoticeEmail"),
    s("bankAccounts"),
    s("phoneNumber"),
    s("phoneNumberMobile"),
    s("description"),
    s("language"),
    s("displayName"),
    s("isPrivateIndividual"),
    s("singleCustomerInvoice"),
    s("invoiceSendMethod"),
    s("emailAttachmentType"),
    o("postalAddress", Ty::Address),
    o("physicalAddress", Ty::Address),
    o("deliveryAddress", Ty::Ref),
    o("category1", Ty::Ref),
    o("category2", Ty::Ref),
    o("category3", Ty::Ref),
    s("invoicesDueIn"),
    s("invoicesDueInType"),
    o("currency", Ty::Currency),
    a("bankAccountPresentation", Ty::Ref),
    o("ledgerAccount", Ty::Account),
    s("isFactoring"),
    s("invoiceSendSMSNotification"),
    s("invoiceSMSNotificationNumber"),
    s("isAutomaticSoftReminderEnabled"),
    s("isAutomaticReminderEnabled"),
    s("isAutomaticNoticeOfDebtCollectionEnabled"),
    s("discountPercentage"),
    s("website"),
];

static ADDRESS: &[FieldDef] = &[
    s("id"),
    s("version"),
    CHANGES,
    s("url"),
    s("addressLine1"),
    s("addressLine2"),
    s("postalCode"),
    s("city"),
    o("country", Ty::Country),
    s("displayName"),
    s("addressAsString"),
    s("displayNameInklMatrikkel"),
    s("knr"),
    s("gnr"),
    s("bnr"),
    s("fnr"),
    s("snr"),
    s("unitNumber"),
];

static COUNTRY: &[FieldDef] = &[
    s("id"),
    s("version"),
    CHANGES,
    s("url"),
    s("name"),
    s("displayName"),
    s("isoAlpha2Code"),
    s("isoAlpha3Code"),
    s("isoNumericCode"),
];

static CURRENCY: &[FieldDef] = &[
    s("id"),
    s("version"),
    CHANGES,
    s("url"),
    s("code"),
    s("description"),
    s("factor"),
    s("displayName"),
    s("isDisabled"),
];

static POSTING: &[FieldDef] = &[
    s("id"),
    s("version"),
    CHANGES,
    s("url"),
    o("voucher", Ty::Voucher),
    s("date"),
    s("description"),
    o("account", Ty::Account),
    o("amortizationAccount", Ty::Account),
    s("amortizationStartDate"),
    s("amortizationEndDate"),
    o("customer", Ty::Customer),
    o("supplier", Ty::Ref),
    o("employee", Ty::Ref),
    o("project", Ty::Ref),
    o("product", Ty::Ref),
    o("department", Ty::Ref),
    o("vatType", Ty::VatType),
    s("amount"),
    s("amountCurrency"),
    s("amountGross"),
    s("amountGrossCurrency"),
    o("currency", Ty::Currency),
    o("closeGroup", Ty::CloseGroup),
    s("invoiceNumber"),
    s("termOfPayment"),
    s("row"),
    s("type"),
    s("externalRef"),
    s("systemGenerated"),
    s("taxTransactionType"),
    s("taxTransactionTypeId"),
    s("matched"),
    s("quantityAmount1"),
    o("quantityType1", Ty::Ref),
    s("quantityAmount2"),
    o("quantityType2", Ty::Ref),
    s("isVatReadonly"),
    s("isAmountVatClosed"),
    s("postingRuleId"),
];

static VOUCHER: &[FieldDef] = &[
    s("id"),
    s("version"),
    CHANGES,
    s("url"),
    s("date"),
    s("number"),
    s("tempNumber"),
    s("year"),
    s("description"),
    o("voucherType", Ty::Ref),
    a("postings", Ty::Posting),
    o("document", Ty::Ref),
    o("attachment", Ty::Ref),
];

static CLOSE_GROUP: &[FieldDef] = &[
    s("id"),
    s("version"),
    CHANGES,
    s("url"),
    s("date"),
    a("postings", Ty::Posting),
];

static REMINDER: &[FieldDef] = &[
    s("id"),
    s("version"),
    CHANGES,
    s("url"),
    s("reminderDate"),
    s("charge"),
    s("chargeCurrency"),
    s("totalCharge"),
    s("totalChargeCurrency"),
    s("totalAmountCurrency"),
    s("interests"),
    s("interestRate"),
    s("termOfPayment"),
    o("currency", Ty::Currency),
    s("type"),
    s("comment"),
    s("kid"),
    s("bankAccountNumber"),
    s("bankAccountIBAN"),
    s("bankAccountSWIFT"),
    s("bank"),
];

static INVOICE_REMARK: &[FieldDef] = &[
    s("id"),
    s("version"),
    CHANGES,
    s("url"),
    s("description"),
    s("postponeRemindersTo"),
];

static ACCOUNT: &[FieldDef] = &[
    s("id"),
    s("version"),
    CHANGES,
    s("url"),
    s("number"),
    s("name"),
    s("description"),
    s("type"),
];

static VAT_TYPE: &[FieldDef] = &[
    s("id"),
    s("version"),
    CHANGES,
    s("url"),
    s("name"),
    s("number"),
    s("percentage"),
];

static PAYMENT_TYPE: &[FieldDef] = &[
    s("id"),
    s("version"),
    CHANGES,
    s("url"),
    s("description"),
    s("displayName"),
    o("debitAccount", Ty::Account),
    o("creditAccount", Ty::Account),
    o("vatType", Ty::VatType),
    s("sequence"),
    o("customer", Ty::Customer),
    o("supplier", Ty::Ref),
    s("currencyId"),
    s("currencyCode"),
];

static CHANGE: &[FieldDef] = &[s("employeeId"), s("timestamp"), s("changeType")];

static SUBSCRIPTION: &[FieldDef] = &[
    s("id"),
    s("version"),
    CHANGES,
    s("url"),
    s("event"),
    s("targetUrl"),
    s("fields"),
    s("status"),
    s("authHeaderName"),
    s("authHeaderValue"),
    s("hmacSharedSecret"),
];

static REF: &[FieldDef] = &[s("id"), s("version"), s("url")];

pub(crate) fn schema(ty: Ty) -> &'static [FieldDef] {
    match ty {
        Ty::Invoice => INVOICE,
        Ty::Customer => CUSTOMER,
        Ty::Address => ADDRESS,
        Ty::Country => COUNTRY,
        Ty::Currency => CURRENCY,
        Ty::Posting => POSTING,
        Ty::Voucher => VOUCHER,
        Ty::CloseGroup => CLOSE_GROUP,
        Ty::Reminder => REMINDER,
        Ty::InvoiceRemark => INVOICE_REMARK,
        Ty::Account => ACCOUNT,
        Ty::VatType => VAT_TYPE,
        Ty::PaymentType => PAYMENT_TYPE,
        Ty::Change => CHANGE,
        Ty::Subscription => SUBSCRIPTION,
        Ty::Ref => REF,
    }
}

/// A parsed `fields` list, not yet checked against a schema.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub star: bool,
    pub items: Vec<(String, Option<Node>)>,
}

/// How deep `a(b(c(…)))` may nest before the filter is refused.
const MAX_DEPTH: usize = 16;

/// Parses a `fields` value. An empty value means `*`. The error is the offending text, for the
/// message "Illegal field in fields filter: …".
pub(crate) fn parse(input: &str) -> Result<Node, String> {
    if input.trim().is_empty() {
        return Ok(Node {
            star: true,
            items: Vec::new(),
        });
    }
    let mut p = Parser {
        s: input.as_bytes(),
        input,
        pos: 0,
    };
    let node = p.list(0)?;
    p.ws();
    if p.pos < p.s.len() {
        return Err(p.rest());
    }
    Ok(node)
}

struct Parser<'a> {
    s: &'a [u8],
    input: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// The unparsed rest (at most 40 characters), for error messages.
    fn rest(&self) -> String {
        self.input
            .get(self.pos..)
            .unwrap_or("")
            .chars()
            .take(40)
            .collect()
    }

    /// Items until `)` or the end; the caller consumes the `)`.
    fn list(&mut self, depth: usize) -> Result<Node, String> {
        if depth > MAX_DEPTH {
            return Err(self.rest());
        }
        let mut node = Node::default();
        loop {
            self.ws();
            match self.peek() {
                None | Some(b')') => return Ok(node),
                Some(b',') => {
                    self.pos += 1;
                    continue;
                }
                Some(b'*') => {
                    self.pos += 1;
                    node.star = true;
                }
                Some(c) if c.is_ascii_alphanumeric() || c == b'_' => {
                    let start = self.pos;
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                    {
                        self.pos += 1;
                    }
                    let name = self.input.get(start..self.pos).unwrap_or("").to_string();
                    self.ws();
                    let sub = if self.peek() == Some(b'(') {
                        self.pos += 1;
                        let inner = self.list(depth + 1)?;
                        self.ws();
                        if self.peek() != Some(b')') {
                            return Err(format!("{name}({}", self.rest()));
                        }
                        self.pos += 1;
                        Some(inner)
                    } else {
                        None
                    };
                    node.items.push((name, sub));
                }
                Some(_) => return Err(self.rest()),
            }
            self.ws();
            match self.peek() {
                None | Some(b')') => return Ok(node),
                Some(b',') => self.pos += 1,
                Some(_) => return Err(self.rest()),
            }
        }
    }
}

/// A `fields` filter checked against a schema: the selected fields in schema order (indices into
/// [`schema`]), each with the selection of its nested object, `None` for the default rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sel {
    pub fields: Vec<(usize, Option<Sel>)>,
}

/// Checks `node` against the schema of `ty`. The error is the first illegal field name.
pub(crate) fn compile(node: &Node, ty: Ty) -> Result<Sel, String> {
    compile_all(&[node], ty)
}

fn compile_all(nodes: &[&Node], ty: Ty) -> Result<Sel, String> {
    let defs = schema(ty);
    for node in nodes {
        for (name, _) in &node.items {
            if !defs.iter().any(|d| d.name == name) {
                return Err(name.clone());
            }
        }
    }
    let star = nodes.iter().any(|n| n.star);
    let empty = nodes.iter().all(|n| !n.star && n.items.is_empty());
    let mut fields = Vec::new();
    for (index, def) in defs.iter().enumerate() {
        let mut named = false;
        let mut subs: Vec<&Node> = Vec::new();
        for node in nodes {
            for (name, sub) in &node.items {
                if name == def.name {
                    named = true;
                    // `name()` selects like `name`.
                    if let Some(sub) = sub.as_ref().filter(|s| s.star || !s.items.is_empty()) {
                        subs.push(sub);
                    }
                }
            }
        }
        if !(named || (star || empty) && def.star) {
            continue;
        }
        let sub = if subs.is_empty() {
            None
        } else {
            match def.kind {
                Kind::Scalar => return Err(def.name.to_string()),
                Kind::Obj(inner) | Kind::Arr(inner) => Some(compile_all(&subs, inner)?),
            }
        };
        fields.push((index, sub));
    }
    Ok(Sel { fields })
}

/// `*` for `ty`.
pub(crate) fn star(ty: Ty) -> Sel {
    let node = Node {
        star: true,
        items: Vec::new(),
    };
    // `*` names no field, so it always compiles.
    compile(&node, ty).unwrap_or(Sel { fields: Vec::new() })
}

/// Parses and compiles a `fields` value for `ty`.
pub(crate) fn selection(fields: &str, ty: Ty) -> Result<Sel, String> {
    compile(&parse(fields)?, ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sel: &Sel, ty: Ty) -> Vec<&'static str> {
        sel.fields
            .iter()
            .map(|(i, _)| schema(ty)[*i].name)
            .collect()
    }

    #[test]
    fn star_leaves_out_changes() {
        let sel = star(Ty::CloseGroup);
        assert_eq!(
            names(&sel, Ty::CloseGroup),
            ["id", "version", "url", "date", "postings"]
        );
    }

    #[test]
    fn explicit_nested_fields_come_back_in_schema_order() {
        let sel = selection(
            " customer(name , id, postalAddress(*)),id,currency(code)",
            Ty::Invoice,
        )
        .unwrap();
        assert_eq!(names(&sel, Ty::Invoice), ["id", "customer", "currency"]);
        let customer = sel.fields[1].1.as_ref().unwrap();
        assert_eq!(
            names(customer, Ty::Customer),
            ["id", "name", "postalAddress"]
        );
    }

    #[test]
    fn same_field_twice_merges() {
        let sel = selection("customer(id),customer(name)", Ty::Invoice).unwrap();
        let customer = sel.fields[0].1.as_ref().unwrap();
        assert_eq!(names(customer, Ty::Customer), ["id", "name"]);
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        for bad in [
            "customer(",
            "customer(id",
            "id)",
            "a b",
            "id;name",
            "((((",
            "é",
            "customer(id))",
            "amount(x)",
            "customer(nope)",
            "nope",
            "*(id)",
        ] {
            assert!(selection(bad, Ty::Invoice).is_err(), "{bad}");
        }
        let deep = "customer(".repeat(100);
        assert!(selection(&deep, Ty::Invoice).is_err());
    }

    #[test]
    fn unknown_nested_field_is_named() {
        assert_eq!(
            selection("id,customer(name,shoeSize)", Ty::Invoice),
            Err("shoeSize".to_string())
        );
    }

    #[test]
    fn empty_means_star() {
        assert_eq!(selection("", Ty::Currency).unwrap(), star(Ty::Currency));
        assert_eq!(selection("  ", Ty::Currency).unwrap(), star(Ty::Currency));
    }
}
