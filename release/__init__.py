"""The release flow: package, stage on the origin, probe, gate, publish (`cdnpack release`)."""
