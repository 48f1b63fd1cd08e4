//! The cashiers a buyer pays at: the desktop cashier (page pay), the phone cashier (wap pay), the
//! cashier Alipay's app shows for an order string (app pay), and the phone page a QR code leads to
//! (precreate). Each shows the trade with Log in (or Scan), Pay and Cancel; the QR page offers Pay
//! and Cancel only once it has been scanned, as the Alipay app does.

use maud::{html, Markup};

use super::config::RegisteredApp;
use super::layout::{layout, quit_link, summary, Screen};
use super::trades::Trade;
use alipay_notify::alipay::clock::format_beijing;
use alipay_notify::alipay::product::Product;

/// `/sim/cashier/{id}/{what}`: the buttons' form actions, the QR page's included.
fn action(trade: &Trade, what: &str) -> String {
    format!("/sim/cashier/{}/{what}", trade.cashier_id)
}

fn title(product: Product) -> &'static str {
    match product {
        Product::Page => "收银台 Cashier",
        Product::Wap => "手机收银台 Phone cashier",
        Product::App => "支付宝 App · 确认付款 Confirm payment",
        Product::Qr => "扫码付款 Scan to pay",
    }
}

/// The trade's status as the page states it: `NOT_CREATED` before a login or scan.
fn status_text(trade: &Trade) -> &'static str {
    trade.status.map_or("NOT_CREATED", |status| status.as_str())
}

/// A page pay, wap pay or app pay cashier: Log in until the buyer has, then who they are.
pub fn cashier(trade: &Trade, app: &RegisteredApp) -> Markup {
    let product = trade.product;
    layout(
        title(product),
        Screen::of(product),
        html! {
            (quit_link(trade))
            (heading(trade))
            (details(trade, app))
            @if trade.buyer.is_some() {
                (buyer(trade))
            } @else {
                form id="login-form" method="post" action=(action(trade, "login")) {
                    button type="submit" id="login" { "Log in 登录" }
                }
            }
            (pay_and_cancel(trade))
        },
    )
}

/// What the Alipay app shows after scanning a precreate QR code: Scan first (the phone page
/// stands in for the camera), then Pay and Cancel.
pub fn qr(trade: &Trade, app: &RegisteredApp, qr_code: &str) -> Markup {
    let scan = format!("/sim/qr/{}/scan", trade.cashier_id);
    layout(
        title(Product::Qr),
        Screen::Phone,
        html! {
            (heading(trade))
            (details(trade, app))
            p { "二维码 qr_code " code id="qr_code" { (qr_code) } }
            @if trade.status.is_none() {
                form id="scan-form" method="post" action=(scan) {
                    button type="submit" id="scan" { "Scan 扫一扫" }
                }
            } @else {
                (buyer(trade))
                (pay_and_cancel(trade))
            }
        },
    )
}

/// `#cashier` names the product and the trade's status for tests and scripts.
fn heading(trade: &Trade) -> Markup {
    html! {
        h1 id="cashier" data-product=(trade.product.as_str()) data-status=(status_text(trade)) {
            (title(trade.product))
        }
        p class="amount" id="amount" { "¥" (trade.total_amount) }
    }
}

fn details(trade: &Trade, app: &RegisteredApp) -> Markup {
    let more = html! {
        dt { "收款方 seller" } dd id="seller" { (app.seller_email) " (" (app.seller_id) ")" }
        dt { "应用 app_id" } dd id="app_id" { (app.app_id) }
        dt { "有效期至 expires" } dd id="expires" { (format_beijing(trade.expires_at)) " (北京时间)" }
    };
    summary(trade, more)
}

fn buyer(trade: &Trade) -> Markup {
    html! {
        @if let Some(buyer) = &trade.buyer {
            p id="buyer" data-buyer-logon-id=(buyer.buyer_logon_id) {
                "已登录 Logged in: " (buyer.buyer_logon_id)
            }
        }
    }
}

fn pay_and_cancel(trade: &Trade) -> Markup {
    html! {
        form id="pay-form" method="post" action=(action(trade, "pay")) {
            button type="submit" id="pay" { "Pay 付款" }
        }
        form id="cancel-form" method="post" action=(action(trade, "cancel")) {
            button type="submit" id="cancel" { "Cancel 取消" }
        }
    }
}
