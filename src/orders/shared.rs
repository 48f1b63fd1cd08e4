//! The statements both stores run alike, each next to its binds, written once. A macro rather
//! than a generic function: sqlx types executors per database, and a generic helper would need a
//! trait bound for every bound value. Each backend instantiates it for its own types
//! (`shared_statements!(PgStore, Postgres, PgConnection)`); what differs — locking, how a write
//! transaction begins, which pool reads — stays in the backend.

macro_rules! shared_statements {
    ($store:ty, $db:ty, $conn:ty) => {
        impl $store {
            async fn read_order(
                conn: &mut $conn,
                out_trade_no: &str,
            ) -> Result<Option<Order>, StoreError> {
                let row: Option<OrderRow> = sqlx::query_as(SELECT_ORDER)
                    .bind(out_trade_no)
                    .fetch_optional(conn)
                    .await?;
                row.map(Order::try_from).transpose()
            }

            /// Stores a new pending order, or finds the one with its number.
            async fn create(conn: &mut $conn, order: &NewOrder) -> Result<Created, StoreError> {
                let inserted = Self::insert_order(&mut *conn, order).await?;
                let stored = Self::read_order(conn, &order.out_trade_no)
                    .await?
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("order {} vanished", order.out_trade_no))
                    })?;
                Ok(if inserted {
                    Created::New(stored)
                } else {
                    Created::Existing(stored)
                })
            }

            /// Inserts a pending order unless its number exists; whether it was inserted.
            async fn insert_order(conn: &mut $conn, order: &NewOrder) -> Result<bool, StoreError> {
                let inserted = sqlx::query(
                    "insert into payment_order (out_trade_no, subject, body, total_fen, product, \
                     status, created_at, updated_at, expires_at) \
                     values ($1, $2, $3, $4, $5, 'pending', $6, $6, $7) \
                     on conflict (out_trade_no) do nothing",
                )
                .bind(&order.out_trade_no)
                .bind(&order.subject)
                .bind(&order.body)
                .bind(order.total_amount.fen())
                .bind(order.product.as_str())
                .bind(order.created_at)
                .bind(order.expires_at)
                .execute(conn)
                .await?
                .rows_affected();
                Ok(inserted == 1)
            }

            async fn insert_audit(
                tx: &mut sqlx::Transaction<'_, $db>,
                entry: &AuditEntry,
                verdict: Verdict,
                reason: Option<AnomalyReason>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "insert into notification (source, notify_id, out_trade_no, trade_status, \
                     verdict, reason, raw_body, received_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(entry.source.as_str())
                .bind(&entry.notify_id)
                .bind(&entry.out_trade_no)
                .bind(&entry.trade_status)
                .bind(verdict.as_str())
                .bind(reason.map(AnomalyReason::as_str))
                .bind(&entry.raw)
                .bind(entry.received_at)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            async fn find_refund(
                conn: &mut $conn,
                out_trade_no: &str,
                out_request_no: &str,
            ) -> Result<Option<Refund>, StoreError> {
                let row: Option<RefundRow> = sqlx::query_as(
                    "select out_request_no, amount_fen, reason, status, created_at, updated_at \
                     from refund where out_trade_no = $1 and out_request_no = $2",
                )
                .bind(out_trade_no)
                .bind(out_request_no)
                .fetch_optional(conn)
                .await?;
                row.map(Refund::try_from).transpose()
            }

            /// The body of `begin_refund` once the order row is locked (or read by the only
            /// writer): checks the request against the refunds already committed, then records it.
            async fn start_refund(
                tx: &mut sqlx::Transaction<'_, $db>,
                order: Option<Order>,
                refund: &NewRefund,
            ) -> Result<Result<RefundStart, RefundRefused>, StoreError> {
                let existing =
                    Self::find_refund(&mut **tx, &refund.out_trade_no, &refund.out_request_no).await?;
                let (committed,): (i64,) = sqlx::query_as(
                    "select cast(coalesce(sum(amount_fen), 0) as bigint) from refund \
                     where out_trade_no = $1 and status <> 'failed'",
                )
                .bind(&refund.out_trade_no)
                .fetch_one(&mut **tx)
                .await?;
                match refund_allowed(order.as_ref(), existing, committed, refund) {
                    Err(refused) => return Ok(Err(refused)),
                    Ok(Some(existing)) => return Ok(Ok(existing)),
                    Ok(None) => {}
                }
                sqlx::query(
                    "insert into refund (out_trade_no, out_request_no, amount_fen, reason, status, \
                     created_at, updated_at) values ($1, $2, $3, $4, 'pending', $5, $5)",
                )
                .bind(&refund.out_trade_no)
                .bind(&refund.out_request_no)
                .bind(refund.amount.fen())
                .bind(&refund.reason)
                .bind(refund.requested_at)
                .execute(&mut **tx)
                .await?;
                let stored =
                    Self::find_refund(&mut **tx, &refund.out_trade_no, &refund.out_request_no).await?;
                let stored = stored.ok_or_else(|| StoreError::Corrupt("refund vanished".into()))?;
                Ok(Ok(RefundStart::New(stored)))
            }

            /// The refund an applied event settles: ours (marked succeeded) or one made elsewhere,
            /// e.g. in Alipay's console (recorded with the amount by which the refund grew).
            async fn settle_refund(
                conn: &mut $conn,
                (out_trade_no, out_request_no, grew_by): (&str, &str, i64),
                now: OffsetDateTime,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "insert into refund (out_trade_no, out_request_no, amount_fen, reason, status, \
                     created_at, updated_at) values ($1, $2, $3, null, 'succeeded', $4, $4) \
                     on conflict (out_trade_no, out_request_no) \
                     do update set status = 'succeeded', updated_at = $4",
                )
                .bind(out_trade_no)
                .bind(out_request_no)
                .bind(grew_by)
                .bind(now)
                .execute(conn)
                .await?;
                Ok(())
            }

            async fn refunds_in(
                conn: &mut $conn,
                out_trade_no: &str,
            ) -> Result<Vec<Refund>, StoreError> {
                let rows: Vec<RefundRow> = sqlx::query_as(
                    "select out_request_no, amount_fen, reason, status, created_at, updated_at \
                     from refund where out_trade_no = $1 order by created_at, out_request_no",
                )
                .bind(out_trade_no)
                .fetch_all(conn)
                .await?;
                rows.into_iter().map(Refund::try_from).collect()
            }

            /// The refunds of the orders a batch's events need (see `BatchPlan::with_refunds`).
            async fn refunds_of_orders(
                conn: &mut $conn,
                orders: &[&str],
            ) -> Result<HashMap<String, Vec<Refund>>, StoreError> {
                let mut refunds = HashMap::new();
                for &no in orders {
                    refunds.insert(no.to_owned(), Self::refunds_in(&mut *conn, no).await?);
                }
                Ok(refunds)
            }

            async fn audit_of(
                pool: &sqlx::Pool<$db>,
                out_trade_no: &str,
            ) -> Result<Vec<AuditRecord>, StoreError> {
                let rows: Vec<AuditRow> = sqlx::query_as(
                    "select id, source, notify_id, out_trade_no, trade_status, verdict, reason, \
                     received_at, raw_body from notification where out_trade_no = $1 order by id",
                )
                .bind(out_trade_no)
                .fetch_all(pool)
                .await?;
                rows.into_iter().map(AuditRecord::try_from).collect()
            }
        }
    };
}

pub(super) use shared_statements;
