-- The money invariants are enforced here as well as in the domain: no amount is
-- negative, a capture never exceeds its authorization, a refund never its capture.
CREATE TABLE payments (
	id             TEXT PRIMARY KEY,
	order_id       TEXT NOT NULL UNIQUE,
	status         INTEGER NOT NULL CHECK (status BETWEEN 1 AND 5),
	currency       TEXT NOT NULL,
	authorized     BIGINT NOT NULL CHECK (authorized >= 0),
	captured       BIGINT NOT NULL CHECK (captured >= 0),
	refunded       BIGINT NOT NULL CHECK (refunded >= 0),
	card_brand     TEXT NOT NULL,
	decline_code   TEXT NOT NULL,
	decline_reason TEXT NOT NULL,
	create_time    BIGINT NOT NULL,
	update_time    BIGINT NOT NULL,
	CHECK (captured <= authorized),
	CHECK (refunded <= captured)
);

CREATE TABLE payment_replies (
	command_id  TEXT PRIMARY KEY,
	subject     TEXT NOT NULL,
	type        TEXT NOT NULL,
	payload     TEXT NOT NULL,
	create_time BIGINT NOT NULL
);
