//! The endpoints events are delivered to, from the `[webhooks]` settings, and when to try again.

use std::time::Duration;

use secrecy::ExposeSecret;

use super::signature::{SignatureError, WebhookSecret};
use crate::config::WebhookSettings;
use crate::orders::events::{EventType, Subscription, Subscriptions};

/// One endpoint. Its `Debug` shows the name and event types only: a URL may carry credentials.
#[derive(Clone)]
pub struct Endpoint {
    /// Names the endpoint in deliveries, metrics and logs.
    pub name: String,
    pub url: url::Url,
    pub secret: WebhookSecret,
    /// Only these event types; every type when `None`.
    pub types: Option<Vec<EventType>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("types", &self.types)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("webhook endpoint {0}: the URL must be http:// or https://")]
    Scheme(String),
    #[error("webhook endpoint {0}: the URL is not valid")]
    Url(String, #[source] url::ParseError),
    #[error("webhook endpoint {0}: the secret")]
    Secret(String, #[source] SignatureError),
    #[error("webhook endpoint {0}: a URL needs a secret (WEBHOOK_SECRET), and a secret a URL")]
    Incomplete(String),
    #[error("webhook endpoint {0}: unknown event type `{1}`")]
    EventType(String, String),
    #[error("webhook endpoint names must be unique; `{0}` is used twice")]
    Duplicate(String),
    #[error("webhooks.retry_schedule: `{0}` is not a duration like 5s, 5m or 2h")]
    Schedule(String),
}

/// When to try a delivery: the n-th entry is the wait before attempt n+1 (the first is usually
/// zero). After the last attempt fails the delivery is `failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl RetrySchedule {
    pub fn parse(entries: &[String]) -> Result<Self, EndpointError> {
        entries
            .iter()
            .map(|e| {
                humantime::parse_duration(e.trim()).map_err(|_| EndpointError::Schedule(e.clone()))
            })
            .collect::<Result<Vec<_>, _>>()
            .and_then(|waits| match waits.is_empty() {
                true => Err(EndpointError::Schedule(String::new())),
                false => Ok(Self(waits)),
            })
    }

    /// The wait before the next attempt, after `attempts` have failed; `None` when that was the
    /// last.
    pub fn after(&self, attempts: i64) -> Option<Duration> {
        usize::try_from(attempts)
            .ok()
            .and_then(|n| self.0.get(n))
            .copied()
    }

    /// How long a delivery is retried for, first attempt to last.
    pub fn span(&self) -> Duration {
        self.0.iter().sum()
    }
}

/// The endpoints configured: `WEBHOOK_URL` + `WEBHOOK_SECRET` (named `default`), then each of
/// `[[webhooks.endpoints]]`.
pub fn endpoints(settings: &WebhookSettings) -> Result<Vec<Endpoint>, EndpointError> {
    let mut endpoints = Vec::new();
    let url = settings.url.as_deref().filter(|u| !u.trim().is_empty());
    let secret = settings
        .secret
        .as_ref()
        .map(|s| s.expose_secret())
        .filter(|s| !s.trim().is_empty());
    match (url, secret) {
        (Some(url), Some(secret)) => endpoints.push(endpoint("default", url, secret, None)?),
        (None, None) => {}
        _ => return Err(EndpointError::Incomplete("default".into())),
    }
    for configured in &settings.endpoints {
        let secret = configured.secret.expose_secret();
        let endpoint = endpoint(
            &configured.name,
            &configured.url,
            secret,
            configured.types.as_deref(),
        )?;
        if endpoints.iter().any(|e: &Endpoint| e.name == endpoint.name) {
            return Err(EndpointError::Duplicate(endpoint.name));
        }
        endpoints.push(endpoint);
    }
    Ok(endpoints)
}

fn endpoint(
    name: &str,
    url: &str,
    secret: &str,
    types: Option<&[String]>,
) -> Result<Endpoint, EndpointError> {
    let parsed = url::Url::parse(url.trim()).map_err(|e| EndpointError::Url(name.into(), e))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(EndpointError::Scheme(name.into()));
    }
    let secret = WebhookSecret::parse(secret).map_err(|e| EndpointError::Secret(name.into(), e))?;
    let types = types
        .map(|types| {
            types
                .iter()
                .map(|t| {
                    EventType::parse(t.trim())
                        .ok_or_else(|| EndpointError::EventType(name.into(), t.clone()))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(Endpoint {
        name: name.to_owned(),
        url: parsed,
        secret,
        types,
    })
}

/// What the stores need to know of the endpoints: which wants which events.
pub fn subscriptions(endpoints: &[Endpoint]) -> Subscriptions {
    Subscriptions(
        endpoints
            .iter()
            .map(|e| Subscription {
                endpoint: e.name.clone(),
                types: e.types.clone(),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_spans_about_three_days() {
        let settings = crate::config::Settings::defaults();
        let schedule = RetrySchedule::parse(&settings.webhooks.retry_schedule).unwrap();
        assert_eq!(schedule.after(0), Some(Duration::ZERO));
        assert_eq!(schedule.after(1), Some(Duration::from_secs(5)));
        assert_eq!(schedule.after(schedule.0.len() as i64), None);
        let days = schedule.span().as_secs_f64() / 86_400.0;
        assert!((2.9..3.3).contains(&days), "{days} days");
    }

    #[test]
    fn urls_must_be_http() {
        let secret = WebhookSecret::generate();
        assert!(matches!(
            endpoint("a", "ftp://x.example/hook", &secret, None),
            Err(EndpointError::Scheme(_))
        ));
        assert!(matches!(
            endpoint("a", "file:///etc/passwd", &secret, None),
            Err(EndpointError::Scheme(_))
        ));
        assert!(endpoint("a", "https://x.example/hook", &secret, None).is_ok());
        assert!(matches!(
            endpoint(
                "a",
                "https://x.example/",
                &secret,
                Some(&["order.shipped".into()])
            ),
            Err(EndpointError::EventType(..))
        ));
    }
}
