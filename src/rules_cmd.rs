//! `hookline rules check|import|export|test` and `hookline send-test-email`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use hookline_notifier::directory::Directory;
use hookline_notifier::dry_run::{self, DryRun};
use hookline_notifier::mailer::written_file;
use hookline_notifier::rules_store::{check_all, check_each};
use hookline_notifier::{
    CompiledRule, Mailer, RecipientPolicy, Rendered, Rules, RulesError, RulesFile, Templates,
};

use crate::cli::{RulesCommand, TemplatesCommand};
use crate::serve::open_existing_database;
use crate::settings::Settings;
use crate::start;

/// Loads the templates and renders each over every shipped sample, so that
/// a template that cannot render fails here, not when an email is sent.
pub fn load_templates(dir: Option<&Path>) -> anyhow::Result<Arc<Templates>> {
    let templates = Templates::load(dir).context("failed to load the email templates")?;
    templates
        .check(&hookline_notifier::dry_run::sample_contexts())
        .map_err(|errors| anyhow::anyhow!("{}", errors.join("\n")))
        .context("an email template fails to render the sample events (strict mode: a missing value is an error)")?;
    Ok(Arc::new(templates))
}

fn read_rules(file: &std::path::Path) -> anyhow::Result<RulesFile> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("failed to read {}", file.display()))?;
    RulesFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

fn read_json(file: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let bytes =
        std::fs::read(file).with_context(|| format!("failed to read {}", file.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", file.display()))
}

/// The events of `--event FILE` or `--sample NAME`.
fn events_of(
    file: Option<&std::path::Path>,
    sample: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    match (file, sample) {
        (Some(file), _) => read_json(file),
        (None, Some(sample)) => {
            let text = hookline_notifier::samples::sample(sample)
                .ok_or_else(|| anyhow::anyhow!("no sample {sample:?}: give 1 to 28"))?;
            Ok(serde_json::from_str(text)?)
        }
        (None, None) => bail!("give --event FILE or --sample NAME"),
    }
}

/// `rules check`: every problem of the file at once. The warnings (a
/// rule that never fires, mail that cannot go where it is addressed) on
/// standard output; the errors, all of them, as the command's error.
fn check(file: &Path, settings: &Settings) -> anyhow::Result<()> {
    let templates = load_templates(settings.templates_dir.as_deref())?;
    let policy = RecipientPolicy::new(&settings.allowed_recipient_domains, 0)?;
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("failed to read {}", file.display()))?;
    let parsed =
        RulesFile::parse_each(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let count = parsed.len();
    let mut errors = Vec::new();
    // The file's calendars and recipients: a rule naming a calendar finds
    // it here.
    let (calendars, recipients) =
        RulesFile::shared_parts(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let directory = Directory::new(&calendars, &recipients).unwrap_or_else(|error| {
        errors.push(error);
        Directory::new(&calendars, &[]).unwrap_or_default()
    });
    let mut defs = Vec::new();
    for rule in parsed {
        match rule {
            Ok(def) => defs.push(def),
            Err(error) => errors.push(error),
        }
    }
    let (checked, invalid) = check_each(&templates, &directory, defs);
    errors.extend(invalid.iter().map(|error| match error {
        RulesError::Duplicate(name) => format!("two rules are named {name:?}"),
        other => other.to_string(),
    }));
    for rule in &checked {
        for warning in hookline_notifier::lint::warnings(&rule.def)
            .into_iter()
            .chain(recipient_warnings(rule, &policy))
        {
            println!("warning: rule {:?}: {warning}", rule.name());
        }
    }
    if !errors.is_empty() {
        bail!(
            "{}: {} of {count} rule(s) invalid:\n  {}",
            file.display(),
            errors.len(),
            errors.join("\n  ")
        );
    }
    if calendars.is_empty() && recipients.is_empty() {
        println!("{}: {count} rule(s), all valid", file.display());
    } else {
        println!(
            "{}: {count} rule(s), {} calendar(s), {} recipient(s), all valid",
            file.display(),
            calendars.len(),
            recipients.len()
        );
    }
    Ok(())
}

pub fn run(command: RulesCommand) -> anyhow::Result<()> {
    match command {
        RulesCommand::Check { file, settings } => check(&file, &start(&settings)?),
        RulesCommand::Import { file, settings } => {
            let settings = start(&settings)?;
            let templates = load_templates(settings.templates_dir.as_deref())?;
            let file_rules = read_rules(&file)?;
            let (db, _) = open_existing_database(&settings)?;
            let rules = Rules::new(templates);
            let mut conn = db.dedicated_connection()?;
            let (calendars, recipients) = (file_rules.calendar.len(), file_rules.recipient.len());
            let (created, updated) = rules
                .import_file(&mut conn, file_rules)
                .map_err(|e| anyhow::anyhow!("{}: {e}; nothing was changed", file.display()))?;
            println!(
                "{}: {created} rule(s) created, {updated} replaced",
                file.display()
            );
            if calendars + recipients > 0 {
                println!(
                    "{}: {calendars} calendar(s) and {recipients} recipient(s) stored",
                    file.display()
                );
            }
            Ok(())
        }
        RulesCommand::Export { settings } => export(&start(&settings)?),
        RulesCommand::Test {
            file,
            event,
            sample,
            conversation_state,
            json,
            settings,
        } => {
            let settings = start(&settings)?;
            let templates = load_templates(settings.templates_dir.as_deref())?;
            let policy = RecipientPolicy::new(
                &settings.allowed_recipient_domains,
                settings.recipient_hourly_cap,
            )?;
            let rules = read_rules(&file)?;
            let directory = Directory::new(&rules.calendar, &rules.recipient)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let checked = check_all(&templates, &directory, rules.rule)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let items = dry_run::items_of(events_of(event.as_deref(), sample.as_deref())?);
            let state = conversation_state.as_deref().map(read_json).transpose()?;
            let run = DryRun {
                rules: &checked,
                policy: &policy,
                templates: &templates,
                public_url: None,
                conversation_state: state.as_ref(),
            };
            let report = run.report(&items);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", dry_run::describe(&report.events));
                print!(
                    "{}",
                    hookline_notifier::timers::dry_run::describe(&report.timers)
                );
            }
            Ok(())
        }
    }
}

/// `hookline templates list|show|render|variables`.
pub fn templates(command: TemplatesCommand) -> anyhow::Result<()> {
    match command {
        TemplatesCommand::List(args) => {
            let templates = load_templates(start(&args)?.templates_dir.as_deref())?;
            for name in templates.names() {
                let origins: Vec<String> = templates
                    .parts(&name)
                    .iter()
                    .map(|(part, _, origin)| format!("{part}: {origin}"))
                    .collect();
                println!("{name}\t{}", origins.join(", "));
            }
            Ok(())
        }
        TemplatesCommand::Show { name, settings } => {
            let templates = load_templates(start(&settings)?.templates_dir.as_deref())?;
            known(&templates, &name)?;
            for (part, source, origin) in templates.parts(&name) {
                println!("--- {name}.{part} ({origin})");
                println!("{source}");
            }
            Ok(())
        }
        TemplatesCommand::Render {
            name,
            event,
            sample,
            html,
            settings,
        } => {
            let templates = load_templates(start(&settings)?.templates_dir.as_deref())?;
            known(&templates, &name)?;
            let items = dry_run::items_of(events_of(event.as_deref(), sample.as_deref())?);
            let contexts = dry_run::template_contexts(&items, "my-rule", "agent@example.com", None);
            let Some(context) = contexts.last() else {
                bail!("the file has no events");
            };
            let email = templates.render(&name, context)?;
            println!("Subject: {}\n", email.subject);
            print!("{}", email.text);
            if html {
                println!("\n--- HTML\n{}", email.html);
            }
            Ok(())
        }
        TemplatesCommand::Variables(args) => {
            start(&args)?;
            print!("{}", hookline_notifier::fields::template_reference());
            Ok(())
        }
    }
}

fn known(templates: &Templates, name: &str) -> anyhow::Result<()> {
    if !templates.has(name) {
        bail!(
            "unknown template {name:?}: available are {}",
            templates.names().join(", ")
        );
    }
    Ok(())
}

/// What `rules check` says about where a rule's mail can go.
fn recipient_warnings(rule: &CompiledRule, policy: &RecipientPolicy) -> Vec<String> {
    let mut warnings = Vec::new();
    for written in &rule.def.to {
        let from_data = written.contains("{{");
        if from_data && policy.any_domain() {
            warnings.push(format!(
                "recipient {written} comes from payload data and any domain is allowed: \
                 set HOOKLINE_ALLOWED_RECIPIENT_DOMAINS so a forged event cannot send mail elsewhere"
            ));
        }
        if !from_data {
            if let Err(reason) = policy.check_domain(written.trim()) {
                warnings.push(format!("{reason}: it will always be skipped"));
            }
        }
    }
    warnings
}

fn export(settings: &Settings) -> anyhow::Result<()> {
    let (db, _) = open_existing_database(settings)?;
    let rules = Rules::new(Arc::new(Templates::built_in()?));
    let mut conn = db.dedicated_connection()?;
    let file = rules.export(&mut conn)?;
    let text = file.to_toml().map_err(|e| anyhow::anyhow!(e))?;
    print!("{text}");
    Ok(())
}

/// `send-test-email`: one email with the mail settings `serve` would use;
/// says where it went (the SMTP server and its answer, or the `.eml` file).
pub async fn send_test_email(to: &str, settings: &Settings) -> anyhow::Result<()> {
    let mailer = Mailer::new(
        settings.smtp_url.as_deref(),
        &settings.data_dir.join("outbox"),
    )?;
    let from = settings.mail_from.parse().with_context(|| {
        format!(
            "mail_from (--mail-from / HOOKLINE_MAIL_FROM) {:?} is not an address",
            settings.mail_from
        )
    })?;
    let email = Rendered {
        subject: "hookline test email".to_owned(),
        text: "hookline can send email with these settings.\n".to_owned(),
        html: "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>hookline test email</title></head>\n<body><p>hookline can send email with these settings.</p></body></html>\n".to_owned(),
        reply_to: None,
    };
    let sent = mailer.send(&from, to, &email, None).await;
    match (sent, &mailer) {
        (Ok(answer), Mailer::Smtp { shown, .. }) => {
            println!("sent to {to} through {shown}; the server answered: {answer}");
        }
        (Ok(answer), Mailer::Files { .. }) => {
            let file = written_file(&answer)
                .map(|f| f.display().to_string())
                .unwrap_or(answer);
            println!(
                "no SMTP server is set (smtp_url / --smtp-url / HOOKLINE_SMTP_URL), so the email to {to} was written to {file}"
            );
        }
        (Err(error), Mailer::Smtp { shown, .. }) => {
            bail!("sending to {to} through {shown} failed: {error}")
        }
        (Err(error), Mailer::Files { dir, .. }) => {
            bail!(
                "writing the email to {to} into {} failed: {error}",
                dir.display()
            )
        }
    }
    Ok(())
}
