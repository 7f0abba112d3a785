"""The simulated fleet (collectors/simulator.py) as a polled source: the reference plugin."""
