"""A watched folder of CSV / XLSX exports from legacy systems (see README.md)."""
