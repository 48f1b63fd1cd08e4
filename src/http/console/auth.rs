//! Who may use the console: operators and their tokens, the session cookie a login sets, the
//! CSRF token every form carries, and the brake on guessing tokens.
//!
//! Sessions are stateless: the cookie names the operator and its expiry, sealed with an HMAC
//! keyed by that operator's own token. Any instance can check it, and changing an operator's
//! token ends their sessions. The CSRF token is an HMAC of the session's random nonce, so it is
//! bound to one login and needs no storage either.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::config::{ConsoleSettings, Role};

/// The cookie that carries a session.
pub const COOKIE: &str = "console_session";

/// The name the single `CONSOLE_TOKEN` operator goes by.
const DEFAULT_OPERATOR: &str = "admin";

/// Tokens shorter than this are refused at start: they can be guessed.
const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConsoleConfigError {
    #[error("console operator {0:?}: the token must be at least {MIN_TOKEN_LEN} characters")]
    ShortToken(String),
    #[error("console operator {0:?} is configured twice")]
    Duplicate(String),
    #[error("console operator names must be 1 to 64 letters, digits, '.', '-' or '_', not {0:?}")]
    Name(String),
    #[error("two console operators have the same token")]
    SharedToken,
}

/// One person (or team) allowed in.
pub struct Operator {
    pub name: String,
    pub role: Role,
    token: SecretString,
    /// Seals this operator's sessions: derived from the token.
    key: hmac::Key,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Everyone allowed in, and for how long a login lasts.
#[derive(Debug)]
pub struct Operators {
    list: Vec<Operator>,
    session: time::Duration,
}

impl Operators {
    /// The configured operators; `None` when there are none (the console is off).
    pub fn from_settings(settings: &ConsoleSettings) -> Result<Option<Self>, ConsoleConfigError> {
        let mut list = Vec::new();
        if let Some(token) = settings
            .token
            .as_ref()
            .filter(|t| !t.expose_secret().is_empty())
        {
            list.push((DEFAULT_OPERATOR.to_owned(), token.clone(), Role::Operator));
        }
        for operator in &settings.operators {
            list.push((operator.name.clone(), operator.token.clone(), operator.role));
        }
        if list.is_empty() {
            return Ok(None);
        }
        let mut operators: Vec<Operator> = Vec::with_capacity(list.len());
        for (name, token, role) in list {
            let valid_name = (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b));
            if !valid_name {
                return Err(ConsoleConfigError::Name(name));
            }
            if token.expose_secret().len() < MIN_TOKEN_LEN {
                return Err(ConsoleConfigError::ShortToken(name));
            }
            if operators.iter().any(|o| o.name == name) {
                return Err(ConsoleConfigError::Duplicate(name));
            }
            if operators
                .iter()
                .any(|o| o.token.expose_secret() == token.expose_secret())
            {
                return Err(ConsoleConfigError::SharedToken);
            }
            let key = hmac::Key::new(hmac::HMAC_SHA256, token.expose_secret().as_bytes());
            let key = hmac::Key::new(
                hmac::HMAC_SHA256,
                hmac::sign(&key, b"alipay-notify console session key").as_ref(),
            );
            operators.push(Operator {
                name,
                role,
                token,
                key,
            });
        }
        Ok(Some(Self {
            list: operators,
            session: time::Duration::hours(settings.session_hours.max(1) as i64),
        }))
    }

    /// The operator whose token this is. Every token is compared, in constant time, whatever
    /// matches: the time taken says nothing about which token came close.
    pub fn by_token(&self, token: &str) -> Option<&Operator> {
        let mut found = None;
        for operator in &self.list {
            let same: bool = operator
                .token
                .expose_secret()
                .as_bytes()
                .ct_eq(token.as_bytes())
                .into();
            if same {
                found = Some(operator);
            }
        }
        found
    }

    fn by_name(&self, name: &str) -> Option<&Operator> {
        self.list.iter().find(|o| o.name == name)
    }

    /// A new session for `operator`, starting `now`: the cookie value and when it ends.
    pub fn open_session(&self, operator: &Operator, now: OffsetDateTime) -> (String, Session) {
        let mut nonce = [0u8; 16];
        aws_lc_rs::rand::fill(&mut nonce).expect("system randomness");
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let expires = now + self.session;
        let name = URL_SAFE_NO_PAD.encode(&operator.name);
        let sealed = format!("{name}.{}.{nonce}", expires.unix_timestamp());
        let mac = URL_SAFE_NO_PAD.encode(hmac::sign(&operator.key, sealed.as_bytes()));
        let session = Session::new(operator, expires, &nonce);
        (format!("{sealed}.{mac}"), session)
    }

    /// The session a cookie value carries, if it is genuine, unexpired and its operator still
    /// configured with the token that sealed it.
    pub fn session(&self, cookie: &str, now: OffsetDateTime) -> Option<Session> {
        let (sealed, mac) = cookie.rsplit_once('.')?;
        let mut parts = sealed.split('.');
        let (name, expires, nonce) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let name = String::from_utf8(URL_SAFE_NO_PAD.decode(name).ok()?).ok()?;
        let operator = self.by_name(&name)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        hmac::verify(&operator.key, sealed.as_bytes(), &mac).ok()?;
        let expires = OffsetDateTime::from_unix_timestamp(expires.parse().ok()?).ok()?;
        (expires > now).then(|| Session::new(operator, expires, nonce))
    }
}

/// A logged-in operator, as one request sees them.
#[derive(Debug, Clone)]
pub struct Session {
    pub operator: String,
    pub role: Role,
    pub expires: OffsetDateTime,
    /// What every form of this session must send back.
    pub csrf: String,
}

impl Session {
    fn new(operator: &Operator, expires: OffsetDateTime, nonce: &str) -> Self {
        let tag = hmac::sign(&operator.key, format!("csrf:{nonce}").as_bytes());
        Self {
            operator: operator.name.clone(),
            role: operator.role,
            expires,
            csrf: URL_SAFE_NO_PAD.encode(tag),
        }
    }

    /// Whether a form's CSRF token is this session's, compared in constant time.
    pub fn csrf_matches(&self, given: &str) -> bool {
        self.csrf.as_bytes().ct_eq(given.as_bytes()).into()
    }

    pub fn may_act(&self) -> bool {
        self.role == Role::Operator
    }
}

/// Failed logins per address over the last minute. Past [`FREE_FAILURES`], every answer to that
/// address waits a little longer (up to [`MAX_DELAY`]): a person who mistyped barely notices, a
/// guesser gets a few tries a minute instead of thousands.
#[derive(Debug, Default)]
pub struct LoginBrake {
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

const WINDOW: Duration = Duration::from_secs(60);
const FREE_FAILURES: u32 = 10;
const MAX_DELAY: Duration = Duration::from_secs(5);
/// Beyond this many addresses the oldest entries are dropped (memory stays bounded).
const MAX_TRACKED: usize = 10_000;

impl LoginBrake {
    /// How long to hold the answer to a login attempt from `address`.
    pub fn delay(&self, address: IpAddr, now: Instant) -> Duration {
        let failures = self.failures.lock().expect("lock");
        match failures.get(&address) {
            Some((since, count))
                if now.duration_since(*since) < WINDOW && *count >= FREE_FAILURES =>
            {
                let extra = count - FREE_FAILURES + 1;
                (Duration::from_millis(500) * extra).min(MAX_DELAY)
            }
            _ => Duration::ZERO,
        }
    }

    pub fn failed(&self, address: IpAddr, now: Instant) {
        let mut failures = self.failures.lock().expect("lock");
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, (since, _)| now.duration_since(*since) < WINDOW);
        }
        let entry = failures.entry(address).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    pub fn succeeded(&self, address: IpAddr) {
        self.failures.lock().expect("lock").remove(&address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OperatorSettings;

    fn settings(operators: &[(&str, &str, Role)]) -> ConsoleSettings {
        ConsoleSettings {
            token: None,
            operators: operators
                .iter()
                .map(|(name, token, role)| OperatorSettings {
                    name: (*name).into(),
                    token: SecretString::from(*token),
                    role: *role,
                })
                .collect(),
            session_hours: 12,
        }
    }

    const ALICE: &str = "alice-token-0123456789";
    const BOB: &str = "bob-token-0123456789ab";

    fn operators() -> Operators {
        Operators::from_settings(&settings(&[
            ("alice", ALICE, Role::Operator),
            ("bob", BOB, Role::Viewer),
        ]))
        .unwrap()
        .unwrap()
    }

    #[test]
    fn a_session_holds_until_it_expires_and_only_unaltered() {
        let operators = operators();
        let now = OffsetDateTime::now_utc();
        let alice = operators.by_token(ALICE).unwrap();
        let (cookie, opened) = operators.open_session(alice, now);

        let session = operators.session(&cookie, now).expect("valid");
        assert_eq!(session.operator, "alice");
        assert_eq!(session.csrf, opened.csrf);
        assert!(session.may_act());
        assert!(operators
            .session(&cookie, now + time::Duration::hours(13))
            .is_none());
        // Another operator's name under alice's seal, a later expiry, a cut cookie: all refused.
        let bob = URL_SAFE_NO_PAD.encode("bob");
        let alice_name = URL_SAFE_NO_PAD.encode("alice");
        let forged = cookie.replacen(&alice_name, &bob, 1);
        assert!(operators.session(&forged, now).is_none());
        let (sealed, mac) = cookie.rsplit_once('.').unwrap();
        let mut parts: Vec<&str> = sealed.split('.').collect();
        let later = (now + time::Duration::days(30))
            .unix_timestamp()
            .to_string();
        parts[1] = &later;
        assert!(operators
            .session(&format!("{}.{mac}", parts.join(".")), now)
            .is_none());
        assert!(operators.session(sealed, now).is_none());
        assert!(operators.session("", now).is_none());
    }

    #[test]
    fn a_new_token_ends_the_old_sessions() {
        let now = OffsetDateTime::now_utc();
        let before = operators();
        let (cookie, _) = before.open_session(before.by_token(ALICE).unwrap(), now);
        let after = Operators::from_settings(&settings(&[(
            "alice",
            "alice-new-token-987654321",
            Role::Operator,
        )]))
        .unwrap()
        .unwrap();
        assert!(after.session(&cookie, now).is_none());
    }

    #[test]
    fn csrf_tokens_differ_per_login() {
        let operators = operators();
        let now = OffsetDateTime::now_utc();
        let bob = operators.by_token(BOB).unwrap();
        let (_, first) = operators.open_session(bob, now);
        let (_, second) = operators.open_session(bob, now);
        assert_ne!(first.csrf, second.csrf);
        assert!(first.csrf_matches(&first.csrf));
        assert!(!first.csrf_matches(&second.csrf));
        assert!(!first.may_act());
    }

    #[test]
    fn bad_operator_settings_are_refused() {
        let refused = |list: &[(&str, &str, Role)]| Operators::from_settings(&settings(list));
        assert_eq!(
            refused(&[("a", "short", Role::Viewer)]).unwrap_err(),
            ConsoleConfigError::ShortToken("a".into())
        );
        assert_eq!(
            refused(&[("a", ALICE, Role::Viewer), ("a", BOB, Role::Viewer)]).unwrap_err(),
            ConsoleConfigError::Duplicate("a".into())
        );
        assert_eq!(
            refused(&[("a", ALICE, Role::Viewer), ("b", ALICE, Role::Viewer)]).unwrap_err(),
            ConsoleConfigError::SharedToken
        );
        assert!(matches!(
            refused(&[("a b", ALICE, Role::Viewer)]),
            Err(ConsoleConfigError::Name(_))
        ));
        assert!(refused(&[]).unwrap().is_none());
    }

    #[test]
    fn the_brake_holds_answers_after_ten_failures_in_a_minute() {
        let brake = LoginBrake::default();
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        let start = Instant::now();
        for _ in 0..9 {
            brake.failed(address, start);
        }
        assert_eq!(brake.delay(address, start), Duration::ZERO);
        brake.failed(address, start);
        assert!(brake.delay(address, start) > Duration::ZERO);
        for _ in 0..100 {
            brake.failed(address, start);
        }
        assert_eq!(brake.delay(address, start), MAX_DELAY);
        // Another address is not held; a minute later neither is this one.
        assert_eq!(
            brake.delay("192.0.2.2".parse().unwrap(), start),
            Duration::ZERO
        );
        assert_eq!(brake.delay(address, start + WINDOW), Duration::ZERO);
    }
}
