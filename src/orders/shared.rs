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

            /// One more row than asked for tells whether there is a next page. The statement
            /// holds only the conditions given, so each shape gets a plan that uses its index.
            async fn page_of(
                pool: &sqlx::Pool<$db>,
                filter: &OrderFilter,
                after: Option<&Cursor>,
                limit: i64,
                amount_path: AmountPath,
            ) -> Result<OrderPage, StoreError> {
                let mut sql = sqlx::QueryBuilder::<$db>::new(concat!(
                    "select ",
                    order_columns!(),
                    " from payment_order"
                ));
                // SQLite's syntax: only the SQLite store asks for these paths. A unary `+`
                // keeps SQLite from using an index for that term.
                let total = match amount_path {
                    AmountPath::Planner => "total_fen",
                    AmountPath::ByAmount => {
                        sql.push(" indexed by payment_order_total");
                        "total_fen"
                    }
                    AmountPath::ByTime => "+total_fen",
                };
                sql.push(" where true");
                if let Some(status) = filter.status {
                    sql.push(" and status = ").push_bind(status.as_str());
                }
                if let Some(product) = filter.product {
                    sql.push(" and product = ").push_bind(product.as_str());
                }
                if let Some(from) = filter.created_from {
                    sql.push(" and created_at >= ").push_bind(Self::time_bound(from)?);
                }
                if let Some(to) = filter.created_to {
                    sql.push(" and created_at < ").push_bind(Self::time_bound(to)?);
                }
                if let Some(min) = filter.min_fen {
                    sql.push(format_args!(" and {total} >= ")).push_bind(min);
                }
                if let Some(max) = filter.max_fen {
                    sql.push(format_args!(" and {total} <= ")).push_bind(max);
                }
                if let Some(search) = &filter.search {
                    sql.push(" and (out_trade_no = ")
                        .push_bind(search.clone())
                        .push(" or trade_no = ")
                        .push_bind(search.clone())
                        .push(" or buyer_id = ")
                        .push_bind(search.clone())
                        .push(")");
                }
                if let Some(cursor) = after {
                    sql.push(" and (created_at, out_trade_no) < (")
                        .push_bind(cursor.created_at)
                        .push(", ")
                        .push_bind(cursor.out_trade_no.clone())
                        .push(")");
                }
                sql.push(" order by created_at desc, out_trade_no desc limit ")
                    .push_bind(limit + 1);
                let rows: Vec<OrderRow> = sql.build_query_as().fetch_all(pool).await?;
                let mut orders = rows
                    .into_iter()
                    .map(Order::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                let next = if orders.len() as i64 > limit {
                    orders.truncate(limit as usize);
                    orders.last().map(|last| Cursor {
                        created_at: last.created_at,
                        out_trade_no: last.out_trade_no.clone(),
                    })
                } else {
                    None
                };
                Ok(OrderPage { orders, next })
            }

            async fn insert_action(
                pool: &sqlx::Pool<$db>,
                action: &ConsoleAction,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "insert into console_action (operator, kind, out_trade_no, request, outcome, at) \
                     values ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&action.operator)
                .bind(action.kind.as_str())
                .bind(&action.out_trade_no)
                .bind(&action.request)
                .bind(&action.outcome)
                .bind(action.at)
                .execute(pool)
                .await?;
                Ok(())
            }

            async fn actions_of(
                pool: &sqlx::Pool<$db>,
                out_trade_no: &str,
            ) -> Result<Vec<ConsoleAction>, StoreError> {
                let rows: Vec<ActionRow> = sqlx::query_as(
                    "select operator, kind, out_trade_no, request, outcome, at \
                     from console_action where out_trade_no = $1 order by id",
                )
                .bind(out_trade_no)
                .fetch_all(pool)
                .await?;
                rows.into_iter().map(ConsoleAction::try_from).collect()
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

            async fn message_by_id(
                pool: &sqlx::Pool<$db>,
                id: i64,
            ) -> Result<Option<AuditRecord>, StoreError> {
                let row: Option<AuditRow> = sqlx::query_as(
                    "select id, source, notify_id, out_trade_no, trade_status, verdict, reason, \
                     received_at, raw_body from notification where id = $1",
                )
                .bind(id)
                .fetch_optional(pool)
                .await?;
                row.map(AuditRecord::try_from).transpose()
            }
        }
    };
}

pub(super) use shared_statements;
