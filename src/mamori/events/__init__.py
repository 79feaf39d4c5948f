"""The event data model: column names, the batch builder and log-source mapping tables."""
