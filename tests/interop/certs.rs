//! Certificate mode against two real SDKs: every SN in `certs.json` was computed by the JDK (as
//! alipay-sdk-java-all does it, the gateway's rule) and by npm's alipay-sdk, over certificates
//! the openssl CLI made (`make_certs.sh`). Where the two SDKs disagree, Java is the reference.

use alipay_notify::alipay::cert::{root_cert_sn, verify_chain, CertError, Certificate};
use alipay_notify::alipay::keys::PrivateKey;
use alipay_notify::alipay::pay::PayOrder;
use alipay_notify::alipay::trust::{CertFile, CertMode, CertModeError};
use alipay_notify::alipay::{Alipay, AlipayConfig};
use alipay_notify::money::Amount;
use serde_json::Value;
use time::OffsetDateTime;

use crate::vectors::{app_private_key, vector_text};

fn manifest() -> Value {
    serde_json::from_str(&vector_text("certs.json")).expect("certs.json is JSON")
}

fn files(kind: &str) -> Vec<Value> {
    let files: Vec<Value> = manifest()["files"]
        .as_array()
        .expect("a list of files")
        .iter()
        .filter(|f| f["kind"] == kind)
        .cloned()
        .collect();
    assert!(!files.is_empty(), "certs.json has no {kind} entries");
    files
}

fn certificates(file: &str) -> Vec<Certificate> {
    Certificate::parse_pem(&vector_text(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[test]
fn certificate_sns_agree_with_java_and_with_node_where_node_is_right() {
    let mut compared_with_node = 0;
    for entry in files("cert") {
        let file = entry["file"].as_str().unwrap();
        let cert = &certificates(file)[0];
        let java = &entry["java"];
        assert_eq!(cert.issuer(), java["issuer"], "{file}: issuer DN");
        assert_eq!(cert.serial(), java["serial"], "{file}: decimal serial");
        assert_eq!(cert.sn(), java["sn"], "{file}: SN");
        if entry["agree"] == true {
            assert_eq!(cert.sn(), entry["node"]["sn"], "{file}: SN (node)");
            compared_with_node += 1;
        }
    }
    assert!(compared_with_node >= 10, "{compared_with_node} compared");
    // The three where node differs are the escaping, multi-valued RDN and emailAddress cases.
    assert_eq!(manifest()["disagreements"].as_array().unwrap().len(), 3);
}

#[test]
fn a_serial_whose_sn_starts_with_zeros_keeps_them() {
    let cert = &certificates("certs/leading_zero_sn.crt")[0];
    assert!(cert.sn().starts_with("000"), "{}", cert.sn());
    assert_eq!(cert.sn().len(), 32);
}

#[test]
fn root_sns_skip_non_rsa_roots_whatever_the_file_looks_like() {
    for entry in files("root_bundle") {
        let file = entry["file"].as_str().unwrap();
        let java = &entry["java"];
        let roots = certificates(file);
        assert_eq!(roots.len() as u64, java["count"], "{file}");
        for (cert, sn) in roots.iter().zip(java["sns"].as_array().unwrap()) {
            // Java lists null for the roots it leaves out (not RSA-signed).
            assert_eq!(cert.is_rsa_signed(), !sn.is_null(), "{file}");
            if !sn.is_null() {
                assert_eq!(cert.sn(), sn, "{file}");
            }
        }
        match java["root_sn"].as_str().unwrap() {
            "" => assert_eq!(root_cert_sn(&roots), Err(CertError::NoRsaRoot), "{file}"),
            expected => {
                assert_eq!(root_cert_sn(&roots).unwrap(), expected, "{file}");
                assert_eq!(entry["node"]["root_sn"], expected, "{file} (node)");
            }
        }
    }
}

#[test]
fn alipays_certificate_chains_to_the_roots_only_with_its_intermediate() {
    let roots = certificates("certs/root_bundle.crt");
    let chain = certificates("certs/alipay_cert_chain.crt");
    let (leaf, intermediates) = chain.split_first().unwrap();
    let expires = verify_chain(leaf, intermediates, &roots, now()).expect("chains");
    assert_eq!(expires, leaf.not_after());

    // Without the intermediate, or against roots that did not issue it, it is not trusted.
    let untrusted = Err(CertError::Untrusted {
        sn: leaf.sn().to_owned(),
    });
    assert_eq!(verify_chain(leaf, &[], &roots, now()), untrusted);
    let other_roots = certificates("certs/root_ec.crt");
    assert_eq!(
        verify_chain(leaf, intermediates, &other_roots, now()),
        untrusted
    );
    // Another CA under the same root did not issue it.
    let impostor = certificates("certs/ca_st_l.crt");
    assert_eq!(verify_chain(leaf, &impostor, &roots, now()), untrusted);

    // Past the leaf's expiry the chain no longer holds.
    let after_expiry = leaf.not_after() + time::Duration::seconds(1);
    assert!(matches!(
        verify_chain(leaf, intermediates, &roots, after_expiry),
        Err(CertError::Expired { .. })
    ));
}

#[test]
fn the_three_files_load_into_certificate_mode() {
    let mode = CertMode::load(
        &vector_text("certs/app_cert.crt"),
        &vector_text("certs/alipay_cert_chain.crt"),
        &vector_text("certs/root_bundle_crlf.crt"),
        &app_private_key(),
        now(),
    )
    .expect("the vectors load");
    let sn_of = |file: &str| {
        files("cert")
            .into_iter()
            .find(|e| e["file"] == file)
            .unwrap()["java"]["sn"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(mode.app_cert_sn(), sn_of("certs/app_cert.crt"));
    assert_eq!(mode.current().sn, sn_of("certs/alipay_cert.crt"));
    assert_eq!(
        mode.root_cert_sn(),
        "96cb8e0f1d1780cc185cbc05cbf33e41_093225e01f1ee64818776c7c4b3ca033"
    );
}

#[test]
fn each_bad_file_is_refused_and_named() {
    let load = |app: &str, alipay: &str, root: &str, key: &PrivateKey| {
        CertMode::load(
            &vector_text(app),
            &vector_text(alipay),
            &vector_text(root),
            key,
            now(),
        )
        .map(|_| ())
    };
    let app = "certs/app_cert.crt";
    let alipay = "certs/alipay_cert_chain.crt";
    let root = "certs/root_bundle.crt";
    let key = app_private_key();

    // The app certificate is for the app key, not Alipay's.
    let alipay_key = PrivateKey::parse(&vector_text("alipay_private_pkcs8.pem")).unwrap();
    assert_eq!(
        load(app, alipay, root, &alipay_key),
        Err((CertFile::App, CertModeError::KeyMismatch))
    );
    // A bundle with no RSA root has no alipay_root_cert_sn.
    assert_eq!(
        load(app, alipay, "certs/root_bundle_ec_only.crt", &key),
        Err((CertFile::Root, CertError::NoRsaRoot.into()))
    );
    // Alipay's certificate without its intermediate does not chain.
    assert!(matches!(
        load(app, "certs/alipay_cert.crt", root, &key),
        Err((
            CertFile::Alipay,
            CertModeError::Certificate(CertError::Untrusted { .. })
        ))
    ));
    // A key file where a certificate belongs.
    assert!(matches!(
        load("app_private_pkcs8.pem", alipay, root, &key),
        Err((CertFile::App, CertModeError::Certificate(CertError::Pem(1))))
    ));
    assert!(matches!(
        load(app, "cases.json", root, &key),
        Err((
            CertFile::Alipay,
            CertModeError::Certificate(CertError::NoCertificate)
        ))
    ));
}

#[test]
fn requests_in_certificate_mode_sign_both_sns_as_python_and_openssl_read_them() {
    let certs = CertMode::load(
        &vector_text("certs/app_cert.crt"),
        &vector_text("certs/alipay_cert_chain.crt"),
        &vector_text("certs/root_bundle.crt"),
        &app_private_key(),
        now(),
    )
    .unwrap();
    let config = AlipayConfig {
        app_id: "2021000000000001".into(),
        seller_id: None,
        gateway: "https://openapi.alipay.com/gateway.do".into(),
        notify_url: "https://shop.example.com/alipay/notify".into(),
        return_url: "https://shop.example.com/payment/success".into(),
    };
    let alipay = Alipay::with_certificates(config, app_private_key(), certs);
    let url = alipay.page_pay_url(
        &PayOrder {
            out_trade_no: "T1",
            total_amount: Amount::parse("0.01").unwrap(),
            subject: "cert mode",
            body: None,
            time_expire: now() + time::Duration::minutes(30),
        },
        now(),
    );
    let dir = tempfile::tempdir().unwrap();
    // python rebuilds the sign string from the URL; openssl verifies our signature over it.
    let decoded = crate::page_pay::python_reads_gateway_url(&url, dir.path());
    crate::sdk::assert_openssl_verifies_python_sign_string(dir.path());
    let signed = std::fs::read_to_string(dir.path().join("content.txt")).unwrap();
    let java_sn = |file: &str| {
        let entry = files("cert")
            .into_iter()
            .find(|e| e["file"] == file)
            .unwrap();
        entry["java"]["sn"].as_str().unwrap().to_owned()
    };
    let root_sn = "96cb8e0f1d1780cc185cbc05cbf33e41_093225e01f1ee64818776c7c4b3ca033";
    assert_eq!(
        decoded["params"]["app_cert_sn"],
        java_sn("certs/app_cert.crt")
    );
    assert_eq!(decoded["params"]["alipay_root_cert_sn"], root_sn);
    assert!(
        signed.starts_with(&format!("alipay_root_cert_sn={root_sn}&app_cert_sn=")),
        "{signed}"
    );
}
