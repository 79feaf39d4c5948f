"""Log-source readers: bytes or files in, event batches (Polars DataFrames) out.

Each module reads one format; ``registry`` lists them for auto-detection and ``--source NAME``.
"""
