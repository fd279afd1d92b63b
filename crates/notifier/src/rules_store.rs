//! Rules in the database: validated on every way in (TOML file, JSON API),
//! compiled once, reloaded when they change here or in another hookline
//! process sharing the database.

use std::sync::{Arc, Mutex, RwLock};

use hookline_storage::diesel::QueryResult;
use hookline_storage::rules::{self, RuleChange, RuleRow};
use hookline_storage::{settings, DbConnection};
use serde::Serialize;

use crate::directory::Directory;
use crate::engine::{CompiledRule, RuleSet};
use crate::rule::{RuleDef, RuleError, RulesFile};
use crate::templates::Templates;

/// The rules hookline starts with: a handover emails the new agent; a
/// conversation closed by someone other than its assignee emails the
/// assignee. At most one email per conversation and recipient per 10
/// minutes each. Both can be edited or disabled; they are added once.
pub const DEFAULT_RULES: &str = r#"
[[rule]]
name = "handover-to-agent"
on = ["assignee_change"]
all = [{ field = "payload.to.type", op = "eq", value = "user" }]
to = ["{{payload.to.email}}"]
template = "handover"
throttle = "10m"

[[rule]]
name = "closed-by-someone-else"
on = ["status"]
all = [
  { field = "payload.status", op = "starts_with", value = "close" },
  { field = "conversation.assignee.type", op = "eq", value = "user" },
  { field = "conversation.assignee.email", op = "exists" },
  { field = "payload.closed_by.email", op = "ne", value = "{{conversation.assignee.email}}" },
]
to = ["{{conversation.assignee.email}}"]
template = "status_change"
throttle = "10m"
"#;

/// Two timer rules shipped as examples, disabled: enable (and adjust) them
/// on the Rules page or with the API. Added once; deleting them sticks.
pub const TIMER_EXAMPLES: &str = r#"
[[rule]]
name = "example-handover-no-agent-reply"
enabled = false
to = ["{{conversation.assignee.email}}"]
template = "waiting"

[rule.timer]
after = "5m"
rearm = "restart"
start = { on = ["assignee_change"], all = [{ field = "payload.to.type", op = "eq", value = "user" }] }
stop = [
  { on = ["message"], all = [
    { field = "payload.message_by.type", op = "eq", value = "user" },
    { field = "payload.message_by.email", op = "eq", value = "{{conversation.assignee.email}}" },
  ] },
  { on = ["status"], all = [{ field = "payload.status", op = "starts_with", value = "close" }] },
]

[[rule]]
name = "example-visitor-waiting-business-hours"
enabled = false
to = ["support@example.com"]
template = "waiting"

[rule.timer]
after = "10m"
clock = "business"
calendar = "support-hours"
start = { on = ["message"], all = [{ field = "payload.message_by.type", op = "eq", value = "visitor" }] }
stop = [
  { on = ["message"], all = [{ field = "payload.message_by.type", op = "eq", value = "user" }] },
  { on = ["status"], all = [{ field = "payload.status", op = "starts_with", value = "close" }] },
]
escalate = [{ at = "20m", to = ["support-lead@example.com"] }]

[[calendar]]
name = "support-hours"
time_zone = "Europe/Berlin"
hours = { mon = ["09:00-12:30", "13:30-17:30"], tue = ["09:00-12:30", "13:30-17:30"], wed = ["09:00-12:30", "13:30-17:30"], thu = ["09:00-12:30", "13:30-17:30"], fri = ["09:00-12:30", "13:30-17:00"] }
holidays = ["2026-12-24", "2026-12-25", "2026-12-26", "2027-01-01"]
"#;

/// Set once the timer examples were added.
const TIMER_EXAMPLES_SEEDED: &str = "timer_examples_seeded";

const DEFAULTS_SEEDED: &str = "default_rules_seeded";
/// Set once the default rules seeded by an older hookline (without a
/// throttle) were given the throttle.
const DEFAULTS_THROTTLED: &str = "default_rules_throttled";

/// Why a rule change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error(transparent)]
    Invalid(#[from] RuleError),
    #[error("a rule named {0:?} already exists")]
    Duplicate(String),
    #[error("{0}")]
    File(String),
    /// A calendar or recipient that is not valid (or names a calendar
    /// that does not exist).
    #[error("{0}")]
    InvalidCalendar(String),
    /// A calendar that rules or recipients still use: the message names
    /// them.
    #[error("{0}")]
    InUse(String),
    #[error("database: {0}")]
    Database(#[from] hookline_storage::diesel::result::Error),
}

/// A stored rule as the API and exports show it.
#[derive(Clone, Debug, Serialize)]
pub struct RuleView {
    pub id: i64,
    #[serde(flatten)]
    pub rule: RuleDef,
    #[serde(serialize_with = "utc")]
    pub created_at: chrono::NaiveDateTime,
    #[serde(serialize_with = "utc")]
    pub updated_at: chrono::NaiveDateTime,
}

/// A stored time as RFC 3339 UTC with `Z`, as the rest of the API shows
/// times.
fn utc<S: serde::Serializer>(at: &chrono::NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(
        &at.and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    )
}

/// The loaded rules.
pub struct Rules {
    templates: Arc<Templates>,
    set: RwLock<Arc<RuleSet>>,
    /// The named calendars and recipients, loaded with the rules.
    pub(crate) directory: RwLock<Arc<Directory>>,
    version: Mutex<Option<String>>,
}

impl Rules {
    pub fn new(templates: Arc<Templates>) -> Rules {
        Rules {
            templates,
            set: RwLock::new(Arc::new(RuleSet::default())),
            directory: RwLock::new(Arc::new(Directory::default())),
            version: Mutex::new(None),
        }
    }

    pub fn templates(&self) -> &Arc<Templates> {
        &self.templates
    }

    /// The rules in force.
    pub fn current(&self) -> Arc<RuleSet> {
        self.set
            .read()
            .map(|set| Arc::clone(&set))
            .unwrap_or_default()
    }

    /// The named calendars and recipients in force.
    pub fn directory(&self) -> Arc<Directory> {
        self.directory
            .read()
            .map(|d| Arc::clone(&d))
            .unwrap_or_default()
    }

    /// Validates a rule without storing it (a named calendar must be one
    /// of those loaded).
    pub fn compile(&self, def: RuleDef, id: Option<i64>) -> Result<CompiledRule, RuleError> {
        CompiledRule::compile_in(def, id, &self.templates, &self.directory())
    }

    /// Loads every rule from the database. A stored rule that no longer
    /// compiles (its template was removed, say) is left out and logged.
    pub fn reload(&self, conn: &mut DbConnection) -> Result<usize, RulesError> {
        let version = rules::version(conn)?;
        let directory = crate::directory_store::load(conn)?;
        if let Ok(mut current) = self.directory.write() {
            *current = Arc::new(directory);
        }
        let rows = rules::all(conn)?;
        let mut compiled = Vec::new();
        for row in rows {
            match definition(&row).and_then(|def| self.compile(def, Some(row.id))) {
                Ok(rule) => compiled.push(rule),
                Err(error) => {
                    tracing::error!(%error, "a stored rule is invalid and is not in force")
                }
            }
        }
        let set = RuleSet::new(compiled);
        let count = set.len();
        if let Ok(mut current) = self.set.write() {
            *current = Arc::new(set);
        }
        if let Ok(mut current) = self.version.lock() {
            *current = version;
        }
        Ok(count)
    }

    /// After a change made here: reloads, then brings armed timers in line
    /// (those of deleted or disabled rules cancelled, those of edited timer
    /// rules re-computed).
    pub(crate) fn changed(&self, conn: &mut DbConnection) -> Result<usize, RulesError> {
        let count = self.reload(conn)?;
        let set = self.current();
        let directory = self.directory();
        hookline_storage::write_transaction(conn, |conn| {
            crate::timers::reconcile(conn, &set)?;
            crate::directory_store::reschedule_held(conn, &directory)
        })?;
        Ok(count)
    }

    /// Reloads when the rules changed since the last load (here or in
    /// another process); true when it did.
    pub fn reload_if_changed(&self, conn: &mut DbConnection) -> Result<bool, RulesError> {
        let version = rules::version(conn)?;
        let known = self.version.lock().map(|v| v.clone()).unwrap_or_default();
        if version == known {
            return Ok(false);
        }
        self.reload(conn)?;
        Ok(true)
    }

    /// [`Rules::reload_if_changed`] inside the ingest transaction: one
    /// read of the `rules_version` setting, and a reload only when a rule
    /// changed, so that a change (from this process or another sharing the
    /// database) is in force for every event committed after it.
    pub fn refresh(&self, conn: &mut DbConnection) -> QueryResult<()> {
        match self.reload_if_changed(conn) {
            Ok(_) => Ok(()),
            Err(RulesError::Database(error)) => Err(error),
            Err(error) => {
                tracing::error!(%error, "rules could not be reloaded; the previous rules stay in force");
                Ok(())
            }
        }
    }

    /// Adds the default rules unless they were added before (deleting them
    /// is respected).
    pub fn seed_defaults(&self, conn: &mut DbConnection) -> Result<(), RulesError> {
        let file = RulesFile::parse(DEFAULT_RULES).map_err(RulesError::File)?;
        if settings::get(conn, DEFAULTS_SEEDED)?.is_none() {
            self.import(conn, file.rule)?;
            settings::put(conn, DEFAULTS_SEEDED, "1")?;
            settings::put(conn, DEFAULTS_THROTTLED, "1")?;
            return self.seed_timer_examples(conn);
        }
        if settings::get(conn, DEFAULTS_THROTTLED)?.is_none() {
            self.throttle_old_defaults(conn, file.rule)?;
            settings::put(conn, DEFAULTS_THROTTLED, "1")?;
        }
        self.seed_timer_examples(conn)
    }

    /// Adds [`TIMER_EXAMPLES`] (the rules disabled, and the calendar they
    /// share), once (a rule or calendar of the same name an operator made
    /// is left as it is).
    fn seed_timer_examples(&self, conn: &mut DbConnection) -> Result<(), RulesError> {
        if settings::get(conn, TIMER_EXAMPLES_SEEDED)?.is_some() {
            return Ok(());
        }
        let mut examples = RulesFile::parse(TIMER_EXAMPLES).map_err(RulesError::File)?;
        let mut taken = Vec::new();
        for example in &examples.rule {
            if rules::by_name(conn, &example.name)?.is_some() {
                taken.push(example.name.clone());
            }
        }
        examples.rule.retain(|e| !taken.contains(&e.name));
        self.reload_if_changed(conn)?;
        let directory = self.directory();
        examples
            .calendar
            .retain(|c| directory.calendar(&c.name).is_none());
        if !examples.rule.is_empty() {
            self.import_file(conn, examples)?;
        }
        settings::put(conn, TIMER_EXAMPLES_SEEDED, "1")?;
        Ok(())
    }

    /// Gives the throttle to default rules stored exactly as an older
    /// hookline seeded them (no throttle); a default rule an operator has
    /// edited is left as it is.
    fn throttle_old_defaults(
        &self,
        conn: &mut DbConnection,
        defaults: Vec<RuleDef>,
    ) -> Result<(), RulesError> {
        let mut upgraded = Vec::new();
        for new in defaults {
            let Some(row) = rules::by_name(conn, &new.name)? else {
                continue;
            };
            let Ok(stored) = definition(&row) else {
                continue;
            };
            let old = RuleDef {
                throttle: None,
                enabled: stored.enabled,
                ..new.clone()
            };
            if stored == old {
                upgraded.push(RuleDef {
                    enabled: stored.enabled,
                    ..new
                });
            }
        }
        if !upgraded.is_empty() {
            tracing::info!(
                rules = upgraded.len(),
                "default rules get a 10-minute throttle"
            );
            self.import(conn, upgraded)?;
        }
        Ok(())
    }

    pub fn list(&self, conn: &mut DbConnection) -> Result<Vec<RuleView>, RulesError> {
        rules::all(conn)?.iter().map(view).collect()
    }

    pub fn get(&self, conn: &mut DbConnection, id: i64) -> Result<Option<RuleView>, RulesError> {
        rules::get(conn, id)?.as_ref().map(view).transpose()
    }

    pub fn create(&self, conn: &mut DbConnection, def: RuleDef) -> Result<RuleView, RulesError> {
        self.reload_if_changed(conn)?;
        let rule = self.compile(def, None)?;
        if rules::by_name(conn, rule.name())?.is_some() {
            return Err(RulesError::Duplicate(rule.name().to_owned()));
        }
        let json = serde_json::to_string(&rule.def).unwrap_or_default();
        // Checked above, but another request may take the name in between:
        // the unique index decides, and the loser hears why.
        let row = rules::insert(conn, &change(&rule.def, &json))
            .map_err(|e| name_taken(e, rule.name()))?;
        self.changed(conn)?;
        view(&row)
    }

    /// Replaces rule `id`; `None` when there is no such rule.
    pub fn update(
        &self,
        conn: &mut DbConnection,
        id: i64,
        def: RuleDef,
    ) -> Result<Option<RuleView>, RulesError> {
        if let Some(other) = def.id.filter(|other| *other != id) {
            return Err(RulesError::Invalid(RuleError::new(
                &def.name,
                format!("\"id\" is {other} but this is rule {id}: leave \"id\" out or give this rule's own"),
            )));
        }
        self.reload_if_changed(conn)?;
        let rule = self.compile(def, Some(id))?;
        if let Some(other) = rules::by_name(conn, rule.name())? {
            if other.id != id {
                return Err(RulesError::Duplicate(rule.name().to_owned()));
            }
        }
        let json = serde_json::to_string(&rule.def).unwrap_or_default();
        let row = rules::update(conn, id, &change(&rule.def, &json))
            .map_err(|e| name_taken(e, rule.name()))?;
        self.changed(conn)?;
        row.as_ref().map(view).transpose()
    }

    pub fn delete(&self, conn: &mut DbConnection, id: i64) -> Result<bool, RulesError> {
        let deleted = rules::delete(conn, id)?;
        self.changed(conn)?;
        Ok(deleted)
    }

    /// Validates every rule, then upserts them all by name in one
    /// transaction: a file with one bad rule changes nothing.
    pub fn import(
        &self,
        conn: &mut DbConnection,
        defs: Vec<RuleDef>,
    ) -> Result<(usize, usize), RulesError> {
        self.import_file(
            conn,
            RulesFile {
                rule: defs,
                ..RulesFile::default()
            },
        )
    }

    /// Validates a whole rules file (its calendars and recipients over
    /// the stored ones, then every rule), then stores it all in one
    /// transaction: a file with one bad entry changes nothing. Returns the
    /// rules (created, updated).
    pub fn import_file(
        &self,
        conn: &mut DbConnection,
        file: RulesFile,
    ) -> Result<(usize, usize), RulesError> {
        self.reload_if_changed(conn)?;
        let directory = crate::directory_store::overlay(&self.directory(), &file)?;
        let compiled = check_all(&self.templates, &directory, file.rule)?;
        let jsons: Vec<String> = compiled
            .iter()
            .map(|r| serde_json::to_string(&r.def).unwrap_or_default())
            .collect();
        let changes: Vec<RuleChange<'_>> = compiled
            .iter()
            .zip(&jsons)
            .map(|(rule, json)| change(&rule.def, json))
            .collect();
        let counts = hookline_storage::write_transaction(conn, |conn| {
            crate::directory_store::store(conn, &file.calendar, &file.recipient)?;
            rules::upsert_all_in(conn, &changes)
        })?;
        self.changed(conn)?;
        Ok(counts)
    }

    /// Every stored rule as a rules file.
    pub fn export(&self, conn: &mut DbConnection) -> Result<RulesFile, RulesError> {
        let rule = rules::all(conn)?
            .iter()
            .map(definition)
            .collect::<Result<Vec<_>, _>>()?;
        let (calendar, recipient) = crate::directory_store::export(conn)?;
        Ok(RulesFile {
            rule,
            calendar,
            recipient,
        })
    }
}

/// A unique-index violation on the rule's name as [`RulesError::Duplicate`].
fn name_taken(error: hookline_storage::diesel::result::Error, name: &str) -> RulesError {
    use hookline_storage::diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            RulesError::Duplicate(name.to_owned())
        }
        other => RulesError::Database(other),
    }
}

/// Validates every rule of a file (names unique too); the first problem
/// names its rule.
pub fn check_all(
    templates: &Templates,
    directory: &Directory,
    defs: Vec<RuleDef>,
) -> Result<Vec<CompiledRule>, RulesError> {
    let mut names = std::collections::HashSet::new();
    let mut compiled = Vec::new();
    for def in defs {
        let rule = CompiledRule::compile_in(def, None, templates, directory)?;
        if !names.insert(rule.name().to_owned()) {
            return Err(RulesError::Duplicate(rule.name().to_owned()));
        }
        compiled.push(rule);
    }
    Ok(compiled)
}

/// [`check_all`] that goes on after a bad rule: the rules that compile,
/// and every problem (each bad rule, each name used twice).
pub fn check_each(
    templates: &Templates,
    directory: &Directory,
    defs: Vec<RuleDef>,
) -> (Vec<CompiledRule>, Vec<RulesError>) {
    let mut names = std::collections::HashSet::new();
    let mut compiled = Vec::new();
    let mut errors = Vec::new();
    for def in defs {
        match CompiledRule::compile_in(def, None, templates, directory) {
            Ok(rule) if !names.insert(rule.name().to_owned()) => {
                errors.push(RulesError::Duplicate(rule.name().to_owned()));
            }
            Ok(rule) => compiled.push(rule),
            Err(error) => errors.push(error.into()),
        }
    }
    (compiled, errors)
}

fn change<'a>(def: &'a RuleDef, json: &'a str) -> RuleChange<'a> {
    RuleChange {
        name: &def.name,
        enabled: def.enabled,
        definition: json,
        updated_at: hookline_storage::now(),
    }
}

/// The stored definition, with the row's name and enabled flag.
pub(crate) fn definition(row: &RuleRow) -> Result<RuleDef, RuleError> {
    let mut def: RuleDef = serde_json::from_str(&row.definition)
        .map_err(|e| RuleError::new(&row.name, format!("stored definition is unreadable: {e}")))?;
    def.name = row.name.clone();
    def.enabled = row.enabled;
    Ok(def)
}

fn view(row: &RuleRow) -> Result<RuleView, RulesError> {
    Ok(RuleView {
        id: row.id,
        rule: definition(row)?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
