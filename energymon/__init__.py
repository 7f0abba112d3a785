"""The command line and settings: the one place that knows every part."""
