//! The Emails page shows each email as it was sent: what the page shows
//! equals what the SMTP server received (both read with mailparse), the
//! HTML part cannot run script, and hostile text stays text.

use mailparse::MailHeaderMap;
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;
use crate::smtp::SmtpServer;
use hookline_testdb::TestDatabase;

const HOSTILE: &str =
    "</pre><script>alert('text')</script><img src=x onerror=alert(2)> & \"quoted\"";
const HOSTILE_RULE: &str = "\"><svg onload=alert(3)> rule";

/// What handlebars escaped, back as it was.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x60;", "`")
        .replace("&#x3D;", "=")
        .replace("&amp;", "&")
}

/// The text between `start` (which must occur once) and the next `end`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    assert_eq!(html.matches(start).count(), 1, "{start} once in {html}");
    let rest = &html[html.find(start).unwrap() + start.len()..];
    &rest[..rest
        .find(end)
        .unwrap_or_else(|| panic!("{end} after {start}"))]
}

async fn the_emails_page_shows_each_email_as_the_server_received_it(db: TestDatabase) {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with(
        Some(db),
        Options {
            smtp_port: Some(smtp.port),
            ..Options::default()
        },
    );
    app.clear_rules().await;
    let rule = json!({"name": HOSTILE_RULE, "on": ["note"], "to": ["lead@example.com"], "template": "generic"});
    let (status, body) = app.api(Method::POST, "/api/v1/rules", Some(rule)).await;
    assert_eq!(status, 201, "{body}");
    let mut note = fixture_item("28-note.json");
    note["event"]["payload"]["note"] = json!(HOSTILE);
    assert_eq!(app.post(envelope(&[note])).await.status(), 200);
    let received = smtp.wait_for(1, 15).await.remove(0);
    let rows = app
        .wait_for_notifications(15, "the email recorded as sent", |rows| {
            rows.len() == 1 && rows[0].status == "sent"
        })
        .await;
    let cookie = login(&app, ADMIN_TOKEN).await.expect("login");
    let list = page(&app, "/ui/notifications", &cookie).await;
    let link = format!("/ui/notifications/{}", rows[0].id);
    assert!(list.contains(&format!("href=\"{link}\"")), "{list}");
    let html = page(&app, &link, &cookie).await;

    // Subject, text and HTML as the server received them.
    let subject = unescape(between(&html, "<p id=\"email-subject\">", "</p>"));
    assert_eq!(subject, received.subject());
    assert!(subject.contains(HOSTILE_RULE), "{subject}");
    let text = unescape(between(
        &html,
        "<pre class=\"json\" id=\"email-text\">",
        "</pre>",
    ));
    assert_eq!(text, received.part("text/plain"));
    assert!(text.contains(HOSTILE), "{text}");
    let frame = between(&html, "<iframe id=\"email-html\"", "></iframe>");
    let srcdoc = unescape(between(frame, "srcdoc=\"", "\""));
    assert_eq!(srcdoc, received.part("text/html"));
    // The headers, each as received.
    let parsed = received.parsed();
    for name in [
        "Message-ID",
        "Auto-Submitted",
        "X-Auto-Response-Suppress",
        "In-Reply-To",
        "From",
        "To",
    ] {
        let value = parsed.headers.get_first_value(name).expect(name);
        let row = format!("<td class=\"small\"><code>{name}</code></td><td class=\"small\">");
        let shown = unescape(between(&html, &row, "</td>"));
        assert_eq!(shown.trim(), value.trim(), "{name}");
    }
    // The source is the message as it went, to the byte but for the
    // server's line endings.
    let source = unescape(between(
        &html,
        "<pre class=\"json\" id=\"email-source\">",
        "</pre>",
    ));
    assert_eq!(
        source.replace("\r\n", "\n").trim_end(),
        received.data.replace("\r\n", "\n").trim_end()
    );

    // The HTML cannot run script: a sandbox without allow-scripts, under
    // the page's own policy; hostile text is never markup on the page.
    assert!(frame.contains(" sandbox=\"\" "), "{frame}");
    assert!(!html.contains("allow-scripts"), "{html}");
    assert!(
        !html.contains("<script") && !html.contains("<svg") && !html.contains("<img"),
        "{html}"
    );
    let response = no_redirects()
        .get(format!("{}{link}", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(policy.contains("default-src 'self'"), "{policy}");

    // A bad id is a 404.
    let missing = no_redirects()
        .get(format!("{}/ui/notifications/999999", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

on_both_backends!(the_emails_page_shows_each_email_as_the_server_received_it);
