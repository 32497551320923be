-- available + reserved + sold = total_stocked, and none is ever negative: the
-- conditional updates keep it so under any concurrency, these checks prove it.
CREATE TABLE stock (
	product_id    TEXT PRIMARY KEY,
	available     BIGINT NOT NULL CHECK (available >= 0),
	reserved      BIGINT NOT NULL CHECK (reserved >= 0),
	sold          BIGINT NOT NULL CHECK (sold >= 0),
	total_stocked BIGINT NOT NULL CHECK (total_stocked >= 0),
	CHECK (available + reserved + sold = total_stocked)
);

CREATE TABLE reservations (
	id          TEXT PRIMARY KEY,
	order_id    TEXT NOT NULL UNIQUE,
	status      INTEGER NOT NULL CHECK (status BETWEEN 1 AND 4),
	expire_time BIGINT NOT NULL,
	create_time BIGINT NOT NULL,
	update_time BIGINT NOT NULL
);

CREATE INDEX reservations_due ON reservations (status, expire_time);

CREATE TABLE reservation_lines (
	reservation_id TEXT NOT NULL REFERENCES reservations (id),
	product_id     TEXT NOT NULL,
	quantity       BIGINT NOT NULL CHECK (quantity > 0),
	PRIMARY KEY (reservation_id, product_id)
);

CREATE TABLE inventory_replies (
	command_id  TEXT PRIMARY KEY,
	subject     TEXT NOT NULL,
	type        TEXT NOT NULL,
	payload     TEXT NOT NULL,
	create_time BIGINT NOT NULL
);

CREATE TABLE inventory_outbox (
	id          TEXT PRIMARY KEY,
	order_id    TEXT NOT NULL,
	subject     TEXT NOT NULL,
	type        TEXT NOT NULL,
	payload     TEXT NOT NULL,
	create_time BIGINT NOT NULL
);
