"""dlx: exploring-deep-learning exercises as repeatable batch jobs."""
