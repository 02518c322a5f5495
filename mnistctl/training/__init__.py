"""Training: the configuration, the trainer, and what runs beside it."""
