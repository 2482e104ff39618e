//! The webhook channel: an HTTP POST of a JSON body to a configured URL (a messaging platform's
//! API, e.g. RapidPro's flow starts).
//!
//! Every request carries the occurrence's `Idempotency-Key` and an HMAC-SHA256 signature of the
//! body. 5xx, 429 (honouring `Retry-After`) and network errors are transient (retried by the
//! engine with backoff); other 4xx are permanent; redirects are never followed.
//!
//! Destinations are guarded against server-side request forgery: the URL's host must be on the
//! channel's allow-list, and unless `allow_private` is set, every address it resolves to (or
//! the address it is) must be public, checked by our own resolver at connection time so that a
//! DNS answer cannot change between the check and the connection. Proxies from the environment
//! are ignored for the same reason.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{StatusCode, Url};
use sha2::Sha256;
use tickler_core::Span;

pub use super::settings::Payload;
use super::{Channel, DeliveryError, Message};
use crate::Error;

/// A `Retry-After` beyond this is treated as this: a misbehaving server must not park an
/// occurrence for days.
const RETRY_AFTER_MAX: Span = Span::hours(1);

#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// The channel's name, for error messages.
    pub name: String,
    pub url: String,
    /// Hosts the URL may point at: exact names, or `*.example.org` for subdomains.
    pub allow_hosts: Vec<String>,
    /// Allow loopback, private, link-local and other non-public addresses (tests, intranets).
    pub allow_private: bool,
    /// The HMAC-SHA256 key; the signature goes in `signature_header` as `sha256=<hex>`.
    pub secret: Vec<u8>,
    pub signature_header: String,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub payload: Payload,
}

pub struct WebhookChannel {
    config: WebhookConfig,
    url: Url,
    client: reqwest::Client,
}

impl WebhookChannel {
    /// Checks the destination and builds the client. Errors name the channel and the value.
    pub fn new(config: WebhookConfig) -> Result<WebhookChannel, Error> {
        let fail = |reason: String| Error::Config {
            what: format!("channel {}", config.name),
            reason,
        };
        let url = Url::parse(&config.url)
            .map_err(|err| fail(format!("invalid url {:?}: {err}", config.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(fail(format!("url {:?} is not http or https", config.url)));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(fail(format!(
                "url {:?} carries credentials; use the signing secret",
                config.url
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| fail(format!("url {:?} has no host", config.url)))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if !host_allowed(&host, &config.allow_hosts) {
            return Err(fail(format!(
                "host {host:?} is not in allow_hosts ({})",
                config.allow_hosts.join(", ")
            )));
        }
        if let Ok(ip) = host.parse::<IpAddr>()
            && !config.allow_private
            && !is_public(ip)
        {
            return Err(fail(format!(
                "host {host} is a loopback, private, link-local or otherwise non-public address; set allow_private to use it"
            )));
        }
        if config.secret.is_empty() {
            return Err(fail("the signing secret is empty".into()));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: config.allow_private,
            }))
            .user_agent(concat!("tickler/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| fail(format!("cannot build the HTTP client: {err}")))?;
        Ok(WebhookChannel {
            config,
            url,
            client,
        })
    }

    fn body(&self, message: &Message) -> Result<Vec<u8>, DeliveryError> {
        match self.config.payload {
            Payload::Message => serde_json::to_vec(message).map_err(|err| {
                DeliveryError::Permanent(format!("cannot encode the message: {err}"))
            }),
            Payload::Body => {
                serde_json::from_str::<serde_json::Value>(&message.body).map_err(|err| {
                    DeliveryError::Permanent(format!("the rendered body is not JSON: {err}"))
                })?;
                Ok(message.body.clone().into_bytes())
            }
        }
    }

    fn sign(&self, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.config.secret)
            .expect("HMAC takes keys of any length");
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256={hex}")
    }
}

#[async_trait]
impl Channel for WebhookChannel {
    async fn deliver(&self, message: &Message) -> Result<String, DeliveryError> {
        let body = self.body(message)?;
        let response = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("idempotency-key", &message.idempotency_key)
            .header(self.config.signature_header.as_str(), self.sign(&body))
            .header("x-tickler-attempt", message.attempt.to_string())
            .body(body)
            .send()
            .await
            .map_err(|err| {
                // Errors become past events, kept for ever: the URL's path and query may hold a
                // token (a Slack-style hook), so only its origin is named.
                let err = err.without_url();
                DeliveryError::Transient(format!("POST {}: {}", origin(&self.url), describe(&err)))
            })?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = |status: StatusCode| format!("HTTP {status} from {}", origin(&self.url));
        if status.is_success() {
            Ok(format!("HTTP {}", status.as_u16()))
        } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            match retry_after {
                Some(after) => Err(DeliveryError::RetryAfter {
                    message: text(status),
                    after: after.min(RETRY_AFTER_MAX),
                }),
                None => Err(DeliveryError::Transient(text(status))),
            }
        } else if status.is_redirection() {
            Err(DeliveryError::Permanent(format!(
                "{}: redirect to {} not followed",
                text(status),
                location
                    .as_deref()
                    .map_or("(no location)".to_owned(), |l| match Url::parse(l) {
                        Ok(url) => origin(&url),
                        Err(_) => "a relative location".to_owned(),
                    })
            )))
        } else {
            Err(DeliveryError::Permanent(text(status)))
        }
    }
}

/// `scheme://host:port` of a URL: what an error may name without repeating a secret carried in
/// the path or query.
fn origin(url: &Url) -> String {
    format!("{} (path not shown)", url.origin().ascii_serialization())
}

/// The most useful part of a reqwest error (the source chain names the cause: refused, timeout,
/// refused destination).
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After` as seconds (the HTTP-date form is rare for APIs and is ignored: the backoff
/// schedule applies instead).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Span> {
    let seconds: i64 = headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (seconds >= 0).then(|| Span::seconds(seconds))
}

fn host_allowed(host: &str, allow: &[String]) -> bool {
    allow.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => host == pattern,
        }
    })
}

/// Whether an address is on the public internet. Loopback, private, link-local (which holds the
/// cloud metadata address 169.254.169.254), shared (CGNAT), unspecified, broadcast, multicast,
/// documentation and reserved ranges are not; an IPv4-mapped IPv6 address is judged by its IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let first = segments[0];
    // NAT64 (RFC 6052's well-known 64:ff9b::/96, RFC 8215's local-use 64:ff9b:1::/48): the
    // address embeds an IPv4 one, which is what decides, on a network that translates them.
    let nat64 = first == 0x0064
        && segments[1] == 0xff9b
        && (segments[2..6] == [0, 0, 0, 0] || segments[2] == 0x0001);
    if nat64 {
        let [a, b] = segments[6].to_be_bytes();
        let [c, d] = segments[7].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated, still routed on some networks)
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || ip.to_ipv4().is_some()) // IPv4-compatible (deprecated) and the like
}

/// Resolves names with the system resolver and drops non-public addresses unless allowed.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if allowed.is_empty() {
                let refused = format!(
                    "{host} resolves only to non-public addresses ({}); refused",
                    resolved
                        .iter()
                        .map(|a| a.ip().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return Err(refused.into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, allow: &[&str]) -> WebhookConfig {
        WebhookConfig {
            name: "hook".into(),
            url: url.into(),
            allow_hosts: allow.iter().map(|h| h.to_string()).collect(),
            allow_private: false,
            secret: b"secret".to_vec(),
            signature_header: "x-tickler-signature".into(),
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            payload: Payload::Message,
        }
    }

    #[test]
    fn non_public_destinations_are_refused_in_every_spelling() {
        for url in [
            "http://127.0.0.1/hook",
            "http://localhost/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[fe80::1]/hook",
            "http://10.1.2.3/hook",
            "http://192.168.0.10/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://2130706433/hook",
            "http://0x7f000001/hook",
            "http://0177.0.0.1/hook",
            "http://100.64.0.1/hook",
            "http://0.0.0.0/hook",
            // Issue 20 (I2): NAT64 prefixes embedding a private address, and site-local.
            "http://[64:ff9b::7f00:1]/hook",
            "http://[64:ff9b::a01:203]/hook",
            "http://[64:ff9b:1::c0a8:a]/hook",
            "http://[fec0::1]/hook",
        ] {
            let parsed = Url::parse(url).unwrap();
            let host = parsed
                .host_str()
                .unwrap()
                .trim_matches(|c| c == '[' || c == ']')
                .to_owned();
            let result = WebhookChannel::new(config(url, &[&host]));
            if host == "localhost" {
                // A name: refused at connection time by the resolver, see the test below.
                assert!(result.is_ok(), "{url}");
            } else {
                let err = result
                    .err()
                    .unwrap_or_else(|| panic!("{url} was accepted"))
                    .to_string();
                assert!(err.contains("non-public"), "{url}: {err}");
            }
        }
    }

    #[test]
    fn a_nat64_address_embedding_a_public_one_is_public() {
        assert!(is_public("64:ff9b::5db8:d822".parse().unwrap())); // 93.184.216.34
        assert!(!is_public("64:ff9b::7f00:1".parse().unwrap()));
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_when_connecting() {
        let channel =
            WebhookChannel::new(config("http://localhost:9/hook", &["localhost"])).unwrap();
        let message = Message {
            idempotency_key: "k".into(),
            entity: "contact/x".into(),
            rule: "r".into(),
            kind: "k".into(),
            recipient: "r".into(),
            channel: "hook".into(),
            due_at: tickler_core::Timestamp::EPOCH,
            fired_at: tickler_core::Timestamp::EPOCH,
            attempt: 1,
            subject: String::new(),
            body: String::new(),
            html: None,
        };
        let err = channel.deliver(&message).await.unwrap_err().to_string();
        assert!(err.contains("non-public"), "{err}");
    }

    #[test]
    fn hosts_must_be_allow_listed_and_urls_well_formed() {
        let cases = [
            (
                config("https://api.example.org/x", &["example.org"]),
                "not in allow_hosts",
            ),
            (
                config("ftp://api.example.org/x", &["api.example.org"]),
                "not http or https",
            ),
            (
                config("https://user:pw@api.example.org/x", &["api.example.org"]),
                "credentials",
            ),
            (config("not a url", &["api.example.org"]), "invalid url"),
        ];
        for (config, expected) in cases {
            let err = WebhookChannel::new(config).err().unwrap().to_string();
            assert!(err.contains(expected), "{err}");
        }
        assert!(
            WebhookChannel::new(config("https://api.example.org/x", &["*.example.org"])).is_ok()
        );
        let mut empty_secret = config("https://api.example.org/x", &["api.example.org"]);
        empty_secret.secret.clear();
        assert!(
            WebhookChannel::new(empty_secret)
                .err()
                .unwrap()
                .to_string()
                .contains("secret")
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        let channel =
            WebhookChannel::new(config("https://api.example.org/x", &["api.example.org"])).unwrap();
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut jefe = config("https://api.example.org/x", &["api.example.org"]);
        jefe.secret = b"Jefe".to_vec();
        let jefe = WebhookChannel::new(jefe).unwrap();
        assert_eq!(
            jefe.sign(b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(channel.sign(b"a"), channel.sign(b"b"));
    }
}
