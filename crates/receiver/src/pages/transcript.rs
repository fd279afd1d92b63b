//! A conversation's events as the page shows them: messages as chat
//! bubbles (visitor left, agent and bot right) with media, forms and
//! buttons as readable cards; everything else as timeline lines.

use hookline_model::{ActorKind, Item, MessageBody, Payload};
use hookline_storage::events::StoredEvent;
use serde_json::{json, Value};

/// The raw JSON, indented for reading.
pub fn pretty(raw: &str) -> String {
    serde_json::from_str::<Value>(raw)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| raw.to_owned())
}

/// One entry of the transcript.
pub fn entry(event: &StoredEvent) -> Value {
    let base = json!({
        "id": event.id,
        "time": crate::params::rfc3339(event.occurred_at),
        "summary": event.summary,
        // Not `raw`: handlebars has a built-in helper of that name, which
        // `{{raw}}` would call instead (and print nothing).
        "raw_json": pretty(&event.raw),
    });
    let item = Item::from_raw(&event.raw);
    let payload = item
        .as_ref()
        .and_then(|i| i.event.get())
        .map(|e| &e.payload);
    if let Some(Payload::AssigneeChange(change)) = payload {
        return with_base(handover(change), base);
    }
    let message = payload.and_then(|p| match p {
        Payload::Message(m) => Some(m.clone()),
        _ => None,
    });
    let Some(message_event) = message else {
        return base;
    };
    let actor = message_event.message_by.get();
    let side = match actor.map(|a| a.kind()) {
        Some(ActorKind::Visitor) => "visitor",
        Some(ActorKind::Bot) => "bot",
        _ => "agent",
    };
    let who = actor
        .map(|a| a.label())
        .unwrap_or_else(|| "someone".to_owned());
    let mut view = json!({"bubble": true, "side": side, "who": who});
    if let Some(message) = message_event.message.get() {
        fill(&mut view, message);
    }
    // The actor is named once, above the bubble: the summary (which starts
    // with it) is shown, without it, only when nothing else says what was
    // sent.
    let shown = ["text", "media", "card_title"]
        .iter()
        .any(|k| view.get(k).is_some());
    if !shown {
        view["detail"] = json!(without_sender(&event.summary, &who));
    }
    with_base(view, base)
}

fn with_base(mut view: Value, base: Value) -> Value {
    if let (Value::Object(view), Value::Object(base)) = (&mut view, base) {
        view.extend(base);
    }
    view
}

/// A summary without the sender it starts with: `agent a@b.c sent image
/// x.png` is `sent image x.png` under a bubble already saying who.
fn without_sender(summary: &str, who: &str) -> String {
    summary
        .strip_prefix(who)
        .map(|rest| rest.trim_start_matches(':').trim_start())
        .filter(|rest| !rest.is_empty())
        .unwrap_or(summary)
        .to_owned()
}

/// The handover as its own marker: from whom, to whom, by whom.
fn handover(change: &hookline_model::AssigneeChange) -> Value {
    let label = |a: &hookline_model::Field<hookline_model::Actor>| {
        a.get().map(hookline_model::Actor::label)
    };
    json!({
        "handover": {
            "from": label(&change.from).unwrap_or_else(|| "nobody".to_owned()),
            "to": label(&change.to).unwrap_or_else(|| "nobody".to_owned()),
            "by": change.changed_by.get().map(hookline_model::Actor::who),
        }
    })
}

fn fill(view: &mut Value, message: &hookline_model::Message) {
    use MessageBody as B;
    let set = |view: &mut Value, key: &str, value: Value| {
        if let Value::Object(map) = view {
            map.insert(key.to_owned(), value);
        }
    };
    if let Some(media) = message.media() {
        let kind = match &message.body {
            B::FileUploadResponse(_) => "uploaded".to_owned(),
            _ => message.type_name.clone(),
        };
        let image = media
            .mime_type
            .text()
            .is_some_and(|m| m.starts_with("image/"));
        let link = media
            .link
            .text()
            .filter(|l| l.starts_with("https://") || l.starts_with("http://"));
        if let Some(link) = link {
            set(
                view,
                "media",
                json!({
                    "kind": kind, "link": link, "image": image,
                    "name": media.file_name.text().unwrap_or("file"),
                }),
            );
        }
        return;
    }
    match &message.body {
        B::Text(text) => set(view, "text", json!(text.text.text().unwrap_or_default())),
        B::Form(form) => {
            let p = form.payload.get();
            set(
                view,
                "card_title",
                json!(p.and_then(|p| p.message.text()).unwrap_or("Form")),
            );
            let lines: Vec<String> = p
                .map(|p| {
                    p.field_list()
                        .iter()
                        .map(|f| format!("{} ({})", f.name(), f.kind.text().unwrap_or("text")))
                        .collect()
                })
                .unwrap_or_default();
            set(view, "lines", json!(lines));
        }
        B::FormResponse(form) => {
            set(view, "card_title", json!("Form answers"));
            let lines: Vec<String> = form
                .payload
                .get()
                .map(|p| p.answers())
                .unwrap_or_default()
                .into_iter()
                .map(|(name, answer)| format!("{name}: {answer}"))
                .collect();
            set(view, "lines", json!(lines));
        }
        B::Button(buttons) => {
            let p = buttons.payload.get();
            set(
                view,
                "card_title",
                json!(p.and_then(|p| p.title.text()).unwrap_or("Buttons")),
            );
            let chips = p.map(|p| p.titles()).unwrap_or_default();
            set(view, "chips", json!(chips));
        }
        B::List(list) => {
            let p = list.payload.get();
            set(
                view,
                "card_title",
                json!(p.and_then(|p| p.title.text()).unwrap_or("List")),
            );
            let chips = p.map(|p| p.item_titles()).unwrap_or_default();
            set(view, "chips", json!(chips));
        }
        _ => {}
    }
}
