//! A real SMTP server on loopback (`tests/fixtures/smtp_server.py`, aiosmtpd) for the SMTP
//! channel tests: what it received, as the relay saw it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use serde::Deserialize;

/// A running server; stopped when dropped (its stdin closes).
pub struct SmtpServer {
    pub port: u16,
    mailbox: PathBuf,
    child: Child,
    _stdin: ChildStdin,
}

/// One accepted message.
#[derive(Clone, Debug, Deserialize)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The message as transmitted: headers, blank line, body.
    pub data: String,
}

impl Received {
    /// The value of the first header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(current) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    current.push_str(line.trim_start());
                    continue;
                }
                break;
            }
            if let Some((field, rest)) = line.split_once(':')
                && field.eq_ignore_ascii_case(name)
            {
                value = Some(rest.trim().to_owned());
            }
        }
        value
    }
}

impl SmtpServer {
    /// Starts the server; panics with what to install if Python or aiosmtpd is missing.
    pub fn start(dir: &Path) -> SmtpServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/smtp_server.py");
        let mailbox = dir.join("smtp-received.jsonl");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&mailbox)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the SMTP test server (install: python3 -m pip install aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("the SMTP server prints its port");
        let port = line
            .strip_prefix("PORT ")
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "the SMTP test server did not start (is aiosmtpd installed? python3 -m pip install aiosmtpd); it printed {line:?}"
                )
            });
        let stdin = child.stdin.take().expect("piped");
        SmtpServer {
            port,
            mailbox,
            child,
            _stdin: stdin,
        }
    }

    /// Every message accepted so far, in order.
    pub fn received(&self) -> Vec<Received> {
        match std::fs::read_to_string(&self.mailbox) {
            Ok(text) => text
                .lines()
                .map(|line| serde_json::from_str(line).expect("mailbox lines are JSON"))
                .collect(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => panic!("cannot read {}: {err}", self.mailbox.display()),
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
