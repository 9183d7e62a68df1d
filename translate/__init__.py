"""translate: neural machine translation on one attention core."""

__version__ = "0.1.0"
