//! The pages a buyer sees at the simulated gateway: the cashier with Pay and Cancel, Alipay-style
//! error pages, and the closed and paid notices. maud escapes every interpolated value, and request
//! values reach these pages, so nothing is ever inserted unescaped.

use maud::{html, Markup, DOCTYPE};

use super::config::RegisteredApp;
use super::trades::Trade;
use alipay_notify::alipay::clock::format_beijing;

/// Values (28-digit trade numbers, URLs) wrap anywhere rather than widen the card; on a narrow
/// screen labels stack above their values; `dd` loses the indent that pushed values off the grid.
const STYLE: &str = "*{box-sizing:border-box}\
body{font-family:system-ui,sans-serif;background:#eef3fb;margin:0;padding:3rem 1rem}\
main{max-width:30rem;margin:0 auto;background:#fff;padding:2rem;border-radius:10px;\
box-shadow:0 2px 12px #0001}header{color:#1677ff;font-weight:600;margin-bottom:1rem}\
h1{font-size:1.5rem}h1,p,dd,code,a{overflow-wrap:anywhere}\
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.4rem 1rem;\
align-items:baseline}dt{color:#667}dd{margin:0;min-width:0}\
.amount{font-size:2rem;font-weight:600}form{display:inline-block;margin:1rem .5rem 0 0}\
button{border:0;border-radius:6px;padding:.7rem 1.4rem;font-size:1rem;cursor:pointer}\
#pay{background:#1677ff;color:#fff}#cancel{background:#e9ecef}\
pre{white-space:pre-wrap;word-break:break-all;background:#f6f8fa;padding:.8rem;\
border-radius:6px}code{color:#c7254e}\
@media (max-width:32rem){body{padding:0}main{border-radius:0;box-shadow:none;\
padding:1.25rem 1rem;min-height:100vh}dl{grid-template-columns:minmax(0,1fr);gap:0}\
dd{margin-bottom:.6rem}}";

fn layout(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " - 支付宝 (simulated)" }
                style { (STYLE) }
            }
            body { main {
                header { "支付宝 · Alipay gateway simulator" }
                (content)
            } }
        }
    }
}

/// The trade's numbers, and Alipay's once it has one, with `more` rows in the same grid (one
/// grid, so that every label column lines up).
fn summary(trade: &Trade, more: Markup) -> Markup {
    html! {
        dl {
            dt { "商户订单号 out_trade_no" } dd id="out_trade_no" { (trade.out_trade_no) }
            dt { "商品 subject" } dd id="subject" { (trade.subject) }
            @if let Some(trade_no) = &trade.trade_no {
                dt { "交易号 trade_no" } dd id="trade_no" { (trade_no) }
            }
            (more)
        }
    }
}

pub fn cashier(trade: &Trade, app: &RegisteredApp) -> Markup {
    let action = |what: &str| format!("/sim/cashier/{}/{what}", trade.cashier_id);
    layout(
        "收银台",
        html! {
            h1 { "收银台 Cashier" }
            p class="amount" id="amount" { "¥" (trade.total_amount) }
            (summary(trade, html! {
                dt { "收款方 seller" } dd id="seller" { (app.seller_email) " (" (app.seller_id) ")" }
                dt { "应用 app_id" } dd id="app_id" { (app.app_id) }
                dt { "有效期至 expires" } dd id="expires" { (format_beijing(trade.expires_at)) " (北京时间)" }
            }))
            form method="post" action=(action("pay")) {
                button type="submit" id="pay" { "Pay 付款" }
            }
            form method="post" action=(action("cancel")) {
                button type="submit" id="cancel" { "Cancel 取消" }
            }
        },
    )
}

/// Alipay's page for a refused request, with the sign string it verified when the signature
/// failed: that string is how merchants find what they signed differently.
pub fn error(sub_code: &str, sub_msg: &str, sign_content: Option<&str>) -> Markup {
    // Alipay prints the code without its `isv.` prefix; both forms are here to search for.
    let short = sub_code.strip_prefix("isv.").unwrap_or(sub_code);
    layout(
        "错误",
        html! {
            h1 { "调试错误，请回到请求来源地，重新发起请求。" }
            p { "错误代码 " code id="error-code" data-sub-code=(sub_code) { (short) } " (" (sub_code) ")" }
            p id="error-message" { "错误原因: " (sub_msg) }
            @if let Some(content) = sign_content {
                p { "网关生成的验签字符串 (the sign string the gateway verified):" }
                pre id="sign-content" { (content) }
            }
        },
    )
}

pub fn closed(trade: &Trade) -> Markup {
    layout(
        "交易关闭",
        html! {
            h1 id="status" data-status="TRADE_CLOSED" { "交易已关闭 Trade closed" }
            p { "This trade can no longer be paid. Return to the merchant's site to start again." }
            (summary(trade, html! {}))
        },
    )
}

/// Shown after Pay when the request named no usable return_url.
pub fn paid(trade: &Trade) -> Markup {
    layout(
        "付款成功",
        html! {
            h1 id="status" data-status="TRADE_SUCCESS" { "付款成功 Payment complete" }
            p class="amount" { "¥" (trade.total_amount) }
            (summary(trade, html! {}))
        },
    )
}

pub fn not_found() -> Markup {
    layout(
        "不存在",
        html! {
            h1 { "收银台不存在 No such cashier" }
            p { "This payment page is unknown to the simulator (was it restarted?)." }
        },
    )
}
