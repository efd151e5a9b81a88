"""Scoring distilled sets the way papers do: students trained under a fixed protocol (soft or hard
labels) and tested on a real validation set; FID against a reference set."""
