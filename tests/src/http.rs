//! A real HTTP/1.1 server on loopback for channel tests: it accepts connections, reads each
//! request (headers and a `Content-Length` body), records it, and answers with the next scripted
//! response. Not a mock of the client: the channel's HTTP client talks to it over TCP.
//!
//! `crates/tickler/tests/support` includes this file too: the daemon tests use it as the
//! receiver of a webhook channel.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// When the whole request had been read.
    pub received_at: std::time::Instant,
    /// The same moment by the wall clock, to compare with the instants in messages.
    pub received_wall: std::time::SystemTime,
}

/// A scripted answer: status, extra headers. Status 0: no answer at all (the request is read,
/// the connection stays open, nothing is written back), as a hung server does.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    /// Reads the request and never answers.
    pub fn hang() -> Answer {
        Answer::status(0)
    }

    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

pub struct HttpServer {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    /// Answers the n-th request with `script[n]`, and every later one with the script's last.
    pub async fn start(script: Vec<Answer>) -> HttpServer {
        HttpServer::start_on("127.0.0.1:0", script).await
    }

    /// As `start`, listening on `addr` (a port a channel was pointed at while it was closed).
    pub async fn start_on(addr: &str, script: Vec<Answer>) -> HttpServer {
        assert!(!script.is_empty(), "a script needs at least one answer");
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let recorded = recorded.clone();
                let script = script.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut reader = BufReader::new(read);
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or_default().to_owned();
                    let path = parts.next().unwrap_or_default().to_owned();
                    let mut headers = BTreeMap::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let trimmed = line.trim_end();
                        if trimmed.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = trimmed.split_once(':') {
                            headers
                                .insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                        }
                    }
                    let length: usize = headers
                        .get("content-length")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let answer = {
                        let mut all = recorded.lock().unwrap();
                        all.push(Recorded {
                            method,
                            path,
                            headers,
                            body,
                            received_at: std::time::Instant::now(),
                            received_wall: std::time::SystemTime::now(),
                        });
                        script[(all.len() - 1).min(script.len() - 1)].clone()
                    };
                    if answer.status == 0 {
                        // Hold the connection open without a word, until the client gives up.
                        let _ = reader.read_to_end(&mut Vec::new()).await;
                        return;
                    }
                    let mut response = format!(
                        "HTTP/1.1 {} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n",
                        answer.status
                    );
                    for (name, value) in &answer.headers {
                        response.push_str(&format!("{name}: {value}\r\n"));
                    }
                    response.push_str("\r\n");
                    let _ = write.write_all(response.as_bytes()).await;
                    let _ = write.shutdown().await;
                });
            }
        });
        HttpServer {
            addr,
            requests,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
