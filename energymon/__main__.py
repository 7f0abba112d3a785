"""`python -m energymon` is the `energymon` command."""

from energymon.cli import main

main()
