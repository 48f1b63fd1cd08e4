//! Decoding Alipay's `application/x-www-form-urlencoded` callbacks exactly once, to bytes, and
//! then from the charset the message names. Signatures are checked on those bytes (a GBK body is
//! signed over GBK), so decoding here must neither guess nor repair.

use encoding_rs::Encoding;

/// More parameters than any Alipay callback carries (about 40); beyond it a body is hostile.
pub const MAX_PARAMS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("invalid percent-encoding")]
    PercentEncoding,
    #[error("parameter without a name")]
    EmptyKey,
    #[error("parameter `{0}` appears more than once")]
    Duplicate(String),
    #[error("more than {MAX_PARAMS} parameters")]
    TooMany,
    #[error("unsupported charset `{0}`")]
    Charset(String),
    #[error("bytes are not valid {0}")]
    Encoding(&'static str),
}

/// Parameters as percent-decoded bytes, in the charset of the message, sorted by key (the order
/// of a sign string, so building one sorts nothing). All of them live in one buffer: a
/// notification has some 30 parameters, and two allocations each were a fifth of the notify
/// path's CPU.
#[derive(Debug, Clone, Default)]
pub struct RawParams {
    bytes: Vec<u8>,
    /// Per parameter: where its key starts, where its value starts, where it ends.
    pairs: Vec<(usize, usize, usize)>,
}

impl RawParams {
    /// Parses a form body or a query string. A repeated key is refused: readers that take the
    /// first or the last copy would disagree on what was signed.
    pub fn parse(input: &[u8]) -> Result<Self, FormError> {
        let segments = memchr::memchr_iter(b'&', input).count() + 1;
        let mut params = Self {
            bytes: Vec::with_capacity(input.len()),
            pairs: Vec::with_capacity(segments.min(MAX_PARAMS)),
        };
        for segment in input.split(|b| *b == b'&').filter(|s| !s.is_empty()) {
            if params.pairs.len() == MAX_PARAMS {
                return Err(FormError::TooMany);
            }
            let (key, value) = match memchr::memchr(b'=', segment) {
                Some(at) => (&segment[..at], &segment[at + 1..]),
                None => (segment, &segment[segment.len()..]),
            };
            let start = params.bytes.len();
            percent_decode(key, &mut params.bytes)?;
            let mid = params.bytes.len();
            if mid == start {
                return Err(FormError::EmptyKey);
            }
            percent_decode(value, &mut params.bytes)?;
            params.pairs.push((start, mid, params.bytes.len()));
        }
        // Sorted, a repeat sits next to its first copy: n log n, where comparing each key with
        // every earlier one was a twentieth of the notify path's CPU.
        let key = |&(start, mid, _): &(usize, usize, usize)| &params.bytes[start..mid];
        params.pairs.sort_unstable_by(|a, b| key(a).cmp(key(b)));
        if let Some(pair) = params.pairs.windows(2).find(|p| key(&p[0]) == key(&p[1])) {
            return Err(FormError::Duplicate(
                String::from_utf8_lossy(key(&pair[0])).into_owned(),
            ));
        }
        Ok(params)
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        let at = self
            .pairs
            .binary_search_by(|&(start, mid, _)| self.bytes[start..mid].cmp(key.as_bytes()))
            .ok()?;
        let (_, mid, end) = self.pairs[at];
        Some(&self.bytes[mid..end])
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs
            .iter()
            .map(|&(start, mid, end)| (&self.bytes[start..mid], &self.bytes[mid..end]))
    }

    /// The charset the message declares (`charset=`), UTF-8 when absent. Only the charsets Alipay
    /// uses are accepted: UTF-8 and GBK (GB2312 is read as its superset GBK, as browsers do).
    pub fn encoding(&self) -> Result<&'static Encoding, FormError> {
        let Some(label) = self.get("charset") else {
            return Ok(encoding_rs::UTF_8);
        };
        let encoding = Encoding::for_label_no_replacement(label)
            .filter(|e| [encoding_rs::UTF_8, encoding_rs::GBK, encoding_rs::GB18030].contains(e))
            .ok_or_else(|| FormError::Charset(String::from_utf8_lossy(label).into_owned()))?;
        Ok(encoding)
    }

    /// The parameters as UTF-8 text, decoded strictly from the declared charset.
    pub fn decode(&self) -> Result<Vec<(String, String)>, FormError> {
        Ok(self
            .text()?
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    /// The same as [`RawParams::decode`], in one buffer.
    pub fn text(&self) -> Result<TextParams, FormError> {
        let encoding = self.encoding()?;
        if encoding == encoding_rs::UTF_8 {
            return self.text_from_utf8();
        }
        let mut text = TextParams {
            text: String::with_capacity(self.bytes.len()),
            pairs: Vec::with_capacity(self.pairs.len()),
        };
        let mut append = |bytes: &[u8]| {
            let decoded = encoding
                .decode_without_bom_handling_and_without_replacement(bytes)
                .ok_or(FormError::Encoding(encoding.name()))?;
            text.text.push_str(&decoded);
            Ok::<usize, FormError>(text.text.len())
        };
        let mut pairs = Vec::with_capacity(self.pairs.len());
        let mut start = 0;
        for (key, value) in self.iter() {
            let mid = append(key)?;
            let end = append(value)?;
            pairs.push((start, mid, end));
            start = end;
        }
        text.pairs = pairs;
        // Decoded keys sort as their bytes did unless a charset reorders them; keep lookups exact.
        text.sort();
        Ok(text)
    }

    /// UTF-8 needs no decoding: the buffer is the text if it is valid and every key and value
    /// starts and ends on a character boundary (each one valid on its own, as the general path
    /// checks). One pass and one copy instead of one of each per key and value.
    fn text_from_utf8(&self) -> Result<TextParams, FormError> {
        let invalid = || FormError::Encoding(encoding_rs::UTF_8.name());
        let text = std::str::from_utf8(&self.bytes).map_err(|_| invalid())?;
        let on_boundaries = self.pairs.iter().all(|&(start, mid, end)| {
            text.is_char_boundary(start) && text.is_char_boundary(mid) && text.is_char_boundary(end)
        });
        if !on_boundaries {
            return Err(invalid());
        }
        Ok(TextParams {
            text: text.to_owned(),
            pairs: self.pairs.clone(),
        })
    }
}

/// Decoded parameters as UTF-8 text, sorted by their raw keys, all in one buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextParams {
    text: String,
    pairs: Vec<(usize, usize, usize)>,
}

impl TextParams {
    /// Binary search: a notification's fields are looked up a dozen times each.
    pub fn get(&self, key: &str) -> Option<&str> {
        let at = self
            .pairs
            .binary_search_by(|&(start, mid, _)| self.text[start..mid].cmp(key))
            .ok()?;
        let (_, mid, end) = self.pairs[at];
        Some(&self.text[mid..end])
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs
            .iter()
            .map(|&(start, mid, end)| (&self.text[start..mid], &self.text[mid..end]))
    }

    fn sort(&mut self) {
        let text = &self.text;
        self.pairs
            .sort_by(|&(a, am, _), &(b, bm, _)| text[a..am].cmp(&text[b..bm]));
    }
}

/// Form decoding of one key or value onto `out`: `+` is a space, `%XX` a byte; a stray `%` is an
/// error. The runs between escapes are copied whole (most of a value has none: a signature has a
/// dozen escapes in 344 bytes); pushing byte by byte made parsing a tenth of the CPU outside RSA.
fn percent_decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), FormError> {
    let mut rest = input;
    while let Some(at) = memchr::memchr2(b'%', b'+', rest) {
        out.extend_from_slice(&rest[..at]);
        if rest[at] == b'+' {
            out.push(b' ');
            rest = &rest[at + 1..];
            continue;
        }
        let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
        match (hex(rest.get(at + 1)), hex(rest.get(at + 2))) {
            (Some(high), Some(low)) => out.push((high * 16 + low) as u8),
            _ => return Err(FormError::PercentEncoding),
        }
        rest = &rest[at + 3..];
    }
    out.extend_from_slice(rest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent_exactly_once() {
        let params = RawParams::parse(b"a=1+2%2B3&b=%2525&c=&d").unwrap();
        assert_eq!(params.get("a"), Some(&b"1 2+3"[..]));
        assert_eq!(params.get("b"), Some(&b"%25"[..]));
        assert_eq!(params.get("c"), Some(&b""[..]));
        assert_eq!(params.get("d"), Some(&b""[..]));
    }

    #[test]
    fn refuses_duplicates_bad_escapes_and_floods() {
        assert_eq!(
            RawParams::parse(b"total_amount=1&total_amount=2").unwrap_err(),
            FormError::Duplicate("total_amount".into())
        );
        for bad in [&b"a=%"[..], b"a=%2", b"a=%zz", b"a=%%41"] {
            assert_eq!(
                RawParams::parse(bad).unwrap_err(),
                FormError::PercentEncoding
            );
        }
        assert_eq!(RawParams::parse(b"=1").unwrap_err(), FormError::EmptyKey);
        let flood: Vec<u8> = (0..=MAX_PARAMS)
            .map(|i| format!("k{i}=v&"))
            .collect::<String>()
            .into();
        assert_eq!(RawParams::parse(&flood).unwrap_err(), FormError::TooMany);
    }

    #[test]
    fn decodes_gbk_values_from_their_bytes() {
        // "中文" in GBK is D6 D0 CE C4.
        let params = RawParams::parse(b"charset=GBK&subject=%D6%D0%CE%C4").unwrap();
        assert_eq!(params.get("subject"), Some(&[0xD6, 0xD0, 0xCE, 0xC4][..]));
        let text = params.decode().unwrap();
        assert_eq!(text[1], ("subject".into(), "中文".into()));
    }

    #[test]
    fn refuses_bytes_invalid_in_the_declared_charset() {
        let utf8 = RawParams::parse(b"charset=utf-8&subject=%D6%D0").unwrap();
        assert_eq!(utf8.decode().unwrap_err(), FormError::Encoding("UTF-8"));
        let unknown = RawParams::parse(b"charset=latin1").unwrap();
        assert_eq!(
            unknown.decode().unwrap_err(),
            FormError::Charset("latin1".into())
        );
    }

    #[test]
    fn a_character_split_between_key_and_value_is_invalid_utf8() {
        // "中" is E4 B8 AD: split across a key and its value, the buffer holding both is valid
        // UTF-8 but neither part is.
        let split = RawParams::parse(b"a%E4=%B8%AD").unwrap();
        assert_eq!(split.text().unwrap_err(), FormError::Encoding("UTF-8"));
        let whole = RawParams::parse(b"a=%E4%B8%AD&b=%E6%96%87").unwrap();
        let text = whole.text().unwrap();
        assert_eq!((text.get("a"), text.get("b")), (Some("中"), Some("文")));
    }

    #[test]
    fn text_lookups_find_every_key_and_only_those() {
        let params = RawParams::parse(b"z=26&a=1&m=13&charset=GBK&sign=%2B%2F%3D").unwrap();
        for charset_path in [params.text().unwrap(), {
            RawParams::parse(b"z=26&a=1&m=13&sign=%2B%2F%3D")
                .unwrap()
                .text()
                .unwrap()
        }] {
            assert_eq!(charset_path.get("a"), Some("1"));
            assert_eq!(charset_path.get("m"), Some("13"));
            assert_eq!(charset_path.get("z"), Some("26"));
            assert_eq!(charset_path.get("sign"), Some("+/="));
            assert_eq!(charset_path.get("b"), None);
            assert_eq!(charset_path.get(""), None);
        }
    }
}
