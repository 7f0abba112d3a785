"""Modbus TCP, RTU and RTU-over-TCP source (pymodbus); the plugin is :mod:`.plugin`, see README.md."""
