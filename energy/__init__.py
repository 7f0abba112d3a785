"""The pure domain kernel: message schema, energy and emission-factor tables, unit conversion,
counter deltas, tce/CO₂ accounting and alert rules. No I/O, no Kafka, no clock reads."""
