"""Hind-limb muscle indices from the dog's silhouette: thigh width, hind/fore balance, left/right asymmetry."""
