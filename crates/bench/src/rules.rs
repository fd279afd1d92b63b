//! `rules`: the time to evaluate one event against 1,000 rules listening
//! to its type, with the evaluation context built as ingest builds it
//! (from the typed item, nothing parsed again).

use std::sync::Arc;
use std::time::Instant;

use hookline_notifier::context::{evaluation_context, EventFacts, ItemSource};
use hookline_notifier::{CompiledRule, RuleDef, RuleSet, Templates};
use serde_json::json;

const RULES: usize = 1_000;
const ROUNDS: usize = 2_000;

/// 1,000 rules of every operator family; one in a hundred matches.
fn rules(templates: &Templates) -> anyhow::Result<Vec<CompiledRule>> {
    let mut out = Vec::with_capacity(RULES);
    for n in 0..RULES {
        let condition = match n % 5 {
            0 => {
                json!({"field": "payload.to.email", "op": "eq", "value": format!("agent{n}@swiftsell.biz")})
            }
            1 => {
                json!({"field": "payload.to.email", "op": "matches", "value": format!("^agent{n}@")})
            }
            2 => json!({"field": "bot.id", "op": "in", "value": [n, n + 1, n + 2]}),
            3 => {
                json!({"field": "payload.from.email", "op": "starts_with", "value": format!("bot{n}")})
            }
            _ => json!({"field": "conversation.message_count", "op": "gt", "value": 1_000_000 + n}),
        };
        let matching = n % 100 == 0;
        let all = if matching {
            vec![json!({"field": "payload.to.type", "op": "eq", "value": "user"})]
        } else {
            vec![
                json!({"field": "payload.to.type", "op": "eq", "value": "user"}),
                condition,
            ]
        };
        let def: RuleDef = serde_json::from_value(json!({
            "name": format!("rule-{n}"), "on": ["assignee_change"], "all": all,
            "to": ["{{payload.to.email}}"], "template": "handover"
        }))?;
        out.push(CompiledRule::compile(def, Some(n as i64), templates)?);
    }
    Ok(out)
}

pub fn run() -> anyhow::Result<()> {
    let templates = Arc::new(Templates::built_in()?);
    let set = RuleSet::new(rules(&templates)?);
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/swiftsell/24-assignee_change.json"
    ))?;
    let item: serde_json::Value = serde_json::from_str(&raw)?;
    // Typed once, as ingest hands it to the hook.
    let record =
        hookline_model::record::read_item_text(&item["events"][0].to_string(), chrono::Utc::now());
    let facts = EventFacts {
        id: Some(1),
        event_type: "assignee_change",
        message_type: None,
        summary: "handed over",
        occurred_at: chrono::Utc::now().naive_utc(),
        actor_type: Some("user"),
        actor_email: Some("himanshu@swiftsell.biz"),
        item: ItemSource::Typed(record.item.as_ref()),
    };
    let mut matched = 0;
    let mut timings = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let context = evaluation_context(&facts, None);
        matched = 0;
        let mut lookups = set.lookups(&context);
        for rule in set.for_type("assignee_change") {
            if rule.matches_in(&mut lookups) {
                matched += 1;
                std::hint::black_box(rule.recipients(&context));
            }
        }
        timings.push(started.elapsed().as_secs_f64() * 1e6);
    }
    timings.sort_by(f64::total_cmp);
    let at = |p: f64| timings[((timings.len() - 1) as f64 * p) as usize];
    println!("rules benchmark: one assignee_change event against {RULES} rules listening to it ({matched} match), {ROUNDS} rounds");
    println!(
        "  context + evaluation + recipients:  p50 {:.1} µs   p99 {:.1} µs",
        at(0.5),
        at(0.99)
    );
    println!(
        "  events with no rule for their type skip evaluation (an index lookup: {} rules indexed)",
        set.len()
    );
    Ok(())
}
