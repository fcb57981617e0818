"""Layers shared by the models. Imports torch only; constructors take plain keyword arguments."""
