"""Detection: Sigma rules, IOC matching and anomaly models over event batches."""
