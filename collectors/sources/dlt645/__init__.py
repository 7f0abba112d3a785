"""DL/T 645-2007 electricity meters over a TCP gateway or a serial line (see README.md)."""
