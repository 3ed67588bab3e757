"""distillers of mmrazor."""
