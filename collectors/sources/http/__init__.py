"""HTTP push source: ``POST /v1/readings`` takes readings messages from devices, gateways and
manual entry (README.md)."""
