-- How the buyer pays: the Alipay product the order's pay link opens. Orders made before products
-- existed were all desktop cashier (page) orders.
alter table payment_order add column product text not null default 'page'
    check (product in ('page', 'wap', 'qr', 'app'));
