//! Form bodies: encoded byte for byte, encoded as browsers do, and signed as Alipay signs.

use alipay_notify::alipay::keys::PrivateKey;
use alipay_notify::alipay::sign::sign_content;
use percent_encoding::{percent_encode, NON_ALPHANUMERIC};

/// `%XX` for every byte of every key and value, so that parsing gives back exactly their bytes.
pub fn encode_every_byte<K, V>(pairs: &[(K, V)]) -> Vec<u8>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let escape = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("%{b:02X}")).collect() };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k.as_ref()), escape(v.as_ref())))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// The `application/x-www-form-urlencoded` serialiser browsers use (`+` for space).
pub fn form_encode<K, V>(pairs: &[(K, V)]) -> Vec<u8>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let encode = |bytes: &[u8]| url::form_urlencoded::byte_serialize(bytes).collect::<String>();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k.as_ref()), encode(v.as_ref())))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// Signs `params` (values as bytes, in whatever charset the caller chose) over the sign string
/// that leaves out `excluded` (`CALLBACK_EXCLUDED` for what Alipay sends, `REQUEST_EXCLUDED` for
/// what a merchant sends) and form-encodes them with the `sign` last. Every byte that is not
/// alphanumeric is escaped, as Alipay's notify client does (`-` is `%2D`, `.` is `%2E`).
pub fn signed_form<K, V>(params: &[(K, V)], key: &PrivateKey, excluded: &[&str]) -> Vec<u8>
where
    K: AsRef<str>,
    V: AsRef<[u8]>,
{
    let content = sign_content(
        params
            .iter()
            .map(|(k, v)| (k.as_ref().as_bytes(), v.as_ref())),
        excluded,
    );
    form_with_sign(params, &key.sign(&content))
}

/// Form-encodes `params` with `sign` appended last, escaping every byte that is not
/// alphanumeric: for signatures made elsewhere (by openssl, say).
pub fn form_with_sign<K, V>(params: &[(K, V)], sign: &str) -> Vec<u8>
where
    K: AsRef<str>,
    V: AsRef<[u8]>,
{
    params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .chain([("sign", sign.as_bytes())])
        .map(|(k, v)| format!("{k}={}", percent_encode(v, NON_ALPHANUMERIC)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}
