-- The random input of a refresh token's successor, kept only through the grace period
-- (so that a retry gets the same successor back), then cleared by housekeeping.
ALTER TABLE refresh_tokens ADD COLUMN successor_nonce TEXT;
