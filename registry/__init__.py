"""Adapter Registry: a registry and governance service for PEFT adapters."""

__version__ = "0.1.0"
