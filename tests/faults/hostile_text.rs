//! NUL and other control characters in every text input of every route, sent to the service on
//! SQLite and on Postgres: refused (4xx) with the same answer on both, before any query (no
//! ERROR line in either log), and nothing stored.

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use crate::postgres::SharedDatabase;
use crate::service::{client, Options, Service, API_TOKEN};
use crate::traffic::create_orders;

const BAD: [&str; 5] = ["A\0B", "A\u{1}B", "A\u{1b}[31mB", "A\u{7f}B", "A\u{85}B"];

struct Request {
    name: String,
    method: &'static str,
    path: String,
    content_type: &'static str,
    body: String,
}

fn json(name: String, path: String, body: serde_json::Value) -> Request {
    Request {
        name,
        method: "POST",
        path,
        content_type: "application/json",
        body: body.to_string(),
    }
}

fn form(name: String, path: &str, fields: &[(&str, &str)]) -> Request {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
        .collect::<Vec<_>>()
        .join("&");
    Request {
        name,
        method: "POST",
        path: path.to_owned(),
        content_type: "application/x-www-form-urlencoded",
        body,
    }
}

fn get(name: String, path: String) -> Request {
    Request {
        name,
        method: "GET",
        path,
        content_type: "",
        body: String::new(),
    }
}

/// Every text input a client controls, each with each bad value.
fn requests() -> Vec<Request> {
    let mut all = Vec::new();
    for (i, bad) in BAD.iter().enumerate() {
        let escaped = utf8_percent_encode(bad, NON_ALPHANUMERIC).to_string();
        let order = |field: &str| {
            let mut body = serde_json::json!({"subject": "Tea", "total_amount": "1.00"});
            body[field] = serde_json::Value::from(*bad);
            json(
                format!("api order {field} #{i}"),
                "/api/orders".into(),
                body,
            )
        };
        all.extend(["out_trade_no", "subject", "body", "total_amount"].map(order));
        let refund = |field: &str| {
            let mut body = serde_json::json!({"amount": "1.00"});
            body[field] = serde_json::Value::from(*bad);
            json(
                format!("api refund {field} #{i}"),
                "/api/orders/HT1/refunds".into(),
                body,
            )
        };
        all.extend(["amount", "reason", "out_request_no"].map(refund));
        all.push(json(
            format!("api refund of order {escaped}"),
            format!("/api/orders/{escaped}/refunds"),
            serde_json::json!({"amount": "1.00"}),
        ));
        all.push(get(
            format!("api order lookup #{i}"),
            format!("/api/orders/{escaped}"),
        ));
        for field in ["out_trade_no", "subject", "total_amount"] {
            let mut fields = vec![("subject", "Tea"), ("total_amount", "1.00")];
            fields.retain(|(k, _)| *k != field);
            fields.push((field, bad));
            all.push(form(
                format!("form {field} #{i}"),
                "/alipay/create",
                &fields,
            ));
        }
        all.push(get(
            format!("return out_trade_no #{i}"),
            format!("/payment/success?out_trade_no={escaped}"),
        ));
        all.push(form(
            format!("notify out_trade_no #{i}"),
            "/alipay/notify",
            &[("out_trade_no", bad), ("sign", "x")],
        ));
    }
    all
}

async fn answers(service: &Service) -> Vec<(String, u16, String)> {
    let client = client();
    let mut answers = Vec::new();
    for request in requests() {
        let mut builder = client
            .request(request.method.parse().unwrap(), service.url(&request.path))
            .bearer_auth(API_TOKEN)
            .body(request.body);
        if !request.content_type.is_empty() {
            builder = builder.header("content-type", request.content_type);
        }
        let response = builder
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", request.name));
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        answers.push((request.name, status, body));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_are_refused_alike_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite_url = format!("sqlite:{}", dir.path().join("orders.db").display());
    let postgres = SharedDatabase::create().await;
    // Open checkout, so that form fields reach validation rather than "checkout is closed".
    let options = Options::default().env("CHECKOUT_OPEN", "true");
    let sqlite = Service::start_with(&sqlite_url, options.clone()).await;
    let pg = Service::start_with(&postgres.url, options).await;
    for service in [&sqlite, &pg] {
        create_orders(&client(), &service.base(), &["HT1".to_owned()]).await;
    }

    let on_sqlite = answers(&sqlite).await;
    let on_postgres = answers(&pg).await;

    assert_eq!(on_sqlite.len(), 70, "requests");
    for (lite, pg) in on_sqlite.iter().zip(&on_postgres) {
        assert_eq!(lite, pg, "SQLite and Postgres answer differently");
        let (name, status, _) = lite;
        assert!((400..500).contains(status), "{name}: {lite:?}");
    }
    assert_eq!(
        orders_stored(&sqlite_url).await,
        1,
        "SQLite stored an order"
    );
    assert_eq!(
        orders_stored(&postgres.url).await,
        1,
        "Postgres stored an order"
    );
    for (database, service) in [("SQLite", &sqlite), ("Postgres", &pg)] {
        let log = service.log();
        let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
        assert!(errors.is_empty(), "{database} logged errors: {errors:#?}");
        let listed = client()
            .get(service.url("/api/orders/HT1"))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .expect("lookup")
            .json::<serde_json::Value>()
            .await
            .expect("order JSON");
        assert_eq!(listed["status"], "pending", "{database}: {listed}");
        assert_eq!(listed["refunds"], serde_json::json!([]), "{database}");
    }
    let statuses: std::collections::BTreeMap<u16, usize> =
        on_sqlite
            .iter()
            .fold(Default::default(), |mut counts, (_, status, _)| {
                *counts.entry(*status).or_default() += 1;
                counts
            });
    eprintln!(
        "{} hostile text inputs, identical answers on both databases: {statuses:?}",
        on_sqlite.len()
    );
}

async fn orders_stored(url: &str) -> i64 {
    use sqlx::Connection;
    let sql = "select count(*) from payment_order";
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("SQLite");
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect("count")
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("Postgres");
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect("count")
    }
}
