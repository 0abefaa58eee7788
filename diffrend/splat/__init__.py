"""Gaussian splatting and Pulsar-style sphere rendering."""
