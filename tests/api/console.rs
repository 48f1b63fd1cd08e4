//! The operations console over HTTP, as a browser uses it: off unless configured, logging in
//! with a token (and the brake on guessing), the session cookie, the order list's filters,
//! search and pages, an order's page, and hostile values shown escaped.

use std::time::Instant;

use alipay_notify::config::{OperatorSettings, Role};
use alipay_notify::orders::OrderStatus;
use alipay_sim::Faults;
use secrecy::SecretString;

use crate::helpers::*;
use crate::on_both_databases;
use crate::webhooks::{endpoint, Answer, Receiver};

on_both_databases!(
    the_order_list_filters_searches_and_pages_newest_first,
    an_orders_page_shows_its_fields_refunds_and_messages_escaped,
    an_operator_refunds_after_confirming_and_the_trail_says_so,
    viewers_and_forged_forms_change_nothing,
    an_operator_asks_alipay_now_and_closes_a_pending_order,
    the_overview_counts_orders_and_messages_and_points_at_what_needs_a_look,
    the_csv_holds_every_filtered_order_with_a_bom_and_inert_formulas,
    an_orders_timeline_links_each_message_as_received_in_its_charset,
    an_operator_redelivers_the_latest_webhook_event,
    anomalies_are_explained_and_an_operator_marks_one_reviewed,
);

const OPERATOR_TOKEN: &str = "console-operator-token-0123";
const VIEWER_TOKEN: &str = "console-viewer-token-456789";

fn with_console(settings: &mut alipay_notify::config::Settings) {
    settings.console.token = Some(SecretString::from(OPERATOR_TOKEN));
    settings.console.operators = vec![OperatorSettings {
        name: "vera".into(),
        token: SecretString::from(VIEWER_TOKEN),
        role: Role::Viewer,
    }];
}

impl TestApp {
    /// Logs in with `token`; the session cookie (`name=value`) on success, else the status.
    async fn log_in(&self, token: &str) -> Result<String, u16> {
        let response = self
            .client
            .post(self.url("/console/login"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        if response.status() != 303 {
            return Err(response.status().as_u16());
        }
        let set_cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        Ok(set_cookie.split(';').next().unwrap().to_owned())
    }

    async fn console_get(&self, path: &str, cookie: &str) -> (u16, String) {
        let response = self
            .client
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_off_unless_operators_are_configured() {
    let app = spawn_app(Db::Sqlite).await;
    for path in ["/console", "/console/login", "/console/orders"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_in_sets_a_strict_session_cookie_and_pages_need_it() {
    let app = spawn_with(Db::Sqlite, with_console).await;

    let anonymous = app
        .client
        .get(app.url("/console/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()["location"], "/console/login");
    assert_eq!(app.log_in("not-the-token").await, Err(401));
    // A form posted from another site is refused before the token is even looked at.
    let login_from = |origin: &'static str| {
        app.client
            .post(app.url("/console/login"))
            .header("origin", origin)
            .form(&[("token", OPERATOR_TOKEN)])
            .send()
    };
    assert_eq!(
        login_from("https://evil.example").await.unwrap().status(),
        403
    );
    assert_eq!(
        login_from("https://shop.example.com")
            .await
            .unwrap()
            .status(),
        303
    );

    let response = app
        .client
        .post(app.url("/console/login"))
        .form(&[("token", OPERATOR_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console", "Expires="] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    // PUBLIC_URL is https in these tests: the cookie is Secure.
    assert!(set_cookie.contains("Secure"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap();

    let (status, page) = app.console_get("/console/orders", cookie).await;
    assert_eq!(status, 200);
    assert!(page.contains("admin (operator)"), "{page}");
    let (_, page) = app
        .console_get("/console/orders", &app.log_in(VIEWER_TOKEN).await.unwrap())
        .await;
    assert!(page.contains("vera (viewer)"), "{page}");

    // A cookie that was altered is no session.
    let forged = format!("{}x", cookie);
    let (status, _) = app.console_get("/console/orders", &forged).await;
    assert_eq!(status, 303);

    // Logging out needs the session's CSRF token.
    let logout = |csrf: &'static str| {
        app.client
            .post(app.url("/console/logout"))
            .header("cookie", cookie)
            .form(&[("csrf", csrf)])
            .send()
    };
    assert_eq!(logout("guess").await.unwrap().status(), 403);
    let csrf = page_csrf(&app.console_get("/console/orders", cookie).await.1);
    let response = app
        .client
        .post(app.url("/console/logout"))
        .header("cookie", cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

/// The CSRF token in a page's forms.
fn page_csrf(page: &str) -> String {
    let start = page.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    page[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_run_no_script_and_allow_only_their_stylesheet() {
    let app = spawn_with(Db::Sqlite, with_console).await;
    let cookie = app.log_in(OPERATOR_TOKEN).await.unwrap();
    let response = app
        .client
        .get(app.url("/console/orders"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let page = response.text().await.unwrap();
    assert!(!page.contains("<script"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_failed_logins_in_a_minute_slow_the_next_answers_down() {
    let app = spawn_with(Db::Sqlite, with_console).await;
    for _ in 0..10 {
        assert_eq!(app.log_in("guess-guess-guess-guess").await, Err(401));
    }
    let started = Instant::now();
    // Even the right token waits its turn.
    assert!(app.log_in(OPERATOR_TOKEN).await.is_ok());
    assert!(
        started.elapsed().as_millis() >= 450,
        "{:?}",
        started.elapsed()
    );
}

async fn the_order_list_filters_searches_and_pages_newest_first(db: Db) {
    let app = spawn_with(db, with_console).await;
    for n in 0..55 {
        let amount = if n % 5 == 0 { "100.00" } else { "9.90" };
        app.pending_order(&format!("L{n:03}"), amount).await;
    }
    let cookie = app.log_in(VIEWER_TOKEN).await.unwrap();
    let rows = |page: &str| page.matches(r#"<a href="/console/orders/L"#).count();

    let (_, first) = app.console_get("/console/orders", &cookie).await;
    assert_eq!(rows(&first), 50);
    // Newest first: the last created leads.
    let l054 = first.find(">L054<").unwrap();
    let l053 = first.find(">L053<").unwrap();
    assert!(l054 < l053);
    let next = first
        .split(r#"rel="next""#)
        .next()
        .and_then(|head| head.rsplit("href=\"").next())
        .map(|href| href.split('"').next().unwrap().replace("&amp;", "&"))
        .unwrap();
    let (_, second) = app.console_get(&next, &cookie).await;
    assert_eq!(rows(&second), 5);
    assert!(second.contains(">L000<") && !second.contains(">L054<"));
    assert!(!second.contains(r#"rel="next""#));

    let (_, big) = app.console_get("/console/orders?min=50", &cookie).await;
    assert_eq!(rows(&big), 11);
    let (_, found) = app.console_get("/console/orders?q=L017", &cookie).await;
    assert_eq!(rows(&found), 1);
    let (_, none) = app
        .console_get("/console/orders?status=paid", &cookie)
        .await;
    assert!(none.contains("No orders match."));
    let (status, bad) = app.console_get("/console/orders?min=lots", &cookie).await;
    assert_eq!(status, 200);
    assert!(bad.contains("min must be an amount"), "{bad}");
}

async fn an_orders_page_shows_its_fields_refunds_and_messages_escaped(db: Db) {
    let app = spawn_with(db, with_console).await;
    let hostile = "<script>alert(1)</script>\u{202e}gnp.exe";
    let now = time::OffsetDateTime::now_utc();
    let new = alipay_notify::orders::NewOrder {
        out_trade_no: "H1".into(),
        subject: hostile.into(),
        body: Some("\"quoted\" & <b>bold</b>".into()),
        total_amount: "1.00".parse().unwrap(),
        product: alipay_notify::alipay::product::Product::Page,
        created_at: now,
        expires_at: now + time::Duration::minutes(30),
    };
    app.store.create_order(&new).await.unwrap();
    let cookie = app.log_in(OPERATOR_TOKEN).await.unwrap();

    let (status, page) = app.console_get("/console/orders/H1", &cookie).await;
    assert_eq!(status, 200);
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(page.contains("&lt;b&gt;bold&lt;/b&gt;"), "{page}");
    let (_, list) = app.console_get("/console/orders", &cookie).await;
    assert!(!list.contains("<script>alert"), "{list}");
    let (status, _) = app.console_get("/console/orders/nope", &cookie).await;
    assert_eq!(status, 404);

    // A 10 KB subject is shown whole, in a cell that wraps it.
    let long = "茶".repeat(3400);
    let new = alipay_notify::orders::NewOrder {
        out_trade_no: "H2".into(),
        subject: long.clone(),
        body: None,
        total_amount: "1.00".parse().unwrap(),
        product: alipay_notify::alipay::product::Product::Page,
        created_at: now,
        expires_at: now + time::Duration::minutes(30),
    };
    app.store.create_order(&new).await.unwrap();
    let (status, page) = app.console_get("/console/orders/H2", &cookie).await;
    assert_eq!(status, 200);
    assert!(long.len() > 10_000 && page.contains(&long));
    // The right-to-left override is shown as sent: a table cell is its own bidi paragraph, so it
    // reorders nothing outside the subject.
    assert!(list.contains('\u{202e}'));
}

impl TestApp {
    async fn console_post(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> (u16, String) {
        let response = self
            .client
            .post(self.url(path))
            .header("cookie", cookie)
            .form(form)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

/// The value of a hidden field in a page.
fn hidden_value(page: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

async fn an_operator_refunds_after_confirming_and_the_trail_says_so(db: Db) {
    let flow = spawn_paying(db, Faults::default(), with_console).await;
    flow.paid_order("K1", "10.00").await;
    let app = &flow.app;
    let cookie = app.log_in(OPERATOR_TOKEN).await.unwrap();
    let (_, page) = app.console_get("/console/orders/K1", &cookie).await;
    assert!(page.contains(r#"id="refund""#), "{page}");
    let csrf = page_csrf(&page);

    let (status, confirm) = app
        .console_post(
            "/console/orders/K1/refund",
            &cookie,
            &[
                ("csrf", &csrf),
                ("amount", "2.00"),
                ("reason", "lid <broken>"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert!(confirm.contains("Refund 2.00 of order K1?"), "{confirm}");
    assert!(confirm.contains("lid &lt;broken&gt;"), "{confirm}");
    assert!(
        app.store.refunds("K1").await.unwrap().is_empty(),
        "nothing before confirming"
    );

    let out_request_no = hidden_value(&confirm, "out_request_no");
    let confirmed = [
        ("csrf", csrf.as_str()),
        ("amount", "2.00"),
        ("reason", "lid <broken>"),
        ("out_request_no", out_request_no.as_str()),
        ("confirmed", "true"),
    ];
    let (status, _) = app
        .console_post("/console/orders/K1/refund", &cookie, &confirmed)
        .await;
    assert_eq!(status, 303);
    // Confirming twice (a double click, a resent form) refunds once.
    app.console_post("/console/orders/K1/refund", &cookie, &confirmed)
        .await;
    assert_eq!(app.order("K1").await.refunded_fen, 200);
    assert_eq!(app.store.refunds("K1").await.unwrap().len(), 1);

    let trail = app.store.actions("K1").await.unwrap();
    assert_eq!(trail.len(), 2);
    assert_eq!(trail[0].operator, "admin");
    assert_eq!(trail[0].request, "refund 2.00 (lid <broken>)");
    assert!(trail[0].outcome.ends_with("succeeded"), "{:?}", trail[0]);
    let (_, page) = app.console_get("/console/orders/K1", &cookie).await;
    assert!(page.contains("refund 2.00 (lid &lt;broken&gt;)"), "{page}");
}

async fn viewers_and_forged_forms_change_nothing(db: Db) {
    let flow = spawn_paying(db, Faults::default(), with_console).await;
    flow.paid_order("K2", "10.00").await;
    let app = &flow.app;
    let viewer = app.log_in(VIEWER_TOKEN).await.unwrap();
    let (_, page) = app.console_get("/console/orders/K2", &viewer).await;
    assert!(
        !page.contains(r#"id="refund""#) && !page.contains(r#"id="reconcile""#),
        "{page}"
    );
    let csrf = page_csrf(&page);
    let confirmed = [
        ("csrf", csrf.as_str()),
        ("amount", "2.00"),
        ("confirmed", "true"),
    ];
    let (status, _) = app
        .console_post("/console/orders/K2/refund", &viewer, &confirmed)
        .await;
    assert_eq!(status, 403);

    let operator = app.log_in(OPERATOR_TOKEN).await.unwrap();
    // The viewer's CSRF token is not the operator's, nor is a guess.
    for csrf in [csrf.as_str(), "guess"] {
        let forged = [("csrf", csrf), ("amount", "2.00"), ("confirmed", "true")];
        let (status, _) = app
            .console_post("/console/orders/K2/refund", &operator, &forged)
            .await;
        assert_eq!(status, 403);
    }
    assert_eq!(app.order("K2").await.refunded_fen, 0);
    assert!(app.store.refunds("K2").await.unwrap().is_empty());
    assert!(app.store.actions("K2").await.unwrap().is_empty());
}

async fn an_operator_asks_alipay_now_and_closes_a_pending_order(db: Db) {
    let flow = spawn_paying(
        db,
        Faults {
            never_deliver: true,
            ..Faults::default()
        },
        |s| {
            with_console(s);
            s.reconcile.interval_seconds = 0;
        },
    )
    .await;
    let app = &flow.app;
    let pay_url = flow.create_order("K3", "3.00").await;
    flow.click(&pay_url, "pay").await;
    flow.create_order("K4", "4.00").await;
    let cookie = app.log_in(OPERATOR_TOKEN).await.unwrap();
    let csrf = page_csrf(&app.console_get("/console/orders/K3", &cookie).await.1);
    let confirmed = [("csrf", csrf.as_str()), ("confirmed", "true")];

    // Paid at Alipay, never told: asking now finds it.
    assert_eq!(app.order("K3").await.status, OrderStatus::Pending);
    app.console_post("/console/orders/K3/reconcile", &cookie, &confirmed)
        .await;
    assert_eq!(app.order("K3").await.status, OrderStatus::Paid);
    // Closing a paid order is not offered, and refused if asked.
    let (status, _) = app
        .console_post("/console/orders/K3/close", &cookie, &confirmed)
        .await;
    assert_eq!(status, 403);

    // Never paid: closed at Alipay and here.
    app.console_post("/console/orders/K4/close", &cookie, &confirmed)
        .await;
    assert_eq!(app.order("K4").await.status, OrderStatus::Closed);
    let trail = app.store.actions("K4").await.unwrap();
    assert_eq!(trail[0].request, "close");
    assert!(trail[0].outcome.contains("order closed"), "{:?}", trail[0]);
}

async fn the_overview_counts_orders_and_messages_and_points_at_what_needs_a_look(db: Db) {
    let flow = spawn_paying(db, Faults::default(), with_console).await;
    let app = &flow.app;
    flow.paid_order("V1", "10.00").await;
    app.pending_order("V2", "2.00").await;
    app.expired_order("V3", "3.00").await;
    // A genuine notification about an order we never created: an anomaly.
    let (status, _) = app.notify(genuine(&trade_success("V404", "1.00"))).await;
    assert_eq!(status, 422);
    let cookie = app.log_in(VIEWER_TOKEN).await.unwrap();

    let (status, page) = app.console_get("/console", &cookie).await;

    assert_eq!(status, 200);
    // V3 was created 31 minutes ago: in the first half hour of a Beijing day it belongs to
    // yesterday, and the overview must say so.
    let beijing = time::UtcOffset::from_hms(8, 0, 0).unwrap();
    let now = time::OffsetDateTime::now_utc().to_offset(beijing);
    let v3_today = (now - time::Duration::minutes(31)).date() == now.date();
    // pending, paid, closed, refunded, all
    let today = if v3_today {
        ["2", "1", "0", "0", "3"]
    } else {
        ["1", "1", "0", "0", "2"]
    };
    assert_eq!(count_cells(&page, "today (Beijing)"), today);
    assert_eq!(count_cells(&page, "last 7 days"), ["2", "1", "0", "0", "3"]);
    assert!(page.contains(r#"id="anomalies-waiting">1<"#), "{page}");
    assert!(page.contains(">V3</a> expired"), "{page}");
    // The payment's notification and the anomaly, in the chart.
    assert!(
        page.contains(r#"aria-label="2 messages in the last 24 hours""#),
        "{page}"
    );
    assert!(
        page.contains("applied 1") && page.contains("anomaly 1"),
        "{page}"
    );
}

/// The numbers in the overview's order-count row with this label.
fn count_cells<'a>(page: &'a str, label: &str) -> Vec<&'a str> {
    let row = page
        .split(label)
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("no row {label:?} in {page}"));
    row.split(r#"<td class="num">"#)
        .skip(1)
        .map(|cell| cell.split('<').next().unwrap())
        .collect()
}

async fn the_csv_holds_every_filtered_order_with_a_bom_and_inert_formulas(db: Db) {
    let app = spawn_with(db, with_console).await;
    // More than one batch of the export (1,000).
    for n in 0..1003 {
        app.pending_order(&format!("X{n:04}"), "1.00").await;
    }
    let now = time::OffsetDateTime::now_utc();
    let hostile = alipay_notify::orders::NewOrder {
        out_trade_no: "X9999".into(),
        subject: "=HYPERLINK(\"http://evil\",\"乌龙茶, 250 g\")".into(),
        body: None,
        total_amount: "7.00".parse().unwrap(),
        product: alipay_notify::alipay::product::Product::Page,
        created_at: now,
        expires_at: now + time::Duration::minutes(30),
    };
    app.store.create_order(&hostile).await.unwrap();
    let cookie = app.log_in(VIEWER_TOKEN).await.unwrap();

    let response = app
        .client
        .get(app.url("/console/orders.csv?status=pending"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let disposition = response.headers()["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"orders-"),
        "{disposition}"
    );
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.starts_with("\u{feff}".as_bytes()));
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let header = reader.headers().unwrap().clone();
    assert_eq!(&header[0], "out_trade_no");
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 1004);
    assert_eq!(&records[0][0], "X9999");
    assert_eq!(
        &records[0][2],
        "'=HYPERLINK(\"http://evil\",\"乌龙茶, 250 g\")"
    );
    assert_eq!(&records[0][3], "7.00");
    let mut numbers: Vec<&str> = records.iter().map(|r| r.get(0).unwrap()).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 1004, "no order twice");

    let (_, paid_only) = app
        .console_get("/console/orders.csv?status=paid", &cookie)
        .await;
    assert_eq!(
        paid_only.trim_start_matches('\u{feff}').lines().count(),
        1,
        "{paid_only}"
    );
}

async fn an_orders_timeline_links_each_message_as_received_in_its_charset(db: Db) {
    let app = spawn_with(db, with_console).await;
    app.pending_order("M1", "66.00").await;
    // A genuine GBK notification, as Alipay sends for a GBK app.
    let params: Vec<(String, Vec<u8>)> = with(trade_success("M1", "66.00"), "charset", "GBK")
        .into_iter()
        .map(|(k, v)| {
            let value = if k == "subject" {
                "乌龙茶 <b>250克</b>".to_owned()
            } else {
                v
            };
            let (bytes, _, _) = encoding_rs::GBK.encode(&value);
            (k, bytes.into_owned())
        })
        .collect();
    let body = signed_body_bytes(&params, &keys().alipay);
    assert_eq!(app.notify(body.clone()).await, (200, "success".into()));
    assert_eq!(app.notify(body.clone()).await, (200, "success".into()));
    let cookie = app.log_in(VIEWER_TOKEN).await.unwrap();

    let (_, page) = app.console_get("/console/orders/M1", &cookie).await;

    let timeline = page.split(r#"id="timeline""#).nth(1).unwrap();
    let created = timeline.find("Order created for 66.00").expect("created");
    let paid = timeline.find(r#"class="entry paid""#).expect("paid");
    let duplicate = timeline
        .find(r#"class="entry duplicate""#)
        .expect("duplicate");
    assert!(created < paid && paid < duplicate, "{timeline}");
    let link = timeline
        .split(r#"<a href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(link.starts_with("/console/orders/M1/messages/"), "{link}");

    let (status, message) = app.console_get(&link, &cookie).await;
    assert_eq!(status, 200);
    assert!(message.contains("decoded from GBK"), "{message}");
    assert!(
        message.contains("乌龙茶 &lt;b&gt;250克&lt;/b&gt;"),
        "{message}"
    );
    let response = app
        .client
        .get(app.url(&format!("{link}/raw")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        body.as_slice(),
        "byte for byte"
    );
    // Another order's message is not shown under this one.
    let (status, _) = app
        .console_get(&link.replace("/M1/", "/M2/"), &cookie)
        .await;
    assert_eq!(status, 404);
}

async fn an_operator_redelivers_the_latest_webhook_event(db: Db) {
    let hooks = Receiver::always(Answer::Status(200));
    let url = hooks.start().await;
    let flow = spawn_paying(db, Faults::default(), |s| {
        with_console(s);
        endpoint(s, &url, &hooks);
    })
    .await;
    flow.paid_order("W1", "5.00").await;
    let app = &flow.app;
    let before = hooks.wait_for(1).await.len();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = hooks.received().len().max(before);
    let cookie = app.log_in(OPERATOR_TOKEN).await.unwrap();
    let (_, page) = app.console_get("/console/orders/W1", &cookie).await;
    assert!(page.contains(r#"id="redeliver""#), "{page}");
    let csrf = page_csrf(&page);

    let confirmed = [("csrf", csrf.as_str()), ("confirmed", "true")];
    let (status, _) = app
        .console_post("/console/orders/W1/redeliver", &cookie, &confirmed)
        .await;

    assert_eq!(status, 303);
    let received = hooks.wait_for(before + 1).await;
    let again = &received.last().unwrap().id;
    assert!(
        received[..before].iter().any(|r| &r.id == again),
        "the same event again"
    );
    let trail = app.store.actions("W1").await.unwrap();
    assert!(trail[0].outcome.contains(again.as_str()), "{:?}", trail[0]);
}

async fn anomalies_are_explained_and_an_operator_marks_one_reviewed(db: Db) {
    let app = spawn_with(db, with_console).await;
    app.pending_order("A1", "10.00").await;
    // Genuine, but for an order never created, and for the wrong amount.
    assert_eq!(
        app.notify(genuine(&trade_success("A404", "1.00"))).await.0,
        422
    );
    assert_eq!(
        app.notify(genuine(&trade_success("A1", "9.00"))).await.0,
        422
    );
    let viewer = app.log_in(VIEWER_TOKEN).await.unwrap();
    let (_, page) = app.console_get("/console/anomalies", &viewer).await;
    assert!(page.contains("Waiting for a look (2)"), "{page}");
    assert!(
        page.contains("no order with this out_trade_no was ever created here"),
        "{page}"
    );
    assert!(
        page.contains("Alipay&#39;s amount differs") || page.contains("Alipay's amount differs"),
        "{page}"
    );
    assert!(
        !page.contains("Mark reviewed"),
        "viewers get no form: {page}"
    );
    let link = page
        .split(r#"<a href="/console/anomalies/"#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let (status, message) = app
        .console_get(&format!("/console/anomalies/{link}"), &viewer)
        .await;
    assert_eq!(status, 200);
    assert!(message.contains("trade_status"), "{message}");

    let operator = app.log_in(OPERATOR_TOKEN).await.unwrap();
    let (_, page) = app.console_get("/console/anomalies", &operator).await;
    let csrf = page_csrf(&page);
    let id = link.to_owned();
    let review = format!("/console/anomalies/{id}/review");
    let (status, confirm) = app
        .console_post(
            &review,
            &operator,
            &[("csrf", &csrf), ("note", "test <order>")],
        )
        .await;
    assert_eq!(status, 200);
    assert!(confirm.contains("test &lt;order&gt;"), "{confirm}");
    assert_eq!(
        app.store.unreviewed_anomalies().await.unwrap(),
        2,
        "not before confirming"
    );
    let confirmed = [
        ("csrf", csrf.as_str()),
        ("note", "test <order>"),
        ("confirmed", "true"),
    ];
    let (status, _) = app.console_post(&review, &operator, &confirmed).await;
    assert_eq!(status, 303);
    let (status, _) = app.console_post(&review, &viewer, &confirmed).await;
    assert_eq!(status, 403, "a viewer cannot, even with a form");

    assert_eq!(app.store.unreviewed_anomalies().await.unwrap(), 1);
    let (_, page) = app.console_get("/console/anomalies", &operator).await;
    assert!(page.contains("Waiting for a look (1)"), "{page}");
    let reviewed = page.split(r#"id="reviewed""#).nth(1).unwrap();
    assert!(
        reviewed.contains("admin") && reviewed.contains("test &lt;order&gt;"),
        "{reviewed}"
    );
    // Reviewing it again keeps the first review.
    app.console_post(
        &review,
        &operator,
        &[("csrf", &csrf), ("note", "again"), ("confirmed", "true")],
    )
    .await;
    let reviews = app.store.anomalies(true, 10).await.unwrap();
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0].review.as_ref().unwrap().note, "test <order>");
    // An id that is no anomaly is not found.
    let (status, _) = app.console_get("/console/anomalies/999999", &viewer).await;
    assert_eq!(status, 404);
}
