"""ops of mmrazor."""
