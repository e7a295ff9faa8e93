"""`cdnpack preview`: a release served with a page that plays it, before it is pushed."""
