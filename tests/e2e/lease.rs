//! The outbox claim lease with two instances on one PostgreSQL database:
//! renewed while a slow send is under way (no second sender), and short
//! enough that a killed instance's email goes out from the other soon, a
//! timer's email included (exactly once).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::smtp::SmtpServer;
use hookline_storage::notifications;
use hookline_testdb::TestDatabase;

const LEASE_SECONDS: u64 = 2;

fn lease_args() -> Vec<String> {
    vec!["--outbox-lease-seconds".into(), LEASE_SECONDS.to_string()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_send_keeps_its_claim_and_a_killed_senders_email_goes_out_from_another() {
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    let url = db.url.clone();
    // Instance a sends through a mail server that takes 30 s to accept.
    let slow = SmtpServer::start().await;
    slow.set_slow(30_000);
    let mut a = spawn_app_with(
        Some(db),
        Options {
            smtp_port: Some(slow.port),
            extra_args: lease_args(),
            ..Options::default()
        },
    );
    assert_eq!(
        a.post(fixture("24-assignee_change.json")).await.status(),
        200
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !slow.receiving.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "instance a never started the send"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let claimed = a.notifications().await;
    assert_eq!(claimed.len(), 1, "{claimed:#?}");
    assert_eq!(claimed[0].status, notifications::SENDING);
    let owner = claimed[0].claimed_by.clone();
    // Instance b, with a fast mail server, starts while a is sending.
    let fast = SmtpServer::start().await;
    let b = spawn_app_with(
        None,
        Options {
            database_url: Some(url),
            smtp_port: Some(fast.port),
            extra_args: lease_args(),
            ..Options::default()
        },
    );
    // Three leases later a still holds the claim: it renews it while the
    // send is under way, so b does not send the email a second time.
    tokio::time::sleep(Duration::from_secs(3 * LEASE_SECONDS)).await;
    assert!(fast.received().is_empty(), "b sent an email a was sending");
    let held = b.notifications().await;
    assert_eq!(held[0].status, notifications::SENDING);
    assert_eq!(held[0].claimed_by, owner);
    // a dies mid-send: its claim is no longer renewed, and b sends the
    // email about one lease later.
    a.kill();
    let killed = Instant::now();
    let sent = fast.wait_for(1, 5 * LEASE_SECONDS + 5).await;
    assert_eq!(sent.len(), 1);
    let taken_over = killed.elapsed();
    b.wait_for_notifications(10, "b to record the email as sent", |rows| {
        rows.iter().all(|n| n.status == notifications::SENT)
    })
    .await;
    eprintln!(
        "lease {LEASE_SECONDS} s: the killed instance's email went out from the other {:.1} s later",
        taken_over.as_secs_f64()
    );
}

/// "The head of support, if a handed-over chat has no reply within a
/// second": a timer rule whose one step is due as soon as it is armed.
fn no_reply_within_a_second() -> serde_json::Value {
    serde_json::json!({
        "name": "handover-no-reply",
        "to": ["head@example.com"],
        "template": "waiting",
        "timer": {
            "after": "1s",
            "start": {"on": ["assignee_change"]},
            "stop": [{"on": ["message"], "all": [{"field": "payload.message_by.type", "op": "eq", "value": "user"}]}]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_one_killed_mid_send_of_a_timer_email_send_it_exactly_once() {
    let Some(db) = TestDatabase::postgres() else {
        return;
    };
    let url = db.url.clone();
    let mut args = lease_args();
    args.extend(["--timer-poll-ms".to_owned(), "100".to_owned()]);
    // Instance a's mail server stalls before taking the message's data.
    let stalled = SmtpServer::start().await;
    stalled.set_stall_data(60_000);
    let mut a = spawn_app_with(
        Some(db),
        Options {
            smtp_port: Some(stalled.port),
            extra_args: args.clone(),
            ..Options::default()
        },
    );
    a.clear_rules().await;
    let (status, body) = a
        .api(
            reqwest::Method::POST,
            "/api/v1/rules",
            Some(no_reply_within_a_second()),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut handover = fixture_item("24-assignee_change.json");
    handover["timestamp"] = serde_json::json!((chrono::Utc::now() - chrono::Duration::seconds(10))
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string());
    assert_eq!(a.post(envelope(&[handover])).await.status(), 200);
    // a claims the due timer, fires it, claims its email and is sending it.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !stalled.data_asked.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "instance a never started the send"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let timers = a
        .with_db(|c| hookline_storage::timers::all(c).expect("timers"))
        .await;
    assert_eq!(timers.len(), 1, "{timers:#?}");
    assert_eq!(timers[0].status, hookline_storage::timers::FIRED);
    let claimed = a.notifications().await;
    assert_eq!(claimed.len(), 1, "{claimed:#?}");
    assert_eq!(claimed[0].status, notifications::SENDING);
    // Instance b, with a working mail server, runs beside it; a is killed
    // mid-send (SIGKILL), before the message's data went over.
    let fast = SmtpServer::start().await;
    let b = spawn_app_with(
        None,
        Options {
            database_url: Some(url),
            smtp_port: Some(fast.port),
            extra_args: args,
            ..Options::default()
        },
    );
    a.kill();
    let sent = fast.wait_for(1, 5 * LEASE_SECONDS + 10).await;
    assert_eq!(sent[0].to, ["head@example.com"]);
    b.wait_for_notifications(10, "b to record the email as sent", |rows| {
        rows.iter().all(|n| n.status == notifications::SENT)
    })
    .await;
    // Three leases more: nothing else arrives anywhere, and the database
    // holds one timer, fired once, and one email, sent by b.
    tokio::time::sleep(Duration::from_secs(3 * LEASE_SECONDS)).await;
    assert_eq!(fast.received().len(), 1, "{:#?}", fast.received());
    assert!(stalled.received().is_empty(), "{:#?}", stalled.received());
    let rows = b.notifications().await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].status, notifications::SENT);
    assert_eq!(rows[0].attempts, 2, "a's claim and b's");
    let timers = b
        .with_db(|c| hookline_storage::timers::all(c).expect("timers"))
        .await;
    assert_eq!(timers.len(), 1, "{timers:#?}");
    assert_eq!(timers[0].status, hookline_storage::timers::FIRED);
}
