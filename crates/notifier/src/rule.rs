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
    /// every type). Left out in a timer rule (its events are in `timer`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    /// `"visitor"`: the email's Reply-To is the visitor's address when
    /// hookline knows it (from a form answer or a visitor variable), so
    /// that replying writes to the visitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// A timer rule: emails when a stop event does *not* follow a start
    /// event in time (see [`crate::timers`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer: Option<crate::timers::TimerDef>,
    /// Keys the server owns (`GET /api/v1/rules/{id}` shows them), accepted
    /// so that what GET returned can be sent back as it is; never stored.
    /// An `id` must be the rule's own when replacing it.
    #[serde(default, skip_serializing)]
    pub id: Option<i64>,
    #[serde(default, skip_serializing)]
    pub created_at: Option<Value>,
    #[serde(default, skip_serializing)]
    pub updated_at: Option<Value>,
}

impl RuleDef {
    /// One rule from TOML: bare keys (`name = ...`, `[[all]]`) or a rules
    /// file holding exactly one `[[rule]]`, as `rules export` writes.
    pub fn from_toml(text: &str) -> Result<RuleDef, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        if table.contains_key("rule") {
            return only_one(RulesFile::parse(text)?.rule);
        }
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// One rule from JSON: the rule's keys, or `{"rule": [ONE RULE]}`.
    pub fn from_json(bytes: &[u8]) -> Result<RuleDef, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if value.get("rule").is_some() {
            let file: RulesFile = serde_json::from_value(value).map_err(|e| e.to_string())?;
            return only_one(file.rule);
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    /// The rule without the server-owned keys.
    pub fn without_server_keys(self) -> RuleDef {
        RuleDef {
            id: None,
            created_at: None,
            updated_at: None,
            ..self
        }
    }
}

fn only_one(rules: Vec<RuleDef>) -> Result<RuleDef, String> {
    let count = rules.len();
    match <[RuleDef; 1]>::try_from(rules) {
        Ok([rule]) => Ok(rule),
        Err(_) => Err(format!(
            "this is a rules file with {count} rules; give exactly one rule here (hookline rules import takes many)"
        )),
    }
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

/// A rules file: `[[rule]]` tables, and the `[[calendar]]`s and
/// `[[recipient]]`s they share (see [`crate::directory`]).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    #[serde(default)]
    pub rule: Vec<RuleDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calendar: Vec<crate::directory::NamedCalendar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipient: Vec<crate::directory::RecipientDef>,
}

impl RulesFile {
    /// Parses a TOML rules file (`[[rule]]` tables, or one rule's bare
    /// keys as the Rules page shows it); the error names the line and the
    /// key.
    pub fn parse(text: &str) -> Result<RulesFile, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        if table.contains_key("name") {
            return RuleDef::from_toml(text).map(|rule| RulesFile {
                rule: vec![rule],
                ..RulesFile::default()
            });
        }
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Like [`RulesFile::parse`], but each rule on its own, so that every
    /// bad rule of a file is named at once (`rule 2 ("x"): unknown field
    /// ...`). A TOML syntax error is still the whole file's; so is a bad
    /// `[[calendar]]` or `[[recipient]]` (read them with
    /// [`RulesFile::shared_parts`]).
    pub fn parse_each(text: &str) -> Result<Vec<Result<RuleDef, String>>, String> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        table.remove("calendar");
        table.remove("recipient");
        if table.contains_key("name") {
            return Ok(vec![RuleDef::from_toml(text)]);
        }
        let rules = match table.remove("rule") {
            None => Vec::new(),
            Some(toml::Value::Array(rules)) => rules,
            Some(_) => return Err("`rule` must be a list of tables ([[rule]])".to_owned()),
        };
        if let Some(key) = table.keys().next() {
            return Err(format!("unknown field `{key}`, expected `rule`"));
        }
        Ok(rules
            .into_iter()
            .enumerate()
            .map(|(i, value)| {
                let name = value
                    .get("name")
                    .and_then(toml::Value::as_str)
                    .map(|n| format!(" ({n:?})"))
                    .unwrap_or_default();
                value
                    .try_into::<RuleDef>()
                    .map_err(|e| format!("rule {}{name}: {}", i + 1, e.to_string().trim()))
            })
            .collect())
    }

    /// The file's `[[calendar]]`s and `[[recipient]]`s, whatever its rules
    /// hold.
    pub fn shared_parts(
        text: &str,
    ) -> Result<
        (
            Vec<crate::directory::NamedCalendar>,
            Vec<crate::directory::RecipientDef>,
        ),
        String,
    > {
        #[derive(Deserialize)]
        struct Parts {
            #[serde(default)]
            calendar: Vec<crate::directory::NamedCalendar>,
            #[serde(default)]
            recipient: Vec<crate::directory::RecipientDef>,
        }
        let parts: Parts = toml::from_str(text).map_err(|e| e.to_string())?;
        Ok((parts.calendar, parts.recipient))
    }

    /// TOML that parses back to the same rules.
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string_pretty(self).map_err(|e| e.to_string())
    }
}
