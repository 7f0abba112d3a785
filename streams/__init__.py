"""The Faust stream app: topics, the readings agent, its tables and the InfluxDB sink."""
