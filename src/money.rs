//! Money as integer fen (分). Alipay speaks yuan strings with two decimals; we never touch floats.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest amount Alipay accepts for one trade: 100,000,000.00 yuan.
pub const MAX_FEN: i64 = 10_000_000_000;

/// A positive amount of money in fen, within Alipay's per-trade range (0.01 ..= 100000000.00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount must be yuan with at most two decimals, like 12.34")]
    Format,
    #[error("amount must be between 0.01 and 100000000.00")]
    Range,
}

impl Amount {
    /// Accepts `12`, `12.3` and `12.34`; refuses signs, exponents, spaces, more than two decimals
    /// and anything outside Alipay's range, so that `1e3`, `-0.01` or `0.001` never become money.
    pub fn parse(text: &str) -> Result<Self, AmountError> {
        let (yuan, fraction) = match text.split_once('.') {
            Some((yuan, fraction)) => (yuan, fraction),
            None => (text, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if yuan.is_empty()
            || yuan.len() > 12
            || !all_digits(yuan)
            || !all_digits(fraction)
            || fraction.len() > 2
            || (text.contains('.') && fraction.is_empty())
        {
            return Err(AmountError::Format);
        }
        let yuan: i64 = yuan.parse().map_err(|_| AmountError::Format)?;
        let mut fen_part: i64 = if fraction.is_empty() {
            0
        } else {
            fraction.parse().map_err(|_| AmountError::Format)?
        };
        if fraction.len() == 1 {
            fen_part *= 10;
        }
        Self::from_fen(yuan * 100 + fen_part)
    }

    pub fn from_fen(fen: i64) -> Result<Self, AmountError> {
        if (1..=MAX_FEN).contains(&fen) {
            Ok(Self(fen))
        } else {
            Err(AmountError::Range)
        }
    }

    pub fn fen(self) -> i64 {
        self.0
    }
}

/// Always two decimals, the form Alipay requires in `total_amount`.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl FromStr for Amount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Fen as a yuan string with two decimals, for sums that may be zero (refunded so far).
pub(crate) fn format_fen(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

pub(crate) fn serialize_fen<S: Serializer>(fen: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_fen(*fen))
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_yuan_strings_to_fen() {
        assert_eq!(Amount::parse("12.34").unwrap().fen(), 1234);
        assert_eq!(Amount::parse("12.3").unwrap().fen(), 1230);
        assert_eq!(Amount::parse("12").unwrap().fen(), 1200);
        assert_eq!(Amount::parse("0.01").unwrap().fen(), 1);
        assert_eq!(Amount::parse("100000000.00").unwrap().fen(), MAX_FEN);
    }

    #[test]
    fn refuses_what_is_not_a_plain_amount() {
        for bad in [
            "", ".5", "1.", "1e3", "-0.01", "+1", "0.001", " 1", "1,00", "1.2.3", "１",
        ] {
            assert_eq!(Amount::parse(bad), Err(AmountError::Format), "{bad:?}");
        }
        for out in ["0", "0.00", "100000000.01", "999999999999"] {
            assert_eq!(Amount::parse(out), Err(AmountError::Range), "{out:?}");
        }
    }

    #[test]
    fn thirteen_digit_yuan_is_refused_not_overflowed() {
        // Past twelve digits of yuan the text is refused before it is read as a number, leading
        // zeros included; read, 17 digits and more would overflow `yuan * 100`.
        for long in [
            "1234567890123",
            "0000000000001",
            "0000000000001.00",
            "12345678901234567",
            "999999999999999999.99",
        ] {
            assert_eq!(Amount::parse(long), Err(AmountError::Format), "{long:?}");
        }
    }

    #[test]
    fn displays_two_decimals() {
        assert_eq!(Amount::from_fen(5).unwrap().to_string(), "0.05");
        assert_eq!(Amount::from_fen(123_400).unwrap().to_string(), "1234.00");
    }

    #[test]
    fn format_fen_pads_the_fraction() {
        assert_eq!(format_fen(0), "0.00");
        assert_eq!(format_fen(5), "0.05");
        assert_eq!(format_fen(1230), "12.30");
        assert_eq!(format_fen(MAX_FEN), "100000000.00");
    }
}
