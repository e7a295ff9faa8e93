"""Encoding: probing a source, planning the ladder, one ffmpeg process."""
