"""losses of mmrazor."""
