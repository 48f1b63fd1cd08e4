//! The command line, as ops use it: start-up errors, `migrate`, `orders show` and `orders list`,
//! `events list`, `events show` and `events redeliver`.

use std::process::Command;

use alipay_notify::orders::NewOrder;
use unicode_width::UnicodeWidthStr;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    orders_show_tells_the_story_of_a_partly_refunded_order,
    orders_list_columns_line_up_with_long_and_wide_subjects,
);

fn cli(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alipay-notify"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn");
    command
}

#[tokio::test]
async fn orders_show_and_list_print_state_from_the_database() {
    let app = spawn_app(Db::Sqlite).await;
    app.pending_order("T4001", "10.00").await;
    app.pending_order("T4002", "20.00").await;
    app.notify(genuine(&trade_success("T4001", "10.00"))).await;

    let show = cli(&app.database_url)
        .args(["orders", "show", "T4001"])
        .output()
        .unwrap();
    let list = cli(&app.database_url)
        .args(["orders", "list", "--status", "pending"])
        .output()
        .unwrap();
    let missing = cli(&app.database_url)
        .args(["orders", "show", "NOPE"])
        .output()
        .unwrap();

    let show = String::from_utf8(show.stdout).unwrap();
    assert!(show.contains("status:              paid"), "{show}");
    assert!(
        show.contains("  paid  ") && show.contains("#1  Payment of 10.00 applied (notification)"),
        "{show}"
    );
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.contains("T4002") && !list.contains("T4001"), "{list}");
    assert_eq!(missing.status.code(), Some(2));
}

#[tokio::test]
async fn events_list_show_and_redeliver() {
    let app = spawn_app(Db::Sqlite).await;
    app.pending_order("T4101", "10.00").await;
    app.notify(genuine(&trade_success("T4101", "10.00"))).await;
    let run = |args: &[&str], webhook: bool| {
        let mut command = cli(&app.database_url);
        if webhook {
            command.env("WEBHOOK_URL", "http://127.0.0.1:9/hooks").env(
                "WEBHOOK_SECRET",
                alipay_notify::webhooks::WebhookSecret::generate(),
            );
        }
        let output = command.args(args).output().unwrap();
        let text =
            String::from_utf8(output.stdout).unwrap() + &String::from_utf8(output.stderr).unwrap();
        (output.status.code(), text)
    };

    let (code, list) = run(&["events", "list", "--json"], false);
    assert_eq!(code, Some(0), "{list}");
    let event: serde_json::Value = serde_json::from_str(list.lines().next().unwrap()).unwrap();
    assert_eq!(event["type"], "order.paid");
    assert_eq!(event["data"]["order"]["out_trade_no"], "T4101");
    let id = event["id"].as_str().unwrap();

    let (code, table) = run(&["events", "list"], false);
    assert_eq!(code, Some(0));
    assert!(table.contains(id) && table.contains("order.paid") && table.contains("T4101"));

    let (code, none) = run(&["events", "redeliver", id], false);
    assert_eq!(code, Some(2));
    assert!(none.contains("no webhook endpoint is configured"), "{none}");
    let (code, queued) = run(&["events", "redeliver", id], true);
    assert_eq!(code, Some(0), "{queued}");
    assert!(queued.contains("queued for default"), "{queued}");
    let (code, show) = run(&["events", "show", id], false);
    assert_eq!(code, Some(0));
    assert!(
        show.contains("default          pending   0 attempts"),
        "{show}"
    );
    assert_eq!(run(&["events", "show", "evt_none"], false).0, Some(2));
}

#[test]
fn a_bad_key_stops_serve_naming_the_setting_not_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("x.db").display());
    let secret = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDsecretsecret";
    let output = cli(&url)
        .args(["serve"])
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("ALIPAY_APP_ID", APP_ID)
        .env("ALIPAY_APP_PRIVATE_KEY", secret)
        .env("ALIPAY_PUBLIC_KEY", keys().alipay.public_key_base64())
        .output()
        .unwrap();

    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!output.status.success());
    assert!(stderr.contains("ALIPAY_APP_PRIVATE_KEY"), "{stderr}");
    assert!(!stderr.contains("secretsecret"), "{stderr}");

    let missing = cli(&url)
        .args(["serve"])
        .env("ALIPAY_APP_ID", APP_ID)
        .output()
        .unwrap();
    let stderr = String::from_utf8(missing.stderr).unwrap();
    assert!(
        stderr.contains("ALIPAY_APP_PRIVATE_KEY is not set"),
        "{stderr}"
    );

    let unreadable = cli(&url)
        .args(["serve"])
        .env("ALIPAY_APP_ID", APP_ID)
        .env("ALIPAY_APP_PRIVATE_KEY_FILE", "/nonexistent/key.pem")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(unreadable.stderr).unwrap(),
        "error: ALIPAY_APP_PRIVATE_KEY_FILE: cannot read /nonexistent/key.pem: \
         No such file or directory (os error 2)\n"
    );
}

/// Each cause said once, naming what failed: the messages a new user meets first, verbatim.
#[test]
fn start_up_errors_say_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("x.db").display());
    let stderr = |command: &mut Command| {
        let output = command.output().unwrap();
        assert!(!output.status.success());
        String::from_utf8(output.stderr).unwrap()
    };

    let not_a_key = stderr(
        cli(&url)
            .arg("serve")
            .env("ALIPAY_APP_ID", APP_ID)
            .env("ALIPAY_APP_PRIVATE_KEY", "not a key")
            .env("ALIPAY_PUBLIC_KEY", keys().alipay.public_key_base64()),
    );
    let mut server = url::Url::parse(&postgres_admin_url()).unwrap();
    server.set_path("nosuchdb");
    let no_database = stderr(cli(server.as_str()).arg("migrate"));
    let at = format!(
        "{}:{}",
        server.host_str().unwrap(),
        server.port().unwrap_or(5432)
    );
    let started = std::time::Instant::now();
    let unreachable = stderr(cli("postgres://postgres@127.0.0.1:1/shop").arg("migrate"));
    let waited = started.elapsed();
    let no_sqlite = stderr(
        cli("sqlite:data/alipay-notify.db")
            .current_dir(dir.path())
            .args(["orders", "list"]),
    );

    assert_eq!(
        not_a_key,
        "error: ALIPAY_APP_PRIVATE_KEY: the key is neither PEM nor base64\n"
    );
    assert_eq!(
        no_database,
        format!(
            "error: cannot connect to Postgres at {at} (database nosuchdb): error returned from \
             database: database \"nosuchdb\" does not exist\n"
        )
    );
    assert_eq!(
        unreachable,
        "error: cannot connect to Postgres at 127.0.0.1:1 (database shop): error communicating \
         with database: Connection refused (os error 111)\n"
    );
    assert!(waited < std::time::Duration::from_secs(4), "{waited:?}");
    assert_eq!(
        no_sqlite,
        "error: no SQLite database at data/alipay-notify.db; set DATABASE_URL, or create one with \
         `alipay-notify migrate`\n"
    );
    assert!(
        !dir.path().join("data").exists(),
        "`orders list` created a database"
    );
}

#[test]
fn serve_help_names_the_required_settings() {
    let output = cli("sqlite:unused.db")
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success());
    for setting in [
        "ALIPAY_APP_ID",
        "ALIPAY_APP_PRIVATE_KEY",
        "ALIPAY_PUBLIC_KEY",
        "DATABASE_URL",
    ] {
        assert!(help.contains(setting), "{setting} missing from:\n{help}");
    }
}

#[test]
fn migrate_applies_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("m.db").display());
    let output = cli(&url).arg("migrate").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        "migrations applied"
    );
}

/// Runs the CLI; its exit code and standard output.
fn run_cli(database_url: &str, args: &[&str]) -> (Option<i32>, String) {
    let output = cli(database_url).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty(), "{args:?} wrote to stderr: {stderr}");
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

/// Where `needle` starts on screen in `line` (a CJK character takes two cells).
fn column_of(line: &str, needle: &str) -> usize {
    let at = line
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {line:?}"));
    line[..at].width()
}

/// The lines of one section of `orders show` (after its `name:` line, up to a blank line).
fn section<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|line| *line != name)
        .skip(1)
        .take_while(|line| !line.is_empty())
        .collect()
}

/// `YYYY-MM-DD HH:MM:SS UTC`, nothing finer.
fn is_time_to_the_second(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.len() == 23
        && text.ends_with(" UTC")
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 | 19 => *b == b' ',
            13 | 16 => *b == b':',
            20.. => true,
            _ => b.is_ascii_digit(),
        })
}

/// Paid, a duplicate of the payment, a refund of 2.00 (Alipay's notification of it), and a
/// notification with the wrong amount: `orders show` says what each did, in time order, in
/// columns; `--json` carries the same timeline.
async fn orders_show_tells_the_story_of_a_partly_refunded_order(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("T4201", "10.00").await;
    let paid = trade_success("T4201", "10.00");
    app.notify(genuine(&paid)).await;
    app.notify(genuine(&paid)).await;
    let refund = [
        ("notify_id", "2026112800222231099T4201"),
        ("refund_fee", "2.00"),
        ("gmt_refund", "2026-11-28 23:20:00"),
        ("out_biz_no", "RF_4201"),
    ]
    .into_iter()
    .fold(paid.clone(), |params, (k, v)| with(params, k, v));
    app.notify(genuine(&refund)).await;
    let wrong_amount = with(paid, "total_amount", "9.00");
    app.notify(genuine(&with(wrong_amount, "notify_id", "n-9")))
        .await;

    let (code, show) = run_cli(&app.database_url, &["orders", "show", "T4201"]);
    let (json_code, json) = run_cli(&app.database_url, &["orders", "show", "T4201", "--json"]);

    assert_eq!((code, json_code), (Some(0), Some(0)));
    assert!(show.contains("refunded_amount:     2.00\n"), "{show}");
    let refunds = section(&show, "refunds:");
    assert_eq!(refunds.len(), 2, "{show}");
    assert!(refunds[1].starts_with("  RF_4201"), "{show}");
    assert!(refunds[1].contains("  2.00  succeeded  "), "{show}");
    let timeline = section(&show, "timeline:");
    let told: Vec<&str> = timeline
        .iter()
        .filter(|line| !line.contains("webhook_"))
        .map(|line| line.rsplit("  ").next().unwrap())
        .collect();
    assert_eq!(
        told,
        [
            "Order created for 10.00",
            "Payment of 10.00 applied (notification)",
            "Duplicate notification (TRADE_SUCCESS), nothing changed",
            "Refund of 2.00 applied (notification)",
            "Refund RF_4201 of 2.00 recorded as Alipay reported it (not requested through this \
             service)",
            "Anomaly: amount 9.00 differs from the order's 10.00 — order untouched (notification)",
        ],
        "{show}"
    );
    let webhook_events = timeline
        .iter()
        .filter(|l| l.contains("webhook_event"))
        .count();
    assert_eq!(
        webhook_events, 3,
        "order.paid, refund.succeeded, order.anomaly:\n{show}"
    );
    for line in &timeline {
        assert!(is_time_to_the_second(&line[2..25]), "{line}");
        let kind = line[25..].trim_start();
        assert_eq!(column_of(line, kind), 27, "the kind column: {show}");
    }
    let sentence_columns: std::collections::HashSet<usize> = timeline
        .iter()
        .map(|line| column_of(line, line.rsplit("  ").next().unwrap()))
        .collect();
    assert_eq!(sentence_columns.len(), 1, "the sentence column: {show}");

    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["order"]["refunded_amount"], "2.00");
    assert_eq!(json["notifications"].as_array().unwrap().len(), 4);
    assert_eq!(json["refunds"][0]["out_request_no"], "RF_4201");
    let entries = json["timeline"].as_array().unwrap();
    assert_eq!(entries.len(), timeline.len());
    let refund = entries.iter().find(|e| e["kind"] == "refunded").unwrap();
    assert_eq!(refund["amount"], "2.00");
    assert_eq!(refund["message"]["kind"], "refund_notification");
    assert_eq!(refund["text"], "Refund of 2.00 applied (notification)");
    let anomaly = entries.iter().find(|e| e["kind"] == "anomaly").unwrap();
    assert_eq!(anomaly["reason"], "amount_mismatch");
    assert_eq!(anomaly["message"]["id"], json["notifications"][3]["id"]);
}

/// Columns start at the same place on screen in every row, whatever the subject: long ones are
/// clipped, Chinese ones take two cells a character.
async fn orders_list_columns_line_up_with_long_and_wide_subjects(db: Db) {
    let app = spawn_app(db).await;
    let now = time::OffsetDateTime::now_utc();
    for (no, subject, amount) in [
        ("T4301", "Oolong tea", "10.00"),
        (
            "T4302_WITH_A_LONGER_NUMBER",
            "乌龙茶 (Tieguanyin), 500 g, 礼盒装, from Anxi, Fujian",
            "1234.56",
        ),
        ("T4303", "龙井", "0.50"),
    ] {
        let order = NewOrder {
            out_trade_no: no.into(),
            subject: subject.into(),
            body: None,
            total_amount: amount.parse().unwrap(),
            product: alipay_notify::alipay::product::Product::Page,
            created_at: now,
            expires_at: now + time::Duration::minutes(30),
        };
        app.store.create_order(&order).await.unwrap();
    }

    let (code, list) = run_cli(&app.database_url, &["orders", "list"]);

    assert_eq!(code, Some(0));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 4, "{list}");
    assert!(lines[0].starts_with("out_trade_no"), "{list}");
    let starts = |needle: fn(&str) -> String| -> std::collections::HashSet<usize> {
        lines[1..]
            .iter()
            .map(|l| column_of(l, &needle(l)))
            .collect()
    };
    // Amounts are right-aligned: their ends line up; the status and time columns start alike.
    let ends: std::collections::HashSet<usize> = lines
        .iter()
        .map(|l| {
            let amount = l.split_whitespace().nth(2).unwrap();
            column_of(l, &format!(" {amount} ")) + amount.width() + 1
        })
        .collect();
    assert_eq!(ends.len(), 1, "amounts:\n{list}");
    assert_eq!(starts(|_| "pending".into()).len(), 1, "status:\n{list}");
    let time_at = |l: &str| l[l.len() - 23..].to_owned();
    assert_eq!(starts(time_at).len(), 1, "created_at:\n{list}");
    assert!(
        lines[1..]
            .iter()
            .all(|l| is_time_to_the_second(&time_at(l))),
        "{list}"
    );
    assert_eq!(
        column_of(lines[0], "created_at"),
        column_of(lines[1], &time_at(lines[1])),
        "{list}"
    );
    assert!(
        list.contains("乌龙茶 (Tieguanyin), 500 g, 礼…"),
        "clipped:\n{list}"
    );
}
