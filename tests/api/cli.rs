//! The command line, as ops use it: start-up errors, `migrate`, `orders show` and `orders list`,
//! `events list`, `events show` and `events redeliver`.

use std::process::Command;

use crate::helpers::*;

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
    assert!(show.contains("TRADE_SUCCESS   applied"), "{show}");
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
