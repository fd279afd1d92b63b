//! Named calendars and recipients in the database (tables `calendars` and
//! `recipients`): loaded with the rules, validated on every way in (rules
//! file, JSON API). Editing a calendar re-computes the armed timers of the
//! rules that use it (their fingerprint holds its content) and the held
//! emails of the recipients whose quiet hours it is.

use hookline_storage::diesel::QueryResult;
use hookline_storage::directory as table;
use hookline_storage::notifications;
use hookline_storage::{rules, DbConnection};
use serde::Serialize;

use crate::calendar::CalendarDef;
use crate::directory::{normalize_email, Directory, NamedCalendar, RecipientDef};
use crate::rule::RulesFile;
use crate::rules_store::{definition, Rules, RulesError};

/// A stored calendar as the API shows it, with what uses it.
#[derive(Clone, Debug, Serialize)]
pub struct CalendarView {
    #[serde(flatten)]
    pub calendar: NamedCalendar,
    /// Rules whose `timer.calendar` or `timer.quiet_hours` name it.
    pub rules: Vec<String>,
    /// Recipients whose quiet hours it is.
    pub recipients: Vec<String>,
}

/// The stored calendars and recipients as validated; a stored entry that
/// no longer validates is left out and logged.
pub(crate) fn load(conn: &mut DbConnection) -> QueryResult<Directory> {
    let (calendars, recipients) = export(conn)?;
    let mut directory = Directory::default();
    for named in calendars {
        if let Err(error) = directory.add_calendar(&named.name, named.def()) {
            tracing::error!(%error, "a stored calendar is invalid and is not in force");
        }
    }
    for recipient in recipients {
        if let Err(error) = directory.add_recipient(&recipient) {
            tracing::error!(%error, "a stored recipient is invalid; no quiet hours for it");
        }
    }
    Ok(directory)
}

/// The stored calendars and recipients as a rules file writes them.
pub(crate) fn export(
    conn: &mut DbConnection,
) -> QueryResult<(Vec<NamedCalendar>, Vec<RecipientDef>)> {
    let mut calendars = Vec::new();
    for row in table::calendars(conn)? {
        match serde_json::from_str::<CalendarDef>(&row.definition) {
            Ok(def) => calendars.push(NamedCalendar::new(&row.name, def)),
            Err(error) => {
                tracing::error!(%error, calendar = row.name, "a stored calendar is unreadable")
            }
        }
    }
    let recipients = table::recipients(conn)?
        .into_iter()
        .map(|row| RecipientDef {
            email: row.email,
            quiet_hours: row.quiet_hours,
        })
        .collect();
    Ok((calendars, recipients))
}

/// The stored directory with a file's calendars and recipients added (or
/// replacing those of the same name), validated.
pub(crate) fn overlay(stored: &Directory, file: &RulesFile) -> Result<Directory, RulesError> {
    // Names unique within the file, each calendar valid.
    Directory::new(&file.calendar, &[]).map_err(RulesError::InvalidCalendar)?;
    let mut directory = stored.clone();
    for named in &file.calendar {
        directory
            .add_calendar(&named.name, named.def())
            .map_err(RulesError::InvalidCalendar)?;
    }
    for recipient in &file.recipient {
        directory
            .add_recipient(recipient)
            .map_err(RulesError::InvalidCalendar)?;
    }
    Ok(directory)
}

/// Stores (upserts) calendars and recipients, in the caller's transaction.
pub(crate) fn store(
    conn: &mut DbConnection,
    calendars: &[NamedCalendar],
    recipients: &[RecipientDef],
) -> QueryResult<()> {
    let now = hookline_storage::now();
    for named in calendars {
        let json = serde_json::to_string(&named.def()).unwrap_or_default();
        table::put_calendar(conn, &named.name, &json, now)?;
    }
    for recipient in recipients {
        let Ok(email) = normalize_email(&recipient.email) else {
            continue;
        };
        let quiet = recipient
            .quiet_hours
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty());
        table::put_recipient(conn, &email, quiet, now)?;
    }
    Ok(())
}

/// Brings held emails in line with the recipients' quiet hours as they are
/// now (database clock): still inside them, held until they end; else due
/// at once. In the caller's transaction.
pub(crate) fn reschedule_held(conn: &mut DbConnection, directory: &Directory) -> QueryResult<()> {
    let held = notifications::held(conn)?;
    if held.is_empty() {
        return Ok(());
    }
    let now = hookline_storage::db_now(conn)?;
    for (recipient, id) in held {
        match directory.held_until(&recipient, now) {
            Some((until, reason)) => {
                notifications::reschedule_held(conn, id, Some(until), &reason, now)?
            }
            None => notifications::reschedule_held(
                conn,
                id,
                None,
                &format!("was held; {recipient}'s quiet hours ended or changed"),
                now,
            )?,
        };
    }
    Ok(())
}

impl Rules {
    /// Every stored calendar, with the rules and recipients that use it.
    pub fn calendars(&self, conn: &mut DbConnection) -> Result<Vec<CalendarView>, RulesError> {
        let (calendars, recipients) = export(conn)?;
        let uses = uses(conn)?;
        Ok(calendars
            .into_iter()
            .map(|calendar| CalendarView {
                rules: uses
                    .iter()
                    .filter(|(_, names)| names.contains(&calendar.name))
                    .map(|(rule, _)| rule.clone())
                    .collect(),
                recipients: recipients
                    .iter()
                    .filter(|r| r.quiet_hours.as_deref() == Some(calendar.name.as_str()))
                    .map(|r| r.email.clone())
                    .collect(),
                calendar,
            })
            .collect())
    }

    /// Creates or replaces calendar `name`; true when it was created. The
    /// armed timers of the rules that use it are re-computed, and the held
    /// emails of the recipients whose quiet hours it is.
    pub fn put_calendar(
        &self,
        conn: &mut DbConnection,
        name: &str,
        def: CalendarDef,
    ) -> Result<bool, RulesError> {
        Directory::default()
            .add_calendar(name, def.clone())
            .map_err(RulesError::InvalidCalendar)?;
        let json = serde_json::to_string(&def).unwrap_or_default();
        let created = hookline_storage::write_transaction(conn, |conn| {
            table::put_calendar(conn, name, &json, hookline_storage::now())
        })?;
        self.changed(conn)?;
        Ok(created)
    }

    /// Deletes calendar `name`: false when there is none; refused
    /// ([`RulesError::InUse`], naming them) while rules or recipients use
    /// it.
    pub fn delete_calendar(&self, conn: &mut DbConnection, name: &str) -> Result<bool, RulesError> {
        let deleted = hookline_storage::write_transaction(conn, |conn| {
            let rules: Vec<String> = uses(conn)?
                .into_iter()
                .filter(|(_, names)| names.iter().any(|n| n == name))
                .map(|(rule, _)| rule)
                .collect();
            let recipients: Vec<String> = table::recipients(conn)?
                .into_iter()
                .filter(|r| r.quiet_hours.as_deref() == Some(name))
                .map(|r| r.email)
                .collect();
            if !rules.is_empty() || !recipients.is_empty() {
                let mut users = Vec::new();
                if !rules.is_empty() {
                    users.push(format!("rule(s) {}", quoted(&rules)));
                }
                if !recipients.is_empty() {
                    users.push(format!("recipient(s) {}", quoted(&recipients)));
                }
                return Err(RulesError::InUse(format!(
                    "calendar {name:?} is in use by {}: change them first",
                    users.join(" and ")
                )));
            }
            Ok(table::delete_calendar(conn, name)?)
        })?;
        if deleted {
            self.changed(conn)?;
        }
        Ok(deleted)
    }

    /// Every stored recipient.
    pub fn recipients(&self, conn: &mut DbConnection) -> Result<Vec<RecipientDef>, RulesError> {
        Ok(export(conn)?.1)
    }

    /// Creates or replaces a recipient (its quiet hours must name a stored
    /// calendar); true when it was created. Its held emails are
    /// re-computed.
    pub fn put_recipient(
        &self,
        conn: &mut DbConnection,
        recipient: RecipientDef,
    ) -> Result<(bool, RecipientDef), RulesError> {
        self.reload_if_changed(conn)?;
        let mut directory = (*self.directory()).clone();
        let email = directory
            .add_recipient(&recipient)
            .map_err(RulesError::InvalidCalendar)?;
        let recipient = RecipientDef {
            email,
            quiet_hours: recipient
                .quiet_hours
                .map(|q| q.trim().to_owned())
                .filter(|q| !q.is_empty()),
        };
        let created = hookline_storage::write_transaction(conn, |conn| {
            // The calendar may have gone since the check: look again here.
            if let Some(name) = &recipient.quiet_hours {
                let known = table::calendars(conn)?.iter().any(|c| &c.name == name);
                if !known {
                    return Err(RulesError::InvalidCalendar(format!(
                        "recipient {:?}: quiet_hours: unknown calendar {name:?}",
                        recipient.email
                    )));
                }
            }
            Ok(table::put_recipient(
                conn,
                &recipient.email,
                recipient.quiet_hours.as_deref(),
                hookline_storage::now(),
            )?)
        })?;
        self.changed(conn)?;
        Ok((created, recipient))
    }

    /// Deletes a recipient (its held emails go at once); false when there
    /// is none.
    pub fn delete_recipient(
        &self,
        conn: &mut DbConnection,
        email: &str,
    ) -> Result<bool, RulesError> {
        let email = email.trim().to_lowercase();
        let deleted = hookline_storage::write_transaction(conn, |conn| {
            table::delete_recipient(conn, &email)
        })?;
        if deleted {
            self.changed(conn)?;
        }
        Ok(deleted)
    }
}

/// Each stored rule's name and the shared calendars it names.
fn uses(conn: &mut DbConnection) -> QueryResult<Vec<(String, Vec<String>)>> {
    Ok(rules::all(conn)?
        .iter()
        .filter_map(|row| definition(row).ok())
        .filter_map(|def| {
            let names: Vec<String> = def
                .timer
                .as_ref()
                .map(crate::timers::CompiledTimer::calendar_names)?
                .into_iter()
                .map(str::to_owned)
                .collect();
            (!names.is_empty()).then_some((def.name, names))
        })
        .collect())
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
