//! Named calendars shared by timer rules, and recipients with quiet hours
//! of their own.

use super::*;
use hookline_notifier::calendar::CalendarDef;
use hookline_notifier::directory::{Directory, RecipientDef};
use hookline_notifier::rules_store::check_all;
use hookline_notifier::{RulesError, RulesFile};

fn calendar(value: Value) -> CalendarDef {
    serde_json::from_value(value).unwrap()
}

/// Quiet (or open) all of today, UTC.
fn all_of_today() -> Value {
    let today = Utc::now().date_naive();
    let weekday = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [chrono::Datelike::weekday(&today).num_days_from_monday() as usize];
    json!({"time_zone": "UTC", "hours": {weekday: ["00:00-24:00"]}})
}

fn business_rule(name: &str, after: &str, calendar: &str) -> Value {
    let mut rule = waiting_rule(after, "keep_first", json!([]));
    rule["name"] = json!(name);
    rule["timer"]["clock"] = json!("business");
    rule["timer"]["calendar"] = json!(calendar);
    rule
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_shared_calendar_moves_the_armed_timers_of_every_rule_using_it() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        let today = Utc::now().date_naive();
        let mut conn = s.db.conn().unwrap();
        // Open every day but today.
        let office = calendar(always(&[today.to_string()]));
        assert!(s.rules.put_calendar(&mut conn, "office", office).unwrap());
        s.add_rule(business_rule("waiting-short", "10s", "office"));
        s.add_rule(business_rule("waiting-long", "20s", "office"));
        s.post(vec![message("c1", None, "hello?", 30)]).await;
        let worker = s.worker(settings());
        assert_eq!(worker.run_once().await.unwrap(), 0, "{name}");
        let midnight = today.succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap();
        let due = |s: &Setup| {
            let mut due: Vec<(String, chrono::NaiveDateTime, chrono::NaiveDateTime)> = s
                .timers()
                .into_iter()
                .map(|t| (t.rule_name, t.started_at, t.due_at))
                .collect();
            due.sort();
            due
        };
        let before = due(&s);
        assert_eq!(before.len(), 2, "{name}: {before:?}");
        assert_eq!(before[0].0, "waiting-long");
        assert_eq!(
            before[0].2,
            midnight + chrono::Duration::seconds(20),
            "{name}"
        );
        assert_eq!(
            before[1].2,
            midnight + chrono::Duration::seconds(10),
            "{name}"
        );
        // The holiday is taken out of the calendar: both rules' timers are
        // re-computed from their start, so both are due now.
        let open = calendar(always(&[]));
        assert!(!s.rules.put_calendar(&mut conn, "office", open).unwrap());
        let after = due(&s);
        assert_eq!(
            after[0].2,
            after[0].1 + chrono::Duration::seconds(20),
            "{name}"
        );
        assert_eq!(
            after[1].2,
            after[1].1 + chrono::Duration::seconds(10),
            "{name}"
        );
        assert_eq!(worker.run_once().await.unwrap(), 2, "{name}");
        let sent: Vec<String> = s.notifications().into_iter().map(|n| n.rule_name).collect();
        assert_eq!(sent.len(), 2, "{name}: {sent:?}");
        assert!(
            s.timers().iter().all(|t| t.status == store::FIRED),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_calendar_is_refused_and_one_in_use_cannot_be_deleted() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        let mut conn = s.db.conn().unwrap();
        s.rules
            .put_calendar(&mut conn, "office", calendar(always(&[])))
            .unwrap();
        // A typo: refused, with the likely name.
        let typo: RuleDef =
            serde_json::from_value(business_rule("waiting", "10s", "ofice")).unwrap();
        let error = s.rules.create(&mut conn, typo).unwrap_err().to_string();
        assert!(
            error.contains("timer.calendar: unknown calendar \"ofice\": did you mean `office`?"),
            "{name}: {error}"
        );
        let mut quiet = waiting_rule("10s", "keep_first", json!([]));
        quiet["timer"]["quiet_hours"] = json!("nights");
        let error = s
            .rules
            .create(&mut conn, serde_json::from_value(quiet).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("timer.quiet_hours: unknown calendar \"nights\""),
            "{name}: {error}"
        );
        let nobody = RecipientDef {
            email: "lead@example.com".to_owned(),
            quiet_hours: Some("nights".to_owned()),
        };
        match s.rules.put_recipient(&mut conn, nobody) {
            Err(RulesError::InvalidCalendar(m)) => {
                assert!(m.contains("unknown calendar \"nights\""), "{name}: {m}")
            }
            other => panic!("{name}: {other:?}"),
        }
        // In a rules file the file's own calendars count.
        let file = RulesFile::parse(
            r#"
[[calendar]]
name = "office"
time_zone = "Europe/Berlin"
hours = { mon = ["09:00-17:00"] }

[[rule]]
name = "waiting"
to = ["lead@example.com"]
template = "waiting"
[rule.timer]
after = "10m"
clock = "business"
calendar = "ofice"
start = { on = ["message"] }
"#,
        )
        .unwrap();
        let directory = Directory::new(&file.calendar, &file.recipient).unwrap();
        let templates = Templates::built_in().unwrap();
        let error = check_all(&templates, &directory, file.rule)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("did you mean `office`?"), "{name}: {error}");

        // In use by two rules and a recipient: 409's error names them all.
        s.add_rule(business_rule("waiting", "10s", "office"));
        let mut quiet = waiting_rule("10s", "keep_first", json!([]));
        quiet["name"] = json!("quiet-waiting");
        quiet["timer"]["quiet_hours"] = json!("office");
        s.add_rule(quiet);
        let lead = RecipientDef {
            email: "Lead@Example.com".to_owned(),
            quiet_hours: Some("office".to_owned()),
        };
        let (created, saved) = s.rules.put_recipient(&mut conn, lead).unwrap();
        assert!(created);
        assert_eq!(saved.email, "lead@example.com");
        match s.rules.delete_calendar(&mut conn, "office") {
            Err(RulesError::InUse(m)) => assert!(
                m.contains("\"waiting\"")
                    && m.contains("\"quiet-waiting\"")
                    && m.contains("lead@example.com"),
                "{name}: {m}"
            ),
            other => panic!("{name}: {other:?}"),
        }
        let listed = s.rules.calendars(&mut conn).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].rules, ["quiet-waiting", "waiting"]);
        assert_eq!(listed[0].recipients, ["lead@example.com"]);
        // A calendar nothing uses goes.
        s.rules
            .put_calendar(&mut conn, "spare", calendar(always(&[])))
            .unwrap();
        assert!(s.rules.delete_calendar(&mut conn, "spare").unwrap());
        assert!(!s.rules.delete_calendar(&mut conn, "spare").unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_email_to_a_recipient_in_quiet_hours_is_held_until_they_end() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        let mut conn = s.db.conn().unwrap();
        s.rules
            .put_calendar(&mut conn, "today", calendar(all_of_today()))
            .unwrap();
        let lead = RecipientDef {
            email: "lead@example.com".to_owned(),
            quiet_hours: Some("today".to_owned()),
        };
        s.rules.put_recipient(&mut conn, lead).unwrap();
        s.add_rule(waiting_rule(
            "10s",
            "keep_first",
            json!([{"at": "20s", "to": ["head@example.com"]}]),
        ));
        s.post(vec![message("c1", None, "hello?", 30)]).await;
        assert_eq!(s.worker(settings()).run_once().await.unwrap(), 2, "{name}");
        let rows = s.notifications();
        let lead = rows
            .iter()
            .find(|n| n.recipient == "lead@example.com")
            .unwrap();
        let head = rows
            .iter()
            .find(|n| n.recipient == "head@example.com")
            .unwrap();
        // The lead's email waits for the end of the quiet hours; the head
        // of support has none.
        assert_eq!(lead.status, notifications::HELD, "{name}");
        let midnight = Utc::now()
            .date_naive()
            .succ_opt()
            .unwrap()
            .and_hms_opt(0, 0, 0);
        assert_eq!(lead.next_attempt_at, midnight, "{name}");
        assert!(
            lead.reason
                .as_deref()
                .unwrap_or_default()
                .contains("quiet hours of lead@example.com"),
            "{name}: {:?}",
            lead.reason
        );
        assert_eq!(head.status, notifications::QUEUED, "{name}");
        // Held, it is not due: the outbox claims only the head's.
        let now = hookline_storage::db_now(&mut conn).unwrap();
        let later = now + chrono::Duration::seconds(60);
        let claimed = notifications::claim_due(&mut conn, "test", now, later, 10).unwrap();
        let claimed: Vec<&str> = claimed.iter().map(|n| n.recipient.as_str()).collect();
        assert_eq!(claimed, ["head@example.com"], "{name}");
        // The quiet hours end (the recipient no longer has any): due now.
        assert!(s
            .rules
            .delete_recipient(&mut conn, "LEAD@example.com")
            .unwrap());
        let now = hookline_storage::db_now(&mut conn).unwrap();
        let claimed = notifications::claim_due(&mut conn, "test", now, later, 10).unwrap();
        let claimed: Vec<&str> = claimed.iter().map(|n| n.recipient.as_str()).collect();
        assert_eq!(claimed, ["lead@example.com"], "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_file_round_trips_its_calendars_and_recipients() {
    let text = r#"
[[rule]]
name = "waiting"
to = ["lead@example.com"]
template = "waiting"

[rule.timer]
after = "10m"
clock = "business"
calendar = "office"
quiet_hours = "nights"
start = { on = ["message"] }

[[calendar]]
name = "nights"
time_zone = "Europe/Berlin"
hours = { mon = ["00:00-07:00", "22:00-24:00"] }

[[calendar]]
name = "office"
time_zone = "Europe/Berlin"
hours = { mon = ["09:00-12:30", "13:30-17:00"], fri = ["09:00-15:00"] }
holidays = ["2026-12-25"]

[[recipient]]
email = "lead@example.com"
quiet_hours = "nights"
"#;
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        let mut conn = s.db.conn().unwrap();
        let file = RulesFile::parse(text).unwrap();
        assert_eq!(s.rules.import_file(&mut conn, file).unwrap(), (1, 0));
        let exported = s.rules.export(&mut conn).unwrap();
        assert_eq!(exported.calendar.len(), 2, "{name}");
        assert_eq!(exported.recipient.len(), 1, "{name}");
        let written = exported.to_toml().unwrap();
        let again = RulesFile::parse(&written).unwrap();
        assert_eq!(again.calendar, exported.calendar, "{name}");
        assert_eq!(again.recipient, exported.recipient, "{name}");
        assert_eq!(again.rule, exported.rule, "{name}");
        assert_eq!(
            again.rule[0].timer.as_ref().unwrap().calendar,
            Some(hookline_notifier::calendar::CalendarRef::Named(
                "office".to_owned()
            ))
        );
        // Into another database: the same file comes out.
        let other = Setup::new(TestDatabase::sqlite());
        let mut other_conn = other.db.conn().unwrap();
        other.rules.import_file(&mut other_conn, again).unwrap();
        let copy = other
            .rules
            .export(&mut other_conn)
            .unwrap()
            .to_toml()
            .unwrap();
        assert_eq!(copy, written, "{name}");
        // A file whose rule names a calendar it lacks changes nothing.
        let bad = RulesFile::parse(
            &text
                .replace("calendar = \"office\"", "calendar = \"offices\"")
                .replace("name = \"office\"", "name = \"branch\""),
        )
        .unwrap();
        assert!(other.rules.import_file(&mut other_conn, bad).is_err());
        assert_eq!(
            other
                .rules
                .export(&mut other_conn)
                .unwrap()
                .to_toml()
                .unwrap(),
            written
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_email_counts_for_the_throttle() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        let mut conn = s.db.conn().unwrap();
        s.rules
            .put_calendar(&mut conn, "today", calendar(all_of_today()))
            .unwrap();
        let lead = RecipientDef {
            email: "lead@example.com".to_owned(),
            quiet_hours: Some("today".to_owned()),
        };
        s.rules.put_recipient(&mut conn, lead).unwrap();
        s.add_rule(json!({
            "name": "visitor-wrote", "on": ["message"], "to": ["lead@example.com"],
            "template": "generic", "throttle": "10m",
        }));
        s.post(vec![message("c1", None, "hello?", 5)]).await;
        s.post(vec![message("c1", None, "anyone?", 1)]).await;
        let rows = s.notifications();
        let statuses: Vec<&str> = rows.iter().map(|n| n.status.as_str()).collect();
        assert_eq!(
            statuses,
            [notifications::HELD, notifications::SUPPRESSED],
            "{name}: {rows:#?}"
        );
        assert!(
            rows[1]
                .reason
                .as_deref()
                .unwrap_or_default()
                .starts_with("throttled"),
            "{name}: {:?}",
            rows[1].reason
        );
    }
}
