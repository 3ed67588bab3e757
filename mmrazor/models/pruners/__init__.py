"""pruners of mmrazor."""
