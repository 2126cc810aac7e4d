"""Hindsight: hind-limb gait analysis of dogs from phone video."""

__version__ = "0.1.0"
