//! Public-key certificate mode (公钥证书模式): requests name the app's certificate and the root
//! bundle, answers name and are signed by Alipay's current certificate, which the download API
//! serves and which Alipay rotates. Checked with the service's own certificate code
//! (`alipay_notify::alipay::cert`), against SNs the simulator computes on its own.

use std::collections::BTreeMap;

use alipay_notify::alipay::callback;
use alipay_notify::alipay::cert::{verify_chain, CertError, Certificate};
use alipay_notify::alipay::form::RawParams;
use alipay_notify::alipay::keys::PublicKey;
use alipay_notify::alipay::product::Product;
use alipay_sim::{RegisteredApp, Rotation, SimConfig, Simulator};
use alipay_test_support::keys::{copy_of, keys, public_of};
use axum::http::header;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::support::*;

const DOWNLOAD: &str = "alipay.open.app.alipaycert.download";
const QUERY: &str = "alipay.trade.query";

/// An API answer taken apart without re-encoding anything.
struct Answer {
    /// The exact text of the `*_response` object, as signed.
    raw: String,
    node: Value,
    cert_sn: Option<String>,
    sign: Option<String>,
}

impl Answer {
    fn parse(body: &str, method: &str) -> Self {
        let members: BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let key = format!("{}_response", method.replace('.', "_"));
        let raw = members
            .get(&key)
            .unwrap_or_else(|| panic!("no {key} in {body}"))
            .get()
            .to_owned();
        let text = |name: &str| {
            members
                .get(name)
                .map(|v| serde_json::from_str::<String>(v.get()).unwrap())
        };
        Self {
            node: serde_json::from_str(&raw).unwrap(),
            cert_sn: text("alipay_cert_sn"),
            sign: text("sign"),
            raw,
        }
    }

    fn verifies_with(&self, key: &PublicKey) -> bool {
        let sign = self.sign.as_deref().expect("a signed answer");
        key.verify(self.raw.as_bytes(), sign).is_ok()
    }
}

async fn spawn_cert_mode() -> TestEnv {
    spawn_with(Options {
        cert_mode: true,
        ..Options::default()
    })
    .await
}

impl TestEnv {
    /// The two common parameters of a cert-mode request, as the simulator issued them.
    fn cert_sns(&self) -> [(&'static str, String); 2] {
        [
            (
                "app_cert_sn",
                self.sim.app_cert_sn(APP_ID).expect("cert mode"),
            ),
            ("alipay_root_cert_sn", self.sim.root_cert_sn()),
        ]
    }

    /// A cert-mode API call with these common parameters (signed with the rest).
    async fn call_with(&self, method: &str, biz: Value, extra: &[(&str, String)]) -> Answer {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Answer::parse(&self.api_with(method, biz, &extra).await, method)
    }

    async fn call(&self, method: &str, biz: Value) -> Answer {
        self.call_with(method, biz, &self.cert_sns()).await
    }

    async fn query_answer(&self) -> Answer {
        self.call(QUERY, json!({"out_trade_no": "T_none"})).await
    }

    /// Alipay's certificate `sn` as the download API serves it: the certificate, then its CAs.
    async fn download(&self, sn: &str) -> Vec<Certificate> {
        let answer = self.call(DOWNLOAD, json!({ "alipay_cert_sn": sn })).await;
        assert_eq!(answer.node["code"], "10000", "{}", answer.raw);
        let content = answer.node["alipay_cert_content"].as_str().unwrap();
        let pem = String::from_utf8(STANDARD.decode(content).unwrap()).unwrap();
        Certificate::parse_pem(&pem).unwrap()
    }

    /// The root bundle from the files written for the app.
    fn roots(&self) -> Vec<Certificate> {
        let dir = tempfile::tempdir().unwrap();
        let files = self.sim.write_cert_files(APP_ID, dir.path()).unwrap();
        Certificate::parse_pem(&std::fs::read_to_string(files.root_cert).unwrap()).unwrap()
    }
}

fn chains(served: &[Certificate], roots: &[Certificate]) -> Result<(), CertError> {
    let (leaf, cas) = served.split_first().unwrap();
    verify_chain(leaf, cas, roots, OffsetDateTime::now_utc()).map(|_| ())
}

#[tokio::test]
async fn a_cert_mode_answer_names_the_current_certificate_whose_key_signed_it() {
    let env = spawn_cert_mode().await;

    let answer = env.query_answer().await;

    assert_eq!(answer.node["sub_code"], "ACQ.TRADE_NOT_EXIST");
    assert_eq!(answer.cert_sn.as_deref(), Some(&*env.sim.alipay_cert_sn()));
    let served = env.download(&env.sim.alipay_cert_sn()).await;
    assert!(answer.verifies_with(&served[0].public_key().unwrap()));
}

#[tokio::test]
async fn a_missing_or_wrong_app_cert_sn_is_refused() {
    let env = spawn_cert_mode().await;
    let [_, root] = env.cert_sns();
    let wrong = ("app_cert_sn", "0".repeat(32));

    for extra in [vec![root.clone()], vec![wrong, root.clone()]] {
        let answer = env
            .call_with(QUERY, json!({"out_trade_no": "T"}), &extra)
            .await;

        assert_eq!(answer.node["code"], "40002", "{}", answer.raw);
        assert_eq!(answer.node["msg"], "Invalid Arguments");
        assert_eq!(answer.node["sub_code"], "isv.app-cert-not-exist");
        assert_eq!(answer.node["sub_msg"], "应用公钥证书不存在");
        assert_eq!(answer.sign, None);
    }
}

#[tokio::test]
async fn a_root_cert_sn_without_alipays_root_is_refused() {
    let env = spawn_cert_mode().await;
    let [app, root] = env.cert_sns();
    let legacy_only = root.1.split('_').nth(1).unwrap().to_owned();

    for extra in [
        vec![app.clone()],
        vec![app.clone(), ("alipay_root_cert_sn", legacy_only)],
    ] {
        let answer = env
            .call_with(QUERY, json!({"out_trade_no": "T"}), &extra)
            .await;

        assert_eq!(answer.node["code"], "40002", "{}", answer.raw);
        assert_eq!(answer.node["sub_code"], "isv.invalid-alipay-root-cert-sn");
        assert_eq!(answer.node["sub_msg"], "无效支付宝根证书序列号");
    }
}

#[tokio::test]
async fn page_pay_and_app_pay_without_the_sns_show_alipays_error_page() {
    let env = spawn_cert_mode().await;
    let [app, _] = env.cert_sns();
    let biz = |product: Product| {
        json!({"out_trade_no": "T_cert_page", "total_amount": "1.00", "subject": "Tea",
               "product_code": product.product_code()})
    };

    let app_cert_sn = [(app.0, app.1.as_str())];
    let page_form = request_form(Product::Page.method(), &biz(Product::Page), &app_cert_sn);
    let page = env
        .get(&format!("{}?{page_form}", env.sim.gateway_url()))
        .await;
    let order_string = request_form(Product::App.method(), &biz(Product::App), &[]);
    let app_sdk = env
        .browser
        .post(format!("{}/sim/app/pay", env.sim.base_url()))
        .body(order_string)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert!(page.contains("isv.invalid-alipay-root-cert-sn"), "{page}");
    assert!(app_sdk.contains("isv.app-cert-not-exist"), "{app_sdk}");
    assert!(env.sim.trade("T_cert_page").is_none());
}

#[tokio::test]
async fn the_download_api_serves_the_requested_certificate_chained_to_the_root_bundle() {
    let env = spawn_cert_mode().await;
    let sn = env.sim.alipay_cert_sn();

    let served = env.download(&sn).await;

    assert_eq!(served[0].sn(), sn);
    assert_eq!(
        served.len(),
        2,
        "Alipay's certificate, then its intermediate"
    );
    chains(&served, &env.roots()).unwrap();
}

#[tokio::test]
async fn an_unknown_sn_is_cert_not_exist() {
    let env = spawn_cert_mode().await;

    let answer = env
        .call(DOWNLOAD, json!({"alipay_cert_sn": "f".repeat(32)}))
        .await;

    assert_eq!(answer.node["code"], "40004");
    assert_eq!(answer.node["sub_code"], "isv.cert-not-exist");
    assert_eq!(answer.node["sub_msg"], "证书不存在");
    assert_eq!(answer.cert_sn.as_deref(), Some(&*env.sim.alipay_cert_sn()));
}

#[tokio::test]
async fn a_plain_key_app_cannot_download_certificates() {
    let env = spawn().await;

    let body = env
        .api(DOWNLOAD, json!({"alipay_cert_sn": "f".repeat(32)}))
        .await;

    let answer = Answer::parse(&body, DOWNLOAD);
    assert_eq!(answer.node["sub_code"], "isv.invalid-method", "{body}");
}

#[tokio::test]
async fn after_a_rotation_answers_name_the_new_certificate_which_chains() {
    let env = spawn_cert_mode().await;
    let old = env.sim.alipay_cert_sn();

    let new = env.sim.rotate_alipay_cert(Rotation::Trusted);
    let answer = env.query_answer().await;

    assert_ne!(new, old);
    assert_eq!(answer.cert_sn.as_deref(), Some(&*new));
    let served = env.download(&new).await;
    assert_eq!(served[0].sn(), new);
    assert!(answer.verifies_with(&served[0].public_key().unwrap()));
    assert!(!answer.verifies_with(&env.sim.alipay_public_key()));
    chains(&served, &env.roots()).unwrap();
    assert_eq!(env.download(&old).await[0].sn(), old, "the old one stays");
}

#[tokio::test]
async fn after_an_untrusted_rotation_the_served_certificate_does_not_chain() {
    let env = spawn_cert_mode().await;

    let rogue = env.sim.rotate_alipay_cert(Rotation::Untrusted);
    let answer = env.query_answer().await;

    assert_eq!(answer.cert_sn.as_deref(), Some(&*rogue));
    let served = env.download(&rogue).await;
    assert_eq!(served[0].sn(), rogue);
    assert!(answer.verifies_with(&served[0].public_key().unwrap()));
    assert!(matches!(
        chains(&served, &env.roots()),
        Err(CertError::Untrusted { .. })
    ));
}

#[tokio::test]
async fn notifications_and_returns_are_signed_by_the_current_certificate() {
    let env = spawn_cert_mode().await;
    let new = env.sim.rotate_alipay_cert(Rotation::Trusted);
    let key = env.download(&new).await[0].public_key().unwrap();
    let mut extra = vec![
        ("notify_url", env.notify_url.clone()),
        ("return_url", RETURN_URL.to_owned()),
    ];
    extra.extend(env.cert_sns());
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let biz = json!({"out_trade_no": "T_cert_notify", "total_amount": "3.00", "subject": "Tea",
                     "product_code": Product::Page.product_code()});
    let form = request_form(Product::Page.method(), &biz, &extra);

    let cashier = env.get(&format!("{}?{form}", env.sim.gateway_url())).await;
    let paid = env.press(&cashier, "pay").await;
    let received = env.receiver.wait_for(1).await;

    assert_eq!(paid.status(), 303);
    let location = paid.headers()[header::LOCATION].to_str().unwrap();
    let query = location.split_once('?').unwrap().1;
    assert_eq!(
        verified(query.as_bytes(), &key).get("out_trade_no"),
        Some("T_cert_notify")
    );
    assert_eq!(status_of(&received[0].body, &key), "TRADE_SUCCESS");
    let raw = RawParams::parse(&received[0].body).unwrap();
    assert!(callback::verify(&raw, &env.sim.alipay_public_key()).is_err());
    assert!(raw.get("alipay_cert_sn").is_none());
}

#[tokio::test]
async fn plain_key_apps_beside_cert_mode_ones_keep_the_plain_key() {
    let app_public = || public_of(&keys().app);
    let cert_app = RegisteredApp::new(APP_ID, app_public(), SELLER_ID)
        .in_cert_mode(keys().app.public_key_spki_der());
    let plain_app = RegisteredApp::new("2021000000000002", app_public(), SELLER_ID);
    let config = SimConfig::new(copy_of(&keys().alipay))
        .with_app(cert_app)
        .with_app(plain_app);
    let sim = Simulator::start(config).await.unwrap();
    sim.rotate_alipay_cert(Rotation::Trusted);
    let form = request_form_for(
        "2021000000000002",
        QUERY,
        &json!({"out_trade_no": "T"}),
        &[],
    );

    let body = reqwest::Client::new()
        .post(sim.gateway_url())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let answer = Answer::parse(&body, QUERY);
    assert_eq!(answer.cert_sn, None, "{body}");
    assert!(answer.verifies_with(&sim.alipay_public_key()));
    assert_eq!(sim.app_cert_sn("2021000000000002"), None);
}
