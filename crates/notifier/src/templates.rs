//! Email templates: subject, plain text and HTML per template; built-in
//! defaults embedded in the binary, overridable (and extendable) from a
//! folder of `NAME.subject.hbs`, `NAME.text.hbs`, `NAME.html.hbs` files.
//! Strict mode: a template that names a missing value fails to render.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use handlebars::Handlebars;
use serde_json::Value;

/// The three parts of a template.
const PARTS: [&str; 3] = ["subject", "text", "html"];

/// (name, subject, text, html) of the built-in templates.
const BUILT_IN: [(&str, &str, &str, &str); 4] = [
    (
        "handover",
        include_str!("../../../templates/email/handover.subject.hbs"),
        include_str!("../../../templates/email/handover.text.hbs"),
        include_str!("../../../templates/email/handover.html.hbs"),
    ),
    (
        "status_change",
        include_str!("../../../templates/email/status_change.subject.hbs"),
        include_str!("../../../templates/email/status_change.text.hbs"),
        include_str!("../../../templates/email/status_change.html.hbs"),
    ),
    (
        "generic",
        include_str!("../../../templates/email/generic.subject.hbs"),
        include_str!("../../../templates/email/generic.text.hbs"),
        include_str!("../../../templates/email/generic.html.hbs"),
    ),
    (
        "waiting",
        include_str!("../../../templates/email/waiting.subject.hbs"),
        include_str!("../../../templates/email/waiting.text.hbs"),
        include_str!("../../../templates/email/waiting.html.hbs"),
    ),
];

/// The longest subject sent, in characters.
const MAX_SUBJECT: usize = 200;

/// A rendered email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// One line, never a line break.
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The Reply-To address, when the rule asks for one and it is known.
    pub reply_to: Option<String>,
}

/// Why templates could not be loaded, reloaded or rendered. The messages
/// are what users see (the CLI, the log, dry runs and previews).
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read the templates folder {}: {error}", .dir.display())]
    ReadFolder { dir: PathBuf, error: std::io::Error },
    #[error("{0}")]
    ReadEntry(std::io::Error),
    #[error("cannot read {}: {error}", .path.display())]
    ReadFile {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A template (`NAME.PART`) that does not compile.
    #[error("template {key}: {error}")]
    Compile {
        key: String,
        error: Box<handlebars::TemplateError>,
    },
    /// A new template in the folder without all three parts.
    #[error("template {name:?} in {} lacks {}", .dir.display(), files(.name, .missing))]
    Incomplete {
        name: String,
        dir: PathBuf,
        missing: Vec<&'static str>,
    },
    #[error("unknown template {0:?}")]
    Unknown(String),
    /// A part (`NAME.PART`) that fails to render (strict mode: a missing
    /// value is an error).
    #[error("template {key}: {error}")]
    Render {
        key: String,
        error: Box<handlebars::RenderError>,
    },
    /// A reloaded folder lost a template a rule in force uses.
    #[error("template {0:?} is used by a rule in force and is no longer there")]
    NoLongerThere(String),
    /// A reloaded folder has templates that fail on the samples (one
    /// message each).
    #[error("{}", .0.join("; "))]
    FailOnSamples(Vec<String>),
}

/// `NAME.PART.hbs` for each of `parts`, comma-separated.
fn files(name: &str, parts: &[&str]) -> String {
    parts
        .iter()
        .map(|part| format!("{name}.{part}.hbs"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One loaded set of templates.
struct Registry {
    /// HTML bodies: everything from the context is HTML-escaped.
    html: Handlebars<'static>,
    /// Subjects and plain-text bodies: no escaping.
    text: Handlebars<'static>,
    names: BTreeSet<String>,
    /// (name, part) -> (source, where it came from).
    sources: std::collections::BTreeMap<(String, String), (String, String)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("names", &self.names)
            .finish()
    }
}

impl Registry {
    /// The built-in templates, then every `NAME.PART.hbs` in `dir` (a new
    /// template needs all three parts; an override may replace one).
    fn load(dir: Option<&Path>) -> Result<Registry, TemplateError> {
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        let mut templates = Registry {
            html,
            text,
            names: BTreeSet::new(),
            sources: Default::default(),
        };
        for (name, subject, text, html) in BUILT_IN {
            templates.register(name, "subject", subject, "built-in")?;
            templates.register(name, "text", text, "built-in")?;
            templates.register(name, "html", html, "built-in")?;
            templates.names.insert(name.to_owned());
        }
        if let Some(dir) = dir {
            templates.load_dir(dir)?;
        }
        Ok(templates)
    }

    fn load_dir(&mut self, dir: &Path) -> Result<(), TemplateError> {
        let entries = std::fs::read_dir(dir).map_err(|error| TemplateError::ReadFolder {
            dir: dir.to_owned(),
            error,
        })?;
        let mut found: BTreeSet<(String, String)> = BTreeSet::new();
        for entry in entries {
            let path = entry.map_err(TemplateError::ReadEntry)?.path();
            let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            let Some(stem) = file.strip_suffix(".hbs") else {
                continue;
            };
            let Some((name, part)) = stem.rsplit_once('.') else {
                continue;
            };
            if !PARTS.contains(&part) {
                continue;
            }
            let source =
                std::fs::read_to_string(&path).map_err(|error| TemplateError::ReadFile {
                    path: path.clone(),
                    error,
                })?;
            self.register(name, part, &source, &path.display().to_string())?;
            found.insert((name.to_owned(), part.to_owned()));
        }
        for (name, _) in &found {
            if self.names.contains(name) {
                continue;
            }
            let missing: Vec<&'static str> = PARTS
                .iter()
                .copied()
                .filter(|p| !found.contains(&(name.clone(), (*p).to_owned())))
                .collect();
            if !missing.is_empty() {
                return Err(TemplateError::Incomplete {
                    name: name.clone(),
                    dir: dir.to_owned(),
                    missing,
                });
            }
            self.names.insert(name.clone());
        }
        Ok(())
    }

    fn register(
        &mut self,
        name: &str,
        part: &str,
        source: &str,
        origin: &str,
    ) -> Result<(), TemplateError> {
        self.sources.insert(
            (name.to_owned(), part.to_owned()),
            (source.to_owned(), origin.to_owned()),
        );
        let key = format!("{name}.{part}");
        let registry = if part == "html" {
            &mut self.html
        } else {
            &mut self.text
        };
        registry
            .register_template_string(&key, source)
            .map_err(|error| TemplateError::Compile {
                key,
                error: Box::new(error),
            })
    }

    fn has(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    fn check(&self, contexts: &[(String, Value)]) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        for name in &self.names {
            if let Some(error) = contexts.iter().find_map(|(sample, context)| {
                self.render(name, context)
                    .err()
                    .map(|e| format!("{e} (on sample {sample})"))
            }) {
                errors.push(error);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn render(&self, name: &str, context: &Value) -> Result<Rendered, TemplateError> {
        if !self.has(name) {
            return Err(TemplateError::Unknown(name.to_owned()));
        }
        let render = |registry: &Handlebars<'static>, part: &str| {
            let key = format!("{name}.{part}");
            registry
                .render(&key, context)
                .map_err(|error| TemplateError::Render {
                    key,
                    error: Box::new(error),
                })
        };
        Ok(Rendered {
            subject: one_line(&render(&self.text, "subject")?),
            text: render(&self.text, "text")?,
            html: render(&self.html, "html")?,
            reply_to: None,
        })
    }

    fn render_subject(&self, name: &str, context: &Value) -> Result<String, TemplateError> {
        let key = format!("{name}.subject");
        self.text
            .render(&key, context)
            .map(|s| one_line(&s))
            .map_err(|error| TemplateError::Render {
                key,
                error: Box::new(error),
            })
    }
}

/// A folder's state: (file name, modified, length) of each file.
type Stamp = Vec<(String, Option<std::time::SystemTime>, u64)>;

fn stamp(dir: Option<&Path>) -> Stamp {
    let Some(entries) = dir.and_then(|d| std::fs::read_dir(d).ok()) else {
        return Vec::new();
    };
    let mut files: Stamp = entries
        .filter_map(Result::ok)
        .map(|e| {
            let meta = e.metadata().ok();
            (
                e.file_name().to_string_lossy().into_owned(),
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.map_or(0, |m| m.len()),
            )
        })
        .collect();
    files.sort();
    files
}

/// The templates in force: built-in, then the templates folder's, which
/// [`Templates::reload_if_changed`] reloads when the folder changes.
pub struct Templates {
    current: RwLock<Arc<Registry>>,
    dir: Option<PathBuf>,
    stamp: Mutex<Stamp>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("names", &self.names())
            .field("dir", &self.dir)
            .finish()
    }
}

impl Templates {
    /// The built-in templates only.
    pub fn built_in() -> Result<Templates, TemplateError> {
        Templates::load(None)
    }

    /// The built-in templates, then every `NAME.PART.hbs` in `dir` (a new
    /// template needs all three parts; an override may replace one).
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let before = stamp(dir);
        Ok(Templates {
            current: RwLock::new(Arc::new(Registry::load(dir)?)),
            dir: dir.map(Path::to_path_buf),
            stamp: Mutex::new(before),
        })
    }

    fn get(&self) -> Arc<Registry> {
        match self.current.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// When a file of the templates folder changed since the last load:
    /// loads it again and renders every template over `contexts` (the
    /// samples'); puts the new templates in force when they all render
    /// (`Ok(true)`), keeps the old ones otherwise (`Err` with why).
    /// `needed` are the templates rules in force use: a folder that lost
    /// one of them is refused like one with a broken template (every email
    /// of such a rule would fail).
    pub fn reload_if_changed(
        &self,
        contexts: impl FnOnce() -> Vec<(String, Value)>,
        needed: &[String],
    ) -> Result<bool, TemplateError> {
        let Some(dir) = &self.dir else {
            return Ok(false);
        };
        let now = stamp(Some(dir));
        {
            let Ok(mut known) = self.stamp.lock() else {
                return Ok(false);
            };
            if *known == now {
                return Ok(false);
            }
            *known = now;
        }
        let registry = Registry::load(Some(dir))?;
        if let Some(missing) = needed.iter().find(|name| !registry.has(name)) {
            return Err(TemplateError::NoLongerThere(missing.clone()));
        }
        registry
            .check(&contexts())
            .map_err(TemplateError::FailOnSamples)?;
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(registry);
        }
        Ok(true)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get().has(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.get().names.iter().cloned().collect()
    }

    /// The parts of template `name`: (part, source, where it came from).
    pub fn parts(&self, name: &str) -> Vec<(String, String, String)> {
        let registry = self.get();
        PARTS
            .iter()
            .filter_map(|part| {
                registry
                    .sources
                    .get(&(name.to_owned(), (*part).to_owned()))
                    .map(|(source, origin)| ((*part).to_owned(), source.clone(), origin.clone()))
            })
            .collect()
    }

    /// Renders every template over every `(sample, context)`; the errors,
    /// one per template (the first sample it fails on).
    pub fn check(&self, contexts: &[(String, Value)]) -> Result<(), Vec<String>> {
        self.get().check(contexts)
    }

    /// Renders the template `name` over `context`.
    pub fn render(&self, name: &str, context: &Value) -> Result<Rendered, TemplateError> {
        self.get().render(name, context)
    }

    /// Renders only the subject (rule previews).
    pub fn render_subject(&self, name: &str, context: &Value) -> Result<String, TemplateError> {
        self.get().render_subject(name, context)
    }
}

/// Collapses all whitespace, line breaks included, and bounds the length.
fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = line.chars();
    let head: String = chars.by_ref().take(MAX_SUBJECT).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn built_in_templates_render_every_sample_and_a_broken_one_is_named() {
        let contexts = crate::dry_run::sample_contexts();
        assert_eq!(contexts.len(), 28);
        Templates::built_in().unwrap().check(&contexts).unwrap();
        let dir = std::env::temp_dir().join(format!("hookline-broken-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("broken.subject.hbs"), "s").unwrap();
        std::fs::write(dir.join("broken.text.hbs"), "bot {{bot.id}}").unwrap();
        std::fs::write(dir.join("broken.html.hbs"), "h").unwrap();
        let errors = Templates::load(Some(&dir))
            .unwrap()
            .check(&contexts)
            .unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("broken.text") && errors[0].contains("01-conversation_create"),
            "{errors:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn html_escapes_and_subject_is_one_line() {
        let templates = Templates::built_in().unwrap();
        let context = json!({
            "rule": {"name": "r"},
            "event": {"id": 1, "type": "note", "message_type": null, "summary": "<script>alert(1)</script>", "occurred_at": "now"},
            "conversation": {"key": "k", "title": "A\r\nB", "visitor": {"name": null}, "bot_id": null, "status": "open"},
            "links": {"swiftsell": null, "hookline": null}
        });
        let rendered = templates.render("generic", &context).unwrap();
        assert!(!rendered.subject.contains('\n') && !rendered.subject.contains('\r'));
        assert!(rendered.html.contains("&lt;script&gt;"));
        assert!(!rendered.html.contains("<script>"));
        assert!(
            rendered.text.contains("<script>alert(1)</script>"),
            "plain text is not HTML-escaped"
        );
    }

    #[test]
    fn missing_values_fail_in_strict_mode() {
        let templates = Templates::built_in().unwrap();
        assert!(templates.render("generic", &json!({})).is_err());
    }

    #[test]
    fn a_folder_overrides_and_adds_templates() {
        let dir = std::env::temp_dir().join(format!("hookline-templates-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("generic.subject.hbs"), "Custom {{event.type}}").unwrap();
        std::fs::write(dir.join("mine.subject.hbs"), "s").unwrap();
        std::fs::write(dir.join("mine.text.hbs"), "t").unwrap();
        std::fs::write(dir.join("mine.html.hbs"), "h").unwrap();
        let templates = Templates::load(Some(&dir)).unwrap();
        assert!(templates.has("mine"));
        assert_eq!(
            templates
                .render_subject("generic", &json!({"event": {"type": "note"}}))
                .unwrap(),
            "Custom note"
        );
        std::fs::remove_file(dir.join("mine.html.hbs")).unwrap();
        std::fs::write(dir.join("half.subject.hbs"), "s").unwrap();
        let error = Templates::load(Some(&dir)).unwrap_err();
        assert!(error.to_string().contains("half.html.hbs"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
