//! Checking what a merchant (API) or a shop page (form) asks us to create, against Alipay's rules
//! for page-pay orders, before anything is stored.

use time::{Duration, OffsetDateTime};

use super::model::NewOrder;
use crate::money::{Amount, AmountError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("out_trade_no must be 1 to 64 letters, digits or underscores")]
    OutTradeNo,
    #[error("subject must be 1 to 256 characters without `/`, `=` or `&`")]
    Subject,
    #[error("body must be at most 128 characters, without control characters")]
    Body,
    #[error("total_amount")]
    Amount(#[from] AmountError),
}

/// An order request as it arrives, before validation.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(crate) struct OrderRequest {
    pub out_trade_no: Option<String>,
    pub subject: String,
    pub total_amount: String,
    pub body: Option<String>,
}

/// Alipay's rule for `out_trade_no` (and ours for `out_request_no`). Every stored order passes
/// it, so a number that fails it names no order: callers refuse it before any query.
pub(crate) fn valid_out_trade_no(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// NUL and other control characters have no place in a subject, a body or a reason, and NUL
/// cannot be stored in Postgres text at all.
pub(crate) fn has_control_characters(text: &str) -> bool {
    text.chars().any(char::is_control)
}

impl OrderRequest {
    pub fn validate(self, now: OffsetDateTime, expiry: Duration) -> Result<NewOrder, InputError> {
        let out_trade_no = match self.out_trade_no.filter(|s| !s.is_empty()) {
            Some(given) if valid_out_trade_no(&given) => given,
            Some(_) => return Err(InputError::OutTradeNo),
            None => generate_out_trade_no(now),
        };
        let subject = self.subject.trim().to_owned();
        let subject_ok = (1..=256).contains(&subject.chars().count())
            && !subject.contains(['/', '=', '&'])
            && !has_control_characters(&subject);
        if !subject_ok {
            return Err(InputError::Subject);
        }
        let body = self.body.filter(|b| !b.is_empty());
        if body
            .as_ref()
            .is_some_and(|b| b.chars().count() > 128 || has_control_characters(b))
        {
            return Err(InputError::Body);
        }
        Ok(NewOrder {
            out_trade_no,
            subject,
            body,
            total_amount: Amount::parse(self.total_amount.trim())?,
            created_at: now,
            expires_at: now + expiry,
        })
    }
}

/// `yyyyMMddHHmmss` (UTC) and 12 random digits: sortable, unique, within Alipay's charset.
pub(crate) fn generate_out_trade_no(now: OffsetDateTime) -> String {
    let mut random = [0u8; 8];
    aws_lc_rs::rand::fill(&mut random).expect("system randomness");
    let suffix = u64::from_le_bytes(random) % 1_000_000_000_000;
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .expect("a valid date formats");
    format!("{stamp}{suffix:012}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(subject: &str, amount: &str) -> OrderRequest {
        OrderRequest {
            subject: subject.into(),
            total_amount: amount.into(),
            ..Default::default()
        }
    }

    #[test]
    fn generates_a_valid_out_trade_no_when_absent() {
        let order = request("Tea", "12.34")
            .validate(OffsetDateTime::now_utc(), Duration::minutes(30))
            .unwrap();
        assert_eq!(order.out_trade_no.len(), 26);
        assert!(valid_out_trade_no(&order.out_trade_no));
        assert_eq!(order.total_amount.fen(), 1234);
    }

    #[test]
    fn refuses_what_alipay_would_refuse() {
        let now = OffsetDateTime::now_utc();
        let expiry = Duration::minutes(30);
        assert_eq!(
            request("a/b", "1").validate(now, expiry).unwrap_err(),
            InputError::Subject
        );
        assert_eq!(
            request("", "1").validate(now, expiry).unwrap_err(),
            InputError::Subject
        );
        let mut bad_no = request("Tea", "1");
        bad_no.out_trade_no = Some("x'; drop table payment_order; --".into());
        assert_eq!(
            bad_no.validate(now, expiry).unwrap_err(),
            InputError::OutTradeNo
        );
        assert!(matches!(
            request("Tea", "1e3").validate(now, expiry),
            Err(InputError::Amount(_))
        ));
    }

    #[test]
    fn refuses_nul_and_control_characters_in_every_text_field() {
        let now = OffsetDateTime::now_utc();
        let expiry = Duration::minutes(30);
        for bad in ["a\0b", "a\u{7}b", "a\u{1b}[31m", "a\u{85}b"] {
            assert_eq!(
                request(bad, "1").validate(now, expiry).unwrap_err(),
                InputError::Subject,
                "{bad:?}"
            );
            let mut with_body = request("Tea", "1");
            with_body.body = Some(bad.into());
            assert_eq!(
                with_body.validate(now, expiry).unwrap_err(),
                InputError::Body,
                "{bad:?}"
            );
            let mut with_no = request("Tea", "1");
            with_no.out_trade_no = Some(bad.into());
            assert_eq!(
                with_no.validate(now, expiry).unwrap_err(),
                InputError::OutTradeNo
            );
        }
    }
}
