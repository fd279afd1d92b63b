//! Timer rules as written: validation, TOML, calendars, quiet hours,
//! the shipped examples.

use super::*;

#[test]
fn bad_timer_rules_are_refused_with_the_reason() {
    let templates = Arc::new(Templates::built_in().unwrap());
    let rules = Rules::new(templates);
    let cases = [
        (json!({"after": "0s"}), "zero"),
        (json!({"after": "5x"}), "not a duration"),
        (json!({"after": "31d"}), "30 days"),
        (json!({"rearm": "sometimes"}), "keep_first"),
        (json!({"clock": "mars"}), "\"wall\""),
        (json!({"start": {"on": []}}), "timer.start.on is empty"),
        (
            json!({"start": {"on": ["message"], "all": [{"field": "nope.x", "op": "eq", "value": 1}]}}),
            "timer.start.all[0]",
        ),
        (
            json!({"escalate": [{"at": "5s", "to": ["b@example.com"]}]}),
            "must come after the previous step",
        ),
        (
            json!({"escalate": [{"at": "1h", "to": ["not an address"]}]}),
            "timer.escalate[0]",
        ),
        (
            json!({"escalate": [{"at": "1h", "to": ["b@example.com"], "template": "nope"}]}),
            "unknown template",
        ),
    ];
    for (change, expected) in cases {
        let mut rule = waiting_rule("10s", "keep_first", json!([]));
        for (key, value) in change.as_object().unwrap() {
            rule["timer"][key] = value.clone();
        }
        let def: RuleDef = serde_json::from_value(rule).unwrap();
        let error = rules.compile(def, None).unwrap_err().to_string();
        assert!(error.contains(expected), "{change}: {error}");
    }
    let mut rule = waiting_rule("10s", "keep_first", json!([]));
    rule["on"] = json!(["message"]);
    let def: RuleDef = serde_json::from_value(rule).unwrap();
    let error = rules.compile(def, None).unwrap_err().to_string();
    assert!(error.contains("timer.start"), "{error}");
    let mut rule = waiting_rule("10s", "keep_first", json!([]));
    rule["throttle"] = json!("10m");
    let def: RuleDef = serde_json::from_value(rule).unwrap();
    let error = rules.compile(def, None).unwrap_err().to_string();
    assert!(error.contains("throttle"), "{error}");
    // An unknown key inside the section is named.
    let mut rule = waiting_rule("10s", "keep_first", json!([]));
    rule["timer"]["aftr"] = json!("5m");
    let error = serde_json::from_value::<RuleDef>(rule)
        .unwrap_err()
        .to_string();
    assert!(error.contains("aftr"), "{error}");
}

#[test]
fn a_timer_rule_round_trips_through_toml() {
    let text = r#"
[[rule]]
name = "handover-no-agent-reply"
to = ["{{conversation.assignee.email}}"]
template = "waiting"

[rule.timer]
after = "5m"
rearm = "restart"
start = { on = ["assignee_change"], all = [{ field = "payload.to.type", op = "eq", value = "user" }] }
stop = [{ on = ["message"], all = [{ field = "payload.message_by.email", op = "eq", value = "{{conversation.assignee.email}}" }] }]
escalate = [{ at = "15m", to = ["head@example.com"] }]
"#;
    let file = hookline_notifier::RulesFile::parse(text).unwrap();
    let templates = Arc::new(Templates::built_in().unwrap());
    let rules = Rules::new(templates);
    let compiled = rules.compile(file.rule[0].clone(), None).unwrap();
    let timer = compiled.timer.as_ref().unwrap();
    assert_eq!(timer.steps.len(), 2);
    assert_eq!(timer.steps[1].at, Duration::from_secs(900));
    let again = hookline_notifier::RulesFile::parse(&file.to_toml().unwrap()).unwrap();
    assert_eq!(again.rule, file.rule);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_clock_does_not_count_closed_days() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        let today = Utc::now().date_naive();
        let mut rule = waiting_rule("10s", "keep_first", json!([]));
        rule["timer"]["clock"] = json!("business");
        rule["timer"]["calendar"] = always(&[today.to_string()]);
        s.add_rule(rule);
        s.post(vec![message("c1", None, "hello?", 30)]).await;
        assert_eq!(s.worker(settings()).run_once().await.unwrap(), 0, "{name}");
        let timer = &s.timers()[0];
        // Today is a holiday: 10 s of open time end tomorrow at 00:00:10.
        let tomorrow = today.succ_opt().unwrap().and_hms_opt(0, 0, 10).unwrap();
        assert_eq!(timer.due_at, tomorrow, "{name}");
        assert!(s.notifications().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_due_in_quiet_hours_is_held_until_they_end() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        // Quiet all of today (UTC), open tomorrow.
        let today = Utc::now().date_naive();
        let weekday = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            [chrono::Datelike::weekday(&today).num_days_from_monday() as usize];
        let mut rule = waiting_rule("10s", "keep_first", json!([]));
        rule["timer"]["quiet_hours"] =
            json!({"time_zone": "UTC", "hours": {weekday: ["00:00-24:00"]}});
        let id = s.add_rule(rule);
        s.post(vec![message("c1", None, "hello?", 30)]).await;
        let worker = s.worker(settings());
        assert_eq!(worker.run_once().await.unwrap(), 1, "{name}");
        let timer = &s.timers()[0];
        assert_eq!(timer.status, store::HELD, "{name}");
        let midnight = today.succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap();
        assert_eq!(
            timer.due_at, midnight,
            "{name}: held until the quiet hours end"
        );
        assert!(
            timer
                .reason
                .as_deref()
                .unwrap_or_default()
                .contains("quiet hours"),
            "{name}: {:?}",
            timer.reason
        );
        assert!(s.notifications().is_empty(), "{name}: held, not dropped");
        assert_eq!(worker.run_once().await.unwrap(), 0, "{name}");
        // The quiet hours are taken out of the rule: the held email goes.
        s.rules
            .update(
                &mut s.db.conn().unwrap(),
                id,
                serde_json::from_value(waiting_rule("10s", "keep_first", json!([]))).unwrap(),
            )
            .unwrap();
        assert_eq!(worker.run_once().await.unwrap(), 1, "{name}");
        assert_eq!(s.notifications().len(), 1, "{name}");
        assert_eq!(s.timers()[0].status, store::FIRED, "{name}");
    }
}

#[test]
fn the_shipped_timer_examples_compile_and_are_disabled() {
    let file = hookline_notifier::RulesFile::parse(hookline_notifier::rules_store::TIMER_EXAMPLES)
        .unwrap();
    let templates = Templates::built_in().unwrap();
    assert_eq!(file.rule.len(), 2);
    assert!(file.rule.iter().all(|def| !def.enabled));
    // The business-hours example names the calendar the file defines.
    let directory =
        hookline_notifier::directory::Directory::new(&file.calendar, &file.recipient).unwrap();
    let compiled =
        hookline_notifier::rules_store::check_all(&templates, &directory, file.rule).unwrap();
    assert!(compiled.iter().all(|rule| rule.timer.is_some()));
    assert!(compiled[1].timer.as_ref().unwrap().calendar.is_some());
}
