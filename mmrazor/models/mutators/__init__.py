"""mutators of mmrazor."""
