"""MQTT source: subscribes to topic patterns and maps each payload (a readings message, or any JSON
with configured field paths) to readings (README.md)."""
