"""Pipeline: jobs claimed from the database, run through named steps, ending in to_review or failed_import."""
