//! Identifiers shaped like Alipay's: 28-digit trade numbers, 2088… user ids, 34-digit notify ids,
//! masked buyer logins. None of them is a secret; the system RNG only keeps them from colliding.

use time::OffsetDateTime;

use alipay_notify::alipay::clock::BEIJING;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system RNG is available");
    bytes
}

fn digits<const N: usize>() -> String {
    random_bytes::<N>()
        .iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

/// `yyyyMMdd` of the Beijing date: Alipay numbers start with it.
fn beijing_date(now: OffsetDateTime) -> String {
    let day = now.to_offset(BEIJING);
    format!(
        "{:04}{:02}{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// Like `2026112822001` followed by 15 digits.
pub fn trade_no(now: OffsetDateTime) -> String {
    format!("{}22001{}", beijing_date(now), digits::<15>())
}

/// A buyer's or merchant's Alipay user id: `2088` and 12 digits.
pub fn user_id() -> String {
    format!("2088{}", digits::<12>())
}

pub fn notify_id(now: OffsetDateTime) -> String {
    format!("{}00222{}", beijing_date(now), digits::<21>())
}

/// Names a cashier page in its Pay and Cancel URLs.
pub fn cashier_id() -> String {
    digits::<20>()
}

/// The buyer's login as Alipay shows it to merchants, masked: `abc***@example.com`.
pub fn buyer_logon_id() -> String {
    let name: String = random_bytes::<3>()
        .iter()
        .map(|b| char::from(b'a' + b % 26))
        .collect();
    format!("{name}***@example.com")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn numbers_have_alipay_shapes() {
        let no = trade_no(datetime!(2026-11-28 04:00 UTC));
        assert!(no.starts_with("2026112822001"), "{no}");
        assert_eq!(no.len(), 28);
        let id = user_id();
        assert!(id.starts_with("2088") && id.len() == 16);
        assert!(id.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(notify_id(OffsetDateTime::now_utc()).len(), 34);
        let login = buyer_logon_id();
        assert!(login.ends_with("***@example.com") && login.len() == 18);
    }

    #[test]
    fn the_date_is_beijing_s() {
        // 20:00 UTC on the 28th is already the 29th in Beijing.
        assert!(trade_no(datetime!(2026-11-28 20:00 UTC)).starts_with("20261129"));
    }
}
