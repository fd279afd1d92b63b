//! A real SMTP server for the tests, in-process: it speaks enough of the
//! protocol (RFC 5321) for lettre's SMTP client, keeps what it receives,
//! and can be switched to refusing mail (4xx) to test retries.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One email as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    /// The parsed message.
    pub fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(self.data.as_bytes()).expect("a MIME message")
    }

    pub fn subject(&self) -> String {
        use mailparse::MailHeaderMap;
        self.parsed()
            .headers
            .get_first_value("Subject")
            .unwrap_or_default()
    }

    /// The decoded body of the part with this content type.
    pub fn part(&self, content_type: &str) -> String {
        fn find(mail: &mailparse::ParsedMail<'_>, wanted: &str) -> Option<String> {
            if mail.ctype.mimetype == wanted {
                return mail.get_body().ok();
            }
            mail.subparts.iter().find_map(|p| find(p, wanted))
        }
        find(&self.parsed(), content_type).unwrap_or_else(|| panic!("no {content_type} part"))
    }
}

#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    refusing: Arc<AtomicBool>,
    pub refused: Arc<AtomicUsize>,
    /// Milliseconds to wait before answering the end of DATA.
    slow_ms: Arc<AtomicUsize>,
    /// Set when a message's data has arrived (before the answer).
    pub receiving: Arc<AtomicBool>,
    /// Milliseconds to wait before inviting a message's data (`354`).
    stall_data_ms: Arc<AtomicUsize>,
    /// Set when a client asked to send data (before the `354`).
    pub data_asked: Arc<AtomicBool>,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("smtp bind");
        let port = listener.local_addr().expect("smtp addr").port();
        let server = SmtpServer {
            port,
            received: Arc::default(),
            refusing: Arc::default(),
            refused: Arc::default(),
            slow_ms: Arc::default(),
            receiving: Arc::default(),
            stall_data_ms: Arc::default(),
            data_asked: Arc::default(),
        };
        let accepting = server.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let session = accepting.clone();
                tokio::spawn(async move {
                    let _ = session.serve(socket).await;
                });
            }
        });
        server
    }

    /// Answer the end of every message's data only after `ms` milliseconds.
    pub fn set_slow(&self, ms: usize) {
        self.slow_ms.store(ms, Ordering::SeqCst);
    }

    /// Invite every message's data only after `ms` milliseconds: a sender
    /// killed meanwhile has not handed the message over.
    pub fn set_stall_data(&self, ms: usize) {
        self.stall_data_ms.store(ms, Ordering::SeqCst);
    }

    /// Refuse (or accept again) every message with a temporary error.
    pub fn set_refusing(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until `n` messages arrived (panics after `seconds`).
    pub async fn wait_for(&self, n: usize, seconds: u64) -> Vec<Received> {
        let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            if std::time::Instant::now() > deadline {
                panic!("expected {n} emails, got {}", received.len());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn serve(&self, socket: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 hookline-test ESMTP\r\n").await?;
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_owned();
            let upper = command.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                b"250-hookline-test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                if self.refusing.load(Ordering::SeqCst) {
                    self.refused.fetch_add(1, Ordering::SeqCst);
                    b"451 4.3.0 Try again later\r\n"
                } else {
                    from = command[10..].trim().to_owned();
                    to.clear();
                    b"250 2.1.0 Ok\r\n"
                }
            } else if upper.starts_with("RCPT TO:") {
                to.push(command[8..].trim().trim_matches(['<', '>']).to_owned());
                b"250 2.1.5 Ok\r\n"
            } else if upper == "DATA" {
                self.data_asked.store(true, Ordering::SeqCst);
                let stall = self.stall_data_ms.load(Ordering::SeqCst);
                if stall > 0 {
                    tokio::time::sleep(Duration::from_millis(stall as u64)).await;
                }
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    // Undo dot-stuffing.
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                self.receiving.store(true, Ordering::SeqCst);
                let delay = self.slow_ms.load(Ordering::SeqCst);
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay as u64)).await;
                }
                let count = {
                    let mut received = self.received.lock().expect("lock");
                    received.push(Received {
                        from: from.clone(),
                        to: to.clone(),
                        data,
                    });
                    received.len()
                };
                write
                    .write_all(format!("250 2.0.0 Ok: queued as {count}\r\n").as_bytes())
                    .await?;
                continue;
            } else if upper == "QUIT" {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            } else if upper == "RSET" || upper == "NOOP" {
                b"250 2.0.0 Ok\r\n"
            } else {
                b"502 5.5.2 Command not recognized\r\n"
            };
            write.write_all(reply).await?;
        }
    }
}
