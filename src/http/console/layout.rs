//! The frame of every console page, its stylesheet, and the strict policy it is served with:
//! no script at all, and only this stylesheet (allowed by its hash), so a value that slipped
//! past escaping still could not run.

use aws_lc_rs::digest::{digest, SHA256};
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use maud::{html, Markup, DOCTYPE};

use super::auth::Session;
use crate::alipay::clock::format_beijing;
use time::OffsetDateTime;

/// Readable on a phone: tables scroll sideways inside their box instead of widening the page,
/// long numbers and subjects wrap anywhere.
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f6f8;margin:0;\
color:#1d2330}header{background:#1d2330;color:#fff;padding:.6rem 1rem;display:flex;\
flex-wrap:wrap;gap:.4rem 1.2rem;align-items:center}header a{color:#fff;text-decoration:none}\
header .who{margin-left:auto;font-size:.9rem;opacity:.85}header form{display:inline}\
main{max-width:72rem;margin:1rem auto;padding:0 1rem}h1{font-size:1.3rem}\
.card{background:#fff;border-radius:10px;box-shadow:0 1px 6px #0001;padding:1rem;\
margin-bottom:1rem;overflow-x:auto}table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e6e9ee;\
vertical-align:top}td{overflow-wrap:break-word;max-width:22rem}th{font-size:.85rem;color:#556}\
td.num,th.num{text-align:right;white-space:nowrap}td.when{white-space:nowrap}\
.status{font-weight:600}.status.paid{color:#198754}.status.pending{color:#b58105}\
.status.closed{color:#6c757d}.status.refunded{color:#6f42c1}\
svg.chart{width:100%;height:auto;max-height:12rem}.legend svg{vertical-align:middle}\
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}\
form.filters label{display:flex;flex-direction:column;font-size:.8rem;color:#556}\
input,select,button,textarea{font:inherit;padding:.35rem .5rem;border:1px solid #c9ced6;\
border-radius:6px}button{background:#1677ff;color:#fff;border-color:#1677ff;cursor:pointer}\
button.link{background:none;border:0;color:inherit;padding:0;text-decoration:underline}\
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.3rem 1rem;margin:0}\
dt{color:#667}dd{margin:0;overflow-wrap:anywhere}.error{color:#b02a37}.muted{color:#778}\
.pager{margin-top:.8rem}@media(max-width:40rem){dl{grid-template-columns:1fr}\
dd{margin-bottom:.4rem}main{padding:0 .5rem}}";

/// `Content-Security-Policy` for console pages: nothing loads, nothing runs; the one inline
/// stylesheet is allowed by its SHA-256.
pub fn content_security_policy() -> HeaderValue {
    let hash = STANDARD.encode(digest(&SHA256, STYLE.as_bytes()));
    let policy = format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self' data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&policy).expect("an ASCII policy")
}

/// A console page: its own policy, never cached (it shows live money).
pub fn page(
    csp: &HeaderValue,
    title: &str,
    session: Option<&Session>,
    content: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · alipay-notify console" }
                style { (STYLE) }
            }
            body {
                header {
                    strong { "alipay-notify" }
                    @if let Some(session) = session {
                        a href="/console" { "Overview" }
                        a href="/console/orders" { "Orders" }
                        a href="/console/anomalies" { "Anomalies" }
                        span class="who" {
                            (session.operator) " (" (role_name(session)) ") · "
                            form method="post" action="/console/logout" {
                                input type="hidden" name="csrf" value=(session.csrf);
                                button class="link" type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main { (content) }
            }
        }
    };
    (
        [
            (header::CONTENT_SECURITY_POLICY, csp.clone()),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            // Not `no-referrer` as elsewhere: with it a browser posts forms with `Origin: null`,
            // and the console checks that its forms come from itself. Other sites still get
            // no referrer.
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ),
        ],
        Html(markup.into_string()),
    )
        .into_response()
}

fn role_name(session: &Session) -> &'static str {
    if session.may_act() {
        "operator"
    } else {
        "viewer"
    }
}

/// Times as ops read them here: Beijing time, to the second, with its zone said.
pub fn time(at: OffsetDateTime) -> String {
    format!("{} +08:00", format_beijing(at))
}
