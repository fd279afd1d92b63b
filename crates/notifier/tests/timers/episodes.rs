//! Episodes: arming, stopping, firing, escalating, exactly once.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_before_the_due_time_sends_nothing() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        s.add_rule(waiting_rule("10s", "keep_first", json!([])));
        assert_eq!(s.post(vec![message("c1", None, "hello?", 20)]).await, 1);
        // The agent answered 15 s ago: 5 s after the visitor, before the
        // 10 s ran out.
        s.post(vec![message("c1", Some("agent@example.com"), "hi!", 15)])
            .await;
        let worker = s.worker(settings());
        assert_eq!(worker.run_once().await.unwrap(), 0, "{name}");
        assert!(s.notifications().is_empty(), "{name}");
        let timers = s.timers();
        assert_eq!(timers.len(), 1, "{name}");
        assert_eq!(timers[0].status, store::CANCELLED, "{name}");
        assert!(
            timers[0]
                .reason
                .as_deref()
                .unwrap_or_default()
                .contains("stopped by event"),
            "{name}: {:?}",
            timers[0].reason
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_stop_fires_once_with_the_waiting_template() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        let rule_id = s.add_rule(waiting_rule("10s", "keep_first", json!([])));
        s.post(vec![message("c1", None, "hello?", 30)]).await;
        let worker = s.worker(settings());
        assert_eq!(worker.run_once().await.unwrap(), 1, "{name}");
        assert_eq!(worker.run_once().await.unwrap(), 0, "{name}");
        let sent = s.notifications();
        assert_eq!(sent.len(), 1, "{name}: {sent:#?}");
        let n = &sent[0];
        assert_eq!(n.status, notifications::QUEUED);
        assert_eq!(n.recipient, "lead@example.com");
        assert_eq!(n.template, "waiting");
        assert_eq!(n.rule_id, Some(rule_id));
        assert_eq!(n.conversation_key.as_deref(), Some("c1"));
        assert!(
            n.reason
                .as_deref()
                .unwrap_or_default()
                .contains("step 1 of 1"),
            "{name}: {:?}",
            n.reason
        );
        let timers = s.timers();
        assert_eq!(timers[0].status, store::FIRED, "{name}");
        // The email's context knows the timer: waited about 30 s.
        let mut conn = s.db.conn().unwrap();
        let context = hookline_notifier::render::template_context(&mut conn, n, None).unwrap();
        assert_eq!(context["timer"]["step"], 1, "{name}: {context}");
        let waited = context["timer"]["waited"].as_str().unwrap();
        assert!(
            waited.ends_with('s') && waited.starts_with("3"),
            "{name}: {waited}"
        );
        let email = s.rules.templates().render("waiting", &context).unwrap();
        assert!(email.subject.starts_with("Waiting 3"), "{}", email.subject);
        assert!(email.text.contains("hello?"), "{}", email.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiting_email_lists_the_messages_up_to_when_it_fired() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        s.add_rule(waiting_rule("20s", "keep_first", json!([])));
        // The start event, then two more visitor messages before the timer
        // fires, then one written after it fired.
        s.post(vec![message("c1", None, "first question", 60)])
            .await;
        s.post(vec![message("c1", None, "still there?", 50)]).await;
        s.post(vec![message("c1", None, "hello??", 45)]).await;
        assert_eq!(s.worker(settings()).run_once().await.unwrap(), 1, "{name}");
        // (Stamped a minute ahead: after the firing whatever the clocks.)
        s.post(vec![message("c1", None, "after it fired", -60)])
            .await;
        let sent = s.notifications();
        assert_eq!(sent.len(), 1, "{name}: {sent:#?}");
        let mut conn = s.db.conn().unwrap();
        let context =
            hookline_notifier::render::template_context(&mut conn, &sent[0], None).unwrap();
        let email = s.rules.templates().render("waiting", &context).unwrap();
        for text in ["first question", "still there?", "hello??"] {
            assert!(email.text.contains(text), "{name}: {text}: {}", email.text);
            assert!(email.html.contains(text), "{name}: {text}: {}", email.html);
        }
        assert!(
            !email.text.contains("after it fired"),
            "{name}: {}",
            email.text
        );
        // In the order they were written.
        let first = email.text.find("first question").unwrap();
        let last = email.text.find("hello??").unwrap();
        assert!(first < last, "{name}: {}", email.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_visitor_messages_give_one_alert_timed_from_the_first() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        s.add_rule(waiting_rule("10s", "keep_first", json!([])));
        s.post(vec![message("c1", None, "one", 40)]).await;
        s.post(vec![message("c1", None, "two", 30)]).await;
        s.post(vec![message("c1", None, "three", 20)]).await;
        let timers = s.timers();
        assert_eq!(timers.len(), 1, "{name}: {timers:#?}");
        let due_in = timers[0].due_at - timers[0].started_at;
        assert_eq!(due_in.num_seconds(), 10);
        let age = (Utc::now().naive_utc() - timers[0].started_at).num_seconds();
        assert!(
            (39..=45).contains(&age),
            "{name}: clock from the first message ({age} s)"
        );
        s.worker(settings()).run_once().await.unwrap();
        assert_eq!(s.notifications().len(), 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_rearms_on_each_start_event() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        s.add_rule(waiting_rule("25s", "restart", json!([])));
        s.post(vec![message("c1", None, "one", 40)]).await;
        s.post(vec![message("c1", None, "two", 20)]).await;
        // The first clock (40 s ago + 25 s) ran out; the second (20 s ago +
        // 25 s) did not, and it is the one that counts.
        assert_eq!(s.worker(settings()).run_once().await.unwrap(), 0, "{name}");
        assert!(s.notifications().is_empty(), "{name}");
        let timers = s.timers();
        assert_eq!(timers.len(), 2);
        assert_eq!(timers[0].status, store::CANCELLED, "{name}");
        assert_eq!(timers[1].status, store::ARMED, "{name}");
        assert_eq!(timers[1].episode, 2, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_wait_after_an_answer_is_a_new_episode() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        s.add_rule(waiting_rule("5s", "keep_first", json!([])));
        let worker = s.worker(settings());
        s.post(vec![message("c1", None, "one", 60)]).await;
        worker.run_once().await.unwrap();
        s.post(vec![message("c1", Some("agent@example.com"), "answer", 50)])
            .await;
        s.post(vec![message("c1", None, "again", 40)]).await;
        worker.run_once().await.unwrap();
        worker.run_once().await.unwrap();
        let sent = s.notifications();
        assert_eq!(sent.len(), 2, "{name}: {sent:#?}");
        let episodes: Vec<i32> = s.timers().iter().map(|t| t.episode).collect();
        assert_eq!(episodes, [1, 2], "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_escalation_step_emails_exactly_once() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        s.add_rule(waiting_rule(
            "10s",
            "keep_first",
            json!([{"at": "20s", "to": ["head@example.com"]}, {"at": "1h", "to": ["ceo@example.com"]}]),
        ));
        s.post(vec![message("c1", None, "hello?", 30)]).await;
        let worker = s.worker(settings());
        assert_eq!(worker.run_once().await.unwrap(), 2, "{name}");
        for _ in 0..3 {
            assert_eq!(worker.run_once().await.unwrap(), 0, "{name}");
        }
        let mut to: Vec<String> = s.notifications().into_iter().map(|n| n.recipient).collect();
        to.sort();
        assert_eq!(to, ["head@example.com", "lead@example.com"], "{name}");
        let statuses: Vec<String> = s.timers().into_iter().map(|t| t.status).collect();
        assert_eq!(
            statuses,
            [store::FIRED, store::FIRED, store::ARMED],
            "{name}"
        );
        // The answer ends the wait: the last step never fires.
        s.post(vec![message("c1", Some("agent@example.com"), "sorry", 0)])
            .await;
        assert_eq!(s.timers()[2].status, store::CANCELLED, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_deliveries_arm_nothing_twice() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        s.add_rule(waiting_rule(
            "10s",
            "restart",
            json!([{"at": "20s", "to": ["head@example.com"]}]),
        ));
        let first = message("c1", None, "hello?", 30);
        assert_eq!(s.post(vec![first.clone(), first.clone()]).await, 1);
        assert_eq!(s.post(vec![first.clone()]).await, 0);
        assert_eq!(s.timers().len(), 2, "{name}: one row per step");
        let worker = s.worker(settings());
        worker.run_once().await.unwrap();
        assert_eq!(s.post(vec![first]).await, 0);
        worker.run_once().await.unwrap();
        assert_eq!(s.notifications().len(), 2, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_after_the_claim_and_before_the_commit_sends_nothing() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        s.add_rule(waiting_rule("10s", "keep_first", json!([])));
        s.post(vec![message("c1", None, "hello?", 30)]).await;
        let worker = s.worker(settings());
        let claimed = worker.claim().await.unwrap();
        assert_eq!(claimed.len(), 1, "{name}");
        assert_eq!(s.timers()[0].status, store::FIRING);
        // The agent's answer is stored while the timer is claimed.
        s.post(vec![message("c1", Some("agent@example.com"), "hi", 1)])
            .await;
        let outcome = worker.fire(claimed[0].clone()).await.unwrap();
        assert_eq!(outcome, Fired::Lost, "{name}");
        assert!(s.notifications().is_empty(), "{name}");
        assert_eq!(s.timers()[0].status, store::CANCELLED, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_after_claiming_leaves_it_to_another_exactly_once() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        s.add_rule(waiting_rule("10s", "keep_first", json!([])));
        s.post(vec![message("c1", None, "hello?", 30)]).await;
        let short = TimerSettings {
            lease: Duration::from_secs(1),
            ..settings()
        };
        let killed = s.worker(short.clone());
        let taken = killed.claim().await.unwrap();
        assert_eq!(taken.len(), 1);
        // It dies here. Another worker finds nothing until the lease ends.
        let other = s.worker(short);
        assert_eq!(other.run_once().await.unwrap(), 0, "{name}");
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        assert_eq!(other.run_once().await.unwrap(), 1, "{name}");
        // Had the first one only been slow, its late attempt fires nothing.
        assert_eq!(killed.fire(taken[0].clone()).await.unwrap(), Fired::Lost);
        assert_eq!(s.notifications().len(), 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_or_editing_a_rule_cancels_or_recomputes_its_timers() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        let id = s.add_rule(waiting_rule("1h", "keep_first", json!([])));
        s.post(vec![message("c1", None, "hello?", 30)]).await;
        assert_eq!(s.timers()[0].status, store::ARMED);
        // Edited to 10 s: due already, and fires.
        let def: RuleDef =
            serde_json::from_value(waiting_rule("10s", "keep_first", json!([]))).unwrap();
        s.rules
            .update(&mut s.db.conn().unwrap(), id, def)
            .unwrap()
            .unwrap();
        let timer = &s.timers()[0];
        assert_eq!(
            (timer.due_at - timer.started_at).num_seconds(),
            10,
            "{name}"
        );
        s.worker(settings()).run_once().await.unwrap();
        assert_eq!(s.notifications().len(), 1, "{name}");
        // A second conversation waits; the rule is deleted: cancelled.
        s.post(vec![message("c2", None, "anyone?", 1)]).await;
        assert_eq!(s.timers()[1].status, store::ARMED);
        assert!(s.rules.delete(&mut s.db.conn().unwrap(), id).unwrap());
        let timer = &s.timers()[1];
        assert_eq!(timer.status, store::CANCELLED, "{name}");
        assert!(
            timer
                .reason
                .as_deref()
                .unwrap_or_default()
                .contains("deleted"),
            "{name}: {:?}",
            timer.reason
        );
        s.worker(settings()).run_once().await.unwrap();
        assert_eq!(s.notifications().len(), 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_overdue_timers_fire_once_and_older_ones_are_summarised() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        s.add_rule(waiting_rule("10s", "keep_first", json!([])));
        // Two conversations waited through a three-hour outage, one only
        // a minute ago.
        s.post(vec![message("old1", None, "hello?", 3 * 3_600)])
            .await;
        s.post(vec![message("old2", None, "anyone?", 3 * 3_600 - 60)])
            .await;
        s.post(vec![message("fresh", None, "hi", 60)]).await;
        let worker = s.worker(settings());
        assert_eq!(worker.run_once().await.unwrap(), 3, "{name}");
        assert_eq!(worker.run_once().await.unwrap(), 0, "{name}");
        let sent = s.notifications();
        assert_eq!(sent.len(), 2, "{name}: {sent:#?}");
        let fresh = sent
            .iter()
            .find(|n| n.conversation_key.as_deref() == Some("fresh"));
        assert!(fresh.is_some(), "{name}: the recent one fires on its own");
        let summary = sent
            .iter()
            .find(|n| n.conversation_key.is_none())
            .expect("a summary");
        assert!(
            summary
                .reason
                .as_deref()
                .unwrap_or_default()
                .contains("2 timer(s) missed"),
            "{name}: {:?}",
            summary.reason
        );
        let mut conn = s.db.conn().unwrap();
        let context =
            hookline_notifier::render::template_context(&mut conn, summary, None).unwrap();
        assert_eq!(context["timer"]["missed_count"], 2, "{name}: {context}");
        let email = s.rules.templates().render("waiting", &context).unwrap();
        assert!(
            email.subject.contains("2 alert(s) missed"),
            "{}",
            email.subject
        );
        assert!(
            email.text.contains("old1") && email.text.contains("old2"),
            "{}",
            email.text
        );
        let statuses: Vec<String> = s.timers().into_iter().map(|t| t.status).collect();
        assert_eq!(
            statuses,
            [store::MISSED, store::MISSED, store::FIRED],
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_visitor_erases_their_timers() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        s.add_rule(waiting_rule("1h", "keep_first", json!([])));
        s.post(vec![message("c1", None, "hello?", 1)]).await;
        assert_eq!(s.timers().len(), 1);
        let visitor = item("02-message-text.json")["visitor"]["key"]
            .as_str()
            .unwrap()
            .to_owned();
        hookline_storage::retention::erase_visitor(&mut s.db.conn().unwrap(), &visitor).unwrap();
        assert!(s.timers().is_empty(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_out_of_order_are_placed_by_their_times() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        s.add_rule(waiting_rule("10s", "keep_first", json!([])));
        // c1: the agent's answer (20 s ago) arrives before the visitor's
        // message it answers (30 s ago): nothing waits.
        s.post(vec![message("c1", Some("agent@example.com"), "here", 20)])
            .await;
        s.post(vec![message("c1", None, "hello?", 30)]).await;
        // c2: the visitor waits since 30 s ago; an agent message from
        // before that (40 s ago) arrives late: it does not end the wait.
        s.post(vec![message("c2", None, "hello?", 30)]).await;
        s.post(vec![message(
            "c2",
            Some("agent@example.com"),
            "earlier",
            40,
        )])
        .await;
        s.worker(settings()).run_once().await.unwrap();
        let sent = s.notifications();
        assert_eq!(sent.len(), 1, "{name}: {sent:#?}");
        assert_eq!(sent[0].conversation_key.as_deref(), Some("c2"), "{name}");
        let c1: Vec<Timer> = s
            .timers()
            .into_iter()
            .filter(|t| t.conversation_key == "c1")
            .collect();
        assert!(c1.is_empty(), "{name}: {c1:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reassignment_resets_an_assignee_bound_timer() {
    for db in TestDatabase::each() {
        let name = db.name();
        let s = Setup::new(db);
        s.add_rule(json!({
            "name": "handover-no-agent-reply",
            "to": ["{{conversation.assignee.email}}"],
            "template": "waiting",
            "timer": {
                "after": "20s",
                "rearm": "restart",
                "start": {"on": ["assignee_change"], "all": [{"field": "payload.to.type", "op": "eq", "value": "user"}]},
                "stop": [{"on": ["message"], "all": [
                    {"field": "payload.message_by.email", "op": "eq", "value": "{{conversation.assignee.email}}"}
                ]}],
            }
        }));
        s.post(vec![handover("c1", "a@example.com", 40)]).await;
        // Reassigned to b 25 s ago, before a's 20 s ran out: a's wait is
        // void, b's ran out 5 s ago.
        s.post(vec![handover("c1", "b@example.com", 25)]).await;
        // a answering does not stop b's timer; only b's own reply would.
        s.post(vec![message("c1", Some("a@example.com"), "still me", 22)])
            .await;
        let worker = s.worker(settings());
        assert_eq!(worker.run_once().await.unwrap(), 1, "{name}");
        let timers = s.timers();
        assert_eq!(timers.len(), 2, "{name}");
        assert_eq!(timers[0].status, store::CANCELLED, "{name}");
        assert_eq!(timers[1].status, store::FIRED, "{name}");
        let sent = s.notifications();
        assert_eq!(sent.len(), 1, "{name}");
        assert_eq!(sent[0].recipient, "b@example.com", "{name}");
    }
}
