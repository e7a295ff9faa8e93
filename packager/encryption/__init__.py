"""Encryption: Common Encryption of CMAF tracks and whole-segment AES-128."""
