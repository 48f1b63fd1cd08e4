//! The frame every page at the simulated gateway shares: one style sheet that fits a 390 px phone
//! as well as a desktop, the header, the trade's numbers, and the way back to the merchant's shop.
//! maud escapes every interpolated value, and request values reach these pages, so nothing is
//! ever inserted unescaped.

use maud::{html, Markup, DOCTYPE};
use url::Url;

use super::trades::Trade;
use alipay_notify::alipay::product::Product;

/// Values (28-digit trade numbers, URLs) wrap anywhere rather than widen the card; on a narrow
/// screen labels stack above their values; `dd` loses the indent that pushed values off the grid.
const STYLE: &str = "*{box-sizing:border-box}\
body{font-family:system-ui,sans-serif;background:#eef3fb;margin:0;padding:3rem 1rem}\
main{max-width:30rem;margin:0 auto;background:#fff;padding:2rem;border-radius:10px;\
box-shadow:0 2px 12px #0001}.phone main{max-width:24rem}\
header{color:#1677ff;font-weight:600;margin-bottom:1rem}h1{font-size:1.5rem}\
h1,p,dd,code,a{overflow-wrap:anywhere}\
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.4rem 1rem;\
align-items:baseline}dt{color:#667}dd{margin:0;min-width:0}\
.amount{font-size:2rem;font-weight:600}form{display:inline-block;margin:1rem .5rem 0 0}\
.phone form{display:block;margin:.8rem 0 0}.phone button{width:100%}\
button{border:0;border-radius:6px;padding:.7rem 1.4rem;font-size:1rem;cursor:pointer}\
#pay,#scan{background:#1677ff;color:#fff}#cancel,#login{background:#e9ecef}\
a.back{display:inline-block;margin:.5rem 0;color:#1677ff}\
pre{white-space:pre-wrap;word-break:break-all;background:#f6f8fa;padding:.8rem;\
border-radius:6px}code{color:#c7254e}\
@media (max-width:32rem){body{padding:0}main,.phone main{max-width:none;border-radius:0;\
box-shadow:none;padding:1.25rem 1rem;min-height:100vh}dl{grid-template-columns:minmax(0,1fr);gap:0}\
dd{margin-bottom:.6rem}}";

/// The layout a page is drawn in: Alipay shows page pay on a desktop, everything else on a phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Screen {
    Desktop,
    Phone,
}

impl Screen {
    pub fn of(product: Product) -> Self {
        match product {
            Product::Page => Self::Desktop,
            Product::Wap | Product::Qr | Product::App => Self::Phone,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Desktop => "desktop",
            Self::Phone => "phone",
        }
    }
}

/// A whole page. `body` and `main` carry the screen as a class and `data-layout`.
pub(crate) fn layout(title: &str, screen: Screen, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " - 支付宝 (simulated)" }
                style { (STYLE) }
            }
            body class=(screen.as_str()) { main data-layout=(screen.as_str()) {
                header { "支付宝 · Alipay gateway simulator" }
                (content)
            } }
        }
    }
}

/// The trade's numbers, and Alipay's once it has one, with `more` rows in the same grid (one
/// grid, so that every label column lines up).
pub(crate) fn summary(trade: &Trade, more: Markup) -> Markup {
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

/// Only http(s) URLs become links: a signed request may still name `javascript:…`.
fn web_url(text: &str) -> Option<Url> {
    Url::parse(text)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
}

/// Where the buyer goes back to: quit_url when the request had one, otherwise the site that
/// return_url (or notify_url) belongs to.
pub(crate) fn shop_url(trade: &Trade) -> Option<String> {
    if let Some(quit) = trade.quit_url.as_deref().and_then(web_url) {
        return Some(quit.into());
    }
    [&trade.return_url, &trade.notify_url]
        .into_iter()
        .flatten()
        .find_map(|url| web_url(url))
        .map(|url| format!("{}/", url.origin().ascii_serialization()))
}

/// "返回商户 Back to the shop", when there is anywhere to go back to.
pub(crate) fn back_to_shop(trade: &Trade) -> Markup {
    html! {
        @if let Some(url) = shop_url(trade) {
            p { a id="back-to-shop" class="back" href=(url) { "返回商户 Back to the shop" } }
        }
    }
}

/// The phone cashier's "back" to quit_url (which the request may leave out).
pub(crate) fn quit_link(trade: &Trade) -> Markup {
    html! {
        @if let Some(url) = trade.quit_url.as_deref().and_then(web_url) {
            a id="quit" class="back" href=(url) { "‹ 返回商户 Back to the shop" }
        }
    }
}
