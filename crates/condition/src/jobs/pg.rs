//! PostgreSQL job queue (in progress).
