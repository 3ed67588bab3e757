"""task_modules of mmrazor."""
