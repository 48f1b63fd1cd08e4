//! The whole payment flow against the simulated Alipay, over HTTP: create, pay at the cashier,
//! notification, return page; and the ways deliveries go wrong.

use std::time::Duration;

use alipay_notify::orders::{Order, OrderStatus};
use alipay_sim::Faults;
use alipay_test_support::html::form_action;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_databases;

/// How long no further attempt may arrive: longer than any retry the simulator would make next
/// here (1 h scaled by 0.0001 is 360 ms).
const QUIET: Duration = Duration::from_millis(500);

on_both_databases!(
    paying_at_the_cashier_marks_the_order_paid_and_returns_to_a_paid_page,
    dropped_deliveries_are_retried_until_success,
    duplicated_and_concurrent_deliveries_apply_once,
    out_of_order_delivery_ends_paid_and_finished,
    cancel_at_the_cashier_closes_the_order,
    a_tampered_pay_url_is_refused_by_the_gateway,
);

impl PayFlow {
    /// Creates an order through the merchant API and opens its pay link; returns the signed
    /// gateway URL the link sent the browser to.
    pub async fn create_order(&self, out_trade_no: &str, amount: &str) -> String {
        let response = self
            .app
            .client
            .post(self.app.url("/api/orders"))
            .bearer_auth(API_TOKEN)
            .json(&json!({"out_trade_no": out_trade_no, "subject": "Oolong tea", "total_amount": amount}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        let link = body["pay_url"].as_str().unwrap();
        assert_eq!(link, self.app.url(&format!("/pay/{out_trade_no}")));
        self.open_pay_link(link).await
    }

    /// Opens a page or wap pay link as a browser would: the service signs the gateway request
    /// now and answers 303 to it. Returns the gateway URL.
    pub async fn open_pay_link(&self, link: &str) -> String {
        let response = self.app.client.get(link).send().await.unwrap();
        assert_eq!(response.status(), 303, "{link}");
        let location = response.headers()[reqwest::header::LOCATION]
            .to_str()
            .unwrap();
        assert!(location.starts_with(&self.sim.gateway_url()), "{location}");
        location.to_owned()
    }

    /// Opens the cashier at `pay_url` as a browser would and clicks `button` (`pay`, `cancel`).
    pub async fn click(&self, pay_url: &str, button: &str) -> reqwest::Response {
        let page = self
            .app
            .client
            .get(pay_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let action = form_action(&page, button);
        let url = format!("{}{action}", self.sim.base_url());
        self.app.client.post(url).send().await.unwrap()
    }

    /// Polls the database until the order has `status` (deliveries are asynchronous).
    pub async fn wait_for_status(&self, out_trade_no: &str, status: OrderStatus) -> Order {
        for _ in 0..200 {
            let order = self.app.order(out_trade_no).await;
            if order.status == status {
                return order;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "order {out_trade_no} never became {status}: {:?}",
            self.app.order(out_trade_no).await
        );
    }

    /// Polls until the order's audit log has `count` rows.
    pub async fn wait_for_audit_rows(&self, out_trade_no: &str, count: usize) -> Vec<String> {
        for _ in 0..200 {
            let verdicts = self.app.verdicts(out_trade_no).await;
            if verdicts.len() >= count {
                return verdicts;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "order {out_trade_no} has {:?}, not {count} rows",
            self.app.verdicts(out_trade_no).await
        );
    }
}

async fn paying_at_the_cashier_marks_the_order_paid_and_returns_to_a_paid_page(db: Db) {
    let flow = spawn_paying(db, Faults::default(), |_| {}).await;
    let pay_url = flow.create_order("F1001", "88.00").await;

    let redirect = flow.click(&pay_url, "pay").await;

    assert_eq!(redirect.status(), 303);
    let order = flow.wait_for_status("F1001", OrderStatus::Paid).await;
    let trade = flow.sim.trade("F1001").unwrap();
    assert_eq!(order.trade_no, trade.trade_no);
    // Answered success at once: one attempt, recorded once its reply is read (maybe just after
    // the order is paid), and no resend.
    flow.sim
        .settled_attempts("F1001", 1, Duration::from_secs(10), QUIET)
        .await;
    let return_url = redirect.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        return_url.starts_with(&flow.app.url("/payment/success?")),
        "{return_url}"
    );
    let page = flow.app.client.get(&return_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Payment received"));
}

async fn dropped_deliveries_are_retried_until_success(db: Db) {
    let faults = Faults {
        drop_first: 3,
        ..Faults::default()
    };
    let flow = spawn_paying(db, faults, |_| {}).await;
    let pay_url = flow.create_order("F1002", "1.00").await;

    flow.click(&pay_url, "pay").await;

    flow.wait_for_status("F1002", OrderStatus::Paid).await;
    assert_eq!(flow.app.verdicts("F1002").await, ["applied"]);
    // Three dropped, the fourth answered success, and no resend after it.
    flow.sim
        .settled_attempts("F1002", 4, Duration::from_secs(10), QUIET)
        .await;
}

async fn duplicated_and_concurrent_deliveries_apply_once(db: Db) {
    let flow = spawn_paying(db, Faults::default(), |_| {}).await;
    flow.sim.set_faults(
        "F1003",
        Faults {
            duplicate: true,
            ..Faults::default()
        },
    );
    flow.sim.set_faults(
        "F1004",
        Faults {
            concurrent: 16,
            ..Faults::default()
        },
    );
    let twice = flow.create_order("F1003", "2.00").await;
    let burst = flow.create_order("F1004", "3.00").await;

    flow.click(&twice, "pay").await;
    flow.click(&burst, "pay").await;

    let verdicts = flow.wait_for_audit_rows("F1003", 2).await;
    assert_eq!(verdicts, ["applied", "duplicate"]);
    let verdicts = flow.wait_for_audit_rows("F1004", 16).await;
    assert_eq!(
        verdicts.iter().filter(|v| *v == "applied").count(),
        1,
        "{verdicts:?}"
    );
    assert_eq!(flow.app.order("F1004").await.status, OrderStatus::Paid);
}

async fn out_of_order_delivery_ends_paid_and_finished(db: Db) {
    let flow = spawn_paying(
        db,
        Faults {
            out_of_order: true,
            ..Faults::default()
        },
        |_| {},
    )
    .await;
    let pay_url = flow.create_order("F1005", "4.00").await;

    flow.click(&pay_url, "pay").await;

    let verdicts = flow.wait_for_audit_rows("F1005", 2).await;
    assert_eq!(verdicts, ["applied", "duplicate"]);
    let order = flow.app.order("F1005").await;
    assert_eq!(order.status, OrderStatus::Paid);
    assert_eq!(
        order.alipay_trade_status.map(|s| s.as_str()),
        Some("TRADE_FINISHED")
    );
}

async fn cancel_at_the_cashier_closes_the_order(db: Db) {
    let flow = spawn_paying(db, Faults::default(), |_| {}).await;
    let pay_url = flow.create_order("F1006", "5.00").await;

    flow.click(&pay_url, "cancel").await;

    let order = flow.wait_for_status("F1006", OrderStatus::Closed).await;
    assert!(order.closed_at.is_some());
    assert!(order.paid_at.is_none());
}

async fn a_tampered_pay_url_is_refused_by_the_gateway(db: Db) {
    let flow = spawn_paying(db, Faults::default(), |_| {}).await;
    let pay_url = flow.create_order("F1007", "100.00").await;
    let cheaper = pay_url.replace("100.00", "1.00");
    assert_ne!(cheaper, pay_url);

    let page = flow
        .app
        .client
        .get(&cheaper)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert!(page.contains("invalid-signature"), "{page}");
    assert!(flow.sim.trade("F1007").is_none());
    assert_eq!(flow.app.order("F1007").await.status, OrderStatus::Pending);
}
