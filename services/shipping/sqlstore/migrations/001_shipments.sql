CREATE TABLE shipments (
	order_id     TEXT PRIMARY KEY,
	id           TEXT NOT NULL UNIQUE,
	tracking_id  TEXT NOT NULL,
	status       INTEGER NOT NULL CHECK (status IN (1, 2)),
	name         TEXT NOT NULL,
	street       TEXT NOT NULL,
	city         TEXT NOT NULL,
	postal_code  TEXT NOT NULL,
	country_code TEXT NOT NULL,
	cost_minor   BIGINT NOT NULL CHECK (cost_minor >= 0),
	currency     TEXT NOT NULL,
	create_time  BIGINT NOT NULL,
	update_time  BIGINT NOT NULL
);

CREATE TABLE shipping_replies (
	command_id  TEXT PRIMARY KEY,
	subject     TEXT NOT NULL,
	type        TEXT NOT NULL,
	payload     TEXT NOT NULL,
	create_time BIGINT NOT NULL
);
