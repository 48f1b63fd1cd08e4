//! Preparing a deployment that is already running (`--target`): its orders are created through
//! its own API, as a merchant's back end creates them.

use futures::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use secrecy::{ExposeSecret, SecretString};

use super::notifications::PaidOrder;

/// `POST /api/orders` for each order, `concurrency` at a time; each must be new (`201`).
pub async fn create_orders(
    client: &reqwest::Client,
    base: &url::Url,
    token: &SecretString,
    orders: &[PaidOrder],
    subject: &str,
    concurrency: usize,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let url = base.join("api/orders")?;
    futures::stream::iter(orders)
        .map(|order| {
            let request = client
                .post(url.clone())
                .bearer_auth(token.expose_secret())
                .json(&serde_json::json!({
                    "out_trade_no": order.out_trade_no,
                    "subject": subject,
                    "total_amount": order.amount.to_string(),
                }));
            async move {
                let response = request.send().await?;
                let status = response.status();
                if status != reqwest::StatusCode::CREATED {
                    let text = response.text().await.unwrap_or_default();
                    anyhow::bail!("creating order {}: {status} {text}", order.out_trade_no);
                }
                progress.inc(1);
                Ok(())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await
}
