//! `spawn_app`: the real `hookline` binary on a free port, on a database of
//! the test's own, and a client for it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hookline_storage::Database;
use hookline_testdb::TestDatabase;
use serde_json::Value;

/// The admin token every test app accepts.
pub const ADMIN_TOKEN: &str = "admin-test-token-0123456789abcdef01234567";

pub const CONVERSATION: &str = "42bb83f00d8240e5bb41290a12eb44401693552452";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/swiftsell");

/// Runs `$body(TestDatabase)` once on SQLite and once on PostgreSQL (the
/// latter skipped with a notice when `HOOKLINE_TEST_POSTGRES_URL` is unset).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(hookline_testdb::TestDatabase::sqlite()).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = hookline_testdb::TestDatabase::postgres() {
                        super::$name(db).await;
                    }
                }
            }
        )*
    };
}

/// The fixture file `name` (e.g. `24-assignee_change.json`).
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// All 28 fixtures, in file order.
pub fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .expect("fixtures folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| (n.clone(), fixture(&n)))
        .collect()
}

/// The single item of a fixture.
pub fn fixture_item(name: &str) -> Value {
    let value: Value = serde_json::from_slice(&fixture(name)).expect("fixture json");
    value["events"][0].clone()
}

/// An envelope around `items`.
pub fn envelope(items: &[Value]) -> String {
    serde_json::json!({ "events": items }).to_string()
}

/// A running hookline and its database.
pub struct TestApp {
    pub base: String,
    pub token: String,
    /// The database, when this app owns it (a second instance on the same
    /// database does not); dropped with the app.
    _db: Option<TestDatabase>,
    pub db_url: String,
    /// `--data-dir` (the .eml outbox when no SMTP is set).
    pub data_dir: tempfile::TempDir,
    pub client: reqwest::Client,
    /// What `serve` printed at start.
    pub banner: Vec<String>,
    child: Child,
}

/// Options for [`spawn_app_with`].
#[derive(Default)]
pub struct Options {
    pub max_body_bytes: Option<usize>,
    /// Tokens; default one random token.
    pub tokens: Option<String>,
    /// Port of the SMTP server to send through.
    pub smtp_port: Option<u16>,
    pub retry_base_seconds: Option<f64>,
    pub max_attempts: Option<i32>,
    /// Run on this database URL instead of the given test database.
    pub database_url: Option<String>,
    /// More `serve` flags.
    pub extra_args: Vec<String>,
    /// Start without `--admin-token`: hookline generates one (printed in
    /// the banner on the first start).
    pub generated_admin_token: bool,
    /// More environment variables.
    pub env: Vec<(String, String)>,
    /// Write the server's log to `DATA_DIR/server.log`.
    pub log_to_file: bool,
}

pub fn spawn_app(db: TestDatabase) -> TestApp {
    spawn_app_with(Some(db), Options::default())
}

pub fn spawn_app_with(db: Option<TestDatabase>, options: Options) -> TestApp {
    let token = options
        .tokens
        .clone()
        .unwrap_or_else(|| format!("test-webhook-token-{}-0123456789abcdef", std::process::id()));
    let db_url = options
        .database_url
        .clone()
        .or_else(|| db.as_ref().map(|d| d.url.clone()))
        .expect("a database");
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookline"));
    command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(["--database-url", &db_url])
        .args(["--webhook-token", &token])
        .env_remove("HOOKLINE_ADMIN_TOKEN")
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(["--outbox-poll-ms", "100"])
        .env_remove("HOOKLINE_WEBHOOK_TOKEN")
        .env_remove("HOOKLINE_SMTP_URL")
        .env("HOOKLINE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(if options.log_to_file {
            Stdio::from(
                std::fs::File::create(data_dir.path().join("server.log")).expect("log file"),
            )
        } else if std::env::var_os("HOOKLINE_TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    if let Some(limit) = options.max_body_bytes {
        command.args(["--max-body-bytes", &limit.to_string()]);
    }
    if let Some(port) = options.smtp_port {
        command.args(["--smtp-url", &format!("smtp://127.0.0.1:{port}")]);
    }
    if let Some(seconds) = options.retry_base_seconds {
        command.args(["--smtp-retry-base-seconds", &seconds.to_string()]);
    }
    if let Some(attempts) = options.max_attempts {
        command.args(["--smtp-max-attempts", &attempts.to_string()]);
    }
    if !options.generated_admin_token {
        command.args(["--admin-token", ADMIN_TOKEN]);
    }
    command.args(&options.extra_args);
    command.envs(options.env.iter().map(|(k, v)| (k, v)));
    let mut child = command.spawn().expect("start hookline");
    let (base, banner) = read_banner(&mut child);
    TestApp {
        base,
        banner,
        token: token.split(',').next().unwrap_or_default().to_owned(),
        _db: db,
        db_url,
        data_dir,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        child,
    }
}

/// Reads the banner (its last line is the retention setting) and the
/// address from its "listening on" line; keeps draining stdout.
fn read_banner(child: &mut Child) -> (String, Vec<String>) {
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let mut base = None;
    for line in lines.by_ref() {
        let line = line.expect("banner line");
        if let Some(index) = line.find("listening on ") {
            base = Some(line[index + "listening on ".len()..].trim().to_owned());
        }
        let last = line.starts_with("  retention:");
        seen.push(line);
        if let (true, Some(base)) = (last, &base) {
            std::thread::spawn(move || for _ in lines {});
            return (base.clone(), seen);
        }
    }
    panic!("hookline exited before listening; it printed: {seen:?}");
}

impl TestApp {
    pub fn webhook_url(&self) -> String {
        format!("{}/webhooks/swiftsell", self.base)
    }

    /// POSTs `body` with the token as a bearer token.
    pub async fn post(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.webhook_url())
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// A database handle on the app's database.
    pub fn database(&self) -> Database {
        Database::open(&self.db_url).expect("open test database")
    }

    /// A JSON API call.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("api request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("api body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// What `/metrics` shows (no token).
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics request")
            .text()
            .await
            .expect("metrics body")
    }

    /// The status `/readyz` answers.
    /// Waits until `/readyz` answers 200: right after "listening on" the
    /// background workers may not have started yet (503, rightly), more
    /// so on a busy machine. Panics after 30 s.
    pub async fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.readyz().await != 200 {
            assert!(
                std::time::Instant::now() < deadline,
                "/readyz did not answer 200 within 30 s of the start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn readyz(&self) -> u16 {
        self.client
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .expect("readyz request")
            .status()
            .as_u16()
    }

    /// The stored notifications.
    pub async fn notifications(&self) -> Vec<hookline_storage::notifications::Notification> {
        self.with_db(|c| hookline_storage::notifications::all(c).expect("notifications"))
            .await
    }

    /// Waits until `check` holds on the stored notifications (or panics
    /// after `seconds`).
    pub async fn wait_for_notifications(
        &self,
        seconds: u64,
        what: &str,
        check: impl Fn(&[hookline_storage::notifications::Notification]) -> bool,
    ) -> Vec<hookline_storage::notifications::Notification> {
        let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
        loop {
            let rows = self.notifications().await;
            if check(&rows) {
                return rows;
            }
            if std::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; notifications: {rows:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Deletes every rule (the defaults included) through the API.
    pub async fn clear_rules(&self) {
        let (_, list) = self.api(reqwest::Method::GET, "/api/v1/rules", None).await;
        for rule in list["items"].as_array().cloned().unwrap_or_default() {
            let id = rule["id"].as_i64().expect("rule id");
            let (status, _) = self
                .api(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/rules/{id}"),
                    None,
                )
                .await;
            assert_eq!(status, 204);
        }
    }

    /// Runs a blocking database closure off the async runtime.
    pub async fn with_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut hookline_storage::DbConnection) -> T + Send + 'static,
    ) -> T {
        let db = self.database();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.conn().expect("connection");
            f(&mut conn)
        })
        .await
        .expect("db task")
    }

    pub async fn event_count(&self) -> i64 {
        self.with_db(|c| hookline_storage::events::count(c).expect("count"))
            .await
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the process to stop (SIGTERM) and waits for it; its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        self.child.wait().expect("wait for hookline")
    }

    /// Kills the process at once (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A header as a number (`Hookline-Stored`).
pub fn header_number(response: &reqwest::Response, name: &str) -> usize {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric {name} header"))
}

/// The JSON error body of a failed request.
pub async fn error_body(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is not JSON: {text}"))
}

/// Runs `hookline ARGS` (not `serve`) with no token settings from the
/// environment; its output.
pub fn hookline_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(args)
        .env("HOOKLINE_LOG", "error")
        .env_remove("HOOKLINE_ADMIN_TOKEN")
        .env_remove("HOOKLINE_WEBHOOK_TOKEN")
        .env_remove("HOOKLINE_METRICS_TOKEN")
        .output()
        .expect("run hookline")
}

/// The standard output of a command that must have succeeded.
pub fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "hookline failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `text` percent-encoded for a URL path segment or query value.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A client that shows redirects instead of following them.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Logs in through the form; the session cookie (`name=value`), or the
/// refusal's status.
pub async fn login(app: &TestApp, token: &str) -> Result<String, u16> {
    login_from(app, &no_redirects(), token).await
}

/// [`login`] from `client` (another local address, say).
pub async fn login_from(
    app: &TestApp,
    client: &reqwest::Client,
    token: &str,
) -> Result<String, u16> {
    let response = client
        .post(format!("{}/ui/login", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .expect("login request");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("hookline_session=") && !v.starts_with("hookline_session=;"))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned());
    match (response.status().as_u16(), cookie) {
        (303, Some(cookie)) => Ok(cookie),
        (status, _) => Err(status),
    }
}

/// A page's HTML with `cookie`; panics unless it answers 200.
pub async fn page(app: &TestApp, path: &str, cookie: &str) -> String {
    let response = no_redirects()
        .get(format!("{}{path}", app.base))
        .header("cookie", cookie)
        .send()
        .await
        .expect("page request");
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.expect("page body")
}

/// The CSRF token a page's forms carry.
pub fn csrf_in(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf token in the page")
        .to_owned()
}
