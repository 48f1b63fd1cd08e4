//! Checking what a merchant (API) or a shop page (form) asks us to create, against Alipay's rules
//! for page-pay orders, before anything is stored.

use time::{Duration, OffsetDateTime};

use super::model::NewOrder;
use crate::alipay::product::Product;
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
    #[error("product must be one of: {}", names(.enabled))]
    UnknownProduct { enabled: Vec<Product> },
    #[error("product {product} is not enabled here; enabled: {}", names(.enabled))]
    DisabledProduct {
        product: Product,
        enabled: Vec<Product>,
    },
}

fn names(products: &[Product]) -> String {
    let names: Vec<&str> = products.iter().map(|p| p.as_str()).collect();
    names.join(", ")
}

/// The product a request asks for, or `fallback` when it names none (the first enabled product
/// when `fallback` is not enabled). `enabled` is never empty: the configuration checks that.
pub(crate) fn choose_product(
    given: Option<&str>,
    fallback: Product,
    enabled: &[Product],
) -> Result<Product, InputError> {
    let Some(given) = given.map(str::trim).filter(|g| !g.is_empty()) else {
        return Ok(if enabled.contains(&fallback) {
            fallback
        } else {
            enabled.first().copied().unwrap_or(fallback)
        });
    };
    let enabled_list = || enabled.to_vec();
    let product = Product::parse(given).ok_or_else(|| InputError::UnknownProduct {
        enabled: enabled_list(),
    })?;
    if !enabled.contains(&product) {
        return Err(InputError::DisabledProduct {
            product,
            enabled: enabled_list(),
        });
    }
    Ok(product)
}

/// An order request as it arrives, before validation.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(crate) struct OrderRequest {
    pub out_trade_no: Option<String>,
    pub subject: String,
    pub total_amount: String,
    pub body: Option<String>,
    /// `page`, `wap`, `qr` or `app`; chosen with [`choose_product`] before validation.
    pub product: Option<String>,
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
    pub fn validate(
        self,
        product: Product,
        now: OffsetDateTime,
        expiry: Duration,
    ) -> Result<NewOrder, InputError> {
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
            product,
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
            .validate(
                Product::Page,
                OffsetDateTime::now_utc(),
                Duration::minutes(30),
            )
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
            request("a/b", "1")
                .validate(Product::Page, now, expiry)
                .unwrap_err(),
            InputError::Subject
        );
        assert_eq!(
            request("", "1")
                .validate(Product::Page, now, expiry)
                .unwrap_err(),
            InputError::Subject
        );
        let mut bad_no = request("Tea", "1");
        bad_no.out_trade_no = Some("x'; drop table payment_order; --".into());
        assert_eq!(
            bad_no.validate(Product::Page, now, expiry).unwrap_err(),
            InputError::OutTradeNo
        );
        assert!(matches!(
            request("Tea", "1e3").validate(Product::Page, now, expiry),
            Err(InputError::Amount(_))
        ));
    }

    #[test]
    fn a_product_must_be_known_and_enabled_and_defaults_to_the_fallback() {
        let enabled = [Product::Page, Product::Wap];
        assert_eq!(
            choose_product(None, Product::Wap, &enabled),
            Ok(Product::Wap)
        );
        assert_eq!(
            choose_product(Some(""), Product::Page, &enabled),
            Ok(Product::Page)
        );
        assert_eq!(
            choose_product(None, Product::Qr, &enabled),
            Ok(Product::Page)
        );
        assert_eq!(
            choose_product(Some("wap"), Product::Page, &enabled),
            Ok(Product::Wap)
        );
        let unknown = choose_product(Some("bitcoin"), Product::Page, &enabled).unwrap_err();
        assert_eq!(unknown.to_string(), "product must be one of: page, wap");
        let disabled = choose_product(Some("qr"), Product::Page, &enabled).unwrap_err();
        assert_eq!(
            disabled.to_string(),
            "product qr is not enabled here; enabled: page, wap"
        );
    }

    #[test]
    fn refuses_nul_and_control_characters_in_every_text_field() {
        let now = OffsetDateTime::now_utc();
        let expiry = Duration::minutes(30);
        for bad in ["a\0b", "a\u{7}b", "a\u{1b}[31m", "a\u{85}b"] {
            assert_eq!(
                request(bad, "1")
                    .validate(Product::Page, now, expiry)
                    .unwrap_err(),
                InputError::Subject,
                "{bad:?}"
            );
            let mut with_body = request("Tea", "1");
            with_body.body = Some(bad.into());
            assert_eq!(
                with_body.validate(Product::Page, now, expiry).unwrap_err(),
                InputError::Body,
                "{bad:?}"
            );
            let mut with_no = request("Tea", "1");
            with_no.out_trade_no = Some(bad.into());
            assert_eq!(
                with_no.validate(Product::Page, now, expiry).unwrap_err(),
                InputError::OutTradeNo
            );
        }
    }
}
