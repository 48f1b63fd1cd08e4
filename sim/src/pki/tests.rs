//! The simulator's SNs against the service's parser (`alipay_notify::alipay::cert`): each
//! computes them its own way, so agreement here means both read Alipay's rule alike.

use alipay_notify::alipay::cert::{root_cert_sn, verify_chain, CertError, Certificate};
use time::{Duration, OffsetDateTime};

use super::*;

const APP_ID: &str = "2021000000000001";

fn parse(pem: &str) -> Vec<Certificate> {
    Certificate::parse_pem(pem).unwrap()
}

fn pki_with_app() -> (Pki, PrivateKey) {
    let alipay_key = PrivateKey::generate();
    let mut pki = Pki::generate(&alipay_key).unwrap();
    let app_key = PrivateKey::generate();
    pki.certify_app(APP_ID, &app_key.public_key_spki_der())
        .unwrap();
    (pki, alipay_key)
}

/// Alipay's certificate file split into its certificate and the CAs after it.
fn leaf_and_cas(chain: &str) -> (Certificate, Vec<Certificate>) {
    let mut certs = parse(chain);
    let leaf = certs.remove(0);
    (leaf, certs)
}

#[test]
fn every_sn_agrees_with_the_service_parser() {
    let (pki, alipay_key) = pki_with_app();
    let roots = parse(&pki.root_bundle());

    assert_eq!(roots.len(), 3);
    for (parsed, issued) in roots.iter().zip(&pki.bundle) {
        assert_eq!(parsed.sn(), issued.sn);
    }
    assert_eq!(root_cert_sn(&roots).unwrap(), pki.root_cert_sn());
    assert!(!roots[1].is_rsa_signed(), "the ECDSA root stays out");
    assert_eq!(pki.root_cert_sn().split('_').count(), 2);
    let (leaf, cas) = leaf_and_cas(&pki.alipay_cert_chain());
    assert_eq!(leaf.sn(), pki.alipay_cert_sn());
    assert_eq!(leaf.spki_der(), alipay_key.public_key_spki_der());
    assert_eq!(cas[0].sn(), pki.intermediate.cert().sn);
    let app = &parse(&pki.app_cert(APP_ID).unwrap().pem)[0];
    assert_eq!(Some(app.sn()), pki.app_cert_sn(APP_ID));
    assert_eq!(
        app.issuer(),
        "CN=Sim Ant Financial Certification Authority Class 2 R1,OU=Certification Authority,\
         O=Sim Ant Financial,C=CN"
    );
}

#[test]
fn serials_with_the_high_bit_set_agree_too() {
    let (pki, _) = pki_with_app();
    let key = PrivateKey::generate().public_key_spki_der();
    let high_bit = (0..64)
        .map(|_| pki.issue_app_cert(APP_ID, &key, Validity::leaf()).unwrap())
        .find(|issued| {
            let serial: u128 = parse(&issued.pem)[0].serial().parse().unwrap();
            serial > i128::MAX as u128
        })
        .expect("half of all random serials have the high bit");

    assert_eq!(parse(&high_bit.pem)[0].sn(), high_bit.sn);
}

#[test]
fn alipay_certificates_chain_to_the_bundle_unless_rotated_to_a_rogue_ca() {
    let (pki, _) = pki_with_app();
    let roots = parse(&pki.root_bundle());
    let now = OffsetDateTime::now_utc();
    let first = pki.alipay_cert_sn();

    let trusted = pki.rotate_alipay_cert(Rotation::Trusted).unwrap();
    let rogue = pki.rotate_alipay_cert(Rotation::Untrusted).unwrap();

    for sn in [&first, &trusted] {
        let (leaf, cas) = leaf_and_cas(&pki.download(sn).unwrap());
        assert_eq!(leaf.sn(), sn);
        assert!(verify_chain(&leaf, &cas, &roots, now).is_ok());
    }
    let (leaf, cas) = leaf_and_cas(&pki.download(&rogue).unwrap());
    assert_eq!(leaf.sn(), rogue);
    assert_eq!(cas[0].issuer(), roots[0].issuer(), "the same-looking names");
    assert!(matches!(
        verify_chain(&leaf, &cas, &roots, now),
        Err(CertError::Untrusted { .. })
    ));
    assert_eq!(pki.alipay_cert_sn(), rogue);
    assert_eq!(pki.signer().sn, rogue);
}

#[test]
fn an_app_certificate_can_be_issued_expired() {
    let (pki, _) = pki_with_app();
    let now = OffsetDateTime::now_utc();
    let expired = Validity {
        not_before: now - Duration::days(400),
        not_after: now - Duration::days(35),
    };
    let key = PrivateKey::generate().public_key_spki_der();

    let issued = pki.issue_app_cert(APP_ID, &key, expired).unwrap();

    let cert = &parse(&issued.pem)[0];
    assert_eq!(cert.sn(), issued.sn);
    assert!(matches!(
        cert.check_valid_at(now),
        Err(CertError::Expired { .. })
    ));
}

#[test]
fn the_key_directory_keeps_the_hierarchy_and_every_sn() {
    let dir = tempfile::tempdir().unwrap();
    let alipay_key = PrivateKey::generate();
    let app_key = PrivateKey::generate().public_key_spki_der();
    let mut first = load_or_generate(dir.path(), &alipay_key).unwrap();
    first.certify_app(APP_ID, &app_key).unwrap();
    let files = first.write_files(APP_ID, dir.path()).unwrap();

    let mut second = load_or_generate(dir.path(), &alipay_key).unwrap();
    second.certify_app(APP_ID, &app_key).unwrap();

    assert_eq!(second.root_cert_sn(), first.root_cert_sn());
    assert_eq!(second.alipay_cert_sn(), first.alipay_cert_sn());
    assert_eq!(second.app_cert_sn(APP_ID), first.app_cert_sn(APP_ID));
    assert_eq!(
        files.app_cert.file_name().unwrap(),
        "appCertPublicKey_2021000000000001.crt"
    );
    let issued = second
        .issue_app_cert(APP_ID, &app_key, Validity::leaf())
        .unwrap();
    let roots = parse(&std::fs::read_to_string(&files.root_cert).unwrap());
    let (_, cas) = leaf_and_cas(&std::fs::read_to_string(&files.alipay_cert).unwrap());
    let now = OffsetDateTime::now_utc();
    assert!(verify_chain(&parse(&issued.pem)[0], &cas, &roots, now).is_ok());
    #[cfg(unix)]
    for key in ["ca_root_key.pem", "ca_intermediate_key.pem"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(key))
            .unwrap()
            .permissions();
        assert_eq!(mode.mode() & 0o777, 0o600, "{key}");
    }
}

#[test]
fn console_key_text_becomes_the_keys_spki() {
    let key = PrivateKey::generate();
    let spki = key.public_key_spki_der();
    let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", spki.clone()));

    for text in [key.public_key_base64(), pem] {
        assert_eq!(public_key_spki_der(&text).unwrap(), spki);
    }
    assert!(public_key_spki_der("not a key").is_err());
}

#[test]
fn a_new_alipay_key_gets_a_new_certificate_under_the_same_hierarchy() {
    let dir = tempfile::tempdir().unwrap();
    let first = load_or_generate(dir.path(), &PrivateKey::generate()).unwrap();

    let second = load_or_generate(dir.path(), &PrivateKey::generate()).unwrap();

    assert_eq!(second.root_cert_sn(), first.root_cert_sn());
    assert_ne!(second.alipay_cert_sn(), first.alipay_cert_sn());
}
