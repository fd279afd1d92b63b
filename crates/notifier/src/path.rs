//! Field paths into the evaluation context: `payload.to.email`, and into
//! lists: `payload.labels[*].id` (every item), `payload.labels[0].id` (the
//! first). A name that meets a list is looked up in each item, so
//! `payload.labels.id` means `payload.labels[*].id`.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Segment {
    /// An object key; on a list, the key of each item (or an index when
    /// the key is a number, as in `labels.0.id`).
    Key(String),
    /// `[N]`
    Index(usize),
    /// `[*]`
    Each,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Path {
    segments: Vec<Segment>,
}

fn bad_path(text: &str) -> String {
    format!(
        "bad field path {text:?}: use dotted names such as payload.to.email, \
         and [*] for every item of a list (payload.labels[*].id) or [0] for the first"
    )
}

impl Path {
    pub fn parse(text: &str) -> Result<Path, String> {
        let mut segments = Vec::new();
        for part in text.trim().split('.') {
            let (name, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            let valid_name = name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '$'));
            if !valid_name || (name.is_empty() && (segments.is_empty() || rest.is_empty())) {
                return Err(bad_path(text));
            }
            if !name.is_empty() {
                segments.push(Segment::Key(name.to_owned()));
            }
            while !rest.is_empty() {
                let Some(end) = rest.find(']').filter(|_| rest.starts_with('[')) else {
                    return Err(bad_path(text));
                };
                let inside = rest[1..end].trim();
                segments.push(match inside {
                    "*" => Segment::Each,
                    index => Segment::Index(index.parse().map_err(|_| bad_path(text))?),
                });
                rest = &rest[end + 1..];
            }
        }
        Ok(Path { segments })
    }

    pub fn root(&self) -> &str {
        match self.segments.first() {
            Some(Segment::Key(name)) => name,
            _ => "",
        }
    }

    /// True when the path says `[*]`: it names every item of a list.
    pub fn has_each(&self) -> bool {
        self.segments.contains(&Segment::Each)
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

    /// The value at this path when it names one value; `None` when it is
    /// missing or the path runs over the items of a list.
    pub fn lookup<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        if let Some(found) = self.single(value) {
            return found;
        }
        let (values, many) = self.values(value);
        if many {
            return None;
        }
        values.into_iter().next()
    }

    /// The walk of [`Path::values`] without allocating, for a path that
    /// meets no list on the way: `Some(the value or nothing)`; `None` when
    /// it runs over the items of a list (ask `values`).
    pub fn single<'a>(&self, value: &'a Value) -> Option<Option<&'a Value>> {
        let mut current = Some(value);
        for segment in &self.segments {
            let Some(value) = current else {
                return Some(None);
            };
            current = match (segment, value) {
                (Segment::Key(key), Value::Object(map)) => map.get(key),
                (Segment::Key(key), Value::Array(items)) => match key.parse::<usize>() {
                    Ok(index) => items.get(index),
                    Err(_) => return None,
                },
                (Segment::Index(index), Value::Array(items)) => items.get(*index),
                (Segment::Each, _) => return None,
                _ => None,
            };
        }
        Some(current)
    }

    /// Every value at this path, and whether the path ran over the items
    /// of a list (`[*]`, or a name meeting a list).
    pub fn values<'a>(&self, value: &'a Value) -> (Vec<&'a Value>, bool) {
        let mut current = vec![value];
        let mut many = false;
        for segment in &self.segments {
            let mut next = Vec::new();
            for value in current {
                match (segment, value) {
                    (Segment::Key(key), Value::Object(map)) => next.extend(map.get(key)),
                    (Segment::Key(key), Value::Array(items)) => match key.parse::<usize>() {
                        Ok(index) => next.extend(items.get(index)),
                        Err(_) => {
                            many = true;
                            next.extend(items.iter().filter_map(|item| item.get(key)));
                        }
                    },
                    (Segment::Index(index), Value::Array(items)) => next.extend(items.get(*index)),
                    (Segment::Each, Value::Array(items)) => {
                        many = true;
                        next.extend(items.iter());
                    }
                    (Segment::Each, _) => many = true,
                    _ => {}
                }
            }
            current = next;
        }
        (current, many)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_reach_into_lists() {
        let v = json!({"p": {"labels": [{"id": 42}, {"id": 420}], "one": {"x": 1}}});
        let path = |t: &str| Path::parse(t).unwrap();
        assert_eq!(
            path("p.labels[*].id").values(&v),
            (vec![&json!(42), &json!(420)], true)
        );
        assert_eq!(
            path("p.labels.id").values(&v),
            (vec![&json!(42), &json!(420)], true)
        );
        assert_eq!(path("p.labels[1].id").lookup(&v), Some(&json!(420)));
        assert_eq!(path("p.labels.0.id").lookup(&v), Some(&json!(42)));
        assert_eq!(path("p.labels[*].id").lookup(&v), None);
        assert_eq!(path("p.one.x").lookup(&v), Some(&json!(1)));
        assert!(path("p.labels[*]").has_each());
        for bad in ["p..x", "p.labels[", "p.labels[x]", "[*]", "p.a b", "p.x]"] {
            assert!(Path::parse(bad).is_err(), "{bad}");
        }
    }
}
