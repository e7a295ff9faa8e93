"""The title: the languages a release carries (audio, subtitles, captions) and their files."""
