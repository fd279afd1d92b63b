//! A rule as operators write it (TOML or JSON, same keys), and its
//! validation.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One alert rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Event types it listens to (`assignee_change`, `status`, ...; `*` for
    /// every type).
    pub on: Vec<String>,
    /// Conditions that must all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub all: Vec<ConditionDef>,
    /// Conditions of which one must hold, when there are any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<ConditionDef>,
    /// Recipients: addresses or handlebars expressions such as
    /// `{{payload.to.email}}`.
    pub to: Vec<String>,
    /// The email template (`handover`, `status_change`, `generic`, or one
    /// of the templates folder).
    pub template: String,
    /// At most one email per (rule, conversation, recipient) in this window,
    /// e.g. `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<String>,
    /// Compare strings case-sensitively (default: not).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub case_sensitive: bool,
    /// Let recipients come from data a visitor controls (visitor
    /// variables, form answers, message text, a visitor's own email).
    /// Refused unless set: such a rule lets anyone who can chat with the bot
    /// choose where hookline sends mail.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_visitor_recipients: bool,
}

fn yes() -> bool {
    true
}

/// `{field, op, value}`, and `all_items = true` when a list field
/// (`payload.labels[*].id`) must hold for every item rather than one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionDef {
    pub field: String,
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_items: bool,
}

/// A rule that failed validation: which rule and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule:?}: {problem}")]
pub struct RuleError {
    pub rule: String,
    pub problem: String,
}

impl RuleError {
    pub fn new(rule: &str, problem: impl Into<String>) -> RuleError {
        RuleError {
            rule: rule.to_owned(),
            problem: problem.into(),
        }
    }
}

/// The roots a condition's field path may start with.
pub const FIELD_ROOTS: [&str; 8] = [
    "type",
    "message_type",
    "payload",
    "conversation",
    "account",
    "bot",
    "visitor",
    "event",
];

/// A rules file: `[[rule]]` tables.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    #[serde(default)]
    pub rule: Vec<RuleDef>,
}

impl RulesFile {
    /// Parses a TOML rules file; the error names the line and the key.
    pub fn parse(text: &str) -> Result<RulesFile, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// TOML that parses back to the same rules.
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string_pretty(self).map_err(|e| e.to_string())
    }
}
