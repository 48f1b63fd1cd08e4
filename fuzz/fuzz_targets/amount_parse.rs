//! `Amount::parse` on arbitrary text: never panics, agrees with an independent reading of the
//! grammar `[0-9]{1,12}(\.[0-9]{1,2})?` within 0.01..=100000000.00, and `Ok` values print as
//! `^[0-9]+\.[0-9]{2}$` and parse back to the same fen.
#![no_main]

use alipay_notify::money::{Amount, MAX_FEN};
use libfuzzer_sys::fuzz_target;

/// The fen a well-formed amount denotes (in u128, so no overflow), or None when malformed.
fn expected_fen(text: &str) -> Option<u128> {
    let digits =
        |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    let (yuan, fraction) = text.split_once('.').unwrap_or((text, "00"));
    if !digits(yuan, 12) || !digits(fraction, 2) {
        return None;
    }
    let fraction = format!("{fraction:0<2}");
    Some(yuan.parse::<u128>().ok()? * 100 + fraction.parse::<u128>().ok()?)
}

fn two_decimals(text: &str) -> bool {
    let Some((yuan, cents)) = text.split_once('.') else {
        return false;
    };
    !yuan.is_empty()
        && yuan.bytes().all(|b| b.is_ascii_digit())
        && cents.len() == 2
        && cents.bytes().all(|b| b.is_ascii_digit())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Amount::parse(text);
    let expected = expected_fen(text).filter(|fen| (1..=MAX_FEN as u128).contains(fen));
    assert_eq!(
        parsed.as_ref().ok().map(|a| a.fen() as u128),
        expected,
        "Amount::parse({text:?}) = {parsed:?}"
    );
    if let Ok(amount) = parsed {
        assert!((1..=MAX_FEN).contains(&amount.fen()));
        let shown = amount.to_string();
        assert!(two_decimals(&shown), "{shown:?}");
        assert_eq!(Amount::parse(&shown), Ok(amount), "{shown:?}");
    }
});
