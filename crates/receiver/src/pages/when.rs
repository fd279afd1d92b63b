//! `{{when TIME}}`: every time on the pages in one form, rendered on the
//! server (no JavaScript): the date and time to the minute in the display
//! time zone (the `time_zone` setting, UTC by default, named after each
//! time), how long ago, and the exact time in UTC, to the microsecond, in
//! a tooltip. Without a script the server cannot know the reader's zone,
//! so the operator sets the team's.

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use handlebars::{Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext};

/// The helper: an RFC 3339 time (as `crate::views` gives them) becomes a
/// `<time>` element; a null prints nothing, other text is printed escaped.
pub struct When(pub Tz);

impl HelperDef for When {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let Some(text) = h.param(0).and_then(|p| p.value().as_str()) else {
            return Ok(());
        };
        let html = match DateTime::parse_from_rfc3339(text) {
            Ok(at) => time_element(at.with_timezone(&Utc), Utc::now(), self.0),
            Err(_) => handlebars::html_escape(text),
        };
        out.write(&html)?;
        Ok(())
    }
}

/// `at` to the minute in `zone`, named: "2023-09-01 16:13 CEST".
pub fn local(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// [`local`] for a time stored without zone (UTC).
pub fn local_naive(at: NaiveDateTime, zone: Tz) -> String {
    local(at.and_utc(), zone)
}

/// `<time datetime="..." title="exact UTC">2023-09-01 16:13 CEST · 3 days ago</time>`.
pub fn time_element(at: DateTime<Utc>, now: DateTime<Utc>, zone: Tz) -> String {
    format!(
        "<time datetime=\"{}\" title=\"{}\">{} <span class=\"ago\">· {}</span></time>",
        at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        at.format("%Y-%m-%d %H:%M:%S%.6f UTC"),
        local(at, zone),
        ago(at, now),
    )
}

/// How long before `now`: "just now", "5 min ago", "3 h ago", "2 days
/// ago", "4 months ago", "2 years ago".
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit} ago")
        } else {
            format!("{n} {unit}s ago")
        }
    };
    match seconds {
        i64::MIN..=-60 => "in the future".to_owned(),
        -59..=59 => "just now".to_owned(),
        60..=3_599 => format!("{} min ago", seconds / 60),
        3_600..=86_399 => format!("{} h ago", seconds / 3_600),
        86_400..=3_887_999 => plural(seconds / 86_400, "day"),
        3_888_000..=31_535_999 => plural(seconds / 2_592_000, "month"),
        _ => plural(seconds / 31_536_000, "year"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn times_read_the_same_everywhere() {
        let now = at("2023-09-04T14:14:00Z");
        assert_eq!(
            time_element(at("2023-09-01T14:13:32.141788Z"), now, Tz::UTC),
            "<time datetime=\"2023-09-01T14:13:32.141788Z\" title=\"2023-09-01 14:13:32.141788 UTC\">2023-09-01 14:13 UTC <span class=\"ago\">· 3 days ago</span></time>"
        );
        assert_eq!(ago(at("2023-09-04T14:13:30Z"), now), "just now");
        assert_eq!(ago(at("2023-09-04T14:09:00Z"), now), "5 min ago");
        assert_eq!(ago(at("2023-09-04T11:00:00Z"), now), "3 h ago");
        assert_eq!(ago(at("2023-09-03T14:00:00Z"), now), "1 day ago");
        assert_eq!(ago(at("2023-06-01T00:00:00Z"), now), "3 months ago");
        assert_eq!(ago(at("2021-09-01T00:00:00Z"), now), "2 years ago");
        assert_eq!(ago(at("2023-09-05T00:00:00Z"), now), "in the future");
    }

    #[test]
    fn times_are_shown_in_the_display_zone_with_utc_in_the_tooltip() {
        let now = at("2026-12-01T12:00:00Z");
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Winter (CET, +1) and summer (CEST, +2).
        assert_eq!(
            time_element(at("2026-11-30T23:30:00Z"), now, berlin),
            "<time datetime=\"2026-11-30T23:30:00.000000Z\" title=\"2026-11-30 23:30:00.000000 UTC\">2026-12-01 00:30 CET <span class=\"ago\">· 12 h ago</span></time>"
        );
        assert_eq!(
            local(at("2026-07-01T10:00:00Z"), berlin),
            "2026-07-01 12:00 CEST"
        );
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        assert_eq!(
            local(at("2026-07-01T10:00:00Z"), kolkata),
            "2026-07-01 15:30 IST"
        );
    }
}
