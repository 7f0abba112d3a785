"""Servers the local stack and the tests start themselves: the tansu broker and influxd."""
