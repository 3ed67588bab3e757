"""algorithms of mmrazor."""
