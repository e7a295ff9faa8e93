"""Text tracks: subtitles and captions read from WebVTT, SRT, TTML and ASS, written as WebVTT."""
