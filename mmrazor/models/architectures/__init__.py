"""architectures of mmrazor."""
