//! `hookline serve` and `hookline migrate`.

use std::net::TcpListener;
use std::sync::Arc;

use anyhow::Context;
use hookline_receiver::{tokens, AppState, Rejections, Tokens};
use hookline_storage::{redact_url, settings, Backend, Database, Ingestor};

use crate::cli::{DatabaseArgs, ServeArgs};

/// Where the generated webhook token is kept.
const WEBHOOK_TOKEN_SETTING: &str = "webhook_token";

/// Opens the database and runs pending migrations.
fn open_database(args: &DatabaseArgs) -> anyhow::Result<(Database, usize)> {
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

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (db, ran) = open_database(&args.database)?;
    let (tokens, source) = webhook_tokens(&db, &args.webhook_token)?;
    let writers = match db.backend() {
        Backend::Sqlite => 1,
        Backend::Postgres => 4,
    };
    let ingestor = Ingestor::start(db.clone(), writers).context("failed to start the writer")?;
    let listener = TcpListener::bind(&args.listen)
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    let address = listener.local_addr().context("listener address")?;

    let base = format!("http://{address}");
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

    let state = AppState {
        db,
        ingestor,
        tokens,
        max_body_bytes: args.max_body_bytes,
        rejections: Arc::new(Rejections::default()),
    };
    hookline_receiver::serve(listener, state)
        .context("failed to start the HTTP server")?
        .await
        .context("the HTTP server failed")?;
    tracing::info!("stopped");
    Ok(())
}
