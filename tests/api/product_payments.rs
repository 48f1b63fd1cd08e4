//! Paying with each product against the simulated Alipay, as a buyer would: the phone cashier,
//! the QR code scanned by the simulator's "phone", and the order string handed to its "app".
//! Every product ends `paid` through the same notify path, once; reconciliation finds a payment
//! whose notification was lost, whichever product it was made with.

use std::time::Duration;

use alipay_notify::alipay::notification::TradeStatus;
use alipay_notify::alipay::product::Product;
use alipay_notify::orders::{NewOrder, OrderStatus};
use alipay_sim::Faults;
use alipay_test_support::html::form_action;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    every_product_is_paid_once_through_the_notify_path,
    reconciliation_recovers_a_lost_notification_for_every_product,
    the_qr_page_shows_the_code_and_its_poll_answers_when_the_order_is_paid,
    a_scanned_qr_code_left_unpaid_is_closed_when_it_expires,
);

const PRODUCTS: [Product; 4] = [Product::Page, Product::Wap, Product::Qr, Product::App];

impl PayFlow {
    /// Creates an order for `product` through the API; the answer's JSON.
    async fn create_for(&self, product: Product, out_trade_no: &str, amount: &str) -> Value {
        let response = self
            .app
            .client
            .post(self.app.url("/api/orders"))
            .bearer_auth(API_TOKEN)
            .json(
                &json!({"out_trade_no": out_trade_no, "subject": "Oolong tea",
                          "total_amount": amount, "product": product.as_str()}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    async fn page(&self, url: &str) -> String {
        let response = self.app.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        response.text().await.unwrap()
    }

    async fn press(&self, page: &str, button: &str) -> reqwest::Response {
        let url = format!("{}{}", self.sim.base_url(), form_action(page, button));
        self.app.client.post(url).send().await.unwrap()
    }

    /// The QR page of a qr order, and the code it shows (a URL at the simulator's "phone").
    async fn qr_page(&self, created: &Value) -> (String, String) {
        let page = self.page(created["pay_url"].as_str().unwrap()).await;
        let at = page
            .find(r#"id="qr-link" href=""#)
            .expect("a link to the code")
            + 19;
        let code = page[at..at + page[at..].find('"').unwrap()].replace("&amp;", "&");
        (page, code)
    }

    /// The buyer scans the code with the simulator's phone: the trade now waits for payment.
    async fn scan(&self, code: &str) -> String {
        let phone = self.page(code).await;
        let scanned = self.press(&phone, "scan").await;
        assert_eq!(scanned.status(), 200);
        scanned.text().await.unwrap()
    }

    /// Pays `created` the way its product is paid, pressing Pay at the simulator.
    async fn pay_as_a_buyer(&self, product: Product, created: &Value) {
        let cashier = match product {
            Product::Page | Product::Wap => {
                let gateway_url = self
                    .open_pay_link(created["pay_url"].as_str().unwrap())
                    .await;
                self.page(&gateway_url).await
            }
            Product::Qr => {
                let (_, code) = self.qr_page(created).await;
                self.scan(&code).await
            }
            Product::App => {
                let order_string = created["order_string"].as_str().unwrap().to_owned();
                let app = format!("{}/sim/app/pay", self.sim.base_url());
                let response = self.app.client.post(app).body(order_string).send().await;
                response.unwrap().text().await.unwrap()
            }
        };
        assert!(
            cashier.contains(&format!(r#"data-product="{product}""#)),
            "{cashier}"
        );
        let paid = self.press(&cashier, "pay").await;
        assert!(
            paid.status().is_success() || paid.status().is_redirection(),
            "{}",
            paid.status()
        );
    }
}

async fn every_product_is_paid_once_through_the_notify_path(db: Db) {
    let flow = spawn_paying(db, Faults::default(), |_| {}).await;

    for (i, product) in PRODUCTS.into_iter().enumerate() {
        let no = format!("PP{i}");
        let created = flow.create_for(product, &no, "12.30").await;
        flow.pay_as_a_buyer(product, &created).await;

        let order = flow.wait_for_status(&no, OrderStatus::Paid).await;
        assert_eq!(order.product, product);
        assert_eq!(order.trade_no, flow.sim.trade(&no).unwrap().trade_no);
        let log = flow.app.store.audit_log(&no).await.unwrap();
        assert_eq!(log.len(), 1, "{product}: {log:?}");
        assert_eq!(
            (log[0].source.as_str(), log[0].verdict.as_str()),
            ("notify", "applied"),
            "{product}"
        );
    }
}

async fn reconciliation_recovers_a_lost_notification_for_every_product(db: Db) {
    let lost = Faults {
        never_deliver: true,
        ..Faults::default()
    };
    let flow = spawn_paying(db, lost, |settings| {
        settings.reconcile.interval_seconds = 1;
        settings.reconcile.grace_seconds = 0;
    })
    .await;

    for (i, product) in PRODUCTS.into_iter().enumerate() {
        let no = format!("PR{i}");
        let created = flow.create_for(product, &no, "7.00").await;
        flow.pay_as_a_buyer(product, &created).await;
        flow.wait_for_status(&no, OrderStatus::Paid).await;
    }

    for i in 0..PRODUCTS.len() {
        let no = format!("PR{i}");
        assert!(flow.sim.attempts(&no).is_empty(), "nothing was delivered");
        let log = flow.app.store.audit_log(&no).await.unwrap();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(
            (log[0].source.as_str(), log[0].verdict.as_str()),
            ("query", "applied")
        );
    }
}

async fn the_qr_page_shows_the_code_and_its_poll_answers_when_the_order_is_paid(db: Db) {
    let flow = spawn_paying(db, Faults::default(), |_| {}).await;
    let created = flow.create_for(Product::Qr, "PQ1", "88.80").await;

    let (page, code) = flow.qr_page(&created).await;
    let status_url = flow.app.url("/pay/PQ1/status");
    let now = flow.app.client.get(&status_url).send().await.unwrap();
    let poll = flow
        .app
        .client
        .get(format!("{status_url}?since=pending&wait=20"))
        .send();
    let pay = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let waiting = flow.scan(&code).await;
        flow.press(&waiting, "pay").await
    };
    let (answer, _) = tokio::join!(poll, pay);

    assert!(page.contains(r#"<svg class="qr" id="qr""#), "{page}");
    assert!(page.contains("¥88.80"), "{page}");
    assert!(page.contains(r#"data-status-url="PQ1/status""#), "{page}");
    assert!(page.contains(r#"src="/assets/pay.js""#), "{page}");
    assert!(code.starts_with(&flow.sim.base_url()), "{code}");
    let now: Value = now.json().await.unwrap();
    assert_eq!(now["status"], "pending", "no wait without `since`");
    let answer: Value = answer.unwrap().json().await.unwrap();
    assert_eq!(answer["status"], "paid");
    let reopened = flow.page(created["pay_url"].as_str().unwrap()).await;
    assert!(reopened.contains(r#"data-status="paid""#), "{reopened}");
}

async fn a_scanned_qr_code_left_unpaid_is_closed_when_it_expires(db: Db) {
    let flow = spawn_paying(db, Faults::default(), |settings| {
        settings.reconcile.interval_seconds = 1;
        settings.reconcile.grace_seconds = 0;
    })
    .await;
    let now = time::OffsetDateTime::now_utc();
    let soon = NewOrder {
        out_trade_no: "PQ2".into(),
        subject: "Tea".into(),
        body: None,
        total_amount: "5.00".parse().unwrap(),
        product: Product::Qr,
        created_at: now,
        expires_at: now + time::Duration::seconds(4),
    };
    flow.app.store.create_order(&soon).await.unwrap();
    let link = json!({"pay_url": flow.app.url("/pay/PQ2")});
    let (_, code) = flow.qr_page(&link).await;
    let before_scan = flow.sim.trade("PQ2").unwrap().status;

    flow.scan(&code).await;
    let scanned = flow.sim.trade("PQ2").unwrap().status;
    let order = flow.wait_for_status("PQ2", OrderStatus::Closed).await;

    assert_eq!(
        before_scan, None,
        "no trade at Alipay until the code is scanned"
    );
    assert_eq!(scanned, Some(TradeStatus::WaitBuyerPay));
    assert!(
        order.paid_at.is_none() && order.closed_at.is_some(),
        "{order:?}"
    );
    let at_alipay = flow.sim.trade("PQ2").unwrap().status;
    assert_eq!(at_alipay, Some(TradeStatus::TradeClosed));
    let log = flow.app.store.audit_log("PQ2").await.unwrap();
    let applied = log
        .iter()
        .filter(|r| r.verdict.as_str() == "applied")
        .count();
    assert_eq!(applied, 1, "{log:?}");
}
