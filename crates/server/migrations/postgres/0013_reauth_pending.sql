-- A sensitive web form interrupted by re-authentication waits here, bound to its session and
-- sealed under the server key (it may hold a new user's initial password), instead of being
-- repeated in hidden fields of the password page. Empty: nothing waits.
ALTER TABLE web_sessions ADD COLUMN pending BYTEA;
