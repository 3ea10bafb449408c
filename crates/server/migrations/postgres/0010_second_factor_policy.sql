-- Who must use a second factor (issue: no password-only path past it).

-- When the user's first token was activated; NULL while the user never had one. It stays set
-- when tokens are later revoked, disabled or deleted: such a user gets no session and no accept
-- on the password alone, and enrolls a replacement only through recovery or an admin's link.
-- An account reset (SPEC F6) clears it.
ALTER TABLE users ADD COLUMN second_factor_at BIGINT;
UPDATE users SET second_factor_at = (
    SELECT MIN(t.last_used_at) FROM tokens t WHERE t.user_id = users.id
) WHERE EXISTS (SELECT 1 FROM tokens t WHERE t.user_id = users.id AND t.last_used_at IS NOT NULL);

-- Whether the application lets a user without any token in (passthrough): an explicit policy.
-- Applications registered before this keep what they did: password_and_otp checked the password
-- alone for such users, otp_only accepted them with any code (now off: that checked nothing).
ALTER TABLE applications ADD COLUMN passthrough BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE applications SET passthrough = TRUE WHERE mode = 'password_and_otp';
