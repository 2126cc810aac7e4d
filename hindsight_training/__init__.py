"""Training, export and evaluation of Hindsight's dog pose model (needs the ``train`` extra for torch).

The runtime (:mod:`vision`) never imports this package; this package imports the runtime's
geometry, decoding and model classes so that training, export and inference agree.
"""
