-- Read models of the order projection. Times are Unix nanoseconds (BIGINT) so that
-- keyset pagination compares exactly on both SQLite and PostgreSQL; money is BIGINT
-- minor units; lines and address are JSON text.
--
-- Rebuild replays every file of this directory against fresh tables, renaming the
-- read-model tables and indexes (see readModelNames in schema.go). Statements on
-- projection_checkpoints must therefore be idempotent (IF NOT EXISTS).

CREATE TABLE IF NOT EXISTS projection_checkpoints (
	name       TEXT PRIMARY KEY,
	position   BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE orders (
	id            TEXT PRIMARY KEY,
	user_id       TEXT NOT NULL,
	status        INTEGER NOT NULL,
	lines         TEXT NOT NULL,
	currency      TEXT NOT NULL,
	subtotal      BIGINT NOT NULL,
	shipping      BIGINT NOT NULL,
	total         BIGINT NOT NULL,
	address       TEXT NOT NULL,
	payment_id    TEXT NOT NULL DEFAULT '',
	shipment_id   TEXT NOT NULL DEFAULT '',
	tracking_id   TEXT NOT NULL DEFAULT '',
	cancel_reason TEXT NOT NULL DEFAULT '',
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL,
	version       BIGINT NOT NULL
);

-- orders_by_user: a user's orders, newest first, optionally of one status.
CREATE INDEX orders_by_user_idx ON orders (user_id, created_at, id);
CREATE INDEX orders_by_user_status_idx ON orders (user_id, status, created_at, id);

-- sales_by_product: what COMPLETED orders sold, per product and currency.
CREATE TABLE sales_by_product (
	product_id  TEXT NOT NULL,
	currency    TEXT NOT NULL,
	name        TEXT NOT NULL,
	units       BIGINT NOT NULL,
	revenue     BIGINT NOT NULL,
	order_count BIGINT NOT NULL,
	PRIMARY KEY (product_id, currency)
);
