//! `RawParams::parse`, `encoding` and `decode` on arbitrary bytes: never panic, and whatever parses
//! survives re-encoding: the raw bytes exactly, and the decoded text through its own charset.
#![no_main]

use alipay_notify::alipay::form::{RawParams, MAX_PARAMS};
use alipay_notify_fuzz::{form_encode, percent_encode_all};
use libfuzzer_sys::fuzz_target;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn pairs_of(raw: &RawParams) -> Pairs {
    raw.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = RawParams::parse(data) else {
        return;
    };
    let pairs = pairs_of(&raw);
    assert!(pairs.len() <= MAX_PARAMS);
    for (key, value) in &pairs {
        assert!(!key.is_empty());
        if let Ok(key) = std::str::from_utf8(key) {
            assert_eq!(raw.get(key), Some(&value[..]));
        }
    }
    for encoded in [percent_encode_all(&pairs), form_encode(&pairs)] {
        let again = RawParams::parse(&encoded).expect("re-encoded raw pairs parse");
        assert_eq!(pairs_of(&again), pairs);
    }

    let (Ok(encoding), Ok(decoded)) = (raw.encoding(), raw.decode()) else {
        return;
    };
    assert_eq!(decoded.len(), pairs.len());
    let mut reencoded = Pairs::new();
    for (key, value) in &decoded {
        let (key, _, bad_key) = encoding.encode(key);
        let (value, _, bad_value) = encoding.encode(value);
        if bad_key || bad_value {
            // The GBK decoder reads all of GB18030 (as WHATWG specifies); its encoder does not
            // write the four-byte sequences, so such text has no GBK spelling to go back to.
            return;
        }
        reencoded.push((key.into_owned(), value.into_owned()));
    }
    let again = RawParams::parse(&percent_encode_all(&reencoded)).expect("re-encoded text parses");
    assert_eq!(again.encoding(), Ok(encoding));
    assert_eq!(again.decode().as_ref(), Ok(&decoded));
    if encoding == encoding_rs::UTF_8 {
        assert_eq!(reencoded, pairs, "strict UTF-8 decoding is one-to-one");
    }
});
