"""MP4 box I/O: ISO-BMFF boxes, progressive sample tables, demuxing one track."""
