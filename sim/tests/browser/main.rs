//! The demo in a real browser, as a new user meets it, once per way of paying: the desktop
//! cashier, the phone cashier on a 390 px phone, and the QR code that a phone scans while the
//! page showing it waits. Every page a phone buyer sees must fit its width. Headless Chromium
//! through chromedriver (Debian's `chromium` and `chromium-driver`); where they are missing,
//! build.rs leaves `has_chromium` unset and the tests report themselves ignored.

mod harness;

use alipay_notify::orders::{self, Order, OrderStatus};

use harness::{save_screenshot, Browser, Demo, PAID};

async fn stored_order(demo: &Demo, out_trade_no: &str) -> Order {
    let store = orders::connect(&demo.database_url(), 1, Default::default())
        .await
        .unwrap();
    let order = store.order(out_trade_no).await.unwrap();
    order.unwrap_or_else(|| panic!("order {out_trade_no} is not in the database"))
}

/// Fails with the page's URL and widths unless it fits the window.
async fn assert_fits(browser: &Browser) {
    let (fits, what) = browser.fits_width().await;
    assert!(fits, "scrolls sideways: {what}");
}

#[tokio::test]
#[cfg_attr(
    not(has_chromium),
    ignore = "needs Debian's chromium and chromium-driver"
)]
async fn a_buyer_pays_in_the_demo_and_sees_payment_received_and_the_shop_told() {
    let demo = Demo::start().await;
    let browser = Browser::start().await;

    browser.goto(&format!("http://{}/", demo.addr)).await;
    browser.click("#pay").await; // the shop's "Pay with Alipay"
    browser.wait_for(r#"h1#cashier[data-product="page"]"#).await;
    let cashier = browser.url().await;
    save_screenshot(
        "cashier-page.png",
        &browser.client.screenshot().await.unwrap(),
    );
    browser.click("#pay").await; // the cashier's Pay
    let status = browser.wait_for(PAID).await;

    assert_ne!(
        cashier.port(),
        Some(demo.addr.port()),
        "cashier not at the simulator: {cashier}"
    );
    let page = browser.url().await;
    assert_eq!(
        page.port(),
        Some(demo.addr.port()),
        "not back at the service: {page}"
    );
    assert_eq!(page.path(), "/payment/success");
    assert_eq!(status.text().await.unwrap(), "Payment received");
    // The page keeps refreshing until the shop's webhook endpoint has verified and taken the
    // order.paid event.
    let fulfilled = browser.wait_for("#fulfilled").await;
    assert_eq!(
        fulfilled.text().await.unwrap(),
        "Order fulfilled (webhook received)"
    );
    assert_eq!(browser.text("#amount").await, "¥88.00");
    let out_trade_no = browser.text("#out_trade_no").await;
    save_screenshot("demo-paid.png", &browser.client.screenshot().await.unwrap());
    browser.close().await;

    let order = stored_order(&demo, &out_trade_no).await;
    assert_eq!(order.status, OrderStatus::Paid, "{order:?}");
    assert_eq!(order.total_amount.to_string(), "88.00");
    assert!(
        order.trade_no.is_some() && order.paid_at.is_some(),
        "{order:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(has_chromium),
    ignore = "needs Debian's chromium and chromium-driver"
)]
async fn a_phone_buyer_gets_the_phone_cashier_and_every_page_fits_the_phone() {
    let demo = Demo::start().await;
    let browser = Browser::start_phone().await;

    browser.goto(&format!("http://{}/", demo.addr)).await;
    assert_fits(&browser).await;
    browser.click("#pay").await; // no product chosen: a phone gets the phone cashier
    browser.wait_for(r#"h1#cashier[data-product="wap"]"#).await;
    assert_fits(&browser).await;
    let quit = browser.wait_for("a#quit").await.attr("href").await.unwrap();
    save_screenshot(
        "cashier-wap.png",
        &browser.client.screenshot().await.unwrap(),
    );
    browser.click("#pay").await;
    browser.wait_for(PAID).await;
    assert_fits(&browser).await;
    let back = browser.wait_for("a#back").await.attr("href").await.unwrap();
    let out_trade_no = browser.text("#out_trade_no").await;
    save_screenshot(
        "phone-paid.png",
        &browser.client.screenshot().await.unwrap(),
    );
    browser.close().await;

    assert_eq!(
        quit.as_deref(),
        Some(format!("http://{}/", demo.addr).as_str())
    );
    assert_eq!(back, quit, "the return page leads back to the shop too");
    let order = stored_order(&demo, &out_trade_no).await;
    assert_eq!(
        (order.status, order.product.as_str()),
        (OrderStatus::Paid, "wap")
    );
}

#[tokio::test]
#[cfg_attr(
    not(has_chromium),
    ignore = "needs Debian's chromium and chromium-driver"
)]
async fn a_qr_page_shows_the_payment_by_itself_once_a_phone_has_scanned_and_paid() {
    let demo = Demo::start().await;
    let browser = Browser::start_phone().await;

    browser.goto(&format!("http://{}/", demo.addr)).await;
    browser.click("#pay-qr").await; // "Scan a QR code"
    browser.wait_for("svg#qr").await;
    assert_fits(&browser).await;
    let qr_page = browser.url().await;
    let out_trade_no = browser.text("#out_trade_no").await;
    let code = browser
        .wait_for("a#qr-link")
        .await
        .attr("href")
        .await
        .unwrap();
    let code = code.expect("the code's content as a link");
    save_screenshot("qr-page.png", &browser.client.screenshot().await.unwrap());

    // The buyer's phone, in another tab: the simulator's page for the scanned code.
    let qr_tab = browser.client.window().await.unwrap();
    let phone = browser.client.new_window(true).await.unwrap();
    browser.client.switch_to_window(phone.handle).await.unwrap();
    browser.goto(&code).await;
    browser.click("#scan").await;
    browser
        .wait_for(r#"h1#cashier[data-status="WAIT_BUYER_PAY"]"#)
        .await;
    assert_fits(&browser).await;
    save_screenshot("qr-phone.png", &browser.client.screenshot().await.unwrap());
    browser.click("#pay").await;
    browser
        .wait_for(r#"h1#status[data-status="TRADE_SUCCESS"]"#)
        .await;
    assert_fits(&browser).await;

    // Back on the QR page, untouched since: it has followed the order by itself.
    browser.client.switch_to_window(qr_tab).await.unwrap();
    browser.wait_for(PAID).await;
    assert_fits(&browser).await;
    assert_eq!(browser.url().await, qr_page, "still the pay link");
    browser.close().await;

    let order = stored_order(&demo, &out_trade_no).await;
    assert_eq!(
        (order.status, order.product.as_str()),
        (OrderStatus::Paid, "qr")
    );
}

#[tokio::test]
#[cfg_attr(
    not(has_chromium),
    ignore = "needs Debian's chromium and chromium-driver"
)]
async fn the_demo_in_certificate_mode_takes_a_payment_and_a_refund() {
    let demo = Demo::start_with(&["--cert-mode"]).await;
    let output = demo.output();
    assert!(
        output.contains("certificate mode:  app_cert_sn "),
        "{output}"
    );
    let browser = Browser::start().await;

    browser.goto(&format!("http://{}/", demo.addr)).await;
    browser.click("#pay").await;
    browser.wait_for(r#"h1#cashier[data-product="page"]"#).await;
    browser.click("#pay").await;
    let status = browser.wait_for(PAID).await;
    assert_eq!(status.text().await.unwrap(), "Payment received");
    browser.wait_for("#fulfilled").await;
    let out_trade_no = browser.text("#out_trade_no").await;
    browser.close().await;

    // A refund through the API: Alipay's answer is verified with its certificate's key.
    let token = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("API token:"))
        .expect("the demo prints its API token")
        .trim();
    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/api/orders/{out_trade_no}/refunds",
            demo.addr
        ))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(r#"{"amount": "8.00"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let order = stored_order(&demo, &out_trade_no).await;
    assert_eq!(order.status, OrderStatus::Paid, "{order:?}");
    assert_eq!(order.refunded_fen, 800);
}

/// The console's token as the demo printed it.
fn console_token(demo: &Demo) -> String {
    let output = demo.output();
    output
        .lines()
        .find_map(|line| {
            line.split_once("token: ")
                .filter(|_| line.contains("console:"))
        })
        .map(|(_, token)| token.trim().to_owned())
        .unwrap_or_else(|| panic!("the demo prints its console token:\n{output}"))
}

async fn log_in(browser: &Browser, demo: &Demo, token: &str) {
    browser.goto(&format!("http://{}/console", demo.addr)).await;
    browser.fill(r#"input[name="token"]"#, token).await;
    browser.click(r#"button[type="submit"]"#).await;
    browser.wait_for("#anomalies-waiting").await;
}

/// Pays for a tea in the demo's shop; the order's number.
async fn buy(browser: &Browser, demo: &Demo) -> String {
    browser.goto(&format!("http://{}/", demo.addr)).await;
    browser.click("#pay").await;
    browser.wait_for(r#"h1#cashier[data-product="page"]"#).await;
    browser.click("#pay").await;
    browser.wait_for(PAID).await;
    browser.text("#out_trade_no").await
}

#[tokio::test]
#[cfg_attr(
    not(has_chromium),
    ignore = "needs Debian's chromium and chromium-driver"
)]
async fn an_operator_finds_an_order_by_trade_no_and_refunds_part_of_it() {
    let viewer_token = "viewer-token-0123456789";
    let demo = Demo::start_with(&["--console-viewer-token", viewer_token]).await;
    let browser = Browser::start().await;
    let out_trade_no = buy(&browser, &demo).await;
    let trade_no = stored_order(&demo, &out_trade_no)
        .await
        .trade_no
        .expect("paid, so Alipay's trade_no is known");

    log_in(&browser, &demo, &console_token(&demo)).await;
    save_screenshot(
        "console-overview.png",
        &browser.client.screenshot().await.unwrap(),
    );
    browser.click(r#"header a[href="/console/orders"]"#).await;
    browser.fill(r#"input[name="q"]"#, &trade_no).await;
    browser.click("form.filters button").await;
    browser
        .wait_for(&format!(r#"td a[href="/console/orders/{out_trade_no}"]"#))
        .await;
    save_screenshot(
        "console-orders.png",
        &browser.client.screenshot().await.unwrap(),
    );
    browser
        .click(&format!(r#"td a[href="/console/orders/{out_trade_no}"]"#))
        .await;
    assert!(
        browser.text("#timeline").await.contains("Payment of 88.00"),
        "{}",
        browser.text("#timeline").await
    );

    browser.fill(r#"input[name="amount"]"#, "8.00").await;
    browser
        .fill(r#"input[name="reason"]"#, "lid was cracked")
        .await;
    browser.click("#refund").await;
    browser.click("#confirm").await;
    let refunds = browser.wait_for("#refunds table").await;
    let refunds = refunds.text().await.unwrap();
    assert!(
        refunds.contains("8.00") && refunds.contains("succeeded"),
        "{refunds}"
    );
    assert_eq!(browser.text("#refunded").await, "8.00");
    assert!(browser
        .text("#actions")
        .await
        .contains("refund 8.00 (lid was cracked)"));
    // The action came back to its trail (#actions); the picture shows the page from the top.
    let detail = format!("http://{}/console/orders/{out_trade_no}", demo.addr);
    browser.goto(&detail).await;
    browser.wait_for("#timeline").await;
    save_screenshot(
        "console-order.png",
        &browser.client.screenshot().await.unwrap(),
    );
    browser.close().await;

    // A viewer sees the same page without a way to act.
    let viewer = Browser::start_phone().await;
    log_in(&viewer, &demo, viewer_token).await;
    assert_fits(&viewer).await;
    viewer
        .goto(&format!(
            "http://{}/console/orders/{out_trade_no}",
            demo.addr
        ))
        .await;
    viewer.wait_for("#timeline").await;
    assert_fits(&viewer).await;
    save_screenshot(
        "console-order-phone.png",
        &viewer.client.screenshot().await.unwrap(),
    );
    assert!(viewer
        .client
        .find(fantoccini::Locator::Css("#refund"))
        .await
        .is_err());
    viewer
        .goto(&format!("http://{}/console/anomalies", demo.addr))
        .await;
    viewer.wait_for("#waiting").await;
    assert_fits(&viewer).await;
    viewer
        .goto(&format!("http://{}/console/orders", demo.addr))
        .await;
    viewer.wait_for("form.filters").await;
    assert_fits(&viewer).await;
    viewer.close().await;
    assert_eq!(stored_order(&demo, &out_trade_no).await.refunded_fen, 800);
}
