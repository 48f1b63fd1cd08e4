//! Checking a gateway request the way Alipay's gateway does before any business logic: a known
//! app_id, well-formed common parameters, a Beijing timestamp within ten minutes of now, for an app
//! in certificate mode its certificate's SN and a root bundle with Alipay's root (`app_cert_sn`,
//! `alipay_root_cert_sn`), an RSA2 signature by the app's key over every parameter but `sign`
//! (`sign_type` and the SNs included), and a JSON object in biz_content. The same checks guard the
//! app SDK's order strings.

use std::collections::{BTreeMap, HashMap};

use time::OffsetDateTime;
use url::form_urlencoded::byte_serialize;

use super::biz::{self, Biz};
use super::config::RegisteredApp;
pub(crate) use super::gateway_error::GatewayError;
use super::pki::Pki;
use alipay_notify::alipay::clock::parse_beijing;
use alipay_notify::alipay::form::{FormError, RawParams};
use alipay_notify::alipay::product::Product;
use alipay_notify::alipay::sign::{sign_content, REQUEST_EXCLUDED};

/// How far a request's timestamp may be from the gateway's clock.
pub const TIMESTAMP_TOLERANCE: time::Duration = time::Duration::minutes(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiMethod {
    /// The method that opens a trade of this product: page.pay, wap.pay, precreate or app.pay.
    Create(Product),
    Query,
    Close,
    Refund,
    RefundQuery,
    /// `alipay.open.app.alipaycert.download`: Alipay's certificate by SN (certificate mode only).
    CertDownload,
}

impl ApiMethod {
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(product) = Product::ALL.into_iter().find(|p| p.method() == text) {
            return Some(Self::Create(product));
        }
        Some(match text {
            "alipay.trade.query" => Self::Query,
            "alipay.trade.close" => Self::Close,
            "alipay.trade.refund" => Self::Refund,
            "alipay.trade.fastpay.refund.query" => Self::RefundQuery,
            "alipay.open.app.alipaycert.download" => Self::CertDownload,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Create(product) => product.method(),
            Self::Query => "alipay.trade.query",
            Self::Close => "alipay.trade.close",
            Self::Refund => "alipay.trade.refund",
            Self::RefundQuery => "alipay.trade.fastpay.refund.query",
            Self::CertDownload => "alipay.open.app.alipaycert.download",
        }
    }

    /// The product whose cashier a buyer sees for this method; precreate is a server's API call.
    pub fn cashier_product(self) -> Option<Product> {
        match self {
            Self::Create(product) if product != Product::Qr => Some(product),
            _ => None,
        }
    }

    /// The key of the JSON response object, e.g. `alipay_trade_query_response`.
    pub fn response_key(self) -> String {
        format!("{}_response", self.name().replace('.', "_"))
    }
}

/// The method a request names, read before any check: it decides how errors are answered.
pub(crate) fn requested_method(raw: &RawParams) -> Option<ApiMethod> {
    std::str::from_utf8(raw.get("method")?)
        .ok()
        .and_then(ApiMethod::parse)
}

/// Where a request came in. App pay is never sent to the gateway: the merchant's app hands the
/// order string to Alipay's app SDK (played by `/sim/app/pay`), which takes nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    Gateway,
    AppSdk,
}

impl Entry {
    fn accepts(self, method: ApiMethod) -> bool {
        let app_pay = method == ApiMethod::Create(Product::App);
        match self {
            Self::Gateway => !app_pay,
            Self::AppSdk => app_pay,
        }
    }
}

/// A request that passed every gateway check.
#[derive(Debug)]
pub(crate) struct GatewayRequest<'a> {
    pub app: &'a RegisteredApp,
    pub method: ApiMethod,
    pub charset: String,
    pub params: BTreeMap<String, String>,
    pub biz: Biz,
}

impl GatewayRequest<'_> {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Parameters from the URL query and the form body as one set. Where both name a key, the query
/// wins, as at Alipay: a gateway URL ending in `?charset=UTF-8` with `charset=utf-8` signed in the
/// body fails verification there (yansongda/pay #147).
pub(crate) fn merge(query: &RawParams, body: &RawParams) -> Result<RawParams, FormError> {
    let from_body = body
        .iter()
        .filter(|(key, _)| !query.iter().any(|(q, _)| q == *key));
    let encoded: Vec<String> = query
        .iter()
        .chain(from_body)
        .map(|(k, v)| {
            let k: String = byte_serialize(k).collect();
            let v: String = byte_serialize(v).collect();
            format!("{k}={v}")
        })
        .collect();
    RawParams::parse(encoded.join("&").as_bytes())
}

/// Runs every common check, in about the order Alipay reports them. `pki` holds the certificates
/// of apps in certificate mode.
pub(crate) fn check<'a>(
    raw: &RawParams,
    apps: &'a HashMap<String, RegisteredApp>,
    pki: Option<&Pki>,
    entry: Entry,
    now: OffsetDateTime,
) -> Result<GatewayRequest<'a>, GatewayError> {
    let (charset, params) = decode(raw)?;
    let get = |key: &str| {
        params
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let app_id = get("app_id").ok_or(GatewayError::MissingAppId)?;
    let app = apps.get(app_id).ok_or(GatewayError::InvalidAppId)?;
    let method = get("method").ok_or(GatewayError::MissingMethod)?;
    let method = ApiMethod::parse(method)
        .filter(|method| entry.accepts(*method))
        .filter(|method| *method != ApiMethod::CertDownload || app.is_cert_mode())
        .ok_or(GatewayError::InvalidMethod)?;
    if get("format").is_some_and(|f| !f.eq_ignore_ascii_case("JSON")) {
        return Err(GatewayError::InvalidFormat);
    }
    let sign = get("sign").ok_or(GatewayError::MissingSignature)?;
    match get("sign_type") {
        None => return Err(GatewayError::MissingSignType),
        Some("RSA2") => {}
        Some(_) => return Err(GatewayError::InvalidSignType),
    }
    let timestamp = get("timestamp").ok_or(GatewayError::MissingTimestamp)?;
    let timestamp = parse_beijing(timestamp).map_err(|_| GatewayError::InvalidTimestamp)?;
    if (timestamp - now).abs() > TIMESTAMP_TOLERANCE {
        return Err(GatewayError::InvalidTimestamp);
    }
    match get("version") {
        None => return Err(GatewayError::MissingVersion),
        Some("1.0") => {}
        Some(_) => return Err(GatewayError::InvalidVersion),
    }
    if app.is_cert_mode() {
        let named = (get("app_cert_sn"), get("alipay_root_cert_sn"));
        check_cert_sns(named, &app.app_id, pki)?;
    }
    verify(raw, app, sign)?;
    let biz = get("biz_content")
        .and_then(biz::parse)
        .ok_or(GatewayError::InvalidBizContent)?;
    Ok(GatewayRequest {
        app,
        method,
        charset,
        params,
        biz,
    })
}

/// A cert-mode request names the app's certificate, and a root bundle that holds Alipay's root
/// (the bundle's RSA roots' SNs, joined by `_`).
fn check_cert_sns(
    (app_cert_sn, root_cert_sn): (Option<&str>, Option<&str>),
    app_id: &str,
    pki: Option<&Pki>,
) -> Result<(), GatewayError> {
    let expected = pki.and_then(|pki| pki.app_cert_sn(app_id));
    if app_cert_sn.is_none() || app_cert_sn != expected {
        return Err(GatewayError::AppCertNotExist);
    }
    let root = pki.map(Pki::gateway_root_sn);
    let names_root = root_cert_sn.is_some_and(|sns| sns.split('_').any(|sn| Some(sn) == root));
    if !names_root {
        return Err(GatewayError::InvalidRootCertSn);
    }
    Ok(())
}

/// The declared charset (required) and every parameter decoded from it.
fn decode(raw: &RawParams) -> Result<(String, BTreeMap<String, String>), GatewayError> {
    let label = raw
        .get("charset")
        .filter(|c| !c.is_empty())
        .ok_or(GatewayError::InvalidCharset)?;
    let pairs = raw.decode().map_err(|error| match error {
        FormError::Charset(_) | FormError::Encoding(_) => GatewayError::InvalidCharset,
        other => GatewayError::Form(other),
    })?;
    let charset = String::from_utf8_lossy(label).into_owned();
    Ok((charset, pairs.into_iter().collect()))
}

/// Verifies over the parameters' own bytes, in the request's charset, as signed.
fn verify(raw: &RawParams, app: &RegisteredApp, sign: &str) -> Result<(), GatewayError> {
    let content = sign_content(raw.iter(), REQUEST_EXCLUDED);
    app.public_key.verify(&content, sign).map_err(|_| {
        let encoding = raw.encoding().unwrap_or(encoding_rs::UTF_8);
        GatewayError::InvalidSignature {
            content: encoding
                .decode_without_bom_handling(&content)
                .0
                .into_owned(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_wins_over_the_body_and_bytes_survive_the_merge() {
        let query = RawParams::parse(b"charset=UTF-8").unwrap();
        let body = RawParams::parse(b"charset=utf-8&sign=a%2Bb&subject=%D6%D0+x").unwrap();
        let merged = merge(&query, &body).unwrap();
        assert_eq!(merged.get("charset"), Some(&b"UTF-8"[..]));
        assert_eq!(merged.get("sign"), Some(&b"a+b"[..]));
        assert_eq!(merged.get("subject"), Some(&[0xD6, 0xD0, b' ', b'x'][..]));
    }

    #[test]
    fn response_keys_follow_the_method_name() {
        assert_eq!(
            ApiMethod::RefundQuery.response_key(),
            "alipay_trade_fastpay_refund_query_response"
        );
        assert_eq!(ApiMethod::parse("alipay.trade.pay"), None);
        let precreate = ApiMethod::parse("alipay.trade.precreate").unwrap();
        assert_eq!(precreate, ApiMethod::Create(Product::Qr));
        assert_eq!(precreate.response_key(), "alipay_trade_precreate_response");
        assert_eq!(precreate.cashier_product(), None);
    }

    #[test]
    fn app_pay_comes_through_the_app_sdk_and_nothing_else_does() {
        let app_pay = ApiMethod::Create(Product::App);
        let page_pay = ApiMethod::Create(Product::Page);
        assert!(Entry::AppSdk.accepts(app_pay) && !Entry::AppSdk.accepts(page_pay));
        assert!(!Entry::Gateway.accepts(app_pay) && Entry::Gateway.accepts(page_pay));
        assert!(!Entry::AppSdk.accepts(ApiMethod::Query));
    }
}
