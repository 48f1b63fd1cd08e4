//! Business failures, as Alipay reports them under code 40004 with an `ACQ.*` sub_code (trades) or
//! an `isv.*` one (certificate downloads), on API responses and on the cashiers' error page.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TradeError {
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("no such trade")]
    NotExist,
    #[error("the trade is already paid")]
    HasSuccess,
    #[error("the trade is closed")]
    HasClose,
    #[error("the trade is finished and can no longer be refunded")]
    HasFinished,
    #[error("total_amount differs from the existing trade's")]
    ContextInconsistent,
    #[error("the trade's status does not allow this")]
    StatusError,
    #[error("refunds would exceed the trade's total")]
    RefundExceedsTotal,
    #[error("out_request_no was used before with a different amount")]
    DiscordantRepeat,
    #[error("no Alipay certificate has this SN")]
    CertNotExist,
}

impl TradeError {
    pub fn sub_code(&self) -> &'static str {
        match self {
            Self::InvalidParameter(_) => "ACQ.INVALID_PARAMETER",
            Self::NotExist => "ACQ.TRADE_NOT_EXIST",
            Self::HasSuccess => "ACQ.TRADE_HAS_SUCCESS",
            Self::HasClose => "ACQ.TRADE_HAS_CLOSE",
            Self::HasFinished => "ACQ.TRADE_HAS_FINISHED",
            Self::ContextInconsistent => "ACQ.CONTEXT_INCONSISTENT",
            Self::StatusError => "ACQ.TRADE_STATUS_ERROR",
            Self::RefundExceedsTotal => "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
            Self::DiscordantRepeat => "ACQ.DISCORDANT_REPEAT_REQUEST",
            Self::CertNotExist => "isv.cert-not-exist",
        }
    }

    pub fn sub_msg(&self) -> String {
        match self {
            Self::InvalidParameter(detail) => format!("参数无效：{detail}"),
            Self::NotExist => "交易不存在".into(),
            Self::HasSuccess => "交易已被支付".into(),
            Self::HasClose => "交易已经关闭".into(),
            Self::HasFinished => "交易已完结".into(),
            Self::ContextInconsistent => "交易信息被篡改".into(),
            Self::StatusError => "交易状态不合法".into(),
            Self::RefundExceedsTotal => "退款金额超限".into(),
            Self::DiscordantRepeat => "不一致的请求".into(),
            Self::CertNotExist => "证书不存在".into(),
        }
    }
}
