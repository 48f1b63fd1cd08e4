//! Micro-benchmarks of the CPU work on the notify and page-pay paths, each beside the bare
//! aws-lc-rs verify or sign of the same bytes in the same group, so our overhead reads as a ratio.
//!
//! `cargo bench` (about half a minute), or `cargo bench -- --quick`.

use std::hint::black_box;
use std::time::Duration;

use alipay_notify::alipay::callback;
use alipay_notify::alipay::form::RawParams;
use alipay_notify::alipay::keys::{PrivateKey, PublicKey};
use alipay_notify::alipay::notification::Notification;
use alipay_notify::alipay::pay::PayOrder;
use alipay_notify::alipay::sign::{sign_content, CALLBACK_EXCLUDED, REQUEST_EXCLUDED};
use alipay_notify::alipay::{Alipay, AlipayConfig};
use alipay_notify::money::Amount;
use alipay_notify_bench::notifications::{signed_body, trade_success, Merchant, PaidOrder};
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use time::OffsetDateTime;

const APP_ID: &str = "2021000000000001";

/// One key pair as our wrapper and as the bare aws-lc-rs objects it wraps.
struct Key {
    ours: PrivateKey,
    public: PublicKey,
    bare_pair: KeyPair,
    bare_public: ParsedPublicKey,
}

fn key() -> Key {
    let ours = PrivateKey::generate();
    let pkcs8 = pem::parse(ours.to_pkcs8_pem()).expect("PEM");
    let spki = STANDARD.decode(ours.public_key_base64()).expect("base64");
    Key {
        public: PublicKey::parse(&ours.public_key_base64()).expect("public key"),
        bare_pair: KeyPair::from_pkcs8(pkcs8.contents()).expect("PKCS#8"),
        bare_public: ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, spki).expect("SPKI"),
        ours,
    }
}

fn order() -> PaidOrder {
    PaidOrder {
        out_trade_no: "BENCH0000abcdN0001234".into(),
        amount: Amount::parse("128.80").expect("amount"),
    }
}

/// Verifying a realistic TRADE_SUCCESS notification, step by step, in UTF-8 and in GBK.
fn notify(c: &mut Criterion) {
    let key = key();
    let merchant = Merchant {
        app_id: APP_ID.into(),
        seller_id: "2088000000000001".into(),
    };
    for charset in ["utf-8", "gbk"] {
        let params = trade_success(&merchant, &order(), charset, OffsetDateTime::now_utc());
        let body = signed_body(&params, &key.ours);
        let raw = RawParams::parse(&body).expect("form");
        let content = sign_content(raw.iter(), CALLBACK_EXCLUDED);
        let signature = STANDARD
            .decode(raw.get("sign").expect("sign"))
            .expect("base64");

        let mut group = c.benchmark_group(format!("notify_{charset}_{}B", body.len()));
        group.bench_function("bare_aws_lc_verify", |b| {
            b.iter(|| key.bare_public.verify_sig(black_box(&content), &signature))
        });
        group.bench_function("parse_form", |b| {
            b.iter(|| RawParams::parse(black_box(&body)))
        });
        group.bench_function("sign_string", |b| {
            b.iter(|| sign_content(black_box(&raw).iter(), CALLBACK_EXCLUDED))
        });
        group.bench_function("verify_callback", |b| {
            b.iter(|| {
                let raw = RawParams::parse(black_box(&body)).expect("form");
                callback::verify(&raw, &key.public).expect("genuine")
            })
        });
        group.bench_function("verify_and_read_notification", |b| {
            b.iter(|| {
                let raw = RawParams::parse(black_box(&body)).expect("form");
                let verified = callback::verify(&raw, &key.public).expect("genuine");
                Notification::from_verified(&verified).expect("complete")
            })
        });
        group.finish();
    }
}

/// Signing a page-pay URL against signing its sign string alone.
fn page_pay(c: &mut Criterion) {
    let key = key();
    let alipay_key = PrivateKey::generate();
    let config = AlipayConfig {
        app_id: APP_ID.into(),
        seller_id: None,
        gateway: "https://openapi.alipay.com/gateway.do".into(),
        notify_url: "https://shop.example.com/alipay/notify".into(),
        return_url: "https://shop.example.com/payment/success".into(),
    };
    let public = PublicKey::parse(&alipay_key.public_key_base64()).expect("public key");
    let signing_key = PrivateKey::parse(&key.ours.to_pkcs8_pem()).expect("private key");
    let alipay = Alipay::new(config, signing_key, public);
    let now = OffsetDateTime::now_utc();
    let request = PayOrder {
        out_trade_no: "BENCH0000abcdN0001234",
        total_amount: Amount::parse("128.80").expect("amount"),
        subject: "乌龙茶 Oolong tea 250g",
        body: Some("Tieguanyin, spring harvest"),
        time_expire: now + time::Duration::minutes(30),
    };
    let url = alipay.page_pay_url(&request, now);
    let query = url.split_once('?').expect("a query").1;
    let raw = RawParams::parse(query.as_bytes()).expect("query");
    let content = sign_content(raw.iter(), REQUEST_EXCLUDED);
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut signature = vec![0; key.bare_pair.public_modulus_len()];
    key.bare_pair
        .sign(&RSA_PKCS1_SHA256, &rng, &content, &mut signature)
        .expect("sign");
    assert_eq!(
        raw.get("sign"),
        Some(STANDARD.encode(&signature).as_bytes()),
        "the bare signature is of the same bytes"
    );

    let mut group = c.benchmark_group(format!("page_pay_{}B", url.len()));
    group.bench_function("bare_aws_lc_sign", |b| {
        b.iter(|| {
            key.bare_pair
                .sign(&RSA_PKCS1_SHA256, &rng, black_box(&content), &mut signature)
        })
    });
    group.bench_function("page_pay_url", |b| {
        b.iter(|| alipay.page_pay_url(black_box(&request), now))
    });
    group.finish();
}

/// Amount parsing, beside parsing the same digits as a plain integer.
fn amount(c: &mut Criterion) {
    let mut group = c.benchmark_group("amount");
    group.bench_function("bare_i64_parse", |b| {
        b.iter(|| black_box("12880").parse::<i64>())
    });
    group.bench_function("amount_parse", |b| {
        b.iter(|| Amount::parse(black_box("128.80")))
    });
    group.bench_function("amount_display", |b| {
        let amount = Amount::parse("128.80").expect("amount");
        b.iter(|| black_box(amount).to_string())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: the ratios are what matter, and the machine is shared.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = notify, page_pay, amount
}
criterion_main!(benches);
