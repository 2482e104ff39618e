//! Who may look at the dashboard, and who may act on it.
//!
//! Two tokens are kept for the daemon (the binary keeps them in files of the data directory,
//! readable by its user only): one lets support staff read, the other lets an operator also
//! retry, cancel and pause. A token is typed once on the login page and exchanged for a session
//! cookie (HttpOnly, SameSite=Strict), so it never travels again and no script can read it.
//!
//! A session remembers the digest of the token it was opened with; every request compares it
//! with the current token, so rotating a token ends the sessions it opened at their next
//! request, without a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tickler_session";
/// How long a session lasts from login (a working day and some).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once; past this the oldest is ended (a login loop cannot grow memory).
const SESSIONS_MAX: usize = 1024;
/// Random bytes in a session id or a CSRF token.
const SECRET_LEN: usize = 32;

/// What a signed-in person may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clearance {
    /// Read every page; no action.
    ReadOnly,
    /// Read, and retry, cancel, pause and resume.
    Operator,
}

impl Clearance {
    pub fn name(self) -> &'static str {
        match self {
            Clearance::ReadOnly => "read-only",
            Clearance::Operator => "operator",
        }
    }
}

/// Where the current tokens come from; read at every login and request, so a rotation takes
/// effect at once. `None`: that clearance cannot be had (its token is unreadable or empty).
pub trait Tokens: Send + Sync {
    fn current(&self, clearance: Clearance) -> Option<String>;
}

type TokenDigest = [u8; 32];

/// `SECRET_LEN` random bytes from the operating system, in hex: a token, a session id.
pub fn random_hex() -> String {
    let mut bytes = [0u8; SECRET_LEN];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(text: &str) -> TokenDigest {
    Sha256::digest(text.trim().as_bytes()).into()
}

/// Compares two digests in time independent of where they differ.
fn same(a: &TokenDigest, b: &TokenDigest) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The digest of the current token of `clearance`, if there is one.
fn current_digest(tokens: &dyn Tokens, clearance: Clearance) -> Option<TokenDigest> {
    let token = tokens.current(clearance)?;
    (!token.trim().is_empty()).then(|| digest(&token))
}

/// Which clearance `presented` grants, if any, and the digest of the token it matched.
fn clearance_of(tokens: &dyn Tokens, presented: &str) -> Option<(Clearance, TokenDigest)> {
    let presented = digest(presented);
    [Clearance::Operator, Clearance::ReadOnly]
        .into_iter()
        .find(|clearance| {
            current_digest(tokens, *clearance).is_some_and(|current| same(&current, &presented))
        })
        .map(|clearance| (clearance, presented))
}

/// A signed-in request: what it may do, and the token its forms must carry.
#[derive(Clone, Debug)]
pub struct Signed {
    pub clearance: Clearance,
    pub csrf: String,
}

struct Session {
    clearance: Clearance,
    token: TokenDigest,
    csrf: String,
    expires: Instant,
}

/// The open sessions, in memory: a restart signs everyone out.
pub struct Sessions {
    tokens: Arc<dyn Tokens>,
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(tokens: Arc<dyn Tokens>) -> Sessions {
        Sessions {
            tokens,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a session for `presented` if it is a current token; returns the session id.
    pub fn log_in(&self, presented: &str, now: Instant) -> Option<String> {
        let (clearance, token) = clearance_of(self.tokens.as_ref(), presented)?;
        let id = random_hex();
        let mut open = self.open.lock().expect("sessions lock");
        open.retain(|_, session| session.expires > now);
        if open.len() >= SESSIONS_MAX
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, session)| session.expires)
                .map(|(id, _)| id.clone())
        {
            open.remove(&oldest);
        }
        let session = Session {
            clearance,
            token,
            csrf: random_hex(),
            expires: now + SESSION_LIFETIME,
        };
        open.insert(id.clone(), session);
        Some(id)
    }

    /// The session `id` names, if it is open, unexpired and its token still current.
    pub fn check(&self, id: &str, now: Instant) -> Option<Signed> {
        let mut open = self.open.lock().expect("sessions lock");
        let session = open.get(id)?;
        let current = current_digest(self.tokens.as_ref(), session.clearance);
        if session.expires <= now || !current.is_some_and(|c| same(&c, &session.token)) {
            open.remove(id);
            return None;
        }
        Some(Signed {
            clearance: session.clearance,
            csrf: session.csrf.clone(),
        })
    }

    pub fn log_out(&self, id: &str) {
        self.open.lock().expect("sessions lock").remove(id);
    }
}

/// Whether a form's CSRF field is the session's.
pub fn csrf_matches(signed: &Signed, presented: &str) -> bool {
    same(&digest(&signed.csrf), &digest(presented))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens held in memory, rotated by the test.
    #[derive(Default)]
    struct Held(Mutex<HashMap<&'static str, String>>);

    impl Held {
        fn set(&self, clearance: Clearance, token: &str) {
            self.0
                .lock()
                .unwrap()
                .insert(clearance.name(), token.to_owned());
        }
    }

    impl Tokens for Held {
        fn current(&self, clearance: Clearance) -> Option<String> {
            self.0.lock().unwrap().get(clearance.name()).cloned()
        }
    }

    fn sessions() -> (Arc<Held>, Sessions) {
        let held = Arc::new(Held::default());
        held.set(Clearance::ReadOnly, "read-token");
        held.set(Clearance::Operator, "operator-token");
        (held.clone(), Sessions::new(held))
    }

    #[test]
    fn each_token_opens_a_session_with_its_clearance_and_a_wrong_one_none() {
        let (_, sessions) = sessions();
        let now = Instant::now();
        let id = sessions.log_in("read-token", now).unwrap();
        assert_eq!(
            sessions.check(&id, now).unwrap().clearance,
            Clearance::ReadOnly
        );
        let id = sessions.log_in("operator-token\n", now).unwrap();
        assert_eq!(
            sessions.check(&id, now).unwrap().clearance,
            Clearance::Operator
        );
        assert!(sessions.log_in("not-the-token", now).is_none());
        assert!(sessions.log_in("", now).is_none());
    }

    #[test]
    fn an_empty_or_unreadable_token_opens_nothing() {
        let (held, sessions) = sessions();
        held.set(Clearance::ReadOnly, "  ");
        held.0.lock().unwrap().remove(Clearance::Operator.name());
        assert!(sessions.log_in("  ", Instant::now()).is_none());
        assert!(sessions.log_in("", Instant::now()).is_none());
    }

    #[test]
    fn rotating_a_token_ends_the_sessions_it_opened_and_the_new_one_works() {
        let (held, sessions) = sessions();
        let now = Instant::now();
        let id = sessions.log_in("operator-token", now).unwrap();
        let reader = sessions.log_in("read-token", now).unwrap();
        held.set(Clearance::Operator, "rotated");
        assert!(sessions.check(&id, now).is_none());
        assert!(
            sessions.check(&reader, now).is_some(),
            "the other token's sessions stay"
        );
        assert!(sessions.log_in("operator-token", now).is_none());
        assert!(sessions.log_in("rotated", now).is_some());
    }

    #[test]
    fn a_session_ends_when_it_expires_or_logs_out() {
        let (_, sessions) = sessions();
        let now = Instant::now();
        let id = sessions.log_in("read-token", now).unwrap();
        assert!(sessions.check(&id, now + SESSION_LIFETIME).is_none());
        let id = sessions.log_in("read-token", now).unwrap();
        sessions.log_out(&id);
        assert!(sessions.check(&id, now).is_none());
    }

    #[test]
    fn a_form_must_carry_its_sessions_csrf_token() {
        let (_, sessions) = sessions();
        let now = Instant::now();
        let id = sessions.log_in("operator-token", now).unwrap();
        let signed = sessions.check(&id, now).unwrap();
        assert!(csrf_matches(&signed, &signed.csrf.clone()));
        assert!(!csrf_matches(&signed, ""));
        assert!(!csrf_matches(&signed, "forged"));
    }
}
