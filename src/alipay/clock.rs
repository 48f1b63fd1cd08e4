//! Alipay timestamps: `yyyy-MM-dd HH:mm:ss` in Beijing time (UTC+8), whatever the host's zone.

use time::format_description::FormatItem;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
pub const BEIJING: UtcOffset = offset!(+8);

pub fn format_beijing(at: OffsetDateTime) -> String {
    at.to_offset(BEIJING)
        .format(FORMAT)
        .expect("a valid date formats")
}

/// Parsed to UTC, the offset every stored time uses.
pub fn parse_beijing(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    Ok(PrimitiveDateTime::parse(text, FORMAT)?
        .assume_offset(BEIJING)
        .to_offset(UtcOffset::UTC))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_in_beijing_time_whatever_the_input_offset() {
        assert_eq!(
            format_beijing(datetime!(2026-11-28 16:30:05 UTC)),
            "2026-11-29 00:30:05"
        );
        let parsed = parse_beijing("2026-11-29 00:30:05").unwrap();
        assert_eq!(parsed, datetime!(2026-11-28 16:30:05 UTC));
    }
}
