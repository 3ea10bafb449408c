-- How recovery codes an admin re-issues reach this user (SPEC F4): NULL follows the
-- configuration (`recovery.admin_delivery`); 'show' (shown once to the admin) or 'email' is an
-- admin's explicit choice for this user.
ALTER TABLE users ADD COLUMN recovery_delivery TEXT;
