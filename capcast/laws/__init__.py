"""Scaling laws behind one interface: see :mod:`capcast.laws.base`."""

from capcast.laws.base import Law, LawFit, Prediction, Series, Target

__all__ = ["Law", "LawFit", "Prediction", "Series", "Target"]
