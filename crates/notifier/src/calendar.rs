//! Business calendars and quiet hours: weekly hours in an IANA time zone
//! (several ranges a day, such as a lunch break), holidays, and the
//! arithmetic timer rules need: "Friday 17:55 plus 10 business minutes is
//! Monday 09:05", and "when do these quiet hours end". Times in and out are
//! UTC; each range is turned into UTC instants on its own day, so a range
//! across a daylight-saving change counts the time that really passes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A calendar as written: `time_zone = "Europe/Berlin"`, `hours = { mon =
/// ["09:00-12:30", "13:30-17:00"], ... }`, `holidays = ["2026-12-25"]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarDef {
    pub time_zone: String,
    /// Day (`mon` ... `sun`) to ranges `HH:MM-HH:MM` (`24:00` ends a day).
    pub hours: BTreeMap<String, Vec<String>>,
    /// Dates (`YYYY-MM-DD`) with no hours at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<String>,
}

/// Where a timer rule's calendar or quiet hours come from: the name of a
/// shared calendar (`calendar = "support-berlin"`) or a table of its own.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CalendarRef {
    Named(String),
    Inline(CalendarDef),
}

impl CalendarRef {
    /// The shared calendar's name, if it is one.
    pub fn name(&self) -> Option<&str> {
        match self {
            CalendarRef::Named(name) => Some(name.trim()),
            CalendarRef::Inline(_) => None,
        }
    }
}

/// A name or a table; written by hand so that a mistake inside the table
/// is named (`unknown field ...`) rather than "no variant matched".
impl<'de> Deserialize<'de> for CalendarRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CalendarRef, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = CalendarRef;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a calendar's name or a table with time_zone, hours and holidays")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CalendarRef, E> {
                Ok(CalendarRef::Named(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<CalendarRef, A::Error> {
                CalendarDef::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(CalendarRef::Inline)
            }
        }
        d.deserialize_any(Visitor)
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The most days [`Calendar::add`] looks ahead before giving up (a
/// calendar of holidays only).
const HORIZON_DAYS: i64 = 3 * 366;

/// A validated calendar.
#[derive(Clone, Debug, PartialEq)]
pub struct Calendar {
    tz: Tz,
    /// Per weekday (Monday first), sorted ranges in seconds from midnight
    /// (end up to 86,400).
    week: [Vec<(u32, u32)>; 7],
    holidays: BTreeSet<NaiveDate>,
}

fn parse_clock(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if m >= 60 || h > 24 || (h == 24 && m > 0) || text.trim().len() != 5 {
        return None;
    }
    Some(h * 3_600 + m * 60)
}

impl Calendar {
    /// Validates a calendar; the error names the bad entry.
    pub fn compile(def: &CalendarDef) -> Result<Calendar, String> {
        let tz: Tz = def.time_zone.trim().parse().map_err(|_| {
            format!(
                "time_zone {:?} is not an IANA time zone (write e.g. \"Europe/Berlin\" or \"America/New_York\")",
                def.time_zone
            )
        })?;
        let mut week: [Vec<(u32, u32)>; 7] = Default::default();
        for (day, ranges) in &def.hours {
            let Some(index) = DAYS.iter().position(|d| *d == day.trim().to_lowercase()) else {
                return Err(format!(
                    "hours: {day:?} is not a day; use {}",
                    DAYS.join(", ")
                ));
            };
            let mut parsed = Vec::new();
            for range in ranges {
                let bad = || {
                    format!("hours.{day}: {range:?} is not a range like \"09:00-12:30\" (24:00 ends the day)")
                };
                let (from, to) = range.split_once('-').ok_or_else(bad)?;
                let (from, to) = (
                    parse_clock(from).ok_or_else(bad)?,
                    parse_clock(to).ok_or_else(bad)?,
                );
                if from >= to {
                    return Err(format!(
                        "hours.{day}: {range:?} ends before it starts (a range across midnight is two: \"22:00-24:00\" and the next day's \"00:00-06:00\")"
                    ));
                }
                parsed.push((from, to));
            }
            parsed.sort_unstable();
            if parsed.windows(2).any(|w| w[0].1 > w[1].0) {
                return Err(format!("hours.{day}: ranges overlap"));
            }
            week[index] = parsed;
        }
        if week.iter().all(Vec::is_empty) {
            return Err("hours: no day has any hours".to_owned());
        }
        let holidays = def
            .holidays
            .iter()
            .map(|d| {
                NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                    .map_err(|_| format!("holidays: {d:?} is not a date like \"2026-12-25\""))
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        Ok(Calendar { tz, week, holidays })
    }

    /// The UTC instant of local `date` + `seconds` from its midnight: in a
    /// gap (clocks jumped forward) the first instant after it; when a time
    /// happens twice (clocks went back) the first.
    fn instant(&self, date: NaiveDate, seconds: u32) -> Option<NaiveDateTime> {
        let local = date.and_hms_opt(0, 0, 0)? + chrono::Duration::seconds(i64::from(seconds));
        for shift in 0..=4 {
            let at = local + chrono::Duration::minutes(30 * shift);
            if let Some(instant) = self.tz.from_local_datetime(&at).earliest() {
                return Some(instant.naive_utc());
            }
        }
        None
    }

    /// The open ranges of local `date` as UTC instants.
    fn ranges(&self, date: NaiveDate) -> Vec<(NaiveDateTime, NaiveDateTime)> {
        if self.holidays.contains(&date) {
            return Vec::new();
        }
        let index = date.weekday().num_days_from_monday() as usize;
        self.week[index]
            .iter()
            .filter_map(|(from, to)| Some((self.instant(date, *from)?, self.instant(date, *to)?)))
            .filter(|(from, to)| from < to)
            .collect()
    }

    fn local_date(&self, at: NaiveDateTime) -> NaiveDate {
        self.tz.from_utc_datetime(&at).date_naive()
    }

    /// `start` plus `by` of open time: the instant when `by` of the
    /// calendar's hours have passed since `start`. `None` when the hours
    /// never add up to it within three years.
    pub fn add(&self, start: NaiveDateTime, by: Duration) -> Option<NaiveDateTime> {
        let mut remaining = chrono::Duration::from_std(by).ok()?;
        let mut cursor = start;
        // From the day before (a range of yesterday's local date may still
        // be open at `start` in UTC terms: never, but it costs nothing).
        let first = self.local_date(start).pred_opt()?;
        for offset in 0..HORIZON_DAYS {
            let date = first.checked_add_days(chrono::Days::new(offset as u64))?;
            for (from, to) in self.ranges(date) {
                let from = from.max(cursor);
                if from >= to {
                    continue;
                }
                let open = to - from;
                if remaining <= open {
                    return Some(from + remaining);
                }
                remaining -= open;
                cursor = to;
            }
        }
        None
    }

    /// When the range `at` falls in ends (following adjacent ranges, such
    /// as `22:00-24:00` then `00:00-07:00`); `None` when `at` is in none.
    pub fn open_until(&self, at: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut until: Option<NaiveDateTime> = None;
        let mut probe = at;
        for _ in 0..16 {
            let date = self.local_date(probe);
            let yesterday = date.pred_opt()?;
            let found = [yesterday, date]
                .into_iter()
                .flat_map(|d| self.ranges(d))
                .find(|(from, to)| *from <= probe && probe < *to);
            match found {
                Some((_, to)) => {
                    until = Some(to);
                    probe = to;
                }
                None => break,
            }
        }
        until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UTC instant from `2026-01-02 17:55`.
    fn utc(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    fn office(tz: &str, holidays: &[&str]) -> Calendar {
        let day = vec!["09:00-12:30".to_owned(), "13:30-18:00".to_owned()];
        let hours = ["mon", "tue", "wed", "thu", "fri"]
            .iter()
            .map(|d| ((*d).to_owned(), day.clone()))
            .collect();
        Calendar::compile(&CalendarDef {
            time_zone: tz.to_owned(),
            hours,
            holidays: holidays.iter().map(|h| (*h).to_owned()).collect(),
        })
        .unwrap()
    }

    fn minutes(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    #[test]
    fn friday_evening_plus_ten_minutes_is_monday_morning() {
        // 2026-01-02 is a Friday; UTC, so local = UTC.
        let cal = office("UTC", &[]);
        assert_eq!(
            cal.add(utc("2026-01-02 17:55"), minutes(10)),
            Some(utc("2026-01-05 09:05"))
        );
        // Saturday counts nothing: the clock starts Monday 09:00.
        assert_eq!(
            cal.add(utc("2026-01-03 11:00"), minutes(10)),
            Some(utc("2026-01-05 09:10"))
        );
    }

    #[test]
    fn the_lunch_gap_does_not_count() {
        let cal = office("UTC", &[]);
        assert_eq!(
            cal.add(utc("2026-01-05 12:25"), minutes(10)),
            Some(utc("2026-01-05 13:35"))
        );
        // Inside the gap: from 13:30.
        assert_eq!(
            cal.add(utc("2026-01-05 12:45"), minutes(10)),
            Some(utc("2026-01-05 13:40"))
        );
        // Exactly at the end of the morning.
        assert_eq!(
            cal.add(utc("2026-01-05 12:20"), minutes(10)),
            Some(utc("2026-01-05 12:30"))
        );
    }

    #[test]
    fn a_holiday_is_skipped() {
        // Friday 2026-12-25 is a holiday: Thursday 17:55 + 10 min is
        // Monday 09:05.
        let cal = office("UTC", &["2026-12-25"]);
        assert_eq!(
            cal.add(utc("2026-12-24 17:55"), minutes(10)),
            Some(utc("2026-12-28 09:05"))
        );
    }

    #[test]
    fn hours_follow_the_zone_across_daylight_saving_changes() {
        let cal = office("Europe/Berlin", &[]);
        // Winter: Berlin is UTC+1, 09:00 local is 08:00 UTC.
        assert_eq!(
            cal.add(utc("2026-03-27 16:55"), minutes(10)),
            // Friday 17:55 local + 10 min: Monday 30 March 09:05 local,
            // which is summer time (UTC+2) after the 29 March change.
            Some(utc("2026-03-30 07:05"))
        );
        // And back in October (25 October 2026): Friday 23 October 17:55
        // local (UTC+2) + 10 min = Monday 26 October 09:05 local (UTC+1).
        assert_eq!(
            cal.add(utc("2026-10-23 15:55"), minutes(10)),
            Some(utc("2026-10-26 08:05"))
        );
    }

    #[test]
    fn a_range_across_the_change_counts_real_time() {
        // Open all Sunday 29 March 2026 in Berlin: 00:00-24:00 local is
        // 23 hours (02:00 does not happen).
        let mut hours = BTreeMap::new();
        hours.insert("sun".to_owned(), vec!["00:00-24:00".to_owned()]);
        let cal = Calendar::compile(&CalendarDef {
            time_zone: "Europe/Berlin".to_owned(),
            hours,
            holidays: Vec::new(),
        })
        .unwrap();
        // Sunday 00:00 local = Saturday 23:00 UTC; + 23 h = Sunday 22:00
        // UTC = Monday 00:00 local: the day's whole open time.
        assert_eq!(
            cal.add(utc("2026-03-28 23:00"), Duration::from_secs(23 * 3_600)),
            Some(utc("2026-03-29 22:00"))
        );
    }

    #[test]
    fn quiet_hours_end_across_midnight() {
        let mut hours = BTreeMap::new();
        for day in DAYS {
            hours.insert(
                day.to_owned(),
                vec!["00:00-07:00".to_owned(), "22:00-24:00".to_owned()],
            );
        }
        let quiet = Calendar::compile(&CalendarDef {
            time_zone: "UTC".to_owned(),
            hours,
            holidays: Vec::new(),
        })
        .unwrap();
        assert_eq!(
            quiet.open_until(utc("2026-01-05 23:10")),
            Some(utc("2026-01-06 07:00"))
        );
        assert_eq!(
            quiet.open_until(utc("2026-01-06 03:00")),
            Some(utc("2026-01-06 07:00"))
        );
        assert_eq!(quiet.open_until(utc("2026-01-06 12:00")), None);
    }

    #[test]
    fn bad_calendars_are_refused_by_name() {
        let bad = |tz: &str, day: &str, range: &str, holiday: &str| {
            let mut hours = BTreeMap::new();
            hours.insert(day.to_owned(), vec![range.to_owned()]);
            Calendar::compile(&CalendarDef {
                time_zone: tz.to_owned(),
                hours,
                holidays: vec![holiday.to_owned()],
            })
            .unwrap_err()
        };
        assert!(bad("Mars/Olympus", "mon", "09:00-17:00", "2026-01-01").contains("IANA"));
        assert!(bad("UTC", "monday", "09:00-17:00", "2026-01-01").contains("not a day"));
        assert!(bad("UTC", "mon", "9-17", "2026-01-01").contains("not a range"));
        assert!(bad("UTC", "mon", "17:00-09:00", "2026-01-01").contains("ends before"));
        assert!(bad("UTC", "mon", "09:00-24:30", "2026-01-01").contains("not a range"));
        assert!(bad("UTC", "mon", "09:00-17:00", "25/12").contains("not a date"));
    }
}
