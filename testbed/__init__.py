"""The local world of the demo and the tests: generated clips, a local S3/CloudFront
origin (moto_server), emulated CDN edges with fault injection and distance, the demo.

Product packages (packager, cdn, probes, release) never import it."""
