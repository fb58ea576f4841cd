"""Keeping calls as long as they are wanted: monthly partitions on PostgreSQL
(``partitions``) and removing old calls (``prune``)."""
