"""Gait events and hind-limb metrics: symmetry, bunny hopping, wobble (ataxia and tremor)."""
