"""Intake, shared by the HTTP and SMTP receivers: limits, type sniffing, file names, durable
blob storage, and the one transaction that creates the records and pipeline jobs."""
