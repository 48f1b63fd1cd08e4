//! The command line, as ops use it: start-up errors, `migrate`, `orders show` and `orders list`.

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
    let stderr = String::from_utf8(unreadable.stderr).unwrap();
    assert!(
        stderr.contains("ALIPAY_APP_PRIVATE_KEY: cannot read /nonexistent/key.pem"),
        "{stderr}"
    );
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
