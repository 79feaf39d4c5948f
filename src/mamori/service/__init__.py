"""The SOC service: spool -> parse -> lake + detection -> alerts, with metrics; wired by ``runtime``."""
