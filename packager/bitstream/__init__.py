"""Bitstream parsing: AVC and HEVC NAL units and slice headers."""
