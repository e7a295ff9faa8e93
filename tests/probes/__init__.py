"""Tests of regional probes, scoring and gates against emulated edges on 127.0.0.1."""
