//! `hookline serve` and `hookline migrate`.

use std::net::TcpListener;
use std::sync::Arc;

use std::time::Duration;

use anyhow::Context;
use hookline_notifier::{Mailer, NotifierHook, Rules, Worker, WorkerSettings};
use hookline_receiver::{tokens, AppState, Rejections, Tokens};
use hookline_storage::{redact_url, settings, Backend, Database, Ingestor};
use tokio::sync::{watch, Notify};

use crate::cli::{DatabaseArgs, ServeArgs};
use crate::rules_cmd::load_templates;

/// Where the generated webhook token is kept.
const WEBHOOK_TOKEN_SETTING: &str = "webhook_token";

/// Opens the database and runs pending migrations.
pub fn open_database(args: &DatabaseArgs) -> anyhow::Result<(Database, usize)> {
    let shown = redact_url(&args.database_url);
    let db = Database::open(&args.database_url)
        .with_context(|| format!("failed to open the database at {shown}"))?;
    let ran = db
        .migrate()
        .with_context(|| format!("failed to migrate the database at {shown}"))?;
    Ok((db, ran))
}

pub fn migrate(args: &DatabaseArgs) -> anyhow::Result<()> {
    let (_db, ran) = open_database(args)?;
    println!(
        "{}: {ran} migration(s) run; the schema is current",
        redact_url(&args.database_url)
    );
    Ok(())
}

/// Where the accepted webhook tokens came from, for the banner.
enum TokenSource {
    Configured,
    Stored,
}

fn webhook_tokens(db: &Database, configured: &[String]) -> anyhow::Result<(Tokens, TokenSource)> {
    let tokens = Tokens::new(configured.iter().cloned());
    if !tokens.is_empty() {
        return Ok((tokens, TokenSource::Configured));
    }
    let mut conn = db.conn()?;
    let token = settings::get_or_insert(&mut conn, WEBHOOK_TOKEN_SETTING, &tokens::generate())
        .context("failed to read or store the generated webhook token")?;
    Ok((Tokens::new([token]), TokenSource::Stored))
}

/// How often rules are checked for changes made by other processes.
const RULES_RELOAD_EVERY: Duration = Duration::from_secs(2);

/// How long shutdown waits for the email being sent.
const WORKER_STOP_TIMEOUT: Duration = Duration::from_secs(35);

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (db, ran) = open_database(&args.database)?;
    let (tokens, source) = webhook_tokens(&db, &args.webhook_token)?;

    let templates = load_templates(&args.templates)?;
    let rules = Arc::new(Rules::new(Arc::clone(&templates)));
    {
        let mut conn = db.conn()?;
        rules
            .seed_defaults(&mut conn)
            .context("failed to add the default rules")?;
        rules
            .reload(&mut conn)
            .context("failed to load the rules")?;
    }
    let wake = Arc::new(Notify::new());
    let hook = Arc::new(NotifierHook::new(Arc::clone(&rules), Arc::clone(&wake)));

    let writers = match db.backend() {
        Backend::Sqlite => 1,
        Backend::Postgres => 4,
    };
    let ingestor =
        Ingestor::start(db.clone(), writers, hook).context("failed to start the writer")?;
    let listener = TcpListener::bind(&args.listen)
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    let address = listener.local_addr().context("listener address")?;
    let base = format!("http://{address}");
    let public_url = args.public_url.clone().unwrap_or_else(|| base.clone());

    let mailer = Mailer::new(
        args.mail.smtp_url.as_deref(),
        &args.mail.data_dir.join("outbox"),
    )
    .map_err(|e| anyhow::anyhow!(e))
    .context("failed to set up email")?;
    let from = args.mail.mail_from.parse().with_context(|| {
        format!(
            "HOOKLINE_MAIL_FROM {:?} is not an email address",
            args.mail.mail_from
        )
    })?;
    let mut worker_settings = WorkerSettings::with_defaults(from);
    worker_settings.public_url = Some(public_url);
    worker_settings.max_attempts = args.smtp_max_attempts.max(1);
    worker_settings.retry_base = Duration::from_secs_f64(args.smtp_retry_base_seconds.max(0.0));
    worker_settings.poll = Duration::from_millis(args.outbox_poll_ms.max(10));

    println!("hookline {} listening on {base}", env!("CARGO_PKG_VERSION"));
    let database = match db.backend() {
        Backend::Sqlite => format!("SQLite {}", redact_url(&args.database.database_url)),
        Backend::Postgres => format!("PostgreSQL {}", redact_url(&args.database.database_url)),
    };
    println!("  database:       {database} ({ran} migration(s) run at start)");
    println!("  webhook URL:    {base}/webhooks/swiftsell");
    match source {
        TokenSource::Configured => {
            println!("  webhook token:  from HOOKLINE_WEBHOOK_TOKEN / --webhook-token")
        }
        TokenSource::Stored => {
            let shown = tokens.first().unwrap_or_default();
            println!("  webhook token:  {shown}");
            println!("                  (generated on first start and kept in the database; paste it into Swiftsell)");
        }
    }
    println!("  email:          {}", mailer.describe());
    println!(
        "  alert rules:    {} enabled (hookline rules export to see them)",
        rules.current().len()
    );

    let (stop, stopped) = watch::channel(false);
    let worker = Worker::new(
        db.clone(),
        templates,
        Arc::new(mailer),
        wake,
        worker_settings,
    );
    let worker = tokio::spawn(worker.run(stopped.clone()));
    let reloader = tokio::spawn(reload_rules(db.clone(), Arc::clone(&rules), stopped));

    let state = AppState {
        db,
        ingestor,
        tokens,
        max_body_bytes: args.max_body_bytes,
        rejections: Arc::new(Rejections::default()),
        rules,
    };
    let served = hookline_receiver::serve(listener, state)
        .context("failed to start the HTTP server")?
        .await
        .context("the HTTP server failed");
    // The server has finished its requests; let the email being sent finish.
    let _ = stop.send(true);
    if tokio::time::timeout(WORKER_STOP_TIMEOUT, worker)
        .await
        .is_err()
    {
        tracing::warn!("the outbox worker did not stop in time");
    }
    reloader.abort();
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Picks up rule changes made by other processes sharing the database.
async fn reload_rules(db: Database, rules: Arc<Rules>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RULES_RELOAD_EVERY) => {}
            _ = stop.changed() => return,
        }
        let db = db.clone();
        let rules = Arc::clone(&rules);
        let result = tokio::task::spawn_blocking(move || {
            let mut conn = db.conn()?;
            rules
                .reload_if_changed(&mut conn)
                .map_err(|e| anyhow::anyhow!(e))
        })
        .await;
        match result {
            Ok(Ok(true)) => tracing::info!("rules changed; reloaded"),
            Ok(Ok(false)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "could not check the rules for changes"),
            Err(error) => tracing::warn!(%error, "rules reload task failed"),
        }
    }
}
