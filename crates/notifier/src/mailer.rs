//! The mail transport: SMTP in production, `.eml` files when no SMTP server
//! is configured (the one-command start still shows the whole flow).

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::templates::Rendered;

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the transport could not be set up, or an email not sent. The
/// messages are what users see (start-up, `hookline email test`, and an
/// email's recorded error).
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// `shown` is the URL without its password.
    #[error("bad SMTP URL {shown}: {error}")]
    BadUrl {
        shown: String,
        error: lettre::transport::smtp::Error,
    },
    #[error("cannot create {}: {error}", .dir.display())]
    CreateFolder { dir: PathBuf, error: std::io::Error },
    /// Setting the owner-only permissions of the outbox folder or an
    /// email file failed.
    #[error("cannot restrict {}: {error}", .path.display())]
    Restrict {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("bad recipient {to:?}: {error}")]
    BadRecipient {
        to: String,
        error: lettre::address::AddressError,
    },
    #[error("cannot build the email: {0}")]
    Build(lettre::error::Error),
    /// The SMTP server refused the email, or could not be reached.
    #[error("{0}")]
    Smtp(lettre::transport::smtp::Error),
    /// Writing the `.eml` file failed.
    #[error("{0}")]
    File(lettre::transport::file::Error),
}

pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        shown: String,
    },
    Files {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
}

impl Mailer {
    /// SMTP when `smtp_url` is given (`smtp://`, `smtps://`,
    /// `smtp://...?tls=required`, with credentials), else `.eml` files in
    /// `outbox_dir`.
    pub fn new(smtp_url: Option<&str>, outbox_dir: &Path) -> Result<Mailer, MailerError> {
        match smtp_url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|error| MailerError::BadUrl {
                        shown: redact(url),
                        error,
                    })?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build();
                Ok(Mailer::Smtp {
                    transport,
                    shown: redact(url),
                })
            }
            None => {
                std::fs::create_dir_all(outbox_dir).map_err(|error| MailerError::CreateFolder {
                    dir: outbox_dir.to_owned(),
                    error,
                })?;
                // Emails hold visitors' messages: only hookline's user may
                // read them.
                private(outbox_dir, 0o700).map_err(|error| MailerError::Restrict {
                    path: outbox_dir.to_owned(),
                    error,
                })?;
                Ok(Mailer::Files {
                    transport: AsyncFileTransport::new(outbox_dir),
                    dir: outbox_dir.to_owned(),
                })
            }
        }
    }

    /// Where mail goes, for the banner.
    pub fn describe(&self) -> String {
        match self {
            Mailer::Smtp { shown, .. } => format!("SMTP {shown}"),
            Mailer::Files { dir, .. } => format!(
                "no SMTP configured: emails are written as .eml files to {} (set HOOKLINE_SMTP_URL)",
                dir.display()
            ),
        }
    }

    /// Sends one email; the server's answer (or the file written).
    pub async fn send(
        &self,
        from: &Mailbox,
        to: &str,
        email: &Rendered,
        conversation: Option<&str>,
    ) -> Result<String, MailerError> {
        self.send_message(from, to, email, conversation)
            .await
            .map(|sent| sent.answer)
    }

    /// Sends one email: the server's answer (or the file written) and the
    /// message exactly as it went, to keep.
    ///
    /// Every email is marked as sent by a machine (`Auto-Submitted`,
    /// `X-Auto-Response-Suppress`, so that out-of-office replies stay away)
    /// and has its own `Message-ID` in the domain of the From address. The
    /// emails about one conversation all refer to one (never sent) message
    /// of it, `<conversation.HASH@DOMAIN>`, in `In-Reply-To` and
    /// `References`: mail clients show them as one thread.
    pub async fn send_message(
        &self,
        from: &Mailbox,
        to: &str,
        email: &Rendered,
        conversation: Option<&str>,
    ) -> Result<Sent, MailerError> {
        let to: Mailbox = to.parse().map_err(|error| MailerError::BadRecipient {
            to: to.to_owned(),
            error,
        })?;
        let domain = from.email.domain().to_owned();
        let unique: u128 = rand::random();
        let mut builder = Message::builder()
            .from(from.clone())
            .to(to)
            .message_id(Some(format!("<{unique:032x}@{domain}>")))
            .raw_header(HeaderValue::new(
                AUTO_SUBMITTED,
                "auto-generated".to_owned(),
            ))
            .raw_header(HeaderValue::new(SUPPRESS_AUTO_RESPONSE, "All".to_owned()));
        if let Some(key) = conversation {
            let root = thread_root(key, &domain);
            builder = builder.in_reply_to(root.clone()).references(root);
        }
        if let Some(reply_to) = email
            .reply_to
            .as_deref()
            .and_then(|r| r.parse::<Mailbox>().ok())
        {
            builder = builder.reply_to(reply_to);
        }
        let message = builder
            .subject(email.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(MailerError::Build)?;
        // The bytes the transport sends (lettre encodes every header and
        // part to ASCII); too large ones are not kept.
        let kept = String::from_utf8(message.formatted())
            .ok()
            .filter(|m| m.len() <= MAX_KEPT_BYTES);
        let answer = match self {
            Mailer::Smtp { transport, .. } => {
                let response = transport.send(message).await.map_err(MailerError::Smtp)?;
                let text: Vec<&str> = response.message().collect();
                format!("{} {}", response.code(), text.join(" "))
            }
            Mailer::Files { transport, dir } => {
                let id = transport.send(message).await.map_err(MailerError::File)?;
                let path = dir.join(format!("{id}.eml"));
                private(&path, 0o600).map_err(|error| MailerError::Restrict {
                    path: path.clone(),
                    error,
                })?;
                format!("{WRITTEN_TO}{}", path.display())
            }
        };
        Ok(Sent {
            answer,
            message: kept,
        })
    }
}

/// The largest message kept for the Emails page: 1 MiB.
pub const MAX_KEPT_BYTES: usize = 1024 * 1024;

/// An email that went out.
pub struct Sent {
    /// The server's answer, or `written to PATH`.
    pub answer: String,
    /// The message as it was sent (headers and MIME parts); none when
    /// larger than [`MAX_KEPT_BYTES`].
    pub message: Option<String>,
}

const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");
const SUPPRESS_AUTO_RESPONSE: HeaderName =
    HeaderName::new_from_ascii_str("X-Auto-Response-Suppress");

/// The message id a conversation's emails refer to.
pub fn thread_root(conversation_key: &str, domain: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(conversation_key.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("<conversation.{hex}@{domain}>")
}

/// How a notification's `smtp_response` names the `.eml` file written.
pub const WRITTEN_TO: &str = "written to ";

/// The `.eml` file a notification's answer names, if it names one.
pub fn written_file(smtp_response: &str) -> Option<&Path> {
    smtp_response
        .strip_prefix(WRITTEN_TO)
        .map(Path::new)
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
}

/// Sets `path`'s permission bits (Unix; elsewhere nothing to do).
fn private(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// The URL without its password.
fn redact(url: &str) -> String {
    hookline_storage::redact_url(url)
}
