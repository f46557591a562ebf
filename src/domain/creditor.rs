use std::fmt;
use std::str::FromStr;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::ids::{CreditorId, PartnerId};
use super::money::Currency;

/// The countries whose law Forfall knows (see the README's "Policies and simulation").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Country {
    #[serde(rename = "NO")]
    Norway,
    #[serde(rename = "SE")]
    Sweden,
    #[serde(rename = "FI")]
    Finland,
}

impl Country {
    pub fn code(self) -> &'static str {
        match self {
            Country::Norway => "NO",
            Country::Sweden => "SE",
            Country::Finland => "FI",
        }
    }

    pub fn currency(self) -> Currency {
        match self {
            Country::Norway => Currency::NOK,
            Country::Sweden => Currency::SEK,
            Country::Finland => Currency::EUR,
        }
    }

    /// In English, for messages ("no Norwegian forsinkelsesrente for …").
    pub fn adjective(self) -> &'static str {
        match self {
            Country::Norway => "Norwegian",
            Country::Sweden => "Swedish",
            Country::Finland => "Finnish",
        }
    }

    /// The time zone a creditor of this country gets unless it chooses another.
    pub fn default_time_zone(self) -> Tz {
        match self {
            Country::Norway => chrono_tz::Europe::Oslo,
            Country::Sweden => chrono_tz::Europe::Stockholm,
            Country::Finland => chrono_tz::Europe::Helsinki,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a country Forfall supports (NO, SE or FI)")]
pub struct UnknownCountry(pub String);

impl FromStr for Country {
    type Err = UnknownCountry;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "NO" => Ok(Country::Norway),
            "SE" => Ok(Country::Sweden),
            "FI" => Ok(Country::Finland),
            other => Err(UnknownCountry(other.to_owned())),
        }
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The language of a creditor's e-mails and texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Nb,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Nb => "nb",
            Language::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Language> {
        [Language::Nb, Language::En]
            .into_iter()
            .find(|language| language.as_str() == s)
    }
}

/// The business that issued the invoices: Forfall's tenant. All its data is reached through its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Creditor {
    pub id: CreditorId,
    pub name: String,
    /// Norwegian organisasjonsnummer, Swedish organisationsnummer or Finnish Y-tunnus.
    pub organisation_number: String,
    pub country: Country,
    /// Civil dates that carry law (due, transfer) are computed in this zone.
    #[serde(with = "tz_name")]
    pub time_zone: Tz,
    pub language: Language,
    /// The creditor's collection policy as given (validated by the lifecycle rules).
    pub policy: serde_json::Value,
    /// Where the creditor's e-mails (warnings, transfer notices, alerts) go; none: no e-mail.
    pub email: Option<String>,
    /// The last civil day the day tick has run for this creditor.
    pub ticked_through: Option<chrono::NaiveDate>,
    /// The partner that created the creditor and whose API keys reach it; none: only the
    /// creditor's own keys do.
    pub partner_id: Option<PartnerId>,
}

/// What is needed to register a creditor.
#[derive(Debug, Clone)]
pub struct NewCreditor {
    pub name: String,
    pub organisation_number: String,
    pub country: Country,
    pub time_zone: Option<Tz>,
    pub language: Language,
    pub policy: serde_json::Value,
    pub email: Option<String>,
    /// The partner serving this creditor (see [`Creditor::partner_id`]).
    pub partner_id: Option<PartnerId>,
}

pub(crate) mod tz_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse()
            .map_err(|_| serde::de::Error::custom(format!("unknown time zone `{name}`")))
    }
}
