//! Requests the gateway refuses before any business logic, as Alipay reports them: code 40001
//! (a required argument missing) or 40002 (invalid), an `isv.*` sub_code and Alipay's own words.

use alipay_notify::alipay::form::FormError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("malformed parameters: {0}")]
    Form(#[from] FormError),
    #[error("charset missing, unsupported, or not what the bytes are")]
    InvalidCharset,
    #[error("app_id missing")]
    MissingAppId,
    #[error("app_id unknown")]
    InvalidAppId,
    #[error("method missing")]
    MissingMethod,
    #[error("method unknown")]
    InvalidMethod,
    #[error("format is not JSON")]
    InvalidFormat,
    #[error("sign missing")]
    MissingSignature,
    #[error("sign_type missing")]
    MissingSignType,
    #[error("sign_type is not RSA2")]
    InvalidSignType,
    #[error("timestamp missing")]
    MissingTimestamp,
    #[error("timestamp malformed or more than ten minutes off")]
    InvalidTimestamp,
    #[error("version missing")]
    MissingVersion,
    #[error("version is not 1.0")]
    InvalidVersion,
    #[error("app_cert_sn missing or not the app's certificate")]
    AppCertNotExist,
    #[error("alipay_root_cert_sn missing or without Alipay's root")]
    InvalidRootCertSn,
    #[error("signature does not verify with the app's public key")]
    InvalidSignature { content: String },
    #[error("biz_content is missing or not a JSON object")]
    InvalidBizContent,
}

impl GatewayError {
    fn is_missing(&self) -> bool {
        matches!(
            self,
            Self::MissingAppId
                | Self::MissingMethod
                | Self::MissingSignature
                | Self::MissingSignType
                | Self::MissingTimestamp
                | Self::MissingVersion
        )
    }

    pub fn code(&self) -> &'static str {
        if self.is_missing() {
            "40001"
        } else {
            "40002"
        }
    }

    pub fn msg(&self) -> &'static str {
        if self.is_missing() {
            "Missing Required Arguments"
        } else {
            "Invalid Arguments"
        }
    }

    pub fn sub_code(&self) -> &'static str {
        match self {
            Self::Form(_) | Self::InvalidVersion => "isv.invalid-parameter",
            Self::InvalidCharset => "isv.invalid-charset",
            Self::MissingAppId => "isv.missing-app-id",
            Self::InvalidAppId => "isv.invalid-app-id",
            Self::MissingMethod => "isv.missing-method",
            Self::InvalidMethod => "isv.invalid-method",
            Self::InvalidFormat => "isv.invalid-format",
            Self::MissingSignature => "isv.missing-signature",
            Self::MissingSignType => "isv.missing-signature-type",
            Self::InvalidSignType => "isv.invalid-signature-type",
            Self::MissingTimestamp => "isv.missing-timestamp",
            Self::InvalidTimestamp => "isv.invalid-timestamp",
            Self::MissingVersion => "isv.missing-version",
            Self::AppCertNotExist => "isv.app-cert-not-exist",
            Self::InvalidRootCertSn => "isv.invalid-alipay-root-cert-sn",
            Self::InvalidSignature { .. } => "isv.invalid-signature",
            Self::InvalidBizContent => "isv.invalid-biz-content",
        }
    }

    /// Alipay's own wording; for a bad signature it prints the sign string it verified.
    pub fn sub_msg(&self) -> String {
        match self {
            Self::Form(_) | Self::InvalidVersion => "参数无效".into(),
            Self::InvalidCharset => "字符集错误".into(),
            Self::MissingAppId => "缺少AppID参数".into(),
            Self::InvalidAppId => "无效的AppID参数".into(),
            Self::MissingMethod => "缺少方法名参数".into(),
            Self::InvalidMethod => "不存在的方法名".into(),
            Self::InvalidFormat => "无效的数据格式".into(),
            Self::MissingSignature => "缺少签名参数".into(),
            Self::MissingSignType => "缺少签名类型参数".into(),
            Self::InvalidSignType => "无效的签名类型".into(),
            Self::MissingTimestamp => "缺少时间戳参数".into(),
            Self::InvalidTimestamp => {
                "非法的时间戳参数，格式为yyyy-MM-dd HH:mm:ss（北京时间），与网关时间相差不能超过10分钟"
                    .into()
            }
            Self::MissingVersion => "缺少版本参数".into(),
            Self::AppCertNotExist => "应用公钥证书不存在".into(),
            Self::InvalidRootCertSn => "无效支付宝根证书序列号".into(),
            Self::InvalidSignature { content } => format!(
                "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{content}"
            ),
            Self::InvalidBizContent => "biz_content 不是合法的 JSON 对象".into(),
        }
    }

    pub fn sign_content(&self) -> Option<&str> {
        match self {
            Self::InvalidSignature { content } => Some(content),
            _ => None,
        }
    }
}
