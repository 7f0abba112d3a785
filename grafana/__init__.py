"""Grafana for energymon: dashboards as code (grafana-foundation-sdk, Grafana 11), the generated JSON
under ``grafana/dashboards/``, provisioning files, and ``push`` over Grafana's HTTP API."""
