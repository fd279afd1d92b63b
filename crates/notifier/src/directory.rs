//! Named business calendars that timer rules share (`calendar =
//! "support-berlin"`, `quiet_hours = "nights-berlin"`), and recipients with
//! quiet hours of their own: an email to such a recipient due inside them
//! is held (status `held`, with when it will go) and sent when they end.
//!
//! In a rules file:
//!
//! ```toml
//! [[calendar]]
//! name = "nights-berlin"
//! time_zone = "Europe/Berlin"
//! hours = { mon = ["00:00-07:00", "22:00-24:00"] }
//!
//! [[recipient]]
//! email = "lead@example.com"
//! quiet_hours = "nights-berlin"
//! ```

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, CalendarDef};

/// The longest calendar name.
pub const MAX_NAME_CHARS: usize = 100;

/// A `[[calendar]]`: a name and the calendar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedCalendar {
    pub name: String,
    pub time_zone: String,
    pub hours: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<String>,
}

impl NamedCalendar {
    pub fn new(name: &str, def: CalendarDef) -> NamedCalendar {
        NamedCalendar {
            name: name.to_owned(),
            time_zone: def.time_zone,
            hours: def.hours,
            holidays: def.holidays,
        }
    }

    /// The calendar without its name.
    pub fn def(&self) -> CalendarDef {
        CalendarDef {
            time_zone: self.time_zone.clone(),
            hours: self.hours.clone(),
            holidays: self.holidays.clone(),
        }
    }
}

/// A `[[recipient]]`: an address and its quiet hours (a calendar's name).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientDef {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<String>,
}

/// Checks a calendar's name: not empty, not too long, no NUL or slash (it
/// is a path segment of the API).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("a calendar's name is empty".to_owned());
    }
    if name.trim() != name {
        return Err(format!("calendar name {name:?} starts or ends with spaces"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "calendar name is longer than {MAX_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err(format!(
            "calendar name {name:?} has a control character or a slash"
        ));
    }
    Ok(())
}

/// A recipient's address as stored and compared: trimmed, lower case; an
/// error when it is not an address.
pub fn normalize_email(email: &str) -> Result<String, String> {
    let email = email.trim().to_lowercase();
    let valid = email.parse::<lettre::Address>().is_ok();
    if !valid || email.len() > 320 {
        return Err(format!("recipient {email:?} is not an email address"));
    }
    Ok(email)
}

/// The calendars and recipients in force, validated.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    calendars: BTreeMap<String, (CalendarDef, Calendar)>,
    /// Lower-case address to the name of its quiet hours.
    recipients: BTreeMap<String, String>,
}

impl Directory {
    /// Validates calendars (each compiles, names unique) and recipients
    /// (addresses, quiet hours naming a calendar); the first problem names
    /// its entry.
    pub fn new(
        calendars: &[NamedCalendar],
        recipients: &[RecipientDef],
    ) -> Result<Directory, String> {
        let mut directory = Directory::default();
        for named in calendars {
            check_name(&named.name)?;
            let def = named.def();
            let calendar =
                Calendar::compile(&def).map_err(|p| format!("calendar {:?}: {p}", named.name))?;
            if directory
                .calendars
                .insert(named.name.clone(), (def, calendar))
                .is_some()
            {
                return Err(format!("calendar {:?} is defined twice", named.name));
            }
        }
        for recipient in recipients {
            directory.add_recipient(recipient)?;
        }
        Ok(directory)
    }

    /// Adds (or replaces) a recipient after checking it.
    pub fn add_recipient(&mut self, recipient: &RecipientDef) -> Result<String, String> {
        let email = normalize_email(&recipient.email)?;
        match recipient.quiet_hours.as_deref().map(str::trim) {
            None | Some("") => {
                self.recipients.remove(&email);
            }
            Some(name) => {
                if !self.calendars.contains_key(name) {
                    return Err(format!(
                        "recipient {email:?}: quiet_hours: {}",
                        self.unknown(name)
                    ));
                }
                self.recipients.insert(email.clone(), name.to_owned());
            }
        }
        Ok(email)
    }

    /// Adds (or replaces) a calendar after checking it.
    pub fn add_calendar(&mut self, name: &str, def: CalendarDef) -> Result<(), String> {
        check_name(name)?;
        let calendar = Calendar::compile(&def).map_err(|p| format!("calendar {name:?}: {p}"))?;
        self.calendars.insert(name.to_owned(), (def, calendar));
        Ok(())
    }

    /// The calendar named `name`.
    pub fn calendar(&self, name: &str) -> Option<&(CalendarDef, Calendar)> {
        self.calendars.get(name.trim())
    }

    pub fn calendar_names(&self) -> impl Iterator<Item = &str> {
        self.calendars.keys().map(String::as_str)
    }

    /// "unknown calendar "x": did you mean "y"? (defined: ...)".
    pub fn unknown(&self, name: &str) -> String {
        let hint = crate::lint::closest(name, self.calendar_names())
            .map(|c| format!(": did you mean `{c}`?"))
            .unwrap_or_default();
        let known = if self.calendars.is_empty() {
            "no calendar is defined (add a [[calendar]] with this name)".to_owned()
        } else {
            format!(
                "defined are {}",
                self.calendar_names().collect::<Vec<_>>().join(", ")
            )
        };
        format!("unknown calendar {name:?}{hint} ({known})")
    }

    /// Whether any recipient has quiet hours (else nothing is ever held).
    pub fn has_quiet_recipients(&self) -> bool {
        !self.recipients.is_empty()
    }

    /// The name of `address`'s quiet hours, if it has any.
    pub fn quiet_hours_of(&self, address: &str) -> Option<&str> {
        self.recipients
            .get(&address.trim().to_lowercase())
            .map(String::as_str)
    }

    /// When `address`'s quiet hours end, if `now` (the database's clock)
    /// is inside them, with a reason for the outbox row.
    pub fn held_until(&self, address: &str, now: NaiveDateTime) -> Option<(NaiveDateTime, String)> {
        let name = self.quiet_hours_of(address)?;
        let (_, calendar) = self.calendars.get(name)?;
        let until = calendar.open_until(now)?;
        Some((
            until,
            format!(
                "held: inside the quiet hours of {} ({name:?}); goes at {}",
                address.trim(),
                until.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        ))
    }
}

/// Whether an email to `address` is held now: its quiet hours' end and the
/// reason, by the database's clock (read only when `address` has quiet
/// hours).
pub fn hold(
    conn: &mut hookline_storage::DbConnection,
    directory: &Directory,
    address: &str,
) -> hookline_storage::diesel::QueryResult<Option<(NaiveDateTime, String)>> {
    if directory.quiet_hours_of(address).is_none() {
        return Ok(None);
    }
    let now = hookline_storage::db_now(conn)?;
    Ok(directory.held_until(address, now))
}
