//! What the console's overview and anomaly pages read: counts by status and by verdict, the
//! most overdue pending order, and the anomalies with their reviews.

use time::OffsetDateTime;

use super::model::{AnomalyReason, OrderStatus, Verdict};

/// How many orders of each status were created since some time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCounts(pub Vec<(OrderStatus, i64)>);

impl StatusCounts {
    pub fn of(&self, status: OrderStatus) -> i64 {
        self.0
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    }

    pub fn total(&self) -> i64 {
        self.0.iter().map(|(_, n)| n).sum()
    }
}

/// Messages recorded in one hour with one verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictCount {
    /// The start of the hour (UTC).
    pub hour: OffsetDateTime,
    pub verdict: Verdict,
    pub count: i64,
}

/// A genuine message that disagreed with our records, and its review if someone looked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// The notification row's id: what a review refers to.
    pub id: i64,
    pub source: String,
    pub out_trade_no: Option<String>,
    pub trade_status: Option<String>,
    pub reason: Option<AnomalyReason>,
    pub received_at: OffsetDateTime,
    pub review: Option<Review>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub operator: String,
    pub note: String,
    pub at: OffsetDateTime,
}

/// One row of a by-hour count, checked.
pub(super) fn verdict_count(
    hour: OffsetDateTime,
    verdict: &str,
    count: i64,
) -> Result<VerdictCount, super::StoreError> {
    let verdict = Verdict::parse(verdict)
        .ok_or_else(|| super::StoreError::Corrupt(format!("verdict {verdict:?}")))?;
    Ok(VerdictCount {
        hour,
        verdict,
        count,
    })
}

/// Orders created since `$1`, by status; the statuses are those `OrderStatus` knows.
pub(super) const STATUS_COUNTS: &str = "\
    select 'pending', count(*) from payment_order where status = 'pending' and created_at >= $1 \
    union all \
    select 'paid', count(*) from payment_order where status = 'paid' and created_at >= $1 \
    union all \
    select 'closed', count(*) from payment_order where status = 'closed' and created_at >= $1 \
    union all \
    select 'refunded', count(*) from payment_order where status = 'refunded' and created_at >= $1";

/// The statements both stores run alike (see `shared_statements!` for why a macro).
macro_rules! stats_statements {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn status_counts_since(
                pool: &sqlx::Pool<$db>,
                since: OffsetDateTime,
            ) -> Result<StatusCounts, StoreError> {
                // One range of the (status, created_at) index per status: a grouped count
                // over created_at alone reads every order ever made (1,000,000: 44 ms on
                // SQLite). In UTC, as stored: SQLite compares times as text.
                let rows: Vec<(String, i64)> = sqlx::query_as(crate::orders::stats::STATUS_COUNTS)
                    .bind(since.to_offset(time::UtcOffset::UTC))
                    .fetch_all(pool)
                    .await?;
                let counts = rows
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(status, n)| {
                        OrderStatus::parse(&status)
                            .map(|s| (s, n))
                            .ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))
                    })
                    .collect::<Result<_, _>>()?;
                Ok(StatusCounts(counts))
            }

            async fn oldest_overdue_order(
                pool: &sqlx::Pool<$db>,
                now: OffsetDateTime,
            ) -> Result<Option<Order>, StoreError> {
                let row: Option<OrderRow> = sqlx::query_as(concat!(
                    "select ",
                    order_columns!(),
                    " from payment_order where status = 'pending' and expires_at < $1 \
                     order by expires_at limit 1"
                ))
                .bind(now)
                .fetch_optional(pool)
                .await?;
                row.map(Order::try_from).transpose()
            }

            async fn anomalies_in(
                pool: &sqlx::Pool<$db>,
                reviewed: bool,
                limit: i64,
            ) -> Result<Vec<Anomaly>, StoreError> {
                // Both shapes read the review's own columns (typed by its table), null when
                // there is none.
                let sql = if reviewed {
                    "select n.id, n.source, n.out_trade_no, n.trade_status, n.reason, \
                     n.received_at, r.operator, r.note, r.at from notification n \
                     left join anomaly_review r on r.notification_id = n.id \
                     where n.verdict = 'anomaly' and r.notification_id is not null \
                     order by r.at desc limit $1"
                } else {
                    "select n.id, n.source, n.out_trade_no, n.trade_status, n.reason, \
                     n.received_at, r.operator, r.note, r.at from notification n \
                     left join anomaly_review r on r.notification_id = n.id \
                     where n.verdict = 'anomaly' and r.notification_id is null \
                     order by n.id desc limit $1"
                };
                let rows: Vec<AnomalyRow> =
                    sqlx::query_as(sql).bind(limit).fetch_all(pool).await?;
                rows.into_iter().map(Anomaly::try_from).collect()
            }

            async fn unreviewed_count(pool: &sqlx::Pool<$db>) -> Result<i64, StoreError> {
                let (count,): (i64,) = sqlx::query_as(
                    "select count(*) from notification n left join anomaly_review r \
                     on r.notification_id = n.id \
                     where n.verdict = 'anomaly' and r.notification_id is null",
                )
                .fetch_one(pool)
                .await?;
                Ok(count)
            }

            /// Whether the review was recorded: false for no such anomaly or one already
            /// reviewed (the first review stands).
            async fn insert_review(
                pool: &sqlx::Pool<$db>,
                id: i64,
                review: &Review,
            ) -> Result<bool, StoreError> {
                let inserted = sqlx::query(
                    "insert into anomaly_review (notification_id, operator, note, at) \
                     select id, $2, $3, $4 from notification where id = $1 and verdict = 'anomaly' \
                     on conflict (notification_id) do nothing",
                )
                .bind(id)
                .bind(&review.operator)
                .bind(&review.note)
                .bind(review.at)
                .execute(pool)
                .await?
                .rows_affected();
                Ok(inserted == 1)
            }
        }
    };
}

pub(super) use stats_statements;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_counts_cover_every_status() {
        for status in OrderStatus::ALL {
            let condition = format!("status = '{}'", status.as_str());
            assert_eq!(STATUS_COUNTS.matches(&condition).count(), 1, "{condition}");
        }
    }
}
