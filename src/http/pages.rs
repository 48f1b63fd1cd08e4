//! The few HTML pages a buyer sees. maud escapes every interpolated value.

use maud::{html, Markup, DOCTYPE};

use crate::orders::{Order, OrderStatus};

fn layout(title: &str, content: Markup) -> Markup {
    layout_with(title, None, content)
}

/// `refresh`: reload after that many seconds (a pending payment page waits for its notification).
fn layout_with(title: &str, refresh: Option<u32>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if let Some(seconds) = refresh { meta http-equiv="refresh" content=(seconds); }
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (STYLE) }
            }
            body { main { (content) } }
        }
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f6f8;margin:0}\
main{max-width:28rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:12px;\
box-shadow:0 2px 12px #0001}h1{font-size:1.4rem}dl{display:grid;grid-template-columns:auto 1fr;\
gap:.4rem 1rem}dt{color:#667}button{background:#1677ff;color:#fff;border:0;border-radius:8px;\
padding:.8rem 1.4rem;font-size:1rem;cursor:pointer}input{padding:.5rem;font-size:1rem;width:100%;\
box-sizing:border-box}label{display:block;margin:.8rem 0}.paid{color:#198754}.pending{color:#b58105}";

/// The demo shop, or a plain notice when checkout is closed.
pub fn shop(checkout_open: bool) -> Markup {
    if !checkout_open {
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
            }
        },
    )
}

/// The buyer's order page. `told`: whether the shop's webhook endpoint has received the payment
/// (`None` when no webhooks are configured); the page refreshes until it has.
pub(crate) fn order_status(order: &Order, told: Option<bool>) -> Markup {
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
            dl {
                dt { "Order" } dd id="out_trade_no" { (order.out_trade_no) }
                dt { "Item" } dd { (order.subject) }
                dt { "Amount" } dd id="amount" { "¥" (order.total_amount) }
                @if let Some(trade_no) = &order.trade_no { dt { "Alipay trade" } dd { (trade_no) } }
            }
        },
    )
}

pub fn unverified() -> Markup {
    layout(
        "Cannot verify",
        html! {
            h1 { "We could not verify this payment result" }
            p { "The link is incomplete or was altered. Your order status is unaffected." }
        },
    )
}

pub fn unknown_order(out_trade_no: &str) -> Markup {
    layout(
        "Unknown order",
        html! {
            h1 { "Unknown order" }
            p { "No order " code { (out_trade_no) } " is known here." }
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
        },
    )
}

pub fn unavailable() -> Markup {
    layout(
        "Try again",
        html! {
            h1 { "Temporarily unavailable" }
            p { "Please refresh in a moment." }
        },
    )
}
