"""The three dashboards: monitoring-centre overview, unit detail and alerts."""
