"""Kafka topic names: public contracts (ARCHITECTURE.md), changed only with a migration note."""

READINGS = "readings"
READINGS_REJECTED = "readings.rejected"
OUTPUT = "output"
REGISTRY = "registry"
ALERTS = "alerts"
