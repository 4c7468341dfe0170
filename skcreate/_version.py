"""The package version, in a module of its own: every layer may read it without importing the
package's top (setup.py reads this file as text)."""

__version__ = "0.3.0"
