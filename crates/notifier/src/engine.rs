//! Compiled rules, indexed by event type, and their evaluation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use handlebars::Handlebars;
use serde_json::Value;

use crate::condition::{Condition, Lookups};
use crate::duration::parse_duration;
use crate::path::Path;
use crate::rule::{RuleDef, RuleError, FIELD_ROOTS};
use crate::templates::Templates;

/// The longest throttle window a rule may have.
pub const MAX_THROTTLE: Duration = Duration::from_secs(366 * 86_400);

/// The longest rule name.
pub const MAX_NAME_CHARS: usize = 200;

/// The longest email address (RFC 5321's path limit less the brackets).
const MAX_ADDRESS_BYTES: usize = 254;

/// The most entries a rule's `to` may hold.
pub const MAX_RECIPIENTS: usize = 50;

/// Fields a recipient may come from without `allow_visitor_recipients`:
/// values Swiftsell or an agent sets, never a visitor. An actor's email
/// (`payload.to.email`, `event.actor.email`, ...) is still refused at send
/// time when that actor is the visitor.
const TRUSTED_RECIPIENT_FIELDS: [&str; 16] = [
    "payload.to.email",
    "payload.from.email",
    "payload.changed_by.email",
    "payload.closed_by.email",
    "payload.action_performed_by.email",
    "payload.note_by.email",
    "payload.assigned_to_user.email",
    "payload.message_by.email",
    "conversation.assignee.email",
    "event.actor.email",
    "bot.id",
    "account.id",
    "conversation.bot_id",
    "conversation.account_id",
    "conversation.id",
    "event.type",
];

/// Handlebars keywords and built-in helpers: not field paths.
const TEMPLATE_WORDS: [&str; 16] = [
    "if", "unless", "each", "with", "else", "lookup", "this", "log", "eq", "ne", "and", "or",
    "not", "gt", "lt", "len",
];

/// A recipient as written in `to`.
#[derive(Clone, Debug)]
enum Recipient {
    Literal(String),
    /// `{{payload.to.email}}`: one field of the context.
    Field(Path),
    /// Any other handlebars expression, rendered over the context, and the
    /// fields it reads.
    Template(String, Vec<Path>),
}

/// A rule ready to evaluate: conditions compiled, regexes built, throttle
/// parsed.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    /// The database id (none for a draft being checked or previewed).
    pub id: Option<i64>,
    pub def: RuleDef,
    all: Vec<Condition>,
    any: Vec<Condition>,
    to: Vec<Recipient>,
    pub throttle: Option<Duration>,
    /// A timer rule's compiled `timer` section.
    pub timer: Option<Arc<crate::timers::CompiledTimer>>,
}

/// Why a recipient was not used.
pub type Skipped = String;

impl CompiledRule {
    /// Validates and compiles a rule; the error names the rule and the
    /// problem.
    pub fn compile(
        def: RuleDef,
        id: Option<i64>,
        templates: &Templates,
    ) -> Result<CompiledRule, RuleError> {
        CompiledRule::compile_in(def, id, templates, &crate::directory::Directory::default())
    }

    /// [`CompiledRule::compile`] with the named calendars a timer rule may
    /// refer to.
    pub fn compile_in(
        def: RuleDef,
        id: Option<i64>,
        templates: &Templates,
        directory: &crate::directory::Directory,
    ) -> Result<CompiledRule, RuleError> {
        let name = def.name.trim();
        if name.is_empty() {
            return Err(RuleError::new(&def.name, "the name is empty"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(RuleError::new(
                &name.chars().take(40).collect::<String>(),
                format!("the name is longer than {MAX_NAME_CHARS} characters"),
            ));
        }
        let fail = |problem: String| RuleError::new(name, problem);
        let timer = match &def.timer {
            Some(section) => {
                let def = RuleDef {
                    name: name.to_owned(),
                    ..def.clone()
                };
                Some(Arc::new(crate::timers::CompiledTimer::compile(
                    &def, section, templates, directory,
                )?))
            }
            None => None,
        };
        if def.on.is_empty() && timer.is_none() {
            return Err(fail(
                "\"on\" is empty: list the event types it listens to".to_owned(),
            ));
        }
        if let Some(bad) = def.on.iter().find(|t| t.trim().is_empty()) {
            return Err(fail(format!("\"on\" has an empty event type {bad:?}")));
        }
        if def.to.is_empty() {
            return Err(fail(
                "\"to\" is empty: give at least one recipient".to_owned(),
            ));
        }
        if def.to.len() > MAX_RECIPIENTS {
            return Err(fail(format!(
                "\"to\" has {} entries; at most {MAX_RECIPIENTS} are allowed (use a mailing list address for a bigger team)",
                def.to.len()
            )));
        }
        if !templates.has(&def.template) {
            return Err(fail(format!(
                "unknown template {:?}: available are {}",
                def.template,
                templates.names().join(", ")
            )));
        }
        let compile_all = |defs: &[crate::rule::ConditionDef], list: &str| {
            defs.iter()
                .enumerate()
                .map(|(i, c)| {
                    Condition::compile(c, def.case_sensitive)
                        .map_err(|problem| fail(format!("{list}[{i}]: {problem}")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let all = compile_all(&def.all, "all")?;
        let any = compile_all(&def.any, "any")?;
        let to = def
            .to
            .iter()
            .map(|r| compile_recipient(r).map_err(|problem| fail(format!("to {r:?}: {problem}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if !def.allow_visitor_recipients {
            if let Some((written, field)) =
                def.to.iter().find_map(|r| visitor_field(r).map(|f| (r, f)))
            {
                return Err(fail(format!(
                    "to {written:?} takes its address from {field}, which a visitor can set: anyone chatting with the bot could then make hookline email any address. \
                     Use an agent's or a fixed address, or set allow_visitor_recipients = true if that is really wanted"
                )));
            }
        }
        if let Some(reply_to) = def.reply_to.as_deref().filter(|r| *r != "visitor") {
            return Err(fail(format!(
                "reply_to {reply_to:?}: the only value is \"visitor\" (Reply-To the visitor's email when known)"
            )));
        }
        let throttle = def
            .throttle
            .as_deref()
            .map(|t| parse_duration(t).map_err(|problem| fail(format!("throttle: {problem}"))))
            .transpose()?;
        if let Some(window) = throttle.filter(|w| *w > MAX_THROTTLE) {
            return Err(fail(format!(
                "throttle: {} days is longer than the longest allowed, 366 days ({})",
                window.as_secs() / 86_400,
                def.throttle.as_deref().unwrap_or_default()
            )));
        }
        // Each event type once; `*` covers all of them.
        let mut on: Vec<String> = Vec::new();
        for event_type in &def.on {
            let event_type = event_type.trim().to_owned();
            if !on.contains(&event_type) {
                on.push(event_type);
            }
        }
        if on.iter().any(|t| t == "*") {
            on = vec!["*".to_owned()];
        }
        Ok(CompiledRule {
            id,
            def: RuleDef {
                name: name.to_owned(),
                on,
                ..def.without_server_keys()
            },
            all,
            any,
            to,
            throttle,
            timer,
        })
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// `Ok` when the rule fires on `context`; otherwise the condition that
    /// failed, as written.
    /// Whether the rule matches `context` ([`CompiledRule::check`] without
    /// the explanation: what ingest asks of every rule listening).
    pub fn matches(&self, context: &Value) -> bool {
        self.matches_in(&mut Lookups::new(context, 0, 0))
    }

    /// [`CompiledRule::matches`] with the values of its fields from
    /// `lookups` (shared by the rules of a set for one event).
    pub fn matches_in(&self, lookups: &mut Lookups<'_>) -> bool {
        self.all.iter().all(|c| c.holds_in(lookups))
            && (self.any.is_empty() || self.any.iter().any(|c| c.holds_in(lookups)))
    }

    pub fn check(&self, context: &Value) -> Result<(), String> {
        if let Some(failed) = self.all.iter().find(|c| !c.holds(context)) {
            return Err(format!("all: {} did not hold", failed.text));
        }
        if !self.any.is_empty() && !self.any.iter().any(|c| c.holds(context)) {
            let texts: Vec<&str> = self.any.iter().map(|c| c.text.as_str()).collect();
            return Err(format!("any: none of {} held", texts.join("; ")));
        }
        Ok(())
    }

    /// The recipients for `context`, deduplicated: each a valid address,
    /// or why it was skipped (rendered empty, not an address).
    pub fn recipients(&self, context: &Value) -> Vec<Result<String, (String, Skipped)>> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for (written, recipient) in self.def.to.iter().zip(&self.to) {
            let rendered = match recipient {
                Recipient::Literal(address) => address.clone(),
                Recipient::Field(path)
                    if !self.def.allow_visitor_recipients && path.actor_is_visitor(context) =>
                {
                    out.push(Err((
                        written.clone(),
                        format!("recipient {written} is the visitor of this event, not an agent; set allow_visitor_recipients = true to email visitors"),
                    )));
                    continue;
                }
                Recipient::Field(path) => path
                    .lookup(context)
                    .map(hookline_model::value_text)
                    .unwrap_or_default(),
                Recipient::Template(_, fields)
                    if !self.def.allow_visitor_recipients
                        && fields.iter().any(|f| f.actor_is_visitor(context)) =>
                {
                    out.push(Err((
                        written.clone(),
                        format!("recipient {written} reads the address of the visitor of this event, not an agent; set allow_visitor_recipients = true to email visitors"),
                    )));
                    continue;
                }
                Recipient::Template(source, _) => renderer()
                    .render_template(source, context)
                    .unwrap_or_default(),
            };
            let rendered = rendered.trim().to_lowercase();
            if rendered.is_empty() {
                out.push(Err((
                    written.clone(),
                    format!("recipient {written} rendered empty"),
                )));
                continue;
            }
            if rendered.len() > MAX_ADDRESS_BYTES || rendered.parse::<lettre::Address>().is_err() {
                // Recorded in an indexed column: bounded, whatever the payload held.
                let shown: String = rendered.chars().take(MAX_ADDRESS_BYTES / 2).collect();
                let cut = if shown.len() < rendered.len() {
                    "…"
                } else {
                    ""
                };
                out.push(Err((
                    format!("{shown}{cut}"),
                    format!(
                        "recipient {written} rendered {shown:?}{cut}, which is not an email address"
                    ),
                )));
                continue;
            }
            if !seen.contains(&rendered) {
                seen.push(rendered.clone());
                out.push(Ok(rendered));
            }
        }
        out
    }
}

/// A registry for recipient expressions: no HTML escaping, lenient.
fn renderer() -> &'static Handlebars<'static> {
    static RENDERER: std::sync::OnceLock<Handlebars<'static>> = std::sync::OnceLock::new();
    RENDERER.get_or_init(|| {
        let mut registry = Handlebars::new();
        registry.register_escape_fn(handlebars::no_escape);
        registry
    })
}

/// The field a recipient takes its address from that a visitor can set, if
/// any: every field it reads must be one of [`TRUSTED_RECIPIENT_FIELDS`].
fn visitor_field(written: &str) -> Option<String> {
    template_words(written)
        .into_iter()
        .find(|word| !TRUSTED_RECIPIENT_FIELDS.contains(&word.as_str()))
}

/// The field paths a handlebars expression reads (keywords and helpers
/// left out).
fn template_words(written: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = written;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").unwrap_or(after.len());
        let inner = &after[..end];
        rest = &after[end..];
        for word in inner
            .split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '$' | '-')))
            .map(|w| w.trim_start_matches(['#', '/']))
            .filter(|w| {
                w.chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '$')
            })
        {
            if !TEMPLATE_WORDS.contains(&word) && !words.iter().any(|w| w == word) {
                words.push(word.to_owned());
            }
        }
    }
    words
}

fn compile_recipient(written: &str) -> Result<Recipient, String> {
    let text = written.trim();
    if !text.contains("{{") {
        return text
            .parse::<lettre::Address>()
            .map(|_| Recipient::Literal(text.to_owned()))
            .map_err(|e| format!("not an email address ({e})"));
    }
    // `{{{x}}}` (no escaping) and `{{~x~}}` (no whitespace) name a field too.
    let inner = text
        .strip_prefix("{{{")
        .and_then(|t| t.strip_suffix("}}}"))
        .or_else(|| text.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")))
        .map(|t| t.trim_matches(|c: char| c == '~' || c.is_whitespace()));
    if let Some(inner) = inner.filter(|i| !i.contains("{{") && !i.contains("}}")) {
        if let Ok(path) = Path::parse(inner) {
            if FIELD_ROOTS.contains(&path.root()) {
                return Ok(Recipient::Field(path));
            }
            return Err(format!(
                "unknown field {:?}: a field starts with one of {}",
                inner.trim(),
                FIELD_ROOTS.join(", ")
            ));
        }
    }
    handlebars::Template::compile(text).map_err(|e| format!("template syntax error: {e}"))?;
    let fields = template_words(text)
        .iter()
        .filter_map(|word| Path::parse(word).ok())
        .collect();
    Ok(Recipient::Template(text.to_owned(), fields))
}

/// The enabled rules, indexed by event type.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    by_type: HashMap<String, Vec<Arc<CompiledRule>>>,
    wildcard: Vec<Arc<CompiledRule>>,
    /// Timer rules: evaluated by [`crate::timers::apply`], not per event.
    timers: Vec<Arc<CompiledRule>>,
    count: usize,
    /// How many distinct condition fields the rules read (the slots of
    /// [`Lookups`]).
    slots: usize,
    /// How many distinct conditions they hold (written the same, with the
    /// same case sensitivity).
    conditions: usize,
}

impl RuleSet {
    pub fn new(rules: impl IntoIterator<Item = CompiledRule>) -> RuleSet {
        let mut set = RuleSet::default();
        let mut paths: HashMap<Path, usize> = HashMap::new();
        let mut conditions: HashMap<(String, bool), usize> = HashMap::new();
        for mut rule in rules.into_iter().filter(|r| r.def.enabled) {
            for condition in rule.all.iter_mut().chain(rule.any.iter_mut()) {
                let next = paths.len();
                condition.slot = *paths.entry(condition.field.clone()).or_insert(next);
                let next = conditions.len();
                condition.id = *conditions
                    .entry((condition.text.clone(), rule.def.case_sensitive))
                    .or_insert(next);
            }
            set.slots = paths.len();
            set.conditions = conditions.len();
            let rule = Arc::new(rule);
            set.count += 1;
            if rule.timer.is_some() {
                set.timers.push(rule);
                continue;
            }
            for event_type in &rule.def.on {
                if event_type == "*" {
                    set.wildcard.push(Arc::clone(&rule));
                } else {
                    set.by_type
                        .entry(event_type.clone())
                        .or_default()
                        .push(Arc::clone(&rule));
                }
            }
        }
        set
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Lookups into `context` for this set's rules (one per event).
    pub fn lookups<'a>(&self, context: &'a Value) -> Lookups<'a> {
        Lookups::new(context, self.slots, self.conditions)
    }

    /// The templates the rules in force use, each once.
    pub fn template_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .by_type
            .values()
            .flatten()
            .chain(&self.wildcard)
            .map(|rule| rule.def.template.clone())
            .chain(self.timers.iter().flat_map(|rule| {
                rule.timer
                    .iter()
                    .flat_map(|t| t.steps.iter().map(|s| s.rule.def.template.clone()))
                    .collect::<Vec<_>>()
            }))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// The rules listening to `event_type`.
    pub fn for_type<'a>(&'a self, event_type: &str) -> impl Iterator<Item = &'a Arc<CompiledRule>> {
        self.by_type
            .get(event_type)
            .into_iter()
            .flatten()
            .chain(self.wildcard.iter())
    }

    /// The timer rules in force.
    pub fn timer_rules(&self) -> impl Iterator<Item = &Arc<CompiledRule>> {
        self.timers.iter()
    }

    /// Whether any rule listens to `event_type`.
    pub fn listens_to(&self, event_type: &str) -> bool {
        !self.wildcard.is_empty() || self.by_type.contains_key(event_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_listed_twice_for_a_type_fires_once() {
        let templates = Templates::built_in().unwrap();
        let def: RuleDef = serde_json::from_value(serde_json::json!({
            "name": "r", "on": ["status", "*", "status"], "to": ["a@b.io"], "template": "generic"
        }))
        .unwrap();
        let rule = CompiledRule::compile(def, None, &templates).unwrap();
        assert_eq!(rule.def.on, ["*"]);
        let set = RuleSet::new([rule]);
        assert_eq!(set.for_type("status").count(), 1);
        let def: RuleDef = serde_json::from_value(serde_json::json!({
            "name": "s", "on": ["note", " note"], "to": ["a@b.io"], "template": "generic"
        }))
        .unwrap();
        let set = RuleSet::new([CompiledRule::compile(def, None, &templates).unwrap()]);
        assert_eq!(set.for_type("note").count(), 1);
    }
}
