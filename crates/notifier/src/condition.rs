//! Conditions: a field path, an operator and a value, compiled once.

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::path::Path;
use crate::rule::{ConditionDef, FIELD_ROOTS};

/// The operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    In,
    NotIn,
    Contains,
    StartsWith,
    Matches,
    Exists,
    Missing,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Op {
    pub const NAMES: [&'static str; 13] = [
        "eq",
        "ne",
        "in",
        "not_in",
        "contains",
        "starts_with",
        "matches",
        "exists",
        "missing",
        "gt",
        "gte",
        "lt",
        "lte",
    ];

    fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            "contains" => Op::Contains,
            "starts_with" => Op::StartsWith,
            "matches" => Op::Matches,
            "exists" => Op::Exists,
            "missing" => Op::Missing,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            _ => return None,
        })
    }
}

/// What a condition compares the field with.
#[derive(Clone, Debug)]
enum Operand {
    None,
    /// A literal value.
    Value(Value),
    /// Another field of the context: a value written `{{conversation.assignee.email}}`.
    Field(Path),
    Regex(Regex),
}

/// A compiled condition.
#[derive(Clone, Debug)]
pub struct Condition {
    pub field: Path,
    pub op: Op,
    operand: Operand,
    case_sensitive: bool,
    /// On a list field: every item must match, not just one.
    all_items: bool,
    /// As written, for explanations.
    pub text: String,
    /// Where a rule set caches the value at `field` for one event
    /// ([`Lookups`]); `usize::MAX` outside a set.
    pub(crate) slot: usize,
    /// Where a rule set caches whether this condition (or one written the
    /// same) held for one event; `usize::MAX` outside a set.
    pub(crate) id: usize,
}

/// The values at the field paths of a rule set, each looked up at most
/// once per event: a thousand rules reading `payload.to.email` walk the
/// context once.
pub struct Lookups<'a> {
    context: &'a Value,
    found: Vec<Option<Option<Option<&'a Value>>>>,
    held: Vec<Option<bool>>,
}

impl<'a> Lookups<'a> {
    /// Lookups into `context` for a set with `slots` distinct paths.
    pub fn new(context: &'a Value, slots: usize, conditions: usize) -> Lookups<'a> {
        Lookups {
            context,
            found: vec![None; slots],
            held: vec![None; conditions],
        }
    }

    pub fn context(&self) -> &'a Value {
        self.context
    }

    /// [`Path::single`], cached by slot.
    fn single(&mut self, slot: usize, path: &Path) -> Option<Option<&'a Value>> {
        let context = self.context;
        match self.found.get_mut(slot) {
            Some(Some(cached)) => *cached,
            Some(entry) => *entry.insert(path.single(context)),
            None => path.single(context),
        }
    }
}

impl Condition {
    /// Compiles a condition; the error says what is wrong with it.
    pub fn compile(def: &ConditionDef, case_sensitive: bool) -> Result<Condition, String> {
        let field = Path::parse(&def.field)?;
        if !FIELD_ROOTS.contains(&field.root()) {
            return Err(format!(
                "unknown field {:?}: a field starts with one of {}",
                def.field,
                FIELD_ROOTS.join(", ")
            ));
        }
        if def.all_items && !field.has_each() {
            return Err(format!(
                "all_items needs a list field written with [*], e.g. payload.labels[*].id (not {:?})",
                def.field
            ));
        }
        let op = Op::parse(&def.op).ok_or_else(|| {
            format!(
                "unknown operator {:?}: use one of {}",
                def.op,
                Op::NAMES.join(", ")
            )
        })?;
        let operand = match (op, &def.value) {
            (Op::Exists | Op::Missing, None) => Operand::None,
            (Op::Exists | Op::Missing, Some(_)) => {
                return Err(format!("operator {:?} takes no value", def.op))
            }
            (_, None) => return Err(format!("operator {:?} needs a value", def.op)),
            (Op::Matches, Some(Value::String(pattern))) => Operand::Regex(
                RegexBuilder::new(pattern)
                    .case_insensitive(!case_sensitive)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("bad regular expression {pattern:?}: {e}"))?,
            ),
            (Op::Matches, Some(_)) => {
                return Err("operator \"matches\" needs a string pattern".to_owned())
            }
            (Op::In | Op::NotIn, Some(Value::Array(_))) => {
                Operand::Value(def.value.clone().unwrap_or_default())
            }
            (Op::In | Op::NotIn, Some(_)) => {
                return Err(format!("operator {:?} needs a list value", def.op))
            }
            (_, Some(Value::String(text))) if is_field_reference(text) => {
                let inner = text
                    .trim()
                    .trim_start_matches("{{")
                    .trim_end_matches("}}")
                    .trim();
                let path = Path::parse(inner)?;
                if !FIELD_ROOTS.contains(&path.root()) {
                    return Err(format!("unknown field {inner:?} in value {text:?}"));
                }
                Operand::Field(path)
            }
            (_, Some(value)) => Operand::Value(value.clone()),
        };
        Ok(Condition {
            text: format!(
                "{} {}{}{}",
                def.field,
                def.op,
                def.value
                    .as_ref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default(),
                if def.all_items { " (all items)" } else { "" }
            ),
            field,
            slot: usize::MAX,
            id: usize::MAX,
            op,
            operand,
            case_sensitive,
            all_items: def.all_items,
        })
    }

    /// Whether the condition holds on `context`. On a list field
    /// (`payload.labels[*].id`) an operator holds when it holds for some
    /// item (every item with `all_items`, and then the list is not empty);
    /// `ne`, `not_in` and `missing` hold when their opposite does not.
    pub fn holds(&self, context: &Value) -> bool {
        self.holds_in(&mut Lookups::new(context, 0, 0))
    }

    /// [`Condition::holds`], with the field's value (and the answer, when
    /// another rule asked the same) from `lookups`.
    pub fn holds_in(&self, lookups: &mut Lookups<'_>) -> bool {
        if let Some(Some(held)) = lookups.held.get(self.id) {
            return *held;
        }
        let held = self.evaluate(lookups);
        if let Some(slot) = lookups.held.get_mut(self.id) {
            *slot = Some(held);
        }
        held
    }

    fn evaluate(&self, lookups: &mut Lookups<'_>) -> bool {
        let context = lookups.context();
        let operand = match &self.operand {
            Operand::Field(path) => path.lookup(context),
            Operand::Value(value) => Some(value),
            Operand::None | Operand::Regex(_) => None,
        };
        if let Some(found) = lookups.single(self.slot, &self.field) {
            // One value (or none): no list on the way.
            return self.holds_for(self.op, found.filter(|v| !v.is_null()), operand);
        }
        let (values, many) = self.field.values(context);
        let mut values: Vec<&Value> = values.into_iter().filter(|v| !v.is_null()).collect();
        if !many {
            values.truncate(1);
            return self.holds_for(self.op, values.first().copied(), operand);
        }
        let (positive, negated) = match self.op {
            Op::Ne => (Op::Eq, true),
            Op::NotIn => (Op::In, true),
            Op::Missing => (Op::Exists, true),
            op => (op, false),
        };
        let holds = if positive == Op::Exists {
            !values.is_empty()
        } else if self.all_items {
            !values.is_empty()
                && values
                    .iter()
                    .all(|v| self.holds_for(positive, Some(v), operand))
        } else {
            values
                .iter()
                .any(|v| self.holds_for(positive, Some(v), operand))
        };
        holds != negated
    }

    /// `op` on one value.
    fn holds_for(&self, op: Op, found: Option<&Value>, operand: Option<&Value>) -> bool {
        match op {
            Op::Exists => found.is_some(),
            Op::Missing => found.is_none(),
            Op::Eq => self.equal(found, operand),
            Op::Ne => !self.equal(found, operand),
            Op::In => self.within(found, operand),
            Op::NotIn => !self.within(found, operand),
            Op::Contains => match (found, operand) {
                (Some(Value::Array(items)), Some(wanted)) => items
                    .iter()
                    .any(|item| self.equal(Some(item), Some(wanted))),
                // A number is contained only in itself: 42 is not in 420.
                (Some(value), Some(wanted)) if value.is_number() || wanted.is_number() => {
                    self.equal(Some(value), Some(wanted))
                }
                (Some(value), Some(wanted)) => {
                    self.fold(&text(value)).contains(&self.fold(&text(wanted)))
                }
                _ => false,
            },
            Op::StartsWith => match (found, operand) {
                (Some(value), Some(wanted)) => {
                    let (value, wanted) = (text(value), text(wanted));
                    if self.case_sensitive {
                        value.starts_with(wanted.as_ref())
                    } else if value.is_ascii() && wanted.is_ascii() {
                        value.len() >= wanted.len()
                            && value.as_bytes()[..wanted.len()]
                                .eq_ignore_ascii_case(wanted.as_bytes())
                    } else {
                        self.fold(&value).starts_with(&self.fold(&wanted))
                    }
                }
                _ => false,
            },
            Op::Matches => match (&self.operand, found) {
                (Operand::Regex(regex), Some(value)) => regex.is_match(&text(value)),
                _ => false,
            },
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
                let (Some(value), Some(wanted)) = (found, operand) else {
                    return false;
                };
                let ordering = match (number(value), number(wanted)) {
                    (Some(a), Some(b)) => a.partial_cmp(&b),
                    _ => Some(self.fold(&text(value)).cmp(&self.fold(&text(wanted)))),
                };
                let Some(ordering) = ordering else {
                    return false;
                };
                match op {
                    Op::Gt => ordering.is_gt(),
                    Op::Gte => ordering.is_ge(),
                    Op::Lt => ordering.is_lt(),
                    _ => ordering.is_le(),
                }
            }
        }
    }

    fn fold(&self, text: &str) -> String {
        if self.case_sensitive {
            text.to_owned()
        } else {
            text.to_lowercase()
        }
    }

    /// Equality across the platform's loose types: `8861` equals `"8861"`,
    /// `true` equals `"true"`, strings compare case-insensitively unless
    /// the rule says otherwise. A missing field equals nothing.
    fn equal(&self, found: Option<&Value>, wanted: Option<&Value>) -> bool {
        match (found, wanted) {
            (Some(a), Some(b)) => {
                if !a.is_string() || !b.is_string() {
                    if let (Some(x), Some(y)) = (number(a), number(b)) {
                        return x == y;
                    }
                }
                let (a, b) = (text(a), text(b));
                if self.case_sensitive {
                    a == b
                } else if a.is_ascii() && b.is_ascii() {
                    a.eq_ignore_ascii_case(&b)
                } else {
                    self.fold(&a) == self.fold(&b)
                }
            }
            _ => false,
        }
    }

    fn within(&self, found: Option<&Value>, list: Option<&Value>) -> bool {
        match list {
            Some(Value::Array(items)) => items.iter().any(|item| self.equal(found, Some(item))),
            _ => false,
        }
    }
}

fn is_field_reference(text: &str) -> bool {
    let t = text.trim();
    t.starts_with("{{") && t.ends_with("}}") && !t[2..t.len() - 2].contains("{{")
}

/// A value as text (strings borrowed, without copying).
fn text(value: &Value) -> std::borrow::Cow<'_, str> {
    match value {
        Value::String(s) => std::borrow::Cow::Borrowed(s),
        other => std::borrow::Cow::Owned(hookline_model::value_text(other)),
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(field: &str, op: &str, value: Option<Value>) -> Condition {
        Condition::compile(
            &ConditionDef {
                field: field.into(),
                op: op.into(),
                value,
                all_items: false,
            },
            false,
        )
        .unwrap()
    }

    fn context() -> Value {
        json!({
            "type": "status",
            "payload": {"status": "Close", "closed_by": {"email": "A@x.io", "type": "user"}, "n": "42", "tags": ["VIP", "new"]},
            "conversation": {"assignee": {"email": "a@x.io", "type": "user"}},
            "bot": {"id": 8861}
        })
    }

    #[test]
    fn equality_is_loose_and_case_insensitive() {
        let c = context();
        assert!(cond("payload.status", "eq", Some(json!("close"))).holds(&c));
        assert!(cond("bot.id", "eq", Some(json!("8861"))).holds(&c));
        assert!(cond("payload.n", "eq", Some(json!(42))).holds(&c));
        assert!(!cond("payload.status", "ne", Some(json!("CLOSE"))).holds(&c));
        assert!(cond("payload.missing", "ne", Some(json!("x"))).holds(&c));
    }

    #[test]
    fn a_value_can_name_another_field() {
        let c = context();
        let same = cond(
            "payload.closed_by.email",
            "eq",
            Some(json!("{{conversation.assignee.email}}")),
        );
        assert!(same.holds(&c));
        let other = cond(
            "payload.closed_by.email",
            "ne",
            Some(json!("{{ conversation.assignee.email }}")),
        );
        assert!(!other.holds(&c));
    }

    #[test]
    fn lists_strings_and_regexes() {
        let c = context();
        assert!(cond("type", "in", Some(json!(["note", "status"]))).holds(&c));
        assert!(cond("type", "not_in", Some(json!(["note"]))).holds(&c));
        assert!(cond("payload.tags", "contains", Some(json!("vip"))).holds(&c));
        assert!(cond("payload.closed_by.email", "contains", Some(json!("@X.IO"))).holds(&c));
        assert!(cond("payload.status", "starts_with", Some(json!("clo"))).holds(&c));
        assert!(cond(
            "payload.closed_by.email",
            "matches",
            Some(json!("^a@.*\\.io$"))
        )
        .holds(&c));
        assert!(!cond("payload.closed_by.email", "matches", Some(json!("^b@"))).holds(&c));
    }

    #[test]
    fn presence_and_order() {
        let c = context();
        assert!(cond("payload.closed_by", "exists", None).holds(&c));
        assert!(cond("payload.nothing", "missing", None).holds(&c));
        assert!(cond("payload.n", "gt", Some(json!(41))).holds(&c));
        assert!(cond("payload.n", "gte", Some(json!("42"))).holds(&c));
        assert!(!cond("payload.n", "lt", Some(json!(42))).holds(&c));
        assert!(cond("payload.n", "lte", Some(json!(42.0))).holds(&c));
        assert!(!cond("payload.nothing", "gt", Some(json!(1))).holds(&c));
    }

    fn list_cond(field: &str, op: &str, value: Option<Value>, all_items: bool) -> Condition {
        Condition::compile(
            &ConditionDef {
                field: field.into(),
                op: op.into(),
                value,
                all_items,
            },
            false,
        )
        .unwrap()
    }

    #[test]
    fn label_42_is_matched_in_any_item_and_never_by_420() {
        let added = |ids: &[i64]| json!({"payload": {"action": "added", "labels": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()}});
        let some = list_cond("payload.labels[*].id", "eq", Some(json!(42)), false);
        assert!(some.holds(&added(&[7, 42])));
        assert!(!some.holds(&added(&[420, 4200])));
        assert!(!some.holds(&added(&[])));
        let implicit = list_cond("payload.labels.id", "in", Some(json!([42, 43])), false);
        assert!(implicit.holds(&added(&[1, 43])));
        assert!(!implicit.holds(&added(&[420])));
        let contains = list_cond("payload.labels.0.id", "contains", Some(json!(42)), false);
        assert!(!contains.holds(&added(&[420])));
        assert!(contains.holds(&added(&[42])));
        let none = list_cond("payload.labels[*].id", "ne", Some(json!(42)), false);
        assert!(none.holds(&added(&[420])));
        assert!(!none.holds(&added(&[1, 42])));
        let every = list_cond("payload.labels[*].id", "gt", Some(json!(40)), true);
        assert!(every.holds(&added(&[41, 42])));
        assert!(!every.holds(&added(&[41, 2])));
        assert!(!every.holds(&added(&[])));
        assert!(list_cond("payload.labels[*]", "exists", None, false).holds(&added(&[1])));
        assert!(list_cond("payload.labels[*]", "missing", None, false).holds(&added(&[])));
        let error = Condition::compile(
            &ConditionDef {
                field: "payload.labels.id".into(),
                op: "eq".into(),
                value: Some(json!(1)),
                all_items: true,
            },
            false,
        )
        .unwrap_err();
        assert!(error.contains("all_items needs a list field"), "{error}");
    }

    /// Every list of objects in every sample payload (labels, form fields,
    /// buttons, variables, cards, ...): `LIST[*].KEY eq V` holds for a value
    /// some item has, not for one no item has, and a number never matches
    /// ten times itself.
    #[test]
    fn every_list_in_the_samples_can_be_matched() {
        fn lists<'a>(path: String, value: &'a Value, out: &mut Vec<(String, &'a Vec<Value>)>) {
            match value {
                Value::Object(map) => {
                    for (k, v) in map {
                        lists(format!("{path}.{k}"), v, out);
                    }
                }
                Value::Array(items) => {
                    if items.iter().any(Value::is_object) {
                        out.push((path.clone(), items));
                    }
                    for (i, item) in items.iter().enumerate() {
                        lists(format!("{path}[{i}]"), item, out);
                    }
                }
                _ => {}
            }
        }
        let folder = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/swiftsell"
        );
        let mut checked = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let envelope: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            for item in envelope["events"].as_array().unwrap() {
                let context = json!({"payload": item["event"]["payload"].clone()});
                let mut found = Vec::new();
                lists("payload".into(), &context["payload"], &mut found);
                for (list, items) in found {
                    for (key, value) in items
                        .iter()
                        .filter_map(Value::as_object)
                        .flat_map(|o| o.iter())
                    {
                        if !(value.is_string() || value.is_number() || value.is_boolean()) {
                            continue;
                        }
                        let field = format!("{list}[*].{key}");
                        assert!(
                            list_cond(&field, "eq", Some(value.clone()), false).holds(&context),
                            "{}: {field} eq {value}",
                            path.display()
                        );
                        assert!(
                            !list_cond(&field, "eq", Some(json!("no item has this")), false)
                                .holds(&context),
                            "{field}"
                        );
                        if let Some(n) = value.as_i64() {
                            assert!(!list_cond(&field, "eq", Some(json!(n * 10 + 1)), false)
                                .holds(&context));
                            assert!(
                                !list_cond(&field, "contains", Some(json!(n * 10)), false)
                                    .holds(&context)
                                    || n == 0
                            );
                        }
                        checked.insert(
                            format!("{list}.{key}").replace(|c: char| c.is_ascii_digit(), ""),
                        );
                    }
                }
            }
        }
        for wanted in [
            "payload.labels.id",
            "payload.message.payload.fields.label",
            "payload.message.payload.fields.value",
            "payload.message.payload.buttons.title",
            "payload.variables.name",
            "payload.variables.value",
        ] {
            assert!(
                checked.iter().any(|c| c.replace("[]", "") == wanted),
                "no sample list {wanted}; checked {checked:?}"
            );
        }
    }

    #[test]
    fn case_sensitive_rules_compare_exactly() {
        let def = ConditionDef {
            field: "payload.status".into(),
            op: "eq".into(),
            value: Some(json!("close")),
            all_items: false,
        };
        assert!(!Condition::compile(&def, true).unwrap().holds(&context()));
    }

    #[test]
    fn bad_conditions_say_why() {
        let error = |field: &str, op: &str, value: Option<Value>| {
            Condition::compile(
                &ConditionDef {
                    field: field.into(),
                    op: op.into(),
                    value,
                    all_items: false,
                },
                false,
            )
            .unwrap_err()
        };
        assert!(error("nope.x", "eq", Some(json!(1))).contains("unknown field \"nope.x\""));
        assert!(error("type", "equals", Some(json!(1))).contains("unknown operator \"equals\""));
        assert!(error("type", "matches", Some(json!("("))).contains("bad regular expression"));
        assert!(error("type", "in", Some(json!("x"))).contains("needs a list"));
        assert!(error("type", "eq", None).contains("needs a value"));
        assert!(error("type", "exists", Some(json!(1))).contains("takes no value"));
    }
}
