"""Measuring picture quality: VMAF runs, rate-quality hulls and Bjøntegaard deltas."""
