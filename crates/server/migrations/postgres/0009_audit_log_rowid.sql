-- Nothing to change on PostgreSQL. On SQLite this migration makes the audit log's seq the row id,
-- removing a second index on it; here the primary key is already the only index on seq (a table
-- has no hidden row id to index beside it). The file keeps both databases' migrations in step.
SELECT 1;
