"""Live inputs: the durable spool (write-ahead log), syslog listeners, file tailing, HTTP ingest helpers."""
