-- The order's owner, for the owner-or-admin check on reads. Payments made before it
-- keep an empty owner: only admins may read them.
ALTER TABLE payments ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
