"""What a run records about where it ran: environment, code version, system metrics, and seeding for reproducibility."""
