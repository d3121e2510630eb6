"""The job table as the queue (no broker; docs/decisions.md, "The job table is the queue"):
claims, leases and attempts (`queue`), and the jobs of bulk operations
(`operation_jobs`). Below everything that enqueues or takes work (evidence intake, the
worker runtime, services): it knows only the model."""
