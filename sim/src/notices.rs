//! The pages a buyer sees instead of a cashier: Alipay-style error pages for refused requests, the
//! closed and paid notices (each with the way back to the shop, and for app pay the resultStatus
//! Alipay's app SDK would hand the merchant's app), and "no such cashier".

use maud::{html, Markup};

use super::layout::{back_to_shop, layout, summary, Screen};
use super::trades::Trade;
use alipay_notify::alipay::product::Product;

/// Alipay's page for a refused request, with the sign string it verified when the signature
/// failed: that string is how merchants find what they signed differently.
pub fn error(sub_code: &str, sub_msg: &str, sign_content: Option<&str>, screen: Screen) -> Markup {
    // Alipay prints the code without its `isv.` prefix; both forms are here to search for.
    let short = sub_code.strip_prefix("isv.").unwrap_or(sub_code);
    layout(
        "错误",
        screen,
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

/// The app SDK's result codes: paid, cancelled by the buyer, failed.
const APP_PAID: &str = "9000";
const APP_CANCELLED: &str = "6001";
const APP_FAILED: &str = "4000";

/// What the app SDK would report to the merchant's app (app pay only).
fn app_result(trade: &Trade, code: &str) -> Markup {
    html! {
        @if trade.product == Product::App {
            p id="result-status" data-result-status=(code) { "resultStatus=" (code) }
        }
    }
}

/// The trade can no longer be paid; `cancelled` when that is because the buyer just said so.
pub fn closed(trade: &Trade, cancelled: bool) -> Markup {
    let app_code = if cancelled { APP_CANCELLED } else { APP_FAILED };
    layout(
        "交易关闭",
        Screen::of(trade.product),
        html! {
            h1 id="status" data-status="TRADE_CLOSED" { "交易已关闭 Trade closed" }
            p { "This trade can no longer be paid. Return to the merchant's site to start again." }
            (app_result(trade, app_code))
            (summary(trade, html! {}))
            (back_to_shop(trade))
        },
    )
}

/// Shown after Pay when there is no return_url to send the buyer to (always for QR and app pay).
pub fn paid(trade: &Trade) -> Markup {
    layout(
        "付款成功",
        Screen::of(trade.product),
        html! {
            h1 id="status" data-status="TRADE_SUCCESS" { "付款成功 Payment complete" }
            p class="amount" { "¥" (trade.total_amount) }
            (app_result(trade, APP_PAID))
            (summary(trade, html! {}))
            (back_to_shop(trade))
        },
    )
}

pub fn not_found() -> Markup {
    layout(
        "不存在",
        Screen::Desktop,
        html! {
            h1 { "收银台不存在 No such cashier" }
            p { "This payment page is unknown to the simulator (was it restarted?)." }
        },
    )
}
