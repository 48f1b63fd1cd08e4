//! The few HTML pages a buyer sees. maud escapes every interpolated value.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use qrcode::render::svg;
use qrcode::QrCode;

use super::Checkout;
use crate::alipay::clock::format_beijing;
use crate::alipay::product::Product;
use crate::orders::{Order, OrderStatus};

fn layout(title: &str, content: Markup) -> Markup {
    layout_with(title, None, false, content)
}

/// `refresh`: reload after that many seconds (a pending payment page waits for its notification).
/// `script`: the pay page script that follows an order (the QR page).
fn layout_with(title: &str, refresh: Option<u32>, script: bool, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if let Some(seconds) = refresh { meta http-equiv="refresh" content=(seconds); }
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (STYLE) }
                @if script { script src="/assets/pay.js" defer {} }
            }
            body { main { (content) } }
        }
    }
}

/// Fits a 390 px phone: the card keeps a small margin, long order and trade numbers wrap anywhere,
/// and label/value pairs stack on narrow screens instead of widening the card.
const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f6f8;margin:0}\
main{max-width:28rem;margin:2rem auto;background:#fff;padding:1.5rem;border-radius:12px;\
box-shadow:0 2px 12px #0001}@media(max-width:30rem){main{margin:.75rem}}\
h1{font-size:1.4rem}dl{display:grid;grid-template-columns:max-content minmax(0,1fr);\
gap:.4rem 1rem;align-items:baseline}dt{color:#667}dd{margin:0;overflow-wrap:anywhere;min-width:0}\
@media(max-width:22rem){dl{grid-template-columns:1fr}dd{margin-bottom:.4rem}}\
button{background:#1677ff;color:#fff;border:0;border-radius:8px;padding:.8rem 1.4rem;\
font-size:1rem;cursor:pointer}button.secondary{background:#e8f0fe;color:#1651c4}\
.choices{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:.8rem}input{padding:.5rem;\
font-size:1rem;width:100%;box-sizing:border-box}label{display:block;margin:.8rem 0}\
.paid{color:#198754}.pending{color:#b58105}.back{display:inline-block;margin-top:1.2rem}\
.qr{display:block;width:100%;max-width:16rem;height:auto;margin:1rem auto}\
.amount{font-size:2rem;font-weight:600;margin:.5rem 0}code{overflow-wrap:anywhere}";

/// The demo shop, or a plain notice when checkout is closed. The main button lets the service
/// pick the product (the phone cashier on a phone); the others choose one.
pub fn shop(checkout: &Checkout) -> Markup {
    if !checkout.open {
        return layout(
            "alipay-notify",
            html! {
                h1 { "alipay-notify" }
                p { "This service takes Alipay payments for orders created through its API." }
            },
        );
    }
    layout(
        "Demo shop",
        html! {
            h1 { "Demo shop" }
            form method="post" action="/alipay/create" {
                label { "Product" input name="subject" value="Oolong tea, 250 g" required; }
                label { "Amount (yuan)" input name="total_amount" value="88.00" required; }
                button type="submit" id="pay" { "Pay with Alipay" }
                div class="choices" {
                    @for product in checkout.products.iter().filter(|p| **p != Product::App) {
                        button type="submit" class="secondary" name="product"
                            value=(product.as_str()) id={ "pay-" (product.as_str()) } {
                            (choice_label(*product))
                        }
                    }
                }
            }
        },
    )
}

fn choice_label(product: Product) -> &'static str {
    match product {
        Product::Page => "Pay on this computer",
        Product::Wap => "Pay on a phone",
        Product::Qr => "Scan a QR code",
        Product::App => "Pay in the app",
    }
}

/// The way back to the shop, on every page a buyer can end up on.
fn back_link(back: &str) -> Markup {
    html! { a class="back" id="back" href=(back) { "← Back to the shop" } }
}

/// The order's facts as one grid (one grid per page keeps the labels in line). `expiry`: with
/// the time to pay before.
fn order_facts(order: &Order, expiry: bool) -> Markup {
    html! {
        dl {
            dt { "Order" } dd id="out_trade_no" { (order.out_trade_no) }
            dt { "Item" } dd id="subject" { (order.subject) }
            dt { "Amount" } dd id="amount" { "¥" (order.total_amount) }
            @if let Some(trade_no) = &order.trade_no {
                dt { "Alipay trade" } dd id="trade_no" { (trade_no) }
            }
            @if expiry {
                dt { "Pay before" }
                dd id="expires" { (format_beijing(order.expires_at)) " (Beijing time)" }
            }
        }
    }
}

/// The buyer's order page. `told`: whether the shop's webhook endpoint has received the payment
/// (`None` when no webhooks are configured); the page refreshes until it has.
pub(crate) fn order_status(order: &Order, told: Option<bool>, back: &str) -> Markup {
    let (class, headline) = match order.status {
        OrderStatus::Paid => ("paid", "Payment received"),
        OrderStatus::Pending => ("pending", "Your payment is being confirmed"),
        OrderStatus::Closed => ("closed", "This order was closed"),
        OrderStatus::Refunded => ("refunded", "This order was refunded"),
    };
    let waiting_for_shop = order.status == OrderStatus::Paid && told == Some(false);
    let refresh = (order.status == OrderStatus::Pending || waiting_for_shop).then_some(2);
    layout_with(
        headline,
        refresh,
        false,
        html! {
            h1 class=(class) id="status" data-status=(order.status.as_str()) { (headline) }
            @if order.status == OrderStatus::Pending {
                p { "Alipay has not confirmed this payment to us yet. Refresh in a moment." }
            }
            @if order.status == OrderStatus::Paid && told == Some(true) {
                p class="paid" id="fulfilled" { "Order fulfilled (webhook received)" }
            } @else if waiting_for_shop {
                p id="fulfilling" { "Telling the shop…" }
            }
            (order_facts(order, false))
            (back_link(back))
        },
    )
}

/// A pending order whose time to pay is over.
pub(crate) fn expired(order: &Order, back: &str) -> Markup {
    layout(
        "Order expired",
        html! {
            h1 id="status" data-status="expired" { "This order has expired" }
            p { "The time to pay it ended at " (format_beijing(order.expires_at)) " (Beijing time). \
                 Nothing was charged; start again from the shop." }
            (order_facts(order, false))
            (back_link(back))
        },
    )
}

/// An app order opened in a browser: it is paid in the shop's app, not here.
pub(crate) fn in_app(order: &Order, back: &str) -> Markup {
    layout(
        "Pay in the app",
        html! {
            h1 id="status" data-status="app" { "Pay for this order in the shop's app" }
            p { "This order was created for payment in the shop's mobile app." }
            (order_facts(order, false))
            (back_link(back))
        },
    )
}

/// What the QR page shows.
pub(crate) struct Qr<'a> {
    pub order: &'a Order,
    /// The code's content, as the gateway's precreate answered it.
    pub qr_code: &'a str,
    pub status_url: &'a str,
    pub back: &'a str,
}

/// The QR code as an inline SVG: the crate draws rectangles only, no text from outside, so the
/// markup is safe to insert unescaped. `None` if the content is too long for any QR version.
fn qr_svg(content: &str) -> Option<String> {
    let code = QrCode::new(content.as_bytes()).ok()?;
    let svg = code
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg")?;
    Some(svg[start..].replacen(
        "<svg ",
        r#"<svg class="qr" id="qr" role="img" aria-label="QR code" "#,
        1,
    ))
}

/// The page a buyer scans with the Alipay app; it follows the order until it is paid or closed.
pub(crate) fn qr(page: &Qr<'_>) -> Markup {
    let order = page.order;
    layout_with(
        "Scan to pay",
        None,
        true,
        html! {
            h1 id="status" data-status="pending" { "Scan with Alipay to pay" }
            p class="amount" id="qr-amount" { "¥" (order.total_amount) }
            @match qr_svg(page.qr_code) {
                Some(svg) => (PreEscaped(svg)),
                None => p id="qr-missing" { "The code cannot be drawn; open " a href=(page.qr_code) { "this link" } " in Alipay." },
            }
            p id="follow" data-status-url=(page.status_url) data-status="pending" {
                "Waiting for your payment… this page updates by itself."
            }
            (order_facts(order, true))
            p { "On a phone? " a id="qr-link" href=(page.qr_code) { "Open the code in Alipay" } }
            (back_link(page.back))
        },
    )
}

pub fn unverified() -> Markup {
    layout(
        "Cannot verify",
        html! {
            h1 { "We could not verify this payment result" }
            p { "The link is incomplete or was altered. Your order status is unaffected." }
            (back_link("/"))
        },
    )
}

pub fn unknown_order(out_trade_no: &str) -> Markup {
    layout(
        "Unknown order",
        html! {
            h1 { "Unknown order" }
            p { "No order " code { (out_trade_no) } " is known here." }
            (back_link("/"))
        },
    )
}

/// A request the page cannot act on, with the reason.
pub fn refused(reason: &str) -> Markup {
    layout(
        "Cannot continue",
        html! {
            h1 { "We cannot take this payment" }
            p id="reason" { (reason) }
            (back_link("/"))
        },
    )
}

pub fn unavailable() -> Markup {
    layout(
        "Try again",
        html! {
            h1 { "Temporarily unavailable" }
            p { "Please refresh in a moment." }
            (back_link("/"))
        },
    )
}
