//! The names in the simulator's certificates, and the SNs Alipay derives from them. The SN is
//! computed here from the DN the simulator chose and the serial it drew, not read back from a
//! certificate: the service computes it by parsing, so the two meet only in tests, and a bug in
//! one cannot agree with itself.

use std::fmt::Write as _;

use md5::{Digest, Md5};
use rcgen::{DistinguishedName, DnType, DnValue};

/// A distinguished name of the four attributes Alipay's own certificates use. Values are plain
/// text without RFC 2253 specials (`,+"\<>;=#`), so no escaping is ever needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dn {
    pub c: &'static str,
    pub o: &'static str,
    pub ou: &'static str,
    pub cn: String,
}

impl Dn {
    /// What Java's `X500Principal.getName()` writes: the last RDN first, comma-joined.
    pub fn rfc2253(&self) -> String {
        format!("CN={},OU={},O={},C={}", self.cn, self.ou, self.o, self.c)
    }

    /// The DN as encoded, C first (so Java reads it back CN first); C as a PrintableString like
    /// Alipay's, the rest UTF-8.
    pub fn to_rcgen(&self) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        let country = self
            .c
            .try_into()
            .map(DnValue::PrintableString)
            .unwrap_or_else(|_| DnValue::Utf8String(self.c.into()));
        dn.push(DnType::CountryName, country);
        dn.push(DnType::OrganizationName, self.o);
        dn.push(DnType::OrganizationalUnitName, self.ou);
        dn.push(DnType::CommonName, self.cn.as_str());
        dn
    }
}

const COUNTRY: &str = "CN";
const ANT: &str = "Sim Ant Financial";
const CA_UNIT: &str = "Certification Authority";

/// The RSA root that issued everything Alipay signs with.
pub(crate) fn rsa_root() -> Dn {
    ca(ANT, "Sim Ant Financial Certification Authority R1")
}

/// An ECDSA root in the bundle, as in Alipay's: left out of `alipay_root_cert_sn`.
pub(crate) fn ecdsa_root() -> Dn {
    ca(ANT, "Sim Ant Financial Certification Authority E1")
}

/// An older RSA root that issued nothing here; it makes the root SN two SNs long.
pub(crate) fn legacy_root() -> Dn {
    ca("Sim iTrusChina", "Sim iTrusChina Class 2 Root CA - G3")
}

/// The intermediate CA under the RSA root that issues Alipay's and the apps' certificates.
pub(crate) fn intermediate() -> Dn {
    ca(ANT, "Sim Ant Financial Certification Authority Class 2 R1")
}

/// The subject of Alipay's own certificate.
pub(crate) fn alipay() -> Dn {
    Dn {
        c: COUNTRY,
        o: "Sim Alipay",
        ou: "Alipay",
        cn: "Sim Alipay RSA2 Certificate".into(),
    }
}

/// The subject of an app's certificate: the app_id as its common name, as Alipay writes it.
pub(crate) fn app(app_id: &str) -> Dn {
    Dn {
        c: COUNTRY,
        o: "Sim Merchant",
        ou: "Alipay",
        cn: app_id.into(),
    }
}

fn ca(o: &'static str, cn: &str) -> Dn {
    Dn {
        c: COUNTRY,
        o,
        ou: CA_UNIT,
        cn: cn.into(),
    }
}

/// A certificate serial: 16 random bytes read as a positive number (DER adds a zero byte in
/// front when the high bit is set; Java's BigInteger is positive either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Serial(u128);

impl Serial {
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        aws_lc_rs::rand::fill(&mut bytes).expect("the system RNG is available");
        // Sixteen bytes long: never a leading zero byte.
        bytes[0] = bytes[0].max(1);
        Self(u128::from_be_bytes(bytes))
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(u128::from_be_bytes(bytes))
    }

    /// A serial as a certificate holds it (big-endian, maybe with a leading zero), if it fits.
    pub fn from_der_bytes(bytes: &[u8]) -> Option<Self> {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        let digits = &bytes[start..];
        let mut padded = [0u8; 16];
        padded
            .get_mut(16usize.checked_sub(digits.len())?..)?
            .copy_from_slice(digits);
        Some(Self::from_bytes(padded))
    }

    pub fn to_rcgen(self) -> rcgen::SerialNumber {
        rcgen::SerialNumber::from_slice(&self.0.to_be_bytes())
    }

    pub fn decimal(self) -> String {
        self.0.to_string()
    }
}

/// Alipay's SN of the certificate `issuer` numbered `serial`: hex MD5 of the issuer DN in Java's
/// form immediately followed by the serial in decimal.
pub(crate) fn sn(issuer: &Dn, serial: Serial) -> String {
    let digest = Md5::digest(format!("{}{}", issuer.rfc2253(), serial.decimal()));
    digest.iter().fold(String::with_capacity(32), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sn_digests_the_java_dn_and_the_decimal_serial() {
        let dn = Dn {
            c: "CN",
            o: "Test Ant Financial",
            ou: "Certification Authority",
            cn: "Test Class 2 R1".into(),
        };
        let serial = Serial::from_bytes([0xff; 16]);
        let expected = Md5::digest(
            "CN=Test Class 2 R1,OU=Certification Authority,O=Test Ant Financial,C=CN\
             340282366920938463463374607431768211455",
        );
        assert_eq!(sn(&dn, serial), format!("{expected:x}"));
    }

    #[test]
    fn serials_read_back_with_or_without_der_padding() {
        let high = Serial::from_bytes([0x80; 16]);
        let mut padded = vec![0];
        padded.extend_from_slice(&[0x80; 16]);
        assert_eq!(Serial::from_der_bytes(&padded), Some(high));
        assert_eq!(
            Serial::from_der_bytes(&[0x01, 0x00]).unwrap().decimal(),
            "256"
        );
        assert_eq!(Serial::from_der_bytes(&[1; 17]), None);
    }
}
