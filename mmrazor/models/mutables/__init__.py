"""mutables of mmrazor."""
