"""Content keys: the key model, the keystore, CPIX, SPEKE and the key sources."""
