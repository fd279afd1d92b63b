//! Rule preview over stored history, the notifier's function: a timer
//! rule's waits replayed ("would have fired 3 times, at ..."), an event
//! rule's events, and the time limit.

use std::time::Duration;

use hookline_notifier::preview::{Preview, Previewer, Range, TIME_BUDGET};

use super::*;

fn preview(s: &Setup, rule: Value, budget: Duration) -> Preview {
    let policy = RecipientPolicy::default();
    let previewer = Previewer {
        rules: &s.rules,
        policy: &policy,
        public_url: None,
        time_budget: budget,
    };
    let def: RuleDef = serde_json::from_value(rule).unwrap();
    let range = Range {
        since: None,
        until: None,
        limit: 1_000,
    };
    previewer
        .preview(&mut s.db.conn().unwrap(), def, &range)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_rule_preview_replays_its_waits_over_stored_history() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        // c1: never answered (both steps); c2: answered between the first
        // email and the escalation; c3: answered in time; c4: still
        // waiting for its first email.
        s.post(vec![message("c1", None, "anyone?", 600)]).await;
        s.post(vec![message("c1", None, "hello??", 590)]).await;
        s.post(vec![message("c2", None, "a question", 500)]).await;
        s.post(vec![message("c2", Some("agent@example.com"), "yes?", 400)])
            .await;
        s.post(vec![message("c3", None, "quick one", 300)]).await;
        s.post(vec![message("c3", Some("agent@example.com"), "sure", 290)])
            .await;
        s.post(vec![message("c4", None, "just now", 10)]).await;
        let rule = waiting_rule(
            "60s",
            "keep_first",
            json!([{"at": "180s", "to": ["head@example.com"]}]),
        );
        let p = preview(&s, rule, TIME_BUDGET);
        assert_eq!(p.scanned, 7, "{name}");
        assert!(p.stopped_early.is_none(), "{name}");
        let fired: Vec<(String, usize, Vec<String>)> = p
            .fired
            .iter()
            .map(|f| {
                let step = f.timer.as_ref().unwrap();
                let to = f.emails.iter().map(|e| e.recipient.clone()).collect();
                (step.conversation.clone(), step.step, to)
            })
            .collect();
        assert_eq!(
            fired,
            [
                ("c1".to_owned(), 1, vec!["lead@example.com".to_owned()]),
                ("c2".to_owned(), 1, vec!["lead@example.com".to_owned()]),
                ("c1".to_owned(), 2, vec!["head@example.com".to_owned()]),
            ],
            "{name}"
        );
        assert_eq!(p.fired_count, 3);
        assert_eq!(p.send, 3);
        // Timed from the first message of the wait, a minute and three on.
        let first = p.fired[0].timer.as_ref().unwrap();
        assert_eq!((first.at - first.started_at).num_seconds(), 60);
        assert_eq!(p.fired[0].event.conversation_key.as_deref(), Some("c1"));
        assert_eq!(p.fired[0].event.occurred_at, first.started_at);
        let subject = p.fired[0].subject.as_ref().unwrap();
        assert!(subject.starts_with("Waiting 1m 0s"), "{name}: {subject}");
        let escalation = p.fired[2].subject.as_ref().unwrap();
        assert!(
            escalation.starts_with("Escalation: "),
            "{name}: {escalation}"
        );
        assert_eq!(p.not_fired_count, 2, "{name}: {:#?}", p.not_fired);
        assert!(
            p.not_fired[0]
                .failed
                .starts_with("answered in time: stopped by event #"),
            "{name}: {}",
            p.not_fired[0].failed
        );
        assert!(p.not_fired[0].failed.contains("before step 2 of 2"));
        assert!(p.not_fired[1].failed.contains("before step 1 of 2"));
        let timer = p.timer.as_ref().unwrap();
        assert_eq!(timer.waiting, 1, "{name}");
        assert!(
            timer
                .sentence
                .starts_with("would have fired 3 times (2 first emails, 1 escalation), at "),
            "{name}: {}",
            timer.sentence
        );
        assert!(
            timer
                .sentence
                .ends_with("; 2 waits answered before their emails; 1 still waiting"),
            "{name}: {}",
            timer.sentence
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_out_of_time_says_it_stopped_early() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        s.post(vec![message("c1", None, "anyone?", 600)]).await;
        let event_rule = json!({"name": "m", "on": ["message"], "to": ["lead@example.com"], "template": "generic"});
        let whole = preview(&s, event_rule.clone(), TIME_BUDGET);
        assert_eq!((whole.scanned, whole.fired_count), (1, 1), "{name}");
        assert!(whole.stopped_early.is_none());
        for rule in [event_rule, waiting_rule("60s", "keep_first", json!([]))] {
            let cut = preview(&s, rule, Duration::ZERO);
            assert_eq!(cut.scanned, 0, "{name}");
            assert_eq!(cut.fired_count, 0, "{name}");
            let why = cut.stopped_early.unwrap();
            assert!(why.contains("time limit is 0 s"), "{name}: {why}");
            assert!(why.contains("narrow since/until"), "{name}: {why}");
        }
    }
}
