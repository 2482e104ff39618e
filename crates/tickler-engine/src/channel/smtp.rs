//! The SMTP channel: one email per message through a relay (lettre, rustls).
//!
//! Idempotency across retries and restarts: the Message-ID is derived from the idempotency key
//! (and the key is sent as `X-Tickler-Idempotency-Key`), so a message sent twice, after a crash
//! between the relay's 250 and our acknowledgement, is recognisably the same message to any
//! receiver that deduplicates. SMTP itself has no way to ask "did you already get this?".
//!
//! Errors: a 4xx reply is transient (retried with backoff), a 5xx reply permanent (the
//! occurrence, or this recipient of it, ends unsent with the reply), a connection or TLS failure
//! transient (the relay may come back).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncTransport, Tokio1Executor};
use sha2::{Digest, Sha256};

pub use super::settings::SmtpTls;
use super::{Channel, DeliveryError, Message};
use crate::Error;

/// The header carrying the idempotency key, for receivers that deduplicate on it.
pub const IDEMPOTENCY_HEADER: &str = "X-Tickler-Idempotency-Key";

/// What the SMTP channel needs. Credentials are values here; the daemon's config names the
/// environment variables they come from.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    /// The channel's name, for error messages.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub credentials: Option<(String, String)>,
    /// `Name <address>` or `address`.
    pub from: String,
    pub reply_to: Option<String>,
    /// For each SMTP command.
    pub timeout: Duration,
}

pub struct SmtpChannel {
    name: String,
    endpoint: String,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    /// The right-hand side of Message-IDs: the From address's domain.
    id_domain: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

/// Whether `host` names this machine: `localhost` or a loopback address.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl SmtpChannel {
    /// Checks the configuration and builds the (lazily connecting) transport. Errors name the
    /// channel and the offending value.
    pub fn new(config: SmtpConfig) -> Result<SmtpChannel, Error> {
        let fail = |reason: String| Error::Config {
            what: format!("channel {}", config.name),
            reason,
        };
        if config.host.is_empty()
            || config
                .host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(fail(format!("invalid smtp host {:?}", config.host)));
        }
        if config.port == 0 {
            return Err(fail("port 0 is not a port".into()));
        }
        let mailbox = |field: &str, value: &str| -> Result<Mailbox, Error> {
            reject_line_breaks(field, value).map_err(|err| fail(err.to_string()))?;
            value
                .parse::<Mailbox>()
                .map_err(|err| fail(format!("{field} {value:?} is not an address: {err}")))
        };
        let from = mailbox("from", &config.from)?;
        let reply_to = config
            .reply_to
            .as_deref()
            .map(|value| mailbox("reply_to", value))
            .transpose()?;
        let id_domain = from.email.domain().to_owned();
        if config.tls == SmtpTls::None && config.credentials.is_some() && !is_loopback(&config.host)
        {
            return Err(fail(format!(
                "tls = \"none\" with credentials would send the password in clear to {:?}; use \
                 starttls or tls (plain text is accepted only for a loopback relay)",
                config.host
            )));
        }
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls | SmtpTls::Tls => {
                let parameters = TlsParameters::new(config.host.clone())
                    .map_err(|err| fail(format!("TLS parameters for {:?}: {err}", config.host)))?;
                if config.tls == SmtpTls::Starttls {
                    Tls::Required(parameters)
                } else {
                    Tls::Wrapper(parameters)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout));
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(SmtpChannel {
            name: config.name,
            endpoint: format!("{}:{}", config.host, config.port),
            from,
            reply_to,
            id_domain,
            transport: builder.build(),
        })
    }

    /// The email for a message; a permanent error if a header would carry a line break or an
    /// address does not parse (neither will change on retry).
    pub fn email(&self, message: &Message) -> Result<lettre::Message, DeliveryError> {
        let permanent = |reason: String| DeliveryError::Permanent(reason);
        reject_line_breaks("subject", &message.subject).map_err(|e| permanent(e.to_string()))?;
        reject_line_breaks("recipient", &message.recipient)
            .map_err(|e| permanent(e.to_string()))?;
        let to: Mailbox = message.recipient.parse().map_err(|err| {
            permanent(format!(
                "recipient {:?} is not an address: {err}",
                message.recipient
            ))
        })?;
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .date(SystemTime::from(message.fired_at.to_chrono()))
            .message_id(Some(message_id(&message.idempotency_key, &self.id_domain)))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(IDEMPOTENCY_HEADER),
                message.idempotency_key.clone(),
            ));
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        let built = match &message.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                message.body.clone(),
                html.clone(),
            )),
            None => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(message.body.clone()),
            ),
        };
        built.map_err(|err| permanent(format!("cannot build the email: {err}")))
    }
}

#[async_trait]
impl Channel for SmtpChannel {
    async fn deliver(&self, message: &Message) -> Result<String, DeliveryError> {
        let email = self.email(message)?;
        match self.transport.send(email).await {
            Ok(response) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )
            .trim_end()
            .to_owned()),
            Err(err) if err.is_permanent() => Err(DeliveryError::Permanent(format!(
                "smtp {} refused the message: {err}",
                self.endpoint
            ))),
            Err(err) if err.is_transient() => Err(DeliveryError::Transient(format!(
                "smtp {} deferred the message: {err}",
                self.endpoint
            ))),
            Err(err) => Err(DeliveryError::Transient(format!(
                "channel {}: cannot reach smtp {}: {}",
                self.name,
                self.endpoint,
                error_chain(&err)
            ))),
        }
    }
}

/// `<hex(sha256(key))[..32]@domain>`: stable for a key, and valid whatever the key contains.
pub fn message_id(key: &str, domain: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}.tickler@{domain}>")
}

#[derive(Debug, thiserror::Error)]
#[error("{field} {value:?} contains a line break (CR or LF), which would inject a header")]
pub struct LineBreak {
    field: String,
    value: String,
}

fn reject_line_breaks(field: &str, value: &str) -> Result<(), LineBreak> {
    if value.contains(['\r', '\n']) {
        return Err(LineBreak {
            field: field.to_owned(),
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// An error and its sources on one line: lettre's top-level message alone ("network error")
/// does not say that the connection was refused.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickler_core::Timestamp;

    fn channel() -> SmtpChannel {
        SmtpChannel::new(SmtpConfig {
            name: "email".into(),
            host: "127.0.0.1".into(),
            port: 2525,
            tls: SmtpTls::None,
            credentials: None,
            from: "Reminders <reminders@example.org>".into(),
            reply_to: Some("help@example.org".into()),
            timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    fn message(subject: &str, recipient: &str) -> Message {
        Message {
            idempotency_key: "eval/97#reminder-every-1d#0/a@example.org".into(),
            entity: "eval/97".into(),
            rule: "reminder-every-1d".into(),
            kind: "reminder".into(),
            recipient: recipient.into(),
            channel: "email".into(),
            due_at: Timestamp::EPOCH,
            fired_at: Timestamp::EPOCH,
            attempt: 1,
            subject: subject.into(),
            body: "Hello".into(),
            html: Some("<p>Hello</p>".into()),
        }
    }

    /// Issue 20 (L3): credentials never go in clear, except to a relay on this machine.
    #[tokio::test]
    async fn plain_text_with_credentials_is_refused_unless_the_relay_is_loopback() {
        let config = |host: &str| SmtpConfig {
            name: "email".into(),
            host: host.into(),
            port: 25,
            tls: SmtpTls::None,
            credentials: Some(("user".into(), "secret".into())),
            from: "reminders@example.org".into(),
            reply_to: None,
            timeout: Duration::from_secs(5),
        };
        let err = SmtpChannel::new(config("smtp.example.org"))
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("channel email")
                && err.contains("\"smtp.example.org\"")
                && err.contains("in clear"),
            "{err}"
        );
        assert!(
            !err.contains("secret"),
            "the password is not repeated: {err}"
        );
        for host in ["127.0.0.1", "localhost", "::1", "[::1]"] {
            assert!(SmtpChannel::new(config(host)).is_ok(), "{host}");
        }
        let without = SmtpConfig {
            credentials: None,
            ..config("smtp.example.org")
        };
        assert!(
            SmtpChannel::new(without).is_ok(),
            "no credentials, nothing to leak"
        );
    }

    // The transport's connection pool needs a runtime to exist, hence `tokio::test`.
    #[tokio::test]
    async fn a_subject_or_recipient_with_a_line_break_is_refused_for_good() {
        let channel = channel();
        for (subject, recipient) in [
            ("Hi\r\nBcc: everyone@example.org", "a@example.org"),
            ("Hi", "a@example.org\nBcc: everyone@example.org"),
        ] {
            let err = channel.email(&message(subject, recipient)).unwrap_err();
            assert!(
                matches!(&err, DeliveryError::Permanent(text) if text.contains("line break")),
                "{err:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_from_address_with_a_line_break_is_refused_at_configuration() {
        let err = SmtpChannel::new(SmtpConfig {
            from: "a@example.org\r\nBcc: x@example.org".into(),
            ..SmtpConfig {
                name: "email".into(),
                host: "127.0.0.1".into(),
                port: 25,
                tls: SmtpTls::None,
                credentials: None,
                from: String::new(),
                reply_to: None,
                timeout: Duration::from_secs(1),
            }
        })
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("channel email") && err.contains("line break"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_message_id_is_a_function_of_the_idempotency_key() {
        let a = message_id("eval/97#created#0", "example.org");
        assert_eq!(a, message_id("eval/97#created#0", "example.org"));
        assert_ne!(a, message_id("eval/97#created#1", "example.org"));
        assert!(a.starts_with('<') && a.ends_with("@example.org>"), "{a}");
        let email = channel().email(&message("Hi", "a@example.org")).unwrap();
        let text = String::from_utf8(email.formatted()).unwrap();
        let expected = message_id("eval/97#reminder-every-1d#0/a@example.org", "example.org");
        assert!(text.contains(&format!("Message-ID: {expected}")), "{text}");
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(text.contains("Reply-To: help@example.org"), "{text}");
    }
}
