//! The sign string ("待签名字符串") Alipay signs and verifies: every parameter but the excluded ones,
//! empty values dropped, sorted by key in ASCII order, `k=v` joined by `&`, values raw (not encoded).
//!
//! It is built from bytes so that a GBK notification is verified over its GBK bytes.

/// Requests we sign keep `sign_type` in the sign string.
pub const REQUEST_EXCLUDED: &[&str] = &["sign"];
/// Notifications and returns we verify leave out both `sign` and `sign_type`.
pub const CALLBACK_EXCLUDED: &[&str] = &["sign", "sign_type"];

/// Builds the sign string of `params` (in any order) without the `excluded` keys.
pub fn sign_content<'a, I>(params: I, excluded: &[&str]) -> Vec<u8>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let mut kept: Vec<(&[u8], &[u8])> = params
        .into_iter()
        .filter(|(key, value)| !value.is_empty() && !excluded.iter().any(|x| x.as_bytes() == *key))
        .collect();
    kept.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let capacity = kept.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut content = Vec::with_capacity(capacity);
    for (index, (key, value)) in kept.into_iter().enumerate() {
        if index > 0 {
            content.push(b'&');
        }
        content.extend_from_slice(key);
        content.push(b'=');
        content.extend_from_slice(value);
    }
    content
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(pairs: &[(&str, &str)], excluded: &[&str]) -> String {
        let bytes = sign_content(
            pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
            excluded,
        );
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn sorts_drops_empty_and_excluded_keys() {
        let pairs = [
            ("b", "2"),
            ("sign", "x"),
            ("a", "1"),
            ("empty", ""),
            ("sign_type", "RSA2"),
        ];
        assert_eq!(content(&pairs, REQUEST_EXCLUDED), "a=1&b=2&sign_type=RSA2");
        assert_eq!(content(&pairs, CALLBACK_EXCLUDED), "a=1&b=2");
    }

    #[test]
    fn keeps_values_raw_and_untrimmed() {
        let pairs = [("subject", " a+b&c=d%20 "), ("body", "中文😀")];
        assert_eq!(
            content(&pairs, CALLBACK_EXCLUDED),
            "body=中文😀&subject= a+b&c=d%20 "
        );
    }

    #[test]
    fn sorts_by_bytes_so_uppercase_comes_first() {
        let pairs = [("a", "1"), ("B", "2"), ("a_b", "3"), ("ab", "4")];
        assert_eq!(content(&pairs, REQUEST_EXCLUDED), "B=2&a=1&a_b=3&ab=4");
    }
}
