"""Intake: the one way files come in. HTTP uploads and SMTP mail alike hand the intake service
(`intake.service.Intake`) their files with who sent them; it applies the limits, names and sniffs
the files, makes their bytes durable, applies the queue-state and file-type rules, and creates the
records and pipeline jobs in one unit of the group commit. No module here speaks HTTP or SMTP."""
