"""Real-viewer QoE from CDN logs: CMCD decoding, CloudFront log formats, aggregation."""
