//! Reading gateway API responses: `{"<method>_response": {...}, "sign": "..."}`. The signature
//! covers the exact raw text of the `*_response` value, so it is cut out of the body as sent
//! (serde_json's `RawValue` keeps it byte for byte) rather than re-serialised.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::keys::PublicKey;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("response is not the expected JSON: {0}")]
    Malformed(String),
    #[error("response signature does not verify")]
    Signature,
    #[error("Alipay error {code} {msg}: {sub_code} {sub_msg}")]
    Business {
        code: String,
        msg: String,
        sub_code: String,
        sub_msg: String,
    },
}

/// The fields every response node carries.
#[derive(Debug, Deserialize)]
struct Status {
    code: String,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    sub_code: String,
    #[serde(default)]
    sub_msg: String,
}

/// `alipay.trade.query` → `alipay_trade_query_response`.
pub(crate) fn node_name(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

/// A verified response node: its fields, and its raw text for the audit log.
#[derive(Debug, Clone)]
pub struct Signed<T> {
    pub value: T,
    pub raw: String,
}

/// Verifies and decodes the response of `method` with `key`. Success (code 10000) must be
/// signed; an error node may come unsigned (Alipay does that) but is only ever reported as an
/// error.
pub fn read<T: DeserializeOwned>(
    body: &str,
    method: &str,
    key: &PublicKey,
) -> Result<Signed<T>, ResponseError> {
    Envelope::parse(body, method)?.open(key)
}

/// A response split into its parts, not yet verified: which node answers, its raw text, the
/// signature, and (in certificate mode) the SN of the certificate that signed it.
#[derive(Debug)]
pub struct Envelope<'a> {
    raw: &'a RawValue,
    /// The node came as `error_response` (gateway-level errors): never data.
    error_only: bool,
    sign: Option<String>,
    cert_sn: Option<String>,
}

impl<'a> Envelope<'a> {
    pub fn parse(body: &'a str, method: &str) -> Result<Self, ResponseError> {
        let envelope: BTreeMap<&str, &RawValue> =
            serde_json::from_str(body).map_err(|e| ResponseError::Malformed(e.to_string()))?;
        let node = node_name(method);
        let (raw, error_only) = match (envelope.get(node.as_str()), envelope.get("error_response"))
        {
            (Some(raw), _) => (*raw, false),
            (None, Some(raw)) => (*raw, true),
            (None, None) => {
                return Err(ResponseError::Malformed(format!("no `{node}` in response")))
            }
        };
        let string = |name: &str, error: ResponseError| -> Result<Option<String>, ResponseError> {
            envelope
                .get(name)
                .map(|value| serde_json::from_str(value.get()).map_err(|_| error))
                .transpose()
        };
        Ok(Self {
            raw,
            error_only,
            sign: string("sign", ResponseError::Signature)?,
            cert_sn: string(
                "alipay_cert_sn",
                ResponseError::Malformed("alipay_cert_sn is not a string".into()),
            )?
            .filter(|sn| !sn.is_empty()),
        })
    }

    /// The SN of the certificate Alipay says signed this response (certificate mode).
    pub fn cert_sn(&self) -> Option<&str> {
        self.cert_sn.as_deref()
    }

    pub fn is_signed(&self) -> bool {
        self.sign.is_some()
    }

    /// Reads a field of the node before its signature is checked: only for what the check
    /// itself needs (the certificate a download serves), never as data.
    pub fn peek<T: DeserializeOwned>(&self) -> Result<T, ResponseError> {
        serde_json::from_str(self.raw.get()).map_err(|e| ResponseError::Malformed(e.to_string()))
    }

    /// Verifies the signature with `key` and decodes the node.
    pub fn open<T: DeserializeOwned>(self, key: &PublicKey) -> Result<Signed<T>, ResponseError> {
        let verified = match &self.sign {
            Some(sign) => key
                .verify(self.raw.get().as_bytes(), sign)
                .map(|_| true)
                .map_err(|_| ResponseError::Signature)?,
            None => false,
        };
        let status: Status = self.peek()?;
        if self.error_only && status.code == "10000" {
            return Err(ResponseError::Malformed(
                "a success under error_response".into(),
            ));
        }
        if status.code != "10000" {
            return Err(ResponseError::Business {
                code: status.code,
                msg: status.msg,
                sub_code: status.sub_code,
                sub_msg: status.sub_msg,
            });
        }
        if !verified {
            return Err(ResponseError::Signature);
        }
        Ok(Signed {
            value: self.peek()?,
            raw: self.raw.get().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alipay::keys::PrivateKey;

    #[derive(Debug, Deserialize)]
    struct Query {
        trade_status: String,
    }

    fn signed(node: &str, key: &PrivateKey) -> String {
        format!(
            r#"{{"alipay_trade_query_response":{node},"sign":"{}"}}"#,
            key.sign(node.as_bytes())
        )
    }

    #[test]
    fn verifies_over_the_raw_text_not_a_reserialisation() {
        let key = PrivateKey::generate();
        let public = PublicKey::parse(&key.public_key_base64()).unwrap();
        // Spacing, key order and an escaped slash that re-serialising would all change.
        let node = r#"{ "code":"10000","msg":"Success", "trade_status":"TRADE_SUCCESS","note":"a\/b \u4e2d"}"#;
        let query: Signed<Query> =
            read(&signed(node, &key), "alipay.trade.query", &public).unwrap();
        assert_eq!(query.value.trade_status, "TRADE_SUCCESS");
        assert_eq!(query.raw, node);

        let tampered = signed(node, &key).replace("TRADE_SUCCESS", "TRADE_FINISHED");
        assert_eq!(
            read::<Query>(&tampered, "alipay.trade.query", &public).unwrap_err(),
            ResponseError::Signature
        );
        let unsigned = format!(r#"{{"alipay_trade_query_response":{node}}}"#);
        assert_eq!(
            read::<Query>(&unsigned, "alipay.trade.query", &public).unwrap_err(),
            ResponseError::Signature
        );
    }

    #[test]
    fn business_errors_are_typed_even_unsigned() {
        let key = PrivateKey::generate();
        let public = PublicKey::parse(&key.public_key_base64()).unwrap();
        let body = r#"{"alipay_trade_query_response":{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}}"#;
        let error = read::<Query>(body, "alipay.trade.query", &public).unwrap_err();
        assert!(
            matches!(error, ResponseError::Business { ref sub_code, .. } if sub_code == "ACQ.TRADE_NOT_EXIST")
        );
    }

    #[test]
    fn a_signed_success_under_error_response_is_not_data() {
        let key = PrivateKey::generate();
        let public = PublicKey::parse(&key.public_key_base64()).unwrap();
        let node = r#"{"code":"10000","msg":"Success","trade_status":"TRADE_SUCCESS"}"#;
        let body = signed(node, &key).replace("alipay_trade_query_response", "error_response");
        let error = read::<Query>(&body, "alipay.trade.query", &public).unwrap_err();
        assert!(matches!(error, ResponseError::Malformed(_)), "{error:?}");
    }

    #[test]
    fn the_signing_certificate_is_read_beside_the_node() {
        let node = r#"{"code":"10000","msg":"Success","trade_status":"TRADE_SUCCESS"}"#;
        let body = |sn: &str| {
            format!(r#"{{"alipay_trade_query_response":{node},"alipay_cert_sn":{sn},"sign":"x"}}"#)
        };
        let named = body(r#""41ecef7ffec0aff2241f9868638d868d""#);
        let envelope = Envelope::parse(&named, "alipay.trade.query").unwrap();
        assert_eq!(envelope.cert_sn(), Some("41ecef7ffec0aff2241f9868638d868d"));
        assert!(envelope.is_signed());
        let empty = body(r#""""#);
        assert_eq!(
            Envelope::parse(&empty, "alipay.trade.query")
                .unwrap()
                .cert_sn(),
            None
        );
        let number = body("7");
        assert!(matches!(
            Envelope::parse(&number, "alipay.trade.query").unwrap_err(),
            ResponseError::Malformed(_)
        ));
    }
}
