"""Plugins that ship with capcast, registered through the same hooks as third-party ones."""
