//! The ways a buyer can pay: one Alipay product each, with its gateway method and product_code.
//! Notify, query, close and refund are the same for all of them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    /// The desktop cashier: the browser is sent to the gateway.
    Page,
    /// The phone cashier: the same, laid out for phone browsers.
    Wap,
    /// A QR code the buyer scans with the Alipay app (precreate, "face to face").
    Qr,
    /// A signed order string the merchant's own app hands to Alipay's app SDK.
    App,
}

impl Product {
    pub const ALL: [Self; 4] = [Self::Page, Self::Wap, Self::Qr, Self::App];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::Wap => "wap",
            Self::Qr => "qr",
            Self::App => "app",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The gateway method that creates the trade.
    pub fn method(self) -> &'static str {
        match self {
            Self::Page => "alipay.trade.page.pay",
            Self::Wap => "alipay.trade.wap.pay",
            Self::Qr => "alipay.trade.precreate",
            Self::App => "alipay.trade.app.pay",
        }
    }

    /// The biz_content `product_code` Alipay expects (optional for precreate, where it is sent
    /// anyway so that every request names its product).
    pub fn product_code(self) -> &'static str {
        match self {
            Self::Page => "FAST_INSTANT_TRADE_PAY",
            Self::Wap => "QUICK_WAP_WAY",
            Self::Qr => "FACE_TO_FACE_PAYMENT",
            Self::App => "QUICK_MSECURITY_PAY",
        }
    }

    /// Whether the buyer's browser is sent to the gateway (and comes back to return_url).
    pub fn redirects(self) -> bool {
        matches!(self, Self::Page | Self::Wap)
    }
}

impl std::fmt::Display for Product {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_methods_are_alipays() {
        for product in Product::ALL {
            assert_eq!(Product::parse(product.as_str()), Some(product));
        }
        assert_eq!(Product::parse("PAGE"), None);
        assert_eq!(Product::Wap.method(), "alipay.trade.wap.pay");
        assert_eq!(Product::App.product_code(), "QUICK_MSECURITY_PAY");
    }
}
