//! hookline's notifier: alert rules (validated, compiled, indexed by event
//! type), evaluated in the ingest transaction into a transactional outbox;
//! handlebars email templates; the lettre transport; the outbox worker.

pub mod calendar;
mod condition;
pub mod context;
pub mod directory;
pub mod directory_store;
pub mod dry_run;
mod duration;
pub mod engine;
pub mod erase;
pub mod fields;
pub mod hook;
pub mod links;
pub mod lint;
pub mod mailer;
mod outbox;
mod path;
pub mod policy;
pub mod preview;
pub mod render;
pub mod rule;
pub mod rules_store;
pub mod samples;
pub mod templates;
pub mod timers;
pub mod worker;

pub use condition::{Lookups, Op};
pub use duration::{parse_duration, DurationError};
pub use engine::{CompiledRule, RuleSet};
pub use hook::NotifierHook;
pub use mailer::{Mailer, MailerError};
pub use policy::{NotADomain, RecipientPolicy};
pub use rule::{ConditionDef, RuleDef, RuleError, RulesFile};
pub use rules_store::{RuleView, Rules, RulesError, DEFAULT_RULES};
pub use templates::{Rendered, TemplateError, Templates};
pub use timers::{TimerSettings, TimerStats, TimerWorker};
pub use worker::{Worker, WorkerSettings};
