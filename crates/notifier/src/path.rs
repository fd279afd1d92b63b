//! Dotted field paths into the evaluation context: `payload.to.email`.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    segments: Vec<String>,
}

impl Path {
    pub fn parse(text: &str) -> Result<Path, String> {
        let segments: Vec<String> = text.trim().split('.').map(str::to_owned).collect();
        let bad = |s: &String| {
            s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '$'))
        };
        if segments.iter().any(bad) {
            return Err(format!(
                "bad field path {text:?}: use dotted names such as payload.to.email"
            ));
        }
        Ok(Path { segments })
    }

    pub fn root(&self) -> &str {
        self.segments
            .first()
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// True when this path is an actor's field (`payload.to.email`,
    /// `event.actor.email`) and that actor is a visitor (`type` beside it).
    pub fn actor_is_visitor(&self, context: &Value) -> bool {
        let Some((_, parent)) = self.segments.split_last() else {
            return false;
        };
        let parent = Path {
            segments: parent.to_vec(),
        };
        parent
            .lookup(context)
            .and_then(|actor| actor.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|kind| kind.eq_ignore_ascii_case("visitor"))
    }

    /// The value at this path; array elements by number (`labels.0.id`).
    pub fn lookup<'a>(&self, mut value: &'a Value) -> Option<&'a Value> {
        for segment in &self.segments {
            value = match value {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(value)
    }
}
