"""Meter sources of the site collector: one sub-package per protocol, all behind ``base.Source``."""
