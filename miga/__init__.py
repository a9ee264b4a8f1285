"""miga: Mutual Information-Guided Attacks (MIGA, arXiv 2503.06966) on image denoisers."""

__version__ = "0.1.0"
