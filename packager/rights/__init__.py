"""Rights: where and when a release may play, and what it may show there (grants)."""
