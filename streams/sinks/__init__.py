"""Where processed points go (InfluxDB)."""
